"""Interop with the JOSE ecosystem, both ways: authlib and joserfc.

Tokens they mint, with keys they generated and published in their own JWK spelling, are
accepted by `JWTAuth` for every algorithm each of them signs; and the dev issuer's tokens
are accepted by each of them. ``test_interop_node.py`` does the same with Node's ``jose``;
``python -m tests.support.interop_table`` prints all of it as a table.
"""

from __future__ import annotations

import pytest

from fastapi_isp_jwt import ALGORITHMS
from tests.support.interop import (
    SUBJECT,
    dev_issuer_tokens,
    interop_claims,
    verified_by_jwtauth,
)
from tests.support.issuer_server import IssuerServer
from tests.support.producers import (
    PRODUCERS,
    VARIANTS,
    Minted,
    Producer,
    Variant,
    short_coordinates,
    variant_params,
)

PYTHON_CELLS = [
    pytest.param(producer, variant, id=f"{producer.name}-{variant.label}")
    for producer in PRODUCERS
    for variant in producer.variants
]
EC_VARIANTS = tuple(v for v in VARIANTS if v.alg.startswith("ES"))


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


@pytest.mark.parametrize("variant", variant_params(EC_VARIANTS))
def test_an_authlib_key_with_short_ec_coordinates_is_accepted(
    server: IssuerServer, variant: Variant
) -> None:
    # authlib drops leading zero bytes of x and y; the key is still on its curve.
    pytest.importorskip("authlib", reason="authlib (interop extra) is not installed")
    minted = short_coordinates(variant, interop_claims(server.url))

    principal = verified_by_jwtauth(server, minted, variant)

    assert principal.subject == SUBJECT


# -- what the dev issuer mints, they accept ----------------------------------------------------


@pytest.fixture(scope="module")
def dev_tokens() -> dict[Variant, tuple[Minted, str]]:
    """A dev issuer token (and its issuer) per variant, each from a dev issuer of its own."""
    return dev_issuer_tokens(VARIANTS)


@pytest.mark.parametrize(("producer", "variant"), PYTHON_CELLS)
def test_a_python_library_accepts_the_dev_issuers_token(
    dev_tokens: dict[Variant, tuple[Minted, str]], producer: Producer, variant: Variant
) -> None:
    minted, issuer = dev_tokens[variant]

    claims = producer.verify(minted.token, minted.jwks, variant)

    assert claims["iss"] == issuer
