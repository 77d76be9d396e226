"""Header members that would let a token pick its own key or change how it is read.

RFC 8725 §3.10: ``jku``, ``jwk``, ``x5u`` and ``x5c`` are never used to find a key, so a
token carrying one is refused before any fetch. RFC 7515 §4.1.11: a ``crit`` extension we
do not understand (and we understand none) makes the token invalid; RFC 7797 ``b64: false``
is such an extension.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from fastapi_isp_jwt.testing import SigningKey, TestIssuer
from tests.security.hostile import assert_refused, b64url, bearer, segment, sign, signature_of
from tests.support.certificates import self_signed
from tests.support.issuer_server import IssuerServer


@pytest.fixture
def attacker() -> SigningKey:
    return SigningKey.generate("RS256", kid="attacker-key")


@pytest.fixture
def attacker_server(attacker: SigningKey) -> Iterator[IssuerServer]:
    """A second JWKS server on 127.0.0.1 that publishes the attacker's key."""
    with IssuerServer(lambda: {"keys": [attacker.public_jwk()]}) as hostile:
        yield hostile


def _self_signed_certificate(key: SigningKey) -> bytes:
    certificate = self_signed(key.private_key, "istreamplanet.auth0.com")
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("member", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["attacker-key", "issuer"])
def test_a_key_url_in_the_header_is_refused_and_never_fetched(
    client: TestClient,
    server: IssuerServer,
    issuer: TestIssuer,
    attacker: SigningKey,
    attacker_server: IssuerServer,
    claims: dict[str, Any],
    member: str,
    kid: str,
) -> None:
    key_id = issuer.signing_key.kid if kid == "issuer" else kid
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id, member: attacker_server.jwks_url}
    token = sign(header, claims, attacker.private_key)
    description = assert_refused(
        client.get("/streams", headers=bearer(token)), never_echoed=[attacker_server.jwks_url]
    )
    assert description == "The token carries its own key reference"
    assert attacker_server.jwks_requests == 0
    assert server.jwks_requests == 0


@pytest.mark.parametrize("kid", ["attacker-key", "issuer"])
def test_an_embedded_jwk_is_refused_not_trusted(
    client: TestClient,
    server: IssuerServer,
    issuer: TestIssuer,
    attacker: SigningKey,
    claims: dict[str, Any],
    kid: str,
) -> None:
    key_id = issuer.signing_key.kid if kid == "issuer" else kid
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id, "jwk": attacker.public_jwk()}
    token = sign(header, claims, attacker.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token carries its own key reference"
    assert server.jwks_requests == 0


def test_an_embedded_certificate_chain_is_refused_not_trusted(
    client: TestClient,
    server: IssuerServer,
    attacker: SigningKey,
    claims: dict[str, Any],
) -> None:
    chain = [base64.b64encode(_self_signed_certificate(attacker)).decode()]
    header = {"alg": "RS256", "typ": "JWT", "kid": attacker.kid, "x5c": chain}
    token = sign(header, claims, attacker.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token carries its own key reference"
    assert server.jwks_requests == 0


@pytest.mark.parametrize("member", ["jku", "jwk", "x5u", "x5c"])
@pytest.mark.parametrize("value", [None, "", [], {}])
def test_a_key_carrying_member_is_refused_whatever_its_value(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    member: str,
    value: object,
) -> None:
    # Genuinely signed by the issuer: the member alone is reason enough.
    token = sign({**header, member: value}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token carries its own key reference"


@pytest.mark.parametrize(
    "crit", [["exp"], ["b64"], ["urn:example:unknown"], [], "exp", None, [1], {}]
)
def test_a_crit_header_unknown_empty_or_malformed_is_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    crit: object,
) -> None:
    token = sign({**header, "crit": crit}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token has critical header parameters"


@pytest.mark.parametrize("b64", [False, True, "false", 0])
def test_a_b64_header_is_refused_whatever_its_value(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    b64: object,
) -> None:
    token = sign({**header, "b64": b64}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token uses an unsupported payload encoding"


def test_an_unencoded_payload_signed_as_rfc7797_describes_is_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    # RFC 7797: with b64 false the signature covers the raw payload, and the compact form
    # detaches it (empty middle segment). Neither spelling may reach a signature check.
    rfc7797_header = {**header, "b64": False, "crit": ["b64"]}
    raw_payload = json.dumps(claims).encode()
    data = segment(rfc7797_header).encode() + b"." + raw_payload
    signature = b64url(signature_of(data, issuer.signing_key.private_key, "RS256"))
    detached = f"{segment(rfc7797_header)}..{signature}"
    attached = f"{segment(rfc7797_header)}.{segment(claims)}.{signature}"
    assert_refused(client.get("/streams", headers=bearer(detached)))
    description = assert_refused(client.get("/streams", headers=bearer(attached)))
    assert description == "The token has critical header parameters"


@pytest.mark.parametrize("typ", ["JWS", "dpop+jwt", "secevent+jwt", "id_token+jwt", 1, None])
def test_a_token_typed_as_something_other_than_a_jwt_is_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    typ: object,
) -> None:
    token = sign({**header, "typ": typ}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert "typ" in description or "type" in description
