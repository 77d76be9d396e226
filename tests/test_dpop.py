"""DPoP proofs (RFC 9449 §4.3), the token's key binding, server nonces and the proof options.

Every check of `verify_proof` has a test that fails it alone, with a proof that is good in
every other way; the property tests at the end mutate good proofs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.dpop import (
    DPoPMode,
    DPoPNonces,
    DPoPPolicy,
    DPoPRequest,
    VerifiedProof,
    access_token_hash,
    bound_thumbprint,
    check_binding,
    jwk_thumbprint,
    one_proof,
    verify_proof,
)
from fastapi_isp_jwt.errors import (
    AuthError,
    ConfigurationError,
    InvalidDPoPProofError,
    InvalidTokenError,
    IssuerUnavailableError,
    ReplayStoreUnavailableError,
    UseDPoPNonceError,
    refusal,
)
from fastapi_isp_jwt.keys import VerificationKey, load_jwk
from fastapi_isp_jwt.minting import SigningKey, dpop_proof
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.testing import TestIssuer
from fastapi_isp_jwt.token import parse_token

NOW = 1_700_000_000
URL = "https://api.example.com/streams"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
SECRET = b"a secret of at least thirty-two bytes"
POLICY = DPoPPolicy()


@cache
def key(alg: str = "ES256") -> SigningKey:
    return SigningKey.generate(alg)


KEY = key()
THUMBPRINT = jwk_thumbprint(KEY.public_jwk())


def proof(method: str = "GET", url: str = URL, **options: Any) -> str:
    """A proof that holds for a GET of ``URL`` with ``TOKEN`` at ``NOW``, unless told."""
    options.setdefault("access_token", TOKEN)
    options.setdefault("iat", NOW)
    return dpop_proof(options.pop("key", KEY), method, url, **options)


def verify(
    text: str | bytes,
    *,
    method: str = "GET",
    url: str = URL,
    token: str | None = TOKEN,
    policy: DPoPPolicy = POLICY,
    now: float = NOW,
) -> VerifiedProof:
    return verify_proof(DPoPRequest(text, method, url), policy=policy, now=now, access_token=token)


def reason_of(check: Callable[[], object]) -> tuple[Reason, str]:
    with pytest.raises(AuthError) as refused:
        check()
    return refused.value.reason, refused.value.description


def refused(text: object, **request: Any) -> Reason:
    return reason_of(lambda: verify(text, **request))[0]  # type: ignore[arg-type]


def segment(members: dict[str, Any]) -> str:
    raw = json.dumps(members, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- a good proof --------------------------------------------------------------------------------


def test_a_good_proof_gives_the_thumbprint_of_its_key() -> None:
    assert verify(proof()).thumbprint == THUMBPRINT


@pytest.mark.parametrize("alg", list(ALGORITHMS))
def test_a_proof_is_accepted_with_every_algorithm_the_library_verifies(alg: str) -> None:
    signer = key(alg)
    assert verify(proof(key=signer)).thumbprint == jwk_thumbprint(signer.public_jwk())


def test_a_proof_given_as_bytes_is_accepted() -> None:
    assert verify(proof().encode()).thumbprint == THUMBPRINT


def test_the_proof_id_is_returned() -> None:
    assert verify(proof(jti="one-id")).jti == "one-id"


def test_the_replay_key_is_the_same_for_the_same_proof() -> None:
    text = proof()
    assert verify(text).replay_key == verify(text).replay_key


def test_the_replay_key_differs_between_proof_ids() -> None:
    assert verify(proof(jti="a")).replay_key != verify(proof(jti="b")).replay_key


def test_the_replay_key_differs_between_keys_for_the_same_proof_id() -> None:
    other = key("ES384")
    assert verify(proof(jti="a")).replay_key != verify(proof(jti="a", key=other)).replay_key


def test_without_an_access_token_ath_is_not_required() -> None:
    assert verify(proof(access_token=None), token=None).thumbprint == THUMBPRINT


def test_the_thumbprint_is_that_of_rfc_7638_section_3_1() -> None:
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
        "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
        "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_access_token_hash_is_that_of_rfc_9449_section_7_1() -> None:
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_a_jwk_without_its_thumbprint_members_has_no_thumbprint() -> None:
    with pytest.raises(ValueError, match="thumbprint"):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})


# -- shape and decoding --------------------------------------------------------------------------


def test_the_header_values_of_a_request_must_be_exactly_one() -> None:
    assert one_proof([b"p"]) == b"p"
    assert reason_of(lambda: one_proof([])) == (
        Reason.DPOP_PROOF_MISSING,
        "A DPoP proof is required",
    )


def test_two_dpop_headers_are_refused() -> None:
    assert reason_of(lambda: one_proof([b"p", b"p"]))[0] is Reason.DPOP_PROOF_REPEATED


def test_a_proof_that_is_not_text_is_refused_as_malformed() -> None:
    assert refused(None) is Reason.DPOP_PROOF_MALFORMED


def test_a_proof_over_the_size_cap_is_refused_before_decoding() -> None:
    assert refused("a" * 9000) is Reason.DPOP_PROOF_TOO_LARGE


def test_the_size_cap_is_the_policys() -> None:
    small = DPoPPolicy(max_proof_bytes=256)
    assert refused(proof(claims={"pad": "x" * 300}), policy=small) is Reason.DPOP_PROOF_TOO_LARGE


def test_a_proof_with_non_ascii_text_is_refused_as_malformed() -> None:
    assert refused(proof() + "é") is Reason.DPOP_PROOF_MALFORMED


@pytest.mark.parametrize("text", ["a.b", "a.b.c.d.e", "a..c", "a.b.c ", ""])
def test_a_proof_that_is_not_a_compact_jws_is_refused(text: str) -> None:
    assert refused(text) is Reason.DPOP_PROOF_MALFORMED


def test_a_proof_with_padding_in_its_header_is_refused() -> None:
    header, payload, signature = proof().split(".")
    assert refused(f"{header}A.{payload}.{signature}") is Reason.DPOP_PROOF_ENCODING


def test_a_proof_payload_with_a_duplicate_member_is_refused() -> None:
    header, _, signature = proof().split(".")
    duplicated = base64.urlsafe_b64encode(b'{"jti":"a","jti":"b"}').rstrip(b"=").decode()
    assert reason_of(lambda: verify(f"{header}.{duplicated}.{signature}")) == (
        Reason.DPOP_PROOF_ENCODING,
        "The DPoP proof payload is malformed",
    )


# -- the header ----------------------------------------------------------------------------------


def test_a_proof_without_typ_is_refused() -> None:
    assert refused(proof(omit=["typ"])) is Reason.DPOP_PROOF_TYPE


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "DPoP+JWT", "application/dpop+jwt", 1])
def test_a_proof_whose_typ_is_not_exactly_dpop_jwt_is_refused(typ: object) -> None:
    assert refused(proof(header={"typ": typ})) is Reason.DPOP_PROOF_TYPE


def test_a_proof_without_alg_is_refused() -> None:
    assert refused(proof(omit=["alg"])) is Reason.DPOP_PROOF_ALGORITHM


@pytest.mark.parametrize("alg", ["none", "HS256", "es256", None])
def test_a_proof_claiming_an_algorithm_the_library_never_verifies_is_refused(
    alg: object,
) -> None:
    assert refused(proof(header={"alg": alg})) is Reason.DPOP_PROOF_ALGORITHM


def test_a_proof_algorithm_outside_the_policys_allow_list_is_refused() -> None:
    only_rsa = DPoPPolicy(algorithms=("RS256",))
    assert refused(proof(), policy=only_rsa) is Reason.DPOP_PROOF_ALGORITHM


@pytest.mark.parametrize("name", ["crit", "b64"])
def test_a_proof_with_header_extensions_is_refused(name: str) -> None:
    assert refused(proof(header={name: ["exp"]})) is Reason.DPOP_PROOF_HEADER


def test_a_proof_without_jwk_is_refused() -> None:
    assert refused(proof(omit=["jwk"])) is Reason.DPOP_PROOF_KEY


def test_a_proof_whose_jwk_holds_the_private_key_is_refused() -> None:
    private = KEY.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    d = private.private_numbers().private_value.to_bytes(32, "big")
    jwk = {**KEY.public_jwk(), "d": base64.urlsafe_b64encode(d).rstrip(b"=").decode()}
    assert refused(proof(header={"jwk": jwk})) is Reason.DPOP_PROOF_KEY


def test_a_proof_with_a_symmetric_jwk_is_refused() -> None:
    assert refused(proof(header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}})) is Reason.DPOP_PROOF_KEY


@pytest.mark.parametrize("jwk", ["a key", [], {"kty": "EC", "crv": "P-256"}, {"x": "AA"}])
def test_a_proof_whose_jwk_is_no_public_key_is_refused(jwk: object) -> None:
    assert refused(proof(header={"jwk": jwk})) is Reason.DPOP_PROOF_KEY


def rsa_jwk(n: int, e: int) -> dict[str, str]:
    def encode(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "n": encode(n), "e": encode(e)}


def test_a_proof_rsa_key_with_a_huge_exponent_is_refused_before_its_signature_is_checked() -> None:
    n = key("RS256").private_key.public_key().public_numbers().n  # type: ignore[union-attr]
    jwk = rsa_jwk(n, (1 << 1000) + 1)
    assert refused(proof(key=key("RS256"), header={"jwk": jwk})) is Reason.DPOP_PROOF_KEY


def test_a_proof_rsa_key_over_8192_bits_is_refused_before_its_signature_is_checked() -> None:
    jwk = rsa_jwk((1 << 8200) + 1, 65537)
    assert refused(proof(key=key("RS256"), header={"jwk": jwk})) is Reason.DPOP_PROOF_KEY


def test_a_proof_whose_alg_does_not_fit_its_key_is_refused() -> None:
    assert refused(proof(header={"alg": "ES384"})) is Reason.DPOP_PROOF_KEY_MISMATCH


@pytest.mark.parametrize(("crv", "alg"), [("Ed448", "Ed25519"), ("Ed25519", "Ed448")])
def test_a_proof_naming_the_other_eddsa_curve_is_refused(crv: str, alg: str) -> None:
    assert refused(proof(key=key(crv), header={"alg": alg})) is Reason.DPOP_PROOF_KEY_MISMATCH


@pytest.mark.parametrize(("crv", "alg"), [("Ed25519", "EdDSA"), ("Ed448", "EdDSA")])
def test_a_proof_may_name_eddsa_for_a_key_of_either_curve(crv: str, alg: str) -> None:
    signer = key(crv)
    assert verify(proof(key=signer, header={"alg": alg})).thumbprint == jwk_thumbprint(
        signer.public_jwk()
    )


def test_a_proof_whose_jwk_declares_another_alg_is_refused() -> None:
    jwk = {**KEY.public_jwk(), "alg": "ES384"}
    jwk.pop("kid")
    assert refused(proof(header={"jwk": jwk})) is Reason.DPOP_PROOF_KEY


def test_a_proof_under_an_ed25519_key_of_small_order_is_refused() -> None:
    # The neutral point as the key: R = neutral point, S = 0 passes OpenSSL for every message.
    neutral = (1).to_bytes(32, "little")
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(neutral).decode()[:43]}
    header = segment({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk})
    claims = {"jti": "j1", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)}
    signature = base64.urlsafe_b64encode(neutral + bytes(32)).decode().rstrip("=")
    forged = f"{header}.{segment(claims)}.{signature}"
    assert refused(forged) is Reason.DPOP_PROOF_KEY


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused() -> None:
    impostor = SigningKey.generate("ES256")
    assert refused(proof(header={"jwk": impostor.public_jwk()})) is Reason.DPOP_PROOF_SIGNATURE


def test_a_proof_whose_payload_was_altered_is_refused() -> None:
    header, _, signature = proof().split(".")
    altered = segment({"jti": "x", "htm": "GET", "htu": URL, "iat": NOW})
    assert refused(f"{header}.{altered}.{signature}") is Reason.DPOP_PROOF_SIGNATURE


# -- the claims ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jti", "htm", "htu", "iat", "ath"])
def test_a_proof_without_a_required_claim_is_refused(name: str) -> None:
    assert reason_of(lambda: verify(proof(omit=[name]))) == (
        Reason.DPOP_PROOF_CLAIM_MISSING,
        f"The DPoP proof lacks the {name} claim",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jti", 5),
        ("jti", ""),
        ("jti", None),
        ("jti", "x" * 257),
        ("htm", ["GET"]),
        ("htu", 1),
        ("iat", "1700000000"),
        ("iat", True),
        ("iat", None),
        ("ath", 1),
    ],
)
def test_a_proof_claim_of_the_wrong_type_or_size_is_refused(name: str, value: object) -> None:
    assert reason_of(lambda: verify(proof(claims={name: value}))) == (
        Reason.DPOP_PROOF_CLAIM_MALFORMED,
        f"The DPoP proof {name} claim is malformed",
    )


def test_a_jti_of_256_characters_is_accepted() -> None:
    assert verify(proof(jti="x" * 256)).jti == "x" * 256


def test_a_proof_for_another_method_is_refused() -> None:
    assert refused(proof("POST")) is Reason.DPOP_PROOF_METHOD


def test_the_method_is_compared_exactly() -> None:
    assert refused(proof("get")) is Reason.DPOP_PROOF_METHOD


def test_a_proof_for_another_url_is_refused() -> None:
    assert refused(proof(url=URL + "/42")) is Reason.DPOP_PROOF_URL


def test_a_proof_for_another_host_is_refused() -> None:
    assert refused(proof(url="https://evil.example.com/streams")) is Reason.DPOP_PROOF_URL


def test_a_proof_for_plain_http_is_refused_on_https() -> None:
    assert refused(proof(url="http://api.example.com/streams")) is Reason.DPOP_PROOF_URL


@pytest.mark.parametrize("htu", ["/streams", "api.example.com/streams", "ftp://api.example.com/"])
def test_a_proof_whose_htu_is_no_http_url_is_refused(htu: str) -> None:
    assert reason_of(lambda: verify(proof(url=htu)))[1] == "The DPoP proof htu claim is malformed"


@pytest.mark.parametrize(
    ("htu", "request_url"),
    [
        ("HTTPS://API.Example.COM/streams", URL),
        ("https://api.example.com:443/streams", URL),
        ("https://api.example.com/%73treams", URL),
        ("https://api.example.com/a/../streams", URL),
        ("https://api.example.com", "https://api.example.com/"),
        (URL, URL + "?page=2#top"),
        (URL + "?page=3", URL + "?page=2"),
    ],
)
def test_a_proof_for_an_equivalent_url_is_accepted(htu: str, request_url: str) -> None:
    assert verify(proof(url=htu), url=request_url).thumbprint == THUMBPRINT


def test_a_proof_at_the_edge_of_the_window_is_accepted() -> None:
    oldest = NOW - POLICY.iat_window - POLICY.leeway
    assert verify(proof(iat=oldest)).thumbprint == THUMBPRINT


def test_a_proof_older_than_the_window_and_leeway_is_refused() -> None:
    assert (
        refused(proof(iat=NOW - POLICY.iat_window - POLICY.leeway - 1)) is Reason.DPOP_PROOF_TOO_OLD
    )


def test_the_window_is_the_policys() -> None:
    short = DPoPPolicy(iat_window=5, leeway=0)
    assert refused(proof(iat=NOW - 6), policy=short) is Reason.DPOP_PROOF_TOO_OLD


def test_a_proof_issued_within_the_leeway_ahead_is_accepted() -> None:
    assert verify(proof(iat=NOW + POLICY.leeway)).thumbprint == THUMBPRINT


def test_a_proof_issued_further_ahead_than_the_leeway_is_refused() -> None:
    assert refused(proof(iat=NOW + POLICY.leeway + 1)) is Reason.DPOP_PROOF_ISSUED_IN_FUTURE


def test_a_fractional_iat_is_accepted() -> None:
    assert verify(proof(claims={"iat": NOW + 0.5})).thumbprint == THUMBPRINT


def test_a_proof_for_another_access_token_is_refused() -> None:
    assert refused(proof(access_token="another-token")) is Reason.DPOP_PROOF_ACCESS_TOKEN


def test_the_access_token_may_be_given_as_bytes() -> None:
    assert verify(proof(), token=TOKEN.encode()).thumbprint == THUMBPRINT  # type: ignore[arg-type]


# -- nonces --------------------------------------------------------------------------------------

NONCES = DPoPNonces(SECRET, lifetime=300)
WITH_NONCES = DPoPPolicy(nonces=NONCES)


def test_a_proof_with_the_current_nonce_is_accepted() -> None:
    text = proof(nonce=NONCES.issue(NOW))
    assert verify(text, policy=WITH_NONCES).thumbprint == THUMBPRINT


def test_a_proof_without_a_nonce_gets_one_to_use() -> None:
    with pytest.raises(UseDPoPNonceError) as refused_:
        verify(proof(), policy=WITH_NONCES)
    assert refused_.value.reason is Reason.DPOP_NONCE_REQUIRED
    assert refused_.value.nonce == NONCES.issue(NOW)


def test_a_proof_with_an_unknown_nonce_gets_the_current_one() -> None:
    with pytest.raises(UseDPoPNonceError) as refused_:
        verify(proof(nonce="made-up"), policy=WITH_NONCES)
    assert (refused_.value.reason, refused_.value.nonce) == (
        Reason.DPOP_NONCE_STALE,
        NONCES.issue(NOW),
    )


def test_a_nonce_that_is_not_a_string_is_refused_as_malformed() -> None:
    text = proof(claims={"nonce": 7})
    assert refused(text, policy=WITH_NONCES) is Reason.DPOP_PROOF_CLAIM_MALFORMED


def test_the_nonce_answer_is_401_use_dpop_nonce() -> None:
    error = UseDPoPNonceError(Reason.DPOP_NONCE_REQUIRED, "n")
    assert (error.status_code, error.error) == (401, "use_dpop_nonce")


def test_a_nonce_stays_good_through_the_next_period() -> None:
    assert NONCES.accepts(NONCES.issue(NOW), NOW + 300)


def test_a_nonce_two_periods_old_is_refused() -> None:
    assert not NONCES.accepts(NONCES.issue(NOW - 600), NOW)


def test_a_nonce_from_the_next_period_is_accepted_for_replicas_whose_clocks_run_ahead() -> None:
    assert NONCES.accepts(NONCES.issue(NOW + 300), NOW)


def test_the_nonce_changes_with_the_period() -> None:
    assert NONCES.issue(NOW) != NONCES.issue(NOW + 300)


def test_replicas_sharing_the_secret_accept_each_others_nonces() -> None:
    assert DPoPNonces(SECRET).accepts(NONCES.issue(NOW), NOW)


def test_a_nonce_from_another_secret_is_refused() -> None:
    other = DPoPNonces(b"another secret of thirty-two bytes!!")
    assert not NONCES.accepts(other.issue(NOW), NOW)


def test_a_nonce_with_non_ascii_text_is_refused() -> None:
    assert not NONCES.accepts("é", NOW)


def test_a_nonce_that_is_not_unicode_text_is_refused() -> None:
    assert not NONCES.accepts("\ud800", NOW)  # a lone surrogate, which UTF-8 cannot hold


@pytest.mark.parametrize("lifetime", [0.5, 1e-300, 5e-324])
def test_a_nonce_lifetime_under_a_second_is_a_configuration_error(lifetime: float) -> None:
    with pytest.raises(ConfigurationError, match="dpop_nonce_lifetime"):
        DPoPNonces(SECRET, lifetime)


def test_a_short_nonce_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="dpop_nonce_secret"):
        DPoPNonces(b"short")


@pytest.mark.parametrize(
    "lifetime", [0, -1, float("inf"), pytest.param(10**400, id="beyond-any-float"), True, "300"]
)
def test_a_nonce_lifetime_that_is_no_positive_number_is_a_configuration_error(
    lifetime: object,
) -> None:
    with pytest.raises(ConfigurationError, match="dpop_nonce_lifetime"):
        DPoPNonces(SECRET, lifetime)  # type: ignore[arg-type]


def test_the_nonce_secret_never_shows() -> None:
    assert "secret" not in repr(NONCES)


# -- the binding between token and proof ---------------------------------------------------------


def test_a_token_without_cnf_names_no_key() -> None:
    assert bound_thumbprint({"sub": "alice"}) is None


def test_a_token_with_cnf_jkt_names_its_key() -> None:
    assert bound_thumbprint({"cnf": {"jkt": THUMBPRINT}}) == THUMBPRINT


def test_a_certificate_bound_token_names_no_dpop_key() -> None:
    assert bound_thumbprint({"cnf": {"x5t#S256": THUMBPRINT}}) is None


@pytest.mark.parametrize(
    "cnf",
    [None, "jkt", [], {}, {"jkt": 1}, {"jkt": "short"}, {"jkt": THUMBPRINT + "="}],
)
def test_a_malformed_cnf_is_refused(cnf: object) -> None:
    assert reason_of(lambda: bound_thumbprint({"cnf": cnf})) == (
        Reason.CLAIM_MALFORMED,
        "The token cnf claim is malformed",
    )


def test_a_bound_token_sent_as_a_bearer_token_is_refused() -> None:
    bound = {"cnf": {"jkt": THUMBPRINT}}
    assert reason_of(lambda: check_binding(bound, None))[0] is Reason.SENDER_CONSTRAINED


def test_a_certificate_bound_token_sent_as_a_bearer_token_is_refused() -> None:
    bound = {"cnf": {"x5t#S256": THUMBPRINT}}
    assert reason_of(lambda: check_binding(bound, None))[0] is Reason.SENDER_CONSTRAINED


def test_an_unbound_token_sent_as_a_bearer_token_passes() -> None:
    assert check_binding({"sub": "alice"}, None) is None


def test_an_unbound_token_sent_with_a_proof_is_refused() -> None:
    proven = verify(proof())
    assert reason_of(lambda: check_binding({"sub": "alice"}, proven))[0] is Reason.NOT_DPOP_BOUND


def test_a_token_bound_to_another_key_is_refused() -> None:
    other = jwk_thumbprint(key("ES384").public_jwk())
    proven = verify(proof())
    assert reason_of(lambda: check_binding({"cnf": {"jkt": other}}, proven))[0] is (
        Reason.DPOP_PROOF_BINDING
    )


def test_a_token_bound_to_the_proof_key_passes() -> None:
    assert check_binding({"cnf": {"jkt": THUMBPRINT}}, verify(proof())) == THUMBPRINT


def test_the_testing_issuer_mints_tokens_bound_to_a_key() -> None:
    token = TestIssuer().mint_dpop_bound(jkt=THUMBPRINT)
    assert bound_thumbprint(parse_token(token, 8192).payload) == THUMBPRINT


# -- errors and options --------------------------------------------------------------------------


def test_proof_refusals_answer_401_invalid_dpop_proof() -> None:
    error = refusal(Reason.DPOP_PROOF_SIGNATURE)
    assert isinstance(error, InvalidDPoPProofError)
    assert (error.status_code, error.error) == (401, "invalid_dpop_proof")


def test_an_unreachable_replay_store_answers_like_an_unreachable_issuer() -> None:
    error = ReplayStoreUnavailableError(retry_after=2.5)
    assert isinstance(error, IssuerUnavailableError)
    assert (error.status_code, error.retry_after, error.reason) == (
        503,
        3,
        Reason.REPLAY_STORE_UNAVAILABLE,
    )


def test_every_token_reason_keeps_its_exception() -> None:
    with pytest.raises(TypeError):
        InvalidTokenError(Reason.DPOP_PROOF_SIGNATURE)


@pytest.mark.parametrize(
    ("given", "mode"), [("Required", DPoPMode.REQUIRED), (" disabled ", DPoPMode.DISABLED)]
)
def test_the_mode_is_read_from_its_name(given: str, mode: DPoPMode) -> None:
    assert DPoPMode.parse(given) is mode


def test_an_unknown_mode_names_the_modes() -> None:
    with pytest.raises(ConfigurationError, match="'allowed', 'required', 'disabled'"):
        DPoPMode.parse("sometimes")


@pytest.mark.parametrize("algorithms", [("HS256",), (), ("RS256", "none")])
def test_dpop_algorithms_outside_the_librarys_are_a_configuration_error(
    algorithms: tuple[str, ...],
) -> None:
    with pytest.raises(ConfigurationError, match="dpop_algorithms"):
        DPoPPolicy(algorithms=algorithms)


def test_one_algorithm_may_be_named_alone() -> None:
    assert DPoPPolicy(algorithms="ES256").allowed_algorithms == {"ES256"}


def test_every_library_algorithm_is_allowed_by_default() -> None:
    assert POLICY.allowed_algorithms == set(ALGORITHMS)


@pytest.mark.parametrize(
    "window", [-1, float("nan"), pytest.param(10**400, id="beyond-any-float"), True, "60"]
)
def test_an_iat_window_that_is_no_number_of_seconds_is_a_configuration_error(
    window: object,
) -> None:
    with pytest.raises(ConfigurationError, match="dpop_iat_window"):
        DPoPPolicy(iat_window=window)  # type: ignore[arg-type]


def test_a_tiny_proof_size_cap_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="dpop_max_proof_bytes"):
        DPoPPolicy(max_proof_bytes=10)


def test_a_proof_id_is_remembered_as_long_as_its_proof_is_accepted() -> None:
    assert DPoPPolicy(iat_window=60, leeway=30).replay_ttl == 120


# -- properties: a changed proof is never accepted, and never fails otherwise than refused ---------

GOOD = proof(jti="fixed")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é\x00"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def accepted(text: str) -> bool:
    try:
        verify(text)
    except AuthError:
        return False
    return True


@PROPERTY
@given(
    st.data(),
    st.sampled_from(["replace", "delete", "insert", "truncate"]),
)
def test_a_proof_changed_in_its_text_is_accepted_only_when_unchanged(
    data: st.DataObject, change: str
) -> None:
    index = data.draw(st.integers(0, len(GOOD) - 1))
    character = data.draw(st.sampled_from(_ALPHABET))
    mutated = {
        "replace": GOOD[:index] + character + GOOD[index + 1 :],
        "delete": GOOD[:index] + GOOD[index + 1 :],
        "insert": GOOD[:index] + character + GOOD[index:],
        "truncate": GOOD[:index],
    }[change]
    assert accepted(mutated) == (mutated == GOOD)


@PROPERTY
@given(st.sampled_from(["typ", "alg", "jwk"]), JSON)
def test_a_proof_resigned_with_a_changed_header_member_is_never_accepted(
    name: str, value: object
) -> None:
    header = json.loads(base64.urlsafe_b64decode(GOOD.split(".")[0] + "=="))
    if value == header[name]:
        return
    assert not accepted(proof(jti="fixed", header={name: value}))


@PROPERTY
@given(st.sampled_from(["htm", "ath", "jti", "iat", "htu"]), JSON)
def test_a_proof_resigned_with_a_malformed_or_changed_claim_is_refused(
    name: str, value: object
) -> None:
    keeps_meaning = {
        "jti": isinstance(value, str) and 0 < len(value) <= 256,
        "iat": type(value) in (int, float) and NOW - 90 <= value <= NOW + 30,  # type: ignore[operator]
        "htu": value == URL,
        "htm": value == "GET",
        "ath": value == access_token_hash(TOKEN),
    }[name]
    assert accepted(proof(jti="fixed", claims={name: value})) == keeps_meaning


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


JWK_LIKE = st.fixed_dictionaries(
    {"kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "x"])},
    optional={
        "crv": st.sampled_from(["P-256", "P-384", "P-521", "Ed25519", "X25519", "secp256k1"]),
        "x": st.binary(min_size=0, max_size=70).map(b64),
        "y": st.binary(min_size=0, max_size=70).map(b64),
        "n": st.integers(1, 2**2100).map(lambda n: b64(n.to_bytes(264, "big").lstrip(b"\0"))),
        "e": st.sampled_from([b"\x01\x00\x01", b"\x02", b"\x00", b"\x03"]).map(b64),
        "alg": st.sampled_from(list(ALGORITHMS)),
    },
)


@PROPERTY
@given(JWK_LIKE)
def test_a_proof_carrying_an_arbitrary_key_is_refused_without_a_crash(jwk: dict[str, str]) -> None:
    assert not accepted(proof(jti="fixed", header={"jwk": jwk}))


def test_a_minted_proof_carries_only_the_public_members_of_its_key() -> None:
    header = json.loads(base64.urlsafe_b64decode(proof().split(".")[0] + "=="))
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}


# -- a proof header seen before ------------------------------------------------------------------


def counting_key_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    loaded: list[object] = []

    def counted(jwk: object) -> VerificationKey:
        loaded.append(jwk)
        return load_jwk(jwk)

    monkeypatch.setattr("fastapi_isp_jwt.dpop.load_jwk", counted)
    return loaded


def test_the_key_of_a_proof_header_seen_before_is_not_loaded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = SigningKey.generate("ES256")
    loaded = counting_key_loads(monkeypatch)
    first = verify(proof(key=signer, jti="one"))
    second = verify(proof(key=signer, jti="two"))
    assert len(loaded) == 1
    assert first.thumbprint == second.thumbprint == jwk_thumbprint(signer.public_jwk())
    assert first.replay_key != second.replay_key


def test_a_refused_proof_header_is_checked_again_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = SigningKey.generate("ES256")
    loaded = counting_key_loads(monkeypatch)
    mismatched = proof(key=signer, header={"alg": "ES384"})
    assert refused(mismatched) is Reason.DPOP_PROOF_KEY_MISMATCH
    assert refused(mismatched) is Reason.DPOP_PROOF_KEY_MISMATCH
    assert len(loaded) == 2


def test_a_proof_header_whose_key_did_not_sign_the_proof_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    impostor = SigningKey.generate("ES256")
    loaded = counting_key_loads(monkeypatch)
    forged = proof(header={"jwk": impostor.public_jwk()})
    assert refused(forged) is Reason.DPOP_PROOF_SIGNATURE
    assert refused(forged) is Reason.DPOP_PROOF_SIGNATURE
    assert len(loaded) == 2


def test_a_proof_header_seen_before_still_obeys_the_policys_algorithms() -> None:
    signer = SigningKey.generate("ES256")
    verify(proof(key=signer, jti="one"))
    only_rsa = DPoPPolicy(algorithms=["RS256"])
    assert refused(proof(key=signer, jti="two"), policy=only_rsa) is Reason.DPOP_PROOF_ALGORITHM
