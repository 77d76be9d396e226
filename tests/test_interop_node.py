"""Interop with panva's ``jose`` for Node, both ways, where Node and npm are on the machine.

``jose`` comes from the npm registry, installed by ``make test`` (the ``node-jose`` step) into
``.venv/node-jose``, or wherever ``$NODE_JOSE_DIR`` says: the tests themselves reach no
network. Without Node or that install the module is skipped with one line; under CI, where
Node is present, their absence fails the tests instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.components import in_ci
from tests.support.interop import (
    SUBJECT,
    dev_issuer_tokens,
    interop_claims,
    verified_by_jwtauth,
)
from tests.support.issuer_server import IssuerServer
from tests.support.node_jose import JOSE_VARIANTS, NODE, NodeJose
from tests.support.producers import Minted, Variant, variant_params

NODE.skip_module_if_missing()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def node_jose() -> NodeJose:
    node = NODE.require()
    directory = Path(os.environ.get("NODE_JOSE_DIR") or ROOT / ".venv" / "node-jose")
    if not (directory / "node_modules" / "jose" / "package.json").is_file():
        problem = f"jose is not installed in {directory} (make node-jose installs it)"
        if in_ci():
            pytest.fail(f"{problem} (CI=true: a missing component fails the run)", pytrace=False)
        pytest.skip(problem)
    return NodeJose(node, directory)


# -- what jose mints, JWTAuth accepts -----------------------------------------------------


@pytest.fixture(scope="module")
def jose_tokens(node_jose: NodeJose, _session_server: IssuerServer) -> dict[Variant, Minted | str]:
    """One token per variant jose signs, minted in one run of Node."""
    minted = node_jose.mint(JOSE_VARIANTS, interop_claims(_session_server.url))
    return dict(zip(JOSE_VARIANTS, minted, strict=True))


@pytest.mark.parametrize("variant", variant_params(JOSE_VARIANTS))
def test_a_node_jose_token_is_accepted(
    server: IssuerServer, jose_tokens: dict[Variant, Minted | str], variant: Variant
) -> None:
    minted = jose_tokens[variant]
    assert isinstance(minted, Minted), minted

    principal = verified_by_jwtauth(server, minted, variant)

    assert principal.subject == SUBJECT


# -- what the dev issuer mints, jose accepts --------------------------------------------------


@pytest.fixture(scope="module")
def dev_tokens() -> dict[Variant, tuple[Minted, str]]:
    return dev_issuer_tokens(JOSE_VARIANTS)


@pytest.fixture(scope="module")
def jose_verdicts(
    node_jose: NodeJose, dev_tokens: dict[Variant, tuple[Minted, str]]
) -> dict[Variant, dict[str, object] | str]:
    """jose's verdict on the dev issuer's token of each variant, in one run of Node."""
    items = [(dev_tokens[v][0].token, dev_tokens[v][0].jwks, v) for v in JOSE_VARIANTS]
    return dict(zip(JOSE_VARIANTS, node_jose.verify(items), strict=True))


@pytest.mark.parametrize("variant", variant_params(JOSE_VARIANTS))
def test_node_jose_accepts_the_dev_issuers_token(
    dev_tokens: dict[Variant, tuple[Minted, str]],
    jose_verdicts: dict[Variant, dict[str, object] | str],
    variant: Variant,
) -> None:
    claims = jose_verdicts[variant]

    assert isinstance(claims, dict), claims
    assert claims["iss"] == dev_tokens[variant][1]
