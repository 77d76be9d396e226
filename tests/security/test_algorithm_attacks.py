"""Algorithm confusion: ``none``, algorithms we did not allow, HMAC with public keys, key misfits.

RFC 8725 §2.1 and §3.1: the verifier, not the token, decides which algorithm is used, and
each key is used with its one algorithm only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from fastapi_isp_jwt import ALGORITHMS, ConfigurationError, JWTAuth
from fastapi_isp_jwt.testing import SigningKey, TestIssuer
from tests.security.conftest import ClientFactory, Publisher
from tests.security.hostile import (
    ACME,
    assert_refused,
    b64url,
    bearer,
    compact,
    hmac_sign,
    sign,
)
from tests.support.issuer_server import IssuerServer


def test_the_tenant_shaped_token_of_these_tests_is_accepted(
    client: TestClient, issuer: TestIssuer, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    token = sign(header, claims, issuer.signing_key.private_key)
    response = client.get("/streams", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"subject": "auth0|mallory", "organization": "acme"}


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_casing_with_an_empty_signature_is_refused(
    client: TestClient, header: dict[str, Any], claims: dict[str, Any], alg: str
) -> None:
    token = compact({**header, "alg": alg}, claims, b"")
    assert token.endswith(".")
    assert_refused(client.get("/streams", headers=bearer(token)))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_casing_with_the_original_signature_is_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    alg: str,
) -> None:
    original = sign(header, claims, issuer.signing_key.private_key)
    signature = original.rsplit(".", 1)[1]
    token = compact({**header, "alg": alg}, claims, b"") + signature
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm is not allowed"


@pytest.mark.parametrize("alg", ["RS512", "PS256", "RS384"])
def test_a_correctly_signed_token_in_an_algorithm_outside_the_allow_list_is_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    alg: str,
) -> None:
    token = sign({**header, "alg": alg}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm is not allowed"


@pytest.mark.parametrize("alg", ["rs256", "Rs256", "rS256", "RS256 ", "RS256\u0000"])
def test_an_allowed_algorithm_spelled_differently_is_refused_even_when_genuinely_signed(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    alg: str,
) -> None:
    token = sign({**header, "alg": alg}, claims, issuer.signing_key.private_key, as_alg="RS256")
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm is not allowed"


def _public_key_forms(signing_key: SigningKey) -> dict[str, bytes]:
    public = signing_key.private_key.public_key()
    return {
        "PEM SubjectPublicKeyInfo": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "PEM PKCS#1": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "DER SubjectPublicKeyInfo": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "DER PKCS#1": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        ),
        "JWK": json.dumps(signing_key.public_jwk()).encode(),
        "JWK n": signing_key.public_jwk()["n"].encode(),
    }


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize(
    "form",
    [
        "PEM SubjectPublicKeyInfo",
        "PEM PKCS#1",
        "DER SubjectPublicKeyInfo",
        "DER PKCS#1",
        "JWK",
        "JWK n",
    ],
)
def test_hmac_signed_with_the_rsa_public_key_is_refused(
    client: TestClient,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    alg: str,
    form: str,
) -> None:
    secret = _public_key_forms(issuer.signing_key)[form]
    token = hmac_sign({**header, "alg": alg}, claims, secret)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm is not allowed"


def test_hmac_with_the_public_key_is_refused_even_with_every_algorithm_allowed(
    make_client: ClientFactory,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    client = make_client(algorithms=list(ALGORITHMS))
    secret = _public_key_forms(issuer.signing_key)["PEM SubjectPublicKeyInfo"]
    token = hmac_sign({**header, "alg": "HS256"}, claims, secret)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm is not allowed"


@pytest.mark.parametrize("alg", ["HS256", "hs256", "none"])
def test_the_allow_list_cannot_be_configured_to_hold_hmac_or_none(
    server: IssuerServer, alg: str
) -> None:
    with pytest.raises(ConfigurationError, match="not supported"):
        JWTAuth(issuer=server.url, audience=ACME, algorithms=["RS256", alg])


def test_an_hmac_token_naming_a_published_oct_key_is_refused(
    client: TestClient,
    server: IssuerServer,
    publish: Publisher,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    secret = b"shared-secret-the-attacker-knows-too"
    publish({"kty": "oct", "kid": "oct-1", "k": b64url(secret), "alg": "HS256"})
    token = hmac_sign({**header, "alg": "HS256", "kid": "oct-1"}, claims, secret)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm is not allowed"
    assert server.jwks_requests == 0


def test_a_published_oct_key_is_never_a_verification_key(
    client: TestClient,
    issuer: TestIssuer,
    publish: Publisher,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    # An RS256 token pointing at the oct key: the key set must not hold that kid at all.
    publish({"kty": "oct", "kid": "oct-1", "k": b64url(b"secret"), "alg": "RS256"})
    token = sign({**header, "kid": "oct-1"}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token was signed by an unknown key"


def test_an_ec_algorithm_naming_an_rsa_key_is_refused(
    make_client: ClientFactory,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    client = make_client(algorithms=["RS256", "ES256"])
    attacker = SigningKey.generate("ES256")
    token = sign({**header, "alg": "ES256"}, claims, attacker.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm does not fit its key"


def test_an_algorithm_other_than_the_keys_own_alg_is_refused(
    make_client: ClientFactory,
    issuer: TestIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    # The key is published with "alg": "RS256"; PS256 with the very same RSA key is a
    # valid signature, but not one this key was published for.
    client = make_client(algorithms=["RS256", "PS256"])
    assert issuer.signing_key.public_jwk()["alg"] == "RS256"
    token = sign({**header, "alg": "PS256"}, claims, issuer.signing_key.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm does not fit its key"


def test_an_rsa_key_published_without_alg_serves_every_allowed_rsa_algorithm(
    make_client: ClientFactory,
    server: IssuerServer,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    signing = SigningKey.generate("RS256", kid="no-alg")
    jwk = signing.public_jwk()
    del jwk["alg"]
    server.serve(lambda: {"keys": [jwk]})
    client = make_client(algorithms=["RS256", "PS256"])
    token = sign({**header, "alg": "PS256", "kid": "no-alg"}, claims, signing.private_key)
    assert client.get("/streams", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(("token_alg", "key_alg"), [("ES384", "ES256"), ("ES256", "ES384")])
def test_an_ec_algorithm_on_a_key_of_another_curve_is_refused(
    make_client: ClientFactory,
    server: IssuerServer,
    header: dict[str, Any],
    claims: dict[str, Any],
    token_alg: str,
    key_alg: str,
) -> None:
    signing = SigningKey.generate(key_alg, kid="ec")
    jwk = signing.public_jwk()
    del jwk["alg"]  # only the curve says which algorithm fits
    server.serve(lambda: {"keys": [jwk]})
    client = make_client(algorithms=["ES256", "ES384"])
    # Signed by the key itself, with the hash of the token's algorithm.
    token = sign({**header, "alg": token_alg, "kid": "ec"}, claims, signing.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm does not fit its key"


def test_an_eddsa_token_naming_an_rsa_key_is_refused(
    make_client: ClientFactory,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    client = make_client(algorithms=["RS256", "EdDSA"])
    attacker = SigningKey.generate("EdDSA")
    token = sign({**header, "alg": "EdDSA"}, claims, attacker.private_key)
    description = assert_refused(client.get("/streams", headers=bearer(token)))
    assert description == "The token algorithm does not fit its key"
