"""keys.py: which published JWKs become verification keys, and which are refused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fastapi_isp_jwt import base64url
from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.errors import KeySetError
from fastapi_isp_jwt.keys import (
    MAX_JWKS_KEYS,
    KeySet,
    SkippedKey,
    VerificationKey,
    load_jwk,
    load_jwks,
)
from fastapi_isp_jwt.testing import SigningKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def modulus_of(jwk: dict[str, Any]) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=="), "big")


def modulus_in(key: VerificationKey | None) -> int:
    assert key is not None
    assert isinstance(key.public_key, rsa.RSAPublicKey)
    return key.public_key.public_numbers().n


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key(rsa_private: rsa.RSAPrivateKey) -> SigningKey:
    return SigningKey(kid="rsa-1", alg="RS256", private_key=rsa_private)


@pytest.fixture(scope="module")
def other_rsa_key() -> SigningKey:
    return SigningKey.generate("RS256", kid="rsa-2")


@pytest.fixture
def rsa_jwk(rsa_key: SigningKey) -> dict[str, Any]:
    return rsa_key.public_jwk()


@pytest.fixture
def ec_jwk() -> dict[str, Any]:
    return SigningKey.generate("ES256", kid="ec-1").public_jwk()


# -- keys that load ----------------------------------------------------------------------


def test_rsa_jwk_becomes_the_issuers_rsa_public_key(
    rsa_key: SigningKey, rsa_private: rsa.RSAPrivateKey
) -> None:
    key = load_jwk(rsa_key.public_jwk())

    assert (key.kid, key.kty, key.alg, key.crv) == ("rsa-1", "RSA", "RS256", None)
    assert isinstance(key.public_key, rsa.RSAPublicKey)
    assert key.public_key.public_numbers() == rsa_private.public_key().public_numbers()


@pytest.mark.parametrize(
    ("alg", "crv"), [("ES256", "P-256"), ("ES384", "P-384"), ("ES512", "P-521")]
)
def test_ec_jwk_loads_on_each_supported_curve(alg: str, crv: str) -> None:
    signing = SigningKey.generate(alg)
    assert isinstance(signing.private_key, ec.EllipticCurvePrivateKey)

    key = load_jwk(signing.public_jwk())

    assert (key.kty, key.alg, key.crv) == ("EC", alg, crv)
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
    assert key.public_key.public_numbers() == signing.private_key.public_key().public_numbers()


def test_ed25519_jwk_loads_as_an_okp_key() -> None:
    key = load_jwk(SigningKey.generate("EdDSA").public_jwk())

    assert (key.kty, key.alg, key.crv) == ("OKP", "EdDSA", "Ed25519")
    assert isinstance(key.public_key, ed25519.Ed25519PublicKey)


def test_ed448_jwk_loads_as_an_okp_key() -> None:
    key = load_jwk(SigningKey.generate("Ed448").public_jwk())

    assert (key.kty, key.alg, key.crv) == ("OKP", "Ed448", "Ed448")
    assert isinstance(key.public_key, ed448.Ed448PublicKey)


@pytest.mark.parametrize(
    ("alg", "crv"), [("EdDSA", "Ed25519"), ("Ed25519", "Ed25519"), ("EdDSA", "Ed448")]
)
def test_okp_key_may_name_either_spelling_of_its_curves_algorithm(alg: str, crv: str) -> None:
    jwk = SigningKey.generate(crv).public_jwk()
    jwk["alg"] = alg

    assert load_jwk(jwk).alg == alg


# Every point of small order of Ed25519 (the neutral point; order 2; order 4 with either sign
# of x; order 8, two values of y with either sign), as RFC 8032 encodes them.
ED25519_SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]


def okp_jwk(crv: str, public: bytes) -> dict[str, Any]:
    return {"kty": "OKP", "crv": crv, "x": b64url(public)}


@pytest.mark.parametrize("encoded", ED25519_SMALL_ORDER)
def test_under_an_ed25519_point_of_small_order_signatures_are_forged(encoded: str) -> None:
    # Why such keys are refused: R = the neutral point and S = 0 pass for many messages.
    public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(encoded))
    forged = bytes.fromhex(ED25519_SMALL_ORDER[0]) + bytes(32)
    passed = 0
    for n in range(64):
        try:
            public.verify(forged, b"message %d" % n)
            passed += 1
        except InvalidSignature:
            pass
    assert passed > 0


@pytest.mark.parametrize("encoded", ED25519_SMALL_ORDER)
def test_an_ed25519_key_of_small_order_is_refused(encoded: str) -> None:
    with pytest.raises(KeySetError, match="small order"):
        load_jwk(okp_jwk("Ed25519", bytes.fromhex(encoded)))


def test_an_ed25519_key_of_small_order_spelled_beyond_the_field_prime_is_refused() -> None:
    neutral_again = (2**255 - 19 + 1).to_bytes(32, "little")
    with pytest.raises(KeySetError, match="small order"):
        load_jwk(okp_jwk("Ed25519", neutral_again))


@pytest.mark.parametrize(("y", "x_sign"), [(1, 0), (2**448 - 2**224 - 2, 0), (0, 0), (0, 1)])
def test_an_ed448_key_of_small_order_is_refused(y: int, x_sign: int) -> None:
    encoded = bytearray(y.to_bytes(57, "little"))
    encoded[56] |= x_sign << 7
    with pytest.raises(KeySetError, match="small order"):
        load_jwk(okp_jwk("Ed448", bytes(encoded)))


@pytest.mark.parametrize("crv", ["Ed25519", "Ed448"])
def test_genuine_okp_keys_are_never_taken_for_keys_of_small_order(crv: str) -> None:
    for _ in range(200):
        assert load_jwk(SigningKey.generate(crv).public_jwk()).crv == crv


def test_ed448_jwk_of_the_wrong_length_is_refused() -> None:
    jwk = SigningKey.generate("Ed448").public_jwk()
    jwk["x"] = SigningKey.generate("Ed25519").public_jwk()["x"]

    with pytest.raises(KeySetError, match="wrong length"):
        load_jwk(jwk)


def test_jwk_without_alg_use_or_kid_still_loads(rsa_jwk: dict[str, Any]) -> None:
    for member in ("alg", "use", "kid"):
        del rsa_jwk[member]

    key = load_jwk(rsa_jwk)

    assert (key.kid, key.alg) == (None, None)


def test_key_ops_naming_verify_is_accepted(rsa_jwk: dict[str, Any]) -> None:
    rsa_jwk["key_ops"] = ["verify"]

    assert load_jwk(rsa_jwk).kid == "rsa-1"


# -- hygiene: keys that are refused ----------------------------------------------------------


def test_jwk_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(KeySetError, match="not a JSON object"):
        load_jwk(["kty", "RSA"])


def test_jwk_without_kty_is_refused(rsa_jwk: dict[str, Any]) -> None:
    del rsa_jwk["kty"]

    with pytest.raises(KeySetError, match="kty"):
        load_jwk(rsa_jwk)


def test_symmetric_key_is_refused() -> None:
    with pytest.raises(KeySetError, match="symmetric"):
        load_jwk({"kty": "oct", "k": b64url(b"s" * 32), "alg": "HS256", "kid": "hmac"})


def test_private_rsa_key_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    private_jwk = RSAAlgorithm.to_jwk(rsa_private, as_dict=True)

    with pytest.raises(KeySetError, match="private"):
        load_jwk(private_jwk)


def test_private_ec_key_is_refused() -> None:
    private_jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)

    with pytest.raises(KeySetError, match="private"):
        load_jwk(private_jwk)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth"])
def test_any_private_member_alone_is_enough_to_refuse(rsa_jwk: dict[str, Any], member: str) -> None:
    rsa_jwk[member] = b64url(b"\x01" * 16)

    with pytest.raises(KeySetError, match="private"):
        load_jwk(rsa_jwk)


def test_encryption_key_is_refused(rsa_jwk: dict[str, Any]) -> None:
    rsa_jwk["use"] = "enc"

    with pytest.raises(KeySetError, match='"use"'):
        load_jwk(rsa_jwk)


def test_key_ops_without_verify_is_refused(rsa_jwk: dict[str, Any]) -> None:
    rsa_jwk["key_ops"] = ["encrypt", "wrapKey"]

    with pytest.raises(KeySetError, match="verify"):
        load_jwk(rsa_jwk)


def test_key_ops_that_is_not_a_list_of_strings_is_refused(rsa_jwk: dict[str, Any]) -> None:
    rsa_jwk["key_ops"] = "verify"

    with pytest.raises(KeySetError, match="key_ops"):
        load_jwk(rsa_jwk)


def test_rsa_key_under_2048_bits_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505

    with pytest.raises(KeySetError, match="2048"):
        load_jwk(RSAAlgorithm.to_jwk(weak, as_dict=True))


def test_rsa_key_over_16384_bits_is_refused(rsa_jwk: dict[str, Any]) -> None:
    rsa_jwk["n"] = b64url_int((1 << 16400) + 1)

    with pytest.raises(KeySetError, match="16384"):
        load_jwk(rsa_jwk)


@pytest.mark.parametrize("exponent", [1, 2, 65536])
def test_rsa_key_with_invalid_exponent_is_refused(rsa_jwk: dict[str, Any], exponent: int) -> None:
    rsa_jwk["e"] = b64url_int(exponent)

    with pytest.raises(KeySetError, match="RSA public numbers"):
        load_jwk(rsa_jwk)


def test_unknown_key_type_is_refused(rsa_jwk: dict[str, Any]) -> None:
    rsa_jwk["kty"] = "AKP"

    with pytest.raises(KeySetError, match="unsupported key type"):
        load_jwk(rsa_jwk)


def test_unsupported_elliptic_curve_is_refused() -> None:
    secp256k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    jwk = ECAlgorithm.to_jwk(secp256k1, as_dict=True)

    with pytest.raises(KeySetError, match="unsupported elliptic curve"):
        load_jwk(jwk)


def test_okp_key_agreement_curve_is_refused() -> None:
    public = x25519.X25519PrivateKey.generate().public_key()
    jwk = {"kty": "OKP", "crv": "X25519", "x": b64url(public.public_bytes_raw())}

    with pytest.raises(KeySetError, match="unsupported OKP curve"):
        load_jwk(jwk)


@pytest.mark.parametrize("alg", ["HS256", "none", "ES256", "RSA-OAEP", "EdDSA"])
def test_rsa_key_declaring_an_algorithm_it_cannot_serve_is_refused(
    rsa_jwk: dict[str, Any], alg: str
) -> None:
    rsa_jwk["alg"] = alg

    with pytest.raises(KeySetError, match='"alg" does not fit its key type'):
        load_jwk(rsa_jwk)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "Ed25519ph", "HS256"])
def test_okp_key_declaring_an_algorithm_of_another_kind_is_refused(alg: str) -> None:
    jwk = SigningKey.generate("EdDSA").public_jwk()
    jwk["alg"] = alg

    with pytest.raises(KeySetError, match='"alg" does not fit its key type'):
        load_jwk(jwk)


@pytest.mark.parametrize(("alg", "crv"), [("Ed448", "Ed25519"), ("Ed25519", "Ed448")])
def test_okp_key_declaring_the_other_curves_algorithm_is_refused(alg: str, crv: str) -> None:
    jwk = SigningKey.generate(crv).public_jwk()
    jwk["alg"] = alg

    with pytest.raises(KeySetError, match="does not fit its curve"):
        load_jwk(jwk)


def test_ec_key_declaring_another_curves_algorithm_is_refused(ec_jwk: dict[str, Any]) -> None:
    ec_jwk["alg"] = "ES384"

    with pytest.raises(KeySetError, match="does not fit its curve"):
        load_jwk(ec_jwk)


def test_ec_point_not_on_the_curve_is_refused(ec_jwk: dict[str, Any]) -> None:
    y = base64.urlsafe_b64decode(ec_jwk["y"] + "==")
    ec_jwk["y"] = b64url(y[:-1] + bytes([y[-1] ^ 1]))

    with pytest.raises(KeySetError, match="not on the curve"):
        load_jwk(ec_jwk)


def test_ec_coordinate_longer_than_its_curve_is_refused(ec_jwk: dict[str, Any]) -> None:
    x = base64.urlsafe_b64decode(ec_jwk["x"] + "==")
    ec_jwk["x"] = b64url(b"\x00" + x)

    with pytest.raises(KeySetError, match="wrong length"):
        load_jwk(ec_jwk)


# -- EC coordinates sent without their leading zero bytes ------------------------------------
# RFC 7518 §6.2.1.2 wants full-length coordinates; PyJWT 2.8 and authlib drop leading zero
# bytes, so such keys are accepted once the point they name is found on the curve.

_CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}


def key_with_a_short_x(alg: str) -> ec.EllipticCurvePrivateKey:
    """The first private key, counting up from 1, whose public x starts with a zero byte."""
    curve = _CURVES[alg]
    full_length = (curve.key_size + 7) // 8
    scalar = 1
    while True:
        private = ec.derive_private_key(scalar, curve)
        if private.public_key().public_numbers().x.bit_length() <= 8 * (full_length - 1):
            return private
        scalar += 1


def minimal_jwk(private: ec.EllipticCurvePrivateKey, alg: str) -> dict[str, Any]:
    """The public JWK with each coordinate in as few bytes as it takes, as PyJWT 2.8 writes it."""
    numbers = private.public_key().public_numbers()
    crv = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
    return {
        "kty": "EC",
        "crv": crv,
        "alg": alg,
        "kid": "short",
        "x": b64url_int(numbers.x),
        "y": b64url_int(numbers.y),
    }


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ec_key_with_a_short_coordinate_verifies_its_tokens(alg: str) -> None:
    private = key_with_a_short_x(alg)
    token = jwt.encode({"sub": "someone"}, private, algorithm=alg)
    signing_input, _, signature = token.encode().rpartition(b".")

    key = load_jwk(minimal_jwk(private, alg))

    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
    assert key.public_key.public_numbers() == private.public_key().public_numbers()
    assert ALGORITHMS[alg].verify(key.public_key, signing_input, base64url.decode(signature))


def test_ec_key_with_a_short_coordinate_off_the_curve_is_refused() -> None:
    jwk = minimal_jwk(key_with_a_short_x("ES512"), "ES512")
    y = base64.urlsafe_b64decode(jwk["y"] + "==")
    jwk["y"] = b64url(y[:-1] + bytes([y[-1] ^ 1]))

    with pytest.raises(KeySetError, match="not on the curve"):
        load_jwk(jwk)


def test_padded_base64url_is_refused(rsa_jwk: dict[str, Any]) -> None:
    assert len(rsa_jwk["n"]) % 4 == 2  # a 2048-bit modulus: 256 bytes, two pad characters
    rsa_jwk["n"] += "=="

    with pytest.raises(KeySetError, match="base64url"):
        load_jwk(rsa_jwk)


def test_standard_base64_alphabet_is_refused(rsa_jwk: dict[str, Any]) -> None:
    raw = base64.urlsafe_b64decode(rsa_jwk["n"] + "==")
    standard = base64.b64encode(raw).rstrip(b"=").decode()
    assert standard != rsa_jwk["n"], "this key happens to need no + or /"
    rsa_jwk["n"] = standard

    with pytest.raises(KeySetError, match="base64url"):
        load_jwk(rsa_jwk)


def test_base64url_with_stray_trailing_bits_is_refused(rsa_jwk: dict[str, Any]) -> None:
    # The last of 342 characters carries 2 bits of data and 4 that must be zero; setting one
    # of those gives a second spelling of the same modulus, which lenient decoders accept.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    n = rsa_jwk["n"]
    tweaked = n[:-1] + alphabet[alphabet.index(n[-1]) + 1]
    assert base64.urlsafe_b64decode(tweaked + "==") == base64.urlsafe_b64decode(n + "==")
    rsa_jwk["n"] = tweaked

    with pytest.raises(KeySetError, match="base64url"):
        load_jwk(rsa_jwk)


@pytest.mark.parametrize(
    ("member", "value"),
    [("kid", 7), ("alg", ["RS256"]), ("use", True), ("n", 12345), ("e", None)],
)
def test_members_of_the_wrong_type_are_refused(
    rsa_jwk: dict[str, Any], member: str, value: object
) -> None:
    rsa_jwk[member] = value

    with pytest.raises(KeySetError, match=f'"{member}"'):
        load_jwk(rsa_jwk)


# -- whole documents ---------------------------------------------------------------------


@pytest.mark.parametrize("document", [[], "keys", None, {"keys": {}}, {"jwks": []}])
def test_document_that_is_not_a_jwks_is_refused(document: object) -> None:
    with pytest.raises(KeySetError, match="JWKS document"):
        load_jwks(document)


def test_a_document_listing_more_entries_than_the_limit_is_refused() -> None:
    with pytest.raises(KeySetError, match=f"more than {MAX_JWKS_KEYS} keys"):
        load_jwks({"keys": [{}] * (MAX_JWKS_KEYS + 1)})


def test_a_document_listing_as_many_entries_as_the_limit_is_loaded(
    rsa_jwk: dict[str, Any],
) -> None:
    key_set = load_jwks({"keys": [rsa_jwk] + [{"kty": "oct"}] * (MAX_JWKS_KEYS - 1)})

    assert (key_set.kids, len(key_set.skipped)) == (frozenset({"rsa-1"}), MAX_JWKS_KEYS - 1)


class _Unread(list[object]):
    """Entries that fail the test if any one of them is looked at."""

    def __iter__(self) -> Iterator[object]:
        raise AssertionError("an entry was read")

    def __getitem__(self, index: object) -> Any:
        raise AssertionError("an entry was read")


def test_no_entry_of_a_document_over_the_limit_is_read() -> None:
    entries = _Unread([{"kty": "oct"}] * (MAX_JWKS_KEYS + 1))

    with pytest.raises(KeySetError):
        load_jwks({"keys": entries})


def test_empty_jwks_gives_an_empty_key_set() -> None:
    assert len(load_jwks({"keys": []})) == 0


def test_one_bad_key_does_not_spoil_the_set(rsa_jwk: dict[str, Any]) -> None:
    document = {
        "keys": [
            {"kty": "oct", "k": b64url(b"secret"), "kid": "hmac"},
            {**rsa_jwk, "kid": "broken", "n": "!!"},
            "not even an object",
            rsa_jwk,
        ]
    }

    key_set = load_jwks(document)

    assert key_set.kids == {"rsa-1"}


def test_a_skipped_key_is_listed_with_its_kid_and_reason_but_no_key_material(
    rsa_private: rsa.RSAPrivateKey,
) -> None:
    private_jwk = RSAAlgorithm.to_jwk(rsa_private, as_dict=True)
    private_jwk["kid"] = "leaky"

    key_set = load_jwks({"keys": [private_jwk]})

    assert key_set.skipped == (SkippedKey("leaky", "the JWK holds private key material"),)
    assert private_jwk["d"] not in repr(key_set.skipped)
    assert private_jwk["n"] not in repr(key_set.skipped)


def test_a_skipped_key_without_a_text_kid_is_listed_without_one() -> None:
    key_set = load_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": 7}]})

    assert key_set.skipped == (SkippedKey(None, 'the JWK "kid" is not a string'),)


def test_usable_keys_are_not_listed_as_skipped(rsa_jwk: dict[str, Any]) -> None:
    assert load_jwks({"keys": [rsa_jwk]}).skipped == ()


def test_identical_jwk_in_the_next_document_is_the_same_key_object(
    rsa_jwk: dict[str, Any],
) -> None:
    first = load_jwks({"keys": [rsa_jwk]})
    reordered = dict(reversed(list(rsa_jwk.items())))

    second = load_jwks({"keys": [reordered]}, previous=first)

    assert second.find("rsa-1") is first.find("rsa-1")


def test_changed_jwk_under_the_same_kid_is_loaded_afresh(
    rsa_jwk: dict[str, Any], other_rsa_key: SigningKey
) -> None:
    first = load_jwks({"keys": [rsa_jwk]})
    replacement = {**other_rsa_key.public_jwk(), "kid": "rsa-1"}

    second = load_jwks({"keys": [replacement]}, previous=first)

    assert second.find("rsa-1") is not first.find("rsa-1")
    assert modulus_in(second.find("rsa-1")) == modulus_of(replacement)


def test_a_second_key_under_an_existing_kid_is_skipped(
    rsa_jwk: dict[str, Any], other_rsa_key: SigningKey
) -> None:
    impostor = {**other_rsa_key.public_jwk(), "kid": "rsa-1"}

    key_set = load_jwks({"keys": [rsa_jwk, impostor]})

    assert len(key_set) == 1
    assert modulus_in(key_set.find("rsa-1")) == modulus_of(rsa_jwk)
    assert key_set.skipped == (SkippedKey("rsa-1", "another key has the same kid"),)


# -- lookups -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_keys(rsa_key: SigningKey, other_rsa_key: SigningKey) -> KeySet:
    return load_jwks({"keys": [rsa_key.public_jwk(), other_rsa_key.public_jwk()]})


def test_find_matches_the_kid_exactly(two_keys: KeySet) -> None:
    found = two_keys.find("rsa-2")

    assert isinstance(found, VerificationKey)
    assert found.kid == "rsa-2"


@pytest.mark.parametrize("kid", ["RSA-2", "rsa-2 ", "rsa", ""])
def test_find_does_not_match_a_kid_that_differs_at_all(two_keys: KeySet, kid: str) -> None:
    assert two_keys.find(kid) is None


def test_find_without_kid_picks_the_only_key(rsa_jwk: dict[str, Any]) -> None:
    single = load_jwks({"keys": [rsa_jwk]})

    assert single.find(None) is single.keys[0]


def test_find_without_kid_picks_nothing_among_several_keys(two_keys: KeySet) -> None:
    assert two_keys.find(None) is None


def test_find_with_a_kid_that_is_not_a_string_finds_nothing(two_keys: KeySet) -> None:
    assert two_keys.find(["rsa-1"]) is None  # type: ignore[arg-type]
