"""Interop with the JOSE ecosystem, both ways.

Tokens minted by authlib, joserfc and (where Node is on the machine) panva's ``jose``, with
keys they generated and published in their own JWK spelling, are accepted by `JWTAuth` for
every algorithm each of them signs; and the dev issuer's tokens are accepted by each of them.
``python -m tests.support.interop_table`` prints the same checks as a table.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_isp_jwt import ALGORITHMS
from tests.support.components import in_ci
from tests.support.interop import (
    SUBJECT,
    dev_issuer_token,
    interop_claims,
    verified_by_jwtauth,
)
from tests.support.issuer_server import IssuerServer
from tests.support.node_jose import JOSE_VARIANTS, NODE, NPM, NodeJose, install_jose
from tests.support.producers import (
    PRODUCERS,
    VARIANTS,
    Minted,
    Producer,
    Variant,
    short_coordinates,
)

PYTHON_CELLS = [
    pytest.param(producer, variant, id=f"{producer.name}-{variant.label}")
    for producer in PRODUCERS
    for variant in producer.variants
]


EC_VARIANTS = tuple(v for v in VARIANTS if v.alg.startswith("ES"))


def by_label(variants: tuple[Variant, ...]) -> list[Any]:
    return [pytest.param(variant, id=variant.label) for variant in variants]


# -- the node jose producer, when it can be had -------------------------------------------


@pytest.fixture(scope="module")
def node_jose(tmp_path_factory: pytest.TempPathFactory) -> NodeJose:
    node = NODE.require()
    npm = NPM.require()
    directory = tmp_path_factory.mktemp("node-jose")
    problem = install_jose(npm, directory)
    if problem is not None:
        if in_ci():
            pytest.fail(f"{problem} (CI=true: a missing component fails the run)", pytrace=False)
        pytest.skip(problem)
    return NodeJose(node, directory)


@pytest.fixture(scope="module")
def jose_tokens(node_jose: NodeJose, _session_server: IssuerServer) -> dict[Variant, Minted | str]:
    """One token per variant jose signs, minted in one run of Node."""
    minted = node_jose.mint(JOSE_VARIANTS, interop_claims(_session_server.url))
    return dict(zip(JOSE_VARIANTS, minted, strict=True))


# -- what they mint, JWTAuth accepts ---------------------------------------------------------


def test_every_variant_names_an_algorithm_the_library_verifies() -> None:
    assert {variant.alg for variant in VARIANTS} == set(ALGORITHMS)


@pytest.mark.parametrize(("producer", "variant"), PYTHON_CELLS)
def test_a_python_producers_token_is_accepted(
    server: IssuerServer, producer: Producer, variant: Variant
) -> None:
    minted = producer.mint(variant, interop_claims(server.url))

    principal = verified_by_jwtauth(server, minted, variant)

    assert principal.subject == SUBJECT


@pytest.mark.parametrize("variant", by_label(JOSE_VARIANTS))
def test_a_node_jose_token_is_accepted(
    server: IssuerServer, jose_tokens: dict[Variant, Minted | str], variant: Variant
) -> None:
    minted = jose_tokens[variant]
    assert isinstance(minted, Minted), minted

    principal = verified_by_jwtauth(server, minted, variant)

    assert principal.subject == SUBJECT


@pytest.mark.parametrize("variant", by_label(EC_VARIANTS))
def test_an_authlib_key_with_short_ec_coordinates_is_accepted(
    server: IssuerServer, variant: Variant
) -> None:
    # authlib drops leading zero bytes of x and y; the key is still on its curve.
    minted = short_coordinates(variant, interop_claims(server.url))

    principal = verified_by_jwtauth(server, minted, variant)

    assert principal.subject == SUBJECT


# -- what the dev issuer mints, they accept ----------------------------------------------------


@pytest.fixture(scope="module")
def dev_tokens() -> dict[Variant, tuple[Minted, str]]:
    """A dev issuer token (and its issuer) per variant, each from a dev issuer of its own."""
    return {variant: dev_issuer_token(variant) for variant in VARIANTS}


@pytest.mark.parametrize(("producer", "variant"), PYTHON_CELLS)
def test_a_python_library_accepts_the_dev_issuers_token(
    dev_tokens: dict[Variant, tuple[Minted, str]], producer: Producer, variant: Variant
) -> None:
    minted, issuer = dev_tokens[variant]

    claims = producer.verify(minted.token, minted.jwks, variant)

    assert claims["iss"] == issuer


@pytest.fixture(scope="module")
def jose_verdicts(
    node_jose: NodeJose, dev_tokens: dict[Variant, tuple[Minted, str]]
) -> dict[Variant, dict[str, object] | str]:
    """jose's verdict on the dev issuer's token of each variant it verifies, in one run."""
    items = [(dev_tokens[v][0].token, dev_tokens[v][0].jwks, v) for v in JOSE_VARIANTS]
    return dict(zip(JOSE_VARIANTS, node_jose.verify(items), strict=True))


@pytest.mark.parametrize("variant", by_label(JOSE_VARIANTS))
def test_node_jose_accepts_the_dev_issuers_token(
    dev_tokens: dict[Variant, tuple[Minted, str]],
    jose_verdicts: dict[Variant, dict[str, object] | str],
    variant: Variant,
) -> None:
    claims = jose_verdicts[variant]

    assert isinstance(claims, dict), claims
    assert claims["iss"] == dev_tokens[variant][1]
