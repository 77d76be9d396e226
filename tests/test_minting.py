"""Minting: signing keys, the tenant's claim shape, and claims plus header to a compact JWS."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from fastapi_isp_jwt import ALGORITHMS, base64url
from fastapi_isp_jwt.minting import (
    NotUnicodeError,
    SigningKey,
    is_unicode_text,
    jwks_of,
    sign_token,
    tenant_claims,
)
from fastapi_isp_jwt.testing import SigningKey as KitSigningKey
from fastapi_isp_jwt.testing import TestIssuer

ISSUER = "https://issuer.test/"
ACME = "https://platform.dtc.istreamplanet.net/acme"
LONE_SURROGATE = "\ud800"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256", kid="minting-key")


def header_of(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_header(token))


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


# -- signing keys ------------------------------------------------------------------------------


def test_the_testing_kit_offers_the_same_signing_key() -> None:
    assert KitSigningKey is SigningKey


@pytest.mark.parametrize("alg", list(ALGORITHMS))
def test_a_key_generated_for_each_algorithm_publishes_that_algorithm(alg: str) -> None:
    jwk = SigningKey.generate(alg).public_jwk()

    assert (jwk["alg"], jwk["use"], jwk["kty"]) == (alg, "sig", ALGORITHMS[alg].kty)


def test_a_published_key_holds_no_private_part(key: SigningKey) -> None:
    assert "d" not in key.public_jwk()


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_published_key_says_its_purpose_with_use_alone(alg: str) -> None:
    # RFC 7517 §4.3: "use" and "key_ops" should not be combined.
    jwk = SigningKey.generate(alg).public_jwk()

    assert "key_ops" not in jwk


@pytest.mark.parametrize(
    ("alg", "crv"), [("EdDSA", "Ed25519"), ("Ed25519", "Ed25519"), ("Ed448", "Ed448")]
)
def test_a_key_generated_for_an_eddsa_name_has_that_names_curve(alg: str, crv: str) -> None:
    assert SigningKey.generate(alg).public_jwk()["crv"] == crv


def test_an_ed448_key_may_be_published_under_the_eddsa_spelling() -> None:
    ed448_key = SigningKey.generate("Ed448")

    key = SigningKey(kid="ed448", alg="EdDSA", private_key=ed448_key.private_key)

    assert key.public_jwk()["crv"] == "Ed448"


def test_an_ed448_key_does_not_fit_ed25519() -> None:
    ed448_key = SigningKey.generate("Ed448")

    with pytest.raises(ValueError, match="does not fit"):
        SigningKey(kid="ed448", alg="Ed25519", private_key=ed448_key.private_key)


@pytest.mark.parametrize("alg", ["Ed25519", "Ed448"])
def test_a_fully_specified_eddsa_name_signs_under_that_name(alg: str) -> None:
    signing = SigningKey.generate(alg)

    token = sign_token({"sub": "x"}, signing)

    header, payload, signature = token.split(".")
    assert header_of(token)["alg"] == alg
    assert ALGORITHMS[alg].verify(
        signing.private_key.public_key(),
        f"{header}.{payload}".encode(),
        base64url.decode(signature),
    )


def test_jwks_of_publishes_the_keys_in_their_order(key: SigningKey) -> None:
    other = SigningKey.generate("EdDSA", kid="other")

    assert [jwk["kid"] for jwk in jwks_of((other, key))["keys"]] == ["other", "minting-key"]


# -- the tenant's claim shape ----------------------------------------------------------------


def test_user_claims_name_the_user_and_the_client() -> None:
    claims = tenant_claims(ISSUER, ACME, client_id="app", subject="auth0|ann", issued_at=100)

    assert claims == {
        "iss": ISSUER,
        "sub": "auth0|ann",
        "aud": ACME,
        "iat": 100,
        "exp": 3700,
        "azp": "app",
    }


def test_claims_without_a_subject_are_a_machine_token() -> None:
    claims = tenant_claims(ISSUER, ACME, client_id="worker")

    assert (claims["sub"], claims["gty"]) == ("worker@clients", "client-credentials")


def test_scopes_are_one_space_delimited_claim_and_permissions_a_list() -> None:
    claims = tenant_claims(
        ISSUER, ACME, client_id="app", scopes=("a:read", "a:write"), permissions=("a:read",)
    )

    assert (claims["scope"], claims["permissions"]) == ("a:read a:write", ["a:read"])


def test_no_scopes_leave_the_scope_claim_out() -> None:
    assert "scope" not in tenant_claims(ISSUER, ACME, client_id="app", subject="auth0|ann")


def test_not_before_is_a_whole_second() -> None:
    claims = tenant_claims(ISSUER, ACME, client_id="app", not_before=123.9)

    assert claims["nbf"] == 123


# -- signing -----------------------------------------------------------------------------------


def test_a_signed_token_is_accepted_by_a_verifier_trusting_the_key(key: SigningKey) -> None:
    issuer = TestIssuer(ISSUER, signing_key=key)
    claims = tenant_claims(ISSUER, ACME, client_id="app", subject="auth0|ann")

    principal = issuer.auth().verify_sync(sign_token(claims, key))

    assert principal.subject == "auth0|ann"


def test_the_header_names_the_key_and_its_algorithm(key: SigningKey) -> None:
    token = sign_token({"sub": "x"}, key)

    assert header_of(token) == {"typ": "JWT", "kid": "minting-key", "alg": "ES256"}


def test_a_given_header_replaces_the_defaults(key: SigningKey) -> None:
    token = sign_token({"sub": "x"}, key, header={"typ": "at+jwt", "kid": "elsewhere"})

    assert (header_of(token)["typ"], header_of(token)["kid"]) == ("at+jwt", "elsewhere")


def test_a_given_algorithm_signs_even_when_a_verifier_must_refuse_it() -> None:
    rsa_key = SigningKey.generate("RS256")

    token = sign_token({"sub": "x"}, rsa_key, header={"alg": "PS256"})

    assert header_of(token)["alg"] == "PS256"


def test_claims_are_signed_as_given(key: SigningKey) -> None:
    claims = {"sub": "x", "nested": {"list": [1, "two"]}}

    assert claims_of(sign_token(claims, key)) == claims


# -- text that is not Unicode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"sub": "user" + LONE_SURROGATE}, "sub"),
        ({"sub": "x", "extra": {"deep": ["fine", "\udcff"]}}, "extra"),
        ({"sub": "x", "extra": {"key" + LONE_SURROGATE: 1}}, "extra"),
        ({"sub": "x", "extra": ("tuple", LONE_SURROGATE)}, "extra"),
    ],
    ids=["top level", "nested in a list", "an object key", "in a tuple"],
)
def test_a_claim_holding_a_lone_surrogate_is_refused_by_name(
    key: SigningKey, claims: dict[str, Any], named: str
) -> None:
    with pytest.raises(NotUnicodeError, match=f"the claim '{named}' holds text that is not valid"):
        sign_token(claims, key)


def test_a_claim_name_holding_a_lone_surrogate_is_refused(key: SigningKey) -> None:
    with pytest.raises(NotUnicodeError, match=r"the claim 'name\\ud800'"):
        sign_token({"name" + LONE_SURROGATE: 1}, key)


def test_a_header_parameter_holding_a_lone_surrogate_is_refused_by_name(key: SigningKey) -> None:
    with pytest.raises(NotUnicodeError, match="the header parameter 'kid'"):
        sign_token({"sub": "x"}, key, header={"kid": LONE_SURROGATE})


def test_the_refusal_is_a_value_error() -> None:
    assert issubclass(NotUnicodeError, ValueError)


def test_the_refusal_message_is_itself_printable_text(key: SigningKey) -> None:
    with pytest.raises(NotUnicodeError) as refused:
        sign_token({"sub" + LONE_SURROGATE: 1}, key)

    assert is_unicode_text(str(refused.value))


def test_the_test_issuer_refuses_a_lone_surrogate_too() -> None:
    with pytest.raises(NotUnicodeError, match="the claim 'sub'"):
        TestIssuer().mint("auth0|" + LONE_SURROGATE)


@pytest.mark.parametrize("text", ["", "plain", "ünïcödé ✓", "\U0001f600"])
def test_text_without_lone_surrogates_is_unicode(text: str) -> None:
    assert is_unicode_text(text)


@pytest.mark.parametrize("text", [LONE_SURROGATE, "a\udc80b", "\udbff"])
def test_text_with_a_lone_surrogate_is_not_unicode(text: str) -> None:
    assert not is_unicode_text(text)
