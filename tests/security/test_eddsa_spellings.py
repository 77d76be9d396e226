"""The two spellings of EdDSA: which published key verifies which token ``alg``.

``EdDSA`` (RFC 8037) lets the key's curve decide; ``Ed25519`` and ``Ed448`` (RFC 9864) name
the curve. A key published under one spelling verifies a token written with the other on
the key's own curve, and never across curves. The allow-list names spellings exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_isp_jwt.testing import SigningKey
from tests.security.conftest import ClientFactory
from tests.security.hostile import assert_refused, bearer, sign
from tests.support.issuer_server import IssuerServer

EDDSA_NAMES = ["EdDSA", "Ed25519", "Ed448"]


def publish_okp_key(server: IssuerServer, crv: str, key_alg: str | None) -> SigningKey:
    """Publish a new key on ``crv`` under ``key_alg`` (no ``alg`` member when ``None``)."""
    signing = SigningKey.generate(crv, kid="okp")
    jwk = signing.public_jwk()
    if key_alg is None:
        del jwk["alg"]
    else:
        jwk["alg"] = key_alg
    server.serve(lambda: {"keys": [jwk]})
    return signing


def token_for(signing: SigningKey, token_alg: str, claims: dict[str, Any]) -> str:
    return sign({"alg": token_alg, "typ": "JWT", "kid": "okp"}, claims, signing.private_key)


@pytest.mark.parametrize(
    ("crv", "key_alg", "token_alg"),
    [
        ("Ed25519", "EdDSA", "EdDSA"),
        ("Ed25519", "EdDSA", "Ed25519"),
        ("Ed25519", "Ed25519", "EdDSA"),
        ("Ed25519", "Ed25519", "Ed25519"),
        ("Ed25519", None, "Ed25519"),
        ("Ed448", "EdDSA", "EdDSA"),
        ("Ed448", "EdDSA", "Ed448"),
        ("Ed448", "Ed448", "EdDSA"),
        ("Ed448", "Ed448", "Ed448"),
        ("Ed448", None, "Ed448"),
    ],
)
def test_either_spelling_on_the_keys_own_curve_is_accepted(
    make_client: ClientFactory,
    server: IssuerServer,
    claims: dict[str, Any],
    crv: str,
    key_alg: str | None,
    token_alg: str,
) -> None:
    signing = publish_okp_key(server, crv, key_alg)
    client = make_client(algorithms=EDDSA_NAMES)

    response = client.get("/streams", headers=bearer(token_for(signing, token_alg, claims)))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("crv", "key_alg", "token_alg"),
    [
        ("Ed448", "EdDSA", "Ed25519"),
        ("Ed448", "Ed448", "Ed25519"),
        ("Ed448", None, "Ed25519"),
        ("Ed25519", "EdDSA", "Ed448"),
        ("Ed25519", "Ed25519", "Ed448"),
        ("Ed25519", None, "Ed448"),
    ],
)
def test_the_other_curves_name_never_fits(
    make_client: ClientFactory,
    server: IssuerServer,
    claims: dict[str, Any],
    crv: str,
    key_alg: str | None,
    token_alg: str,
) -> None:
    # Signed by the key itself: only the name in the header is wrong.
    signing = publish_okp_key(server, crv, key_alg)
    client = make_client(algorithms=EDDSA_NAMES)

    response = client.get("/streams", headers=bearer(token_for(signing, token_alg, claims)))

    assert assert_refused(response) == "The token algorithm does not fit its key"


@pytest.mark.parametrize(("allowed", "token_alg"), [("Ed25519", "EdDSA"), ("EdDSA", "Ed25519")])
def test_the_allow_list_names_each_spelling_exactly(
    make_client: ClientFactory,
    server: IssuerServer,
    claims: dict[str, Any],
    allowed: str,
    token_alg: str,
) -> None:
    signing = publish_okp_key(server, "Ed25519", None)
    client = make_client(algorithms=[allowed])

    response = client.get("/streams", headers=bearer(token_for(signing, token_alg, claims)))

    assert assert_refused(response) == "The token algorithm is not allowed"


def test_eddsa_alone_accepts_an_ed448_key(
    make_client: ClientFactory, server: IssuerServer, claims: dict[str, Any]
) -> None:
    signing = publish_okp_key(server, "Ed448", "Ed448")
    client = make_client(algorithms=["EdDSA"])

    response = client.get("/streams", headers=bearer(token_for(signing, "EdDSA", claims)))

    assert response.status_code == 200


def test_an_ed25519_signature_on_an_ed448_key_is_refused(
    make_client: ClientFactory, server: IssuerServer, claims: dict[str, Any]
) -> None:
    publish_okp_key(server, "Ed448", "EdDSA")
    attacker = SigningKey.generate("Ed25519")
    client = make_client(algorithms=EDDSA_NAMES)

    response = client.get("/streams", headers=bearer(token_for(attacker, "EdDSA", claims)))

    assert assert_refused(response) == "The token signature is invalid"
