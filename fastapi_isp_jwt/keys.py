"""Turning published JWKs into verification keys, and refusing the ones that must not be used.

Everything here is pure: no I/O, no clock. The key cache (`fastapi_isp_jwt.keycache`) feeds
it the documents it downloads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from fastapi_isp_jwt import base64url
from fastapi_isp_jwt.algorithms import EDDSA, PublicKey
from fastapi_isp_jwt.errors import KeySetError

__all__ = [
    "MAX_JWKS_KEYS",
    "KeySet",
    "PublicKey",
    "SkippedKey",
    "VerificationKey",
    "load_jwk",
    "load_jwks",
]


MAX_JWKS_KEYS = 100
"""The most entries a JWKS document may list; one listing more is not a usable key set.

Issuers publish a handful of keys (the current one, the next, one being retired). Each entry
costs parsing and, when unusable, a line in the log: some 350,000 entries fit in the 1 MiB a
download may bring, seconds of CPU. The count is checked before any entry is read.
"""

MIN_RSA_BITS = 2048
# Far above anything an issuer uses; a bigger modulus would only make every verification slow.
MAX_RSA_BITS = 16384

# Curve name -> (curve, size in bytes of each coordinate, RFC 7518 §6.2.1.2).
_EC_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
# OKP curve name -> how its public key is read, and its size in bytes (RFC 8037 §2).
_OKP_CURVES: dict[str, tuple[type[ed25519.Ed25519PublicKey] | type[ed448.Ed448PublicKey], int]] = {
    "Ed25519": (ed25519.Ed25519PublicKey, 32),
    "Ed448": (ed448.Ed448PublicKey, 57),
}
# The RFC 8032 curves as (field prime, a, d, doublings that clear the cofactor).
_P25519 = 2**255 - 19
_P448 = 2**448 - 2**224 - 1
_EDWARDS: dict[str, tuple[int, int, int, int]] = {
    "Ed25519": (_P25519, -1, -121665 * pow(121666, -1, _P25519) % _P25519, 3),
    "Ed448": (_P448, 1, -39081 % _P448, 2),
}

# Which JWK "alg" values each kind of key may declare. Anything else (HS256, "none", an EC
# algorithm on an RSA key...) is a key whose purpose we cannot honour, so it is skipped.
_ALGS_FOR_KTY: dict[str, frozenset[str]] = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    # Either spelling of EdDSA (RFC 8037, RFC 9864); the curve must agree with the second.
    "OKP": frozenset({EDDSA, "Ed25519", "Ed448"}),
}
_ALG_FOR_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

# Members that only a private (or symmetric) key carries (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """One public key the issuer signs with, ready to verify signatures.

    Compared by identity on purpose: a key loaded once stays the same object for as long as
    the issuer keeps publishing the same JWK, so "the same key" is a cheap ``is`` check.
    """

    kid: str | None
    kty: str
    alg: str | None
    crv: str | None
    public_key: PublicKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class SkippedKey:
    """A published JWK that did not become a key, and why.

    ``kid`` is the JWK's own ``kid`` when it is text (``None`` otherwise), exactly as
    published: whoever shows it must make it safe to show. ``reason`` is one of this
    module's fixed sentences and never quotes the key.
    """

    kid: str | None
    reason: str


@dataclass(frozen=True)
class KeySet:
    """The usable keys of one JWKS document, looked up by ``kid``.

    ``skipped`` lists the published JWKs that were left out, in document order.
    """

    keys: tuple[VerificationKey, ...]
    # Canonical JWK text -> the key built from it, so the next download can reuse objects.
    _by_jwk: Mapping[str, VerificationKey] = field(default_factory=dict, repr=False, compare=False)
    _by_kid: dict[str, VerificationKey] = field(init=False, repr=False, compare=False)
    skipped: tuple[SkippedKey, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        by_kid: dict[str, VerificationKey] = {}
        for key in self.keys:
            if key.kid is not None:
                by_kid.setdefault(key.kid, key)
        object.__setattr__(self, "_by_kid", by_kid)

    def find(self, kid: str | None) -> VerificationKey | None:
        """The key published under ``kid`` (exact, case-sensitive match), or ``None``.

        A token without ``kid`` can only name the key of a set that holds exactly one.
        """
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        if not isinstance(kid, str):
            return None
        return self._by_kid.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        """The ``kid`` of every key that has one."""
        return frozenset(self._by_kid)

    def __len__(self) -> int:
        return len(self.keys)


def load_jwk(jwk: object) -> VerificationKey:
    """Build a verification key from one JWK, or raise `KeySetError` saying why not."""
    if not isinstance(jwk, dict):
        raise KeySetError("the JWK is not a JSON object")
    kid = _optional_str(jwk, "kid")
    kty = _optional_str(jwk, "kty")
    alg = _optional_str(jwk, "alg")
    if kty is None:
        raise KeySetError('the JWK has no "kty"')
    if kty == "oct":
        raise KeySetError("symmetric keys are never trusted")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise KeySetError("the JWK holds private key material")
    _check_purpose(jwk)
    if kty not in _ALGS_FOR_KTY:
        raise KeySetError("unsupported key type")
    if alg is not None and alg not in _ALGS_FOR_KTY[kty]:
        raise KeySetError('the JWK "alg" does not fit its key type')

    crv: str | None = None
    public_key: PublicKey
    if kty == "RSA":
        public_key = _rsa_key(jwk)
    elif kty == "EC":
        crv = _optional_str(jwk, "crv")
        public_key = _ec_key(jwk, crv, alg)
    else:
        crv = _optional_str(jwk, "crv")
        public_key = _okp_key(jwk, crv, alg)
    return VerificationKey(kid=kid, kty=kty, alg=alg, crv=crv, public_key=public_key)


def load_jwks(document: object, previous: KeySet | None = None) -> KeySet:
    """Load every usable key of a JWKS document.

    Raises `KeySetError` when ``document`` is not a JWKS at all, or lists more than
    `MAX_JWKS_KEYS` entries (before reading any of them). Unusable keys are
    skipped one by one, so one bad key never spoils the set, and listed in the set's
    ``skipped`` with their ``kid`` and the reason (the key cache logs them). A JWK
    identical to one in ``previous`` yields the very same `VerificationKey` object,
    without parsing it again.
    """
    if not isinstance(document, dict):
        raise KeySetError("the JWKS document is not a JSON object")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeySetError('the JWKS document has no "keys" array')
    if len(entries) > MAX_JWKS_KEYS:
        raise KeySetError(f"the JWKS document lists more than {MAX_JWKS_KEYS} keys")

    known = previous._by_jwk if previous is not None else {}
    keys: list[VerificationKey] = []
    by_jwk: dict[str, VerificationKey] = {}
    seen_kids: set[str] = set()
    skipped: list[SkippedKey] = []
    for entry in entries:
        canonical = _canonical(entry)
        key = None if canonical is None else by_jwk.get(canonical) or known.get(canonical)
        if key is None:
            try:
                key = load_jwk(entry)
            except KeySetError as exc:
                skipped.append(SkippedKey(_kid_of(entry), str(exc)))
                continue
        if key.kid is not None:
            if key.kid in seen_kids:
                skipped.append(SkippedKey(key.kid, "another key has the same kid"))
                continue
            seen_kids.add(key.kid)
        elif key in keys:
            continue
        keys.append(key)
        if canonical is not None:
            by_jwk[canonical] = key
    return KeySet(tuple(keys), by_jwk, tuple(skipped))


def _canonical(entry: object) -> str | None:
    """One spelling per JWK, whatever the member order, to recognise a key seen before."""
    try:
        return json.dumps(entry, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None  # not JSON data (only possible for documents not parsed from JSON)


def _check_purpose(jwk: Mapping[str, object]) -> None:
    use = _optional_str(jwk, "use")
    if use is not None and use != "sig":
        raise KeySetError('the JWK "use" is not "sig"')
    if "key_ops" in jwk:
        ops = jwk["key_ops"]
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
            raise KeySetError('the JWK "key_ops" is not an array of strings')
        if "verify" not in ops:
            raise KeySetError('the JWK "key_ops" does not allow "verify"')


def _rsa_key(jwk: Mapping[str, object]) -> rsa.RSAPublicKey:
    n = int.from_bytes(_b64_member(jwk, "n"), "big")
    e = int.from_bytes(_b64_member(jwk, "e"), "big")
    if n.bit_length() < MIN_RSA_BITS:
        raise KeySetError(f"RSA keys under {MIN_RSA_BITS} bits are too weak")
    if n.bit_length() > MAX_RSA_BITS:
        raise KeySetError(f"RSA keys over {MAX_RSA_BITS} bits are not accepted")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise KeySetError("the RSA public numbers are invalid") from exc


def _ec_key(
    jwk: Mapping[str, object], crv: str | None, alg: str | None
) -> ec.EllipticCurvePublicKey:
    if crv not in _EC_CURVES:
        raise KeySetError("unsupported elliptic curve")
    if alg is not None and alg != _ALG_FOR_CURVE[crv]:
        raise KeySetError('the JWK "alg" does not fit its curve')
    curve, size = _EC_CURVES[crv]
    x = _ec_coordinate(jwk, "x", size)
    y = _ec_coordinate(jwk, "y", size)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + x + y)
    except ValueError as exc:
        raise KeySetError("the point is not on the curve") from exc


def _ec_coordinate(jwk: Mapping[str, object], name: str, size: int) -> bytes:
    """One coordinate at the full length of its curve, as the encoded point needs it.

    RFC 7518 §6.2.1.2 asks for the full length, but some producers (PyJWT 2.8, authlib)
    drop leading zero bytes, which makes half of all P-521 keys one byte short. Putting
    the zeros back is safe: the point is still checked to lie on the curve afterwards.
    """
    raw = _b64_member(jwk, name)
    if len(raw) > size:
        raise KeySetError(f'the JWK "{name}" has the wrong length for its curve')
    return raw.rjust(size, b"\x00")


def _okp_key(
    jwk: Mapping[str, object], crv: str | None, alg: str | None
) -> ed25519.Ed25519PublicKey | ed448.Ed448PublicKey:
    if crv not in _OKP_CURVES:
        raise KeySetError("unsupported OKP curve")
    if alg is not None and alg not in (EDDSA, crv):
        raise KeySetError('the JWK "alg" does not fit its curve')
    kind, size = _OKP_CURVES[crv]
    public = _b64_member(jwk, "x", size)
    if _has_small_order(crv, public):
        raise KeySetError("the OKP key is a point of small order")
    try:
        return kind.from_public_bytes(public)
    except UnsupportedAlgorithm:
        # An OpenSSL built without Ed448 (cryptography's own wheels have it).
        raise KeySetError("unsupported OKP curve") from None


def _has_small_order(crv: str, public: bytes) -> bool:
    """Whether ``public`` encodes a point of small order, under which signatures are forged.

    With such a key, R = the neutral point and S = 0 pass OpenSSL's Ed25519 check for a good
    share of all messages. A point of small order is one that doublings (as many as the
    cofactor has factors 2) take to the neutral point, y = 1. Doubling needs y alone:
    x² = (y² - 1) / (d y² - a), then y' = (y² - a x²) / (1 - d x² y²) (RFC 8032 §5, the
    twisted Edwards doubling), here with y = Y / Z so that no step needs an inverse.
    """
    p, a, d, doublings = _EDWARDS[crv]
    y = int.from_bytes(public, "little") & ((1 << (8 * len(public) - 1)) - 1)  # sign bit off
    y_, z_ = y % p, 1  # an encoding of y beyond p names the same point, if read at all
    for _ in range(doublings):
        yy, zz = y_ * y_ % p, z_ * z_ % p
        numerator, denominator = (yy - zz) % p, (d * yy - a * zz) % p  # x² = n / d
        if denominator == 0:
            return False  # no point of the curve has this y
        y_ = (yy * denominator - a * numerator * zz) % p
        z_ = (denominator * zz - d * numerator * yy) % p
        if z_ == 0:
            return False
    return y_ == z_


def _optional_str(jwk: Mapping[str, object], name: str) -> str | None:
    value = jwk.get(name)
    if value is not None and not isinstance(value, str):
        raise KeySetError(f'the JWK "{name}" is not a string')
    return value


def _b64_member(jwk: Mapping[str, object], name: str, size: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise KeySetError(f'the JWK "{name}" is missing or not a string')
    try:
        raw = base64url.decode(value)
    except ValueError:
        raise KeySetError(f'the JWK "{name}" is not canonical unpadded base64url') from None
    if size is not None and len(raw) != size:
        raise KeySetError(f'the JWK "{name}" has the wrong length for its curve')
    return raw


def _kid_of(entry: object) -> str | None:
    kid = entry.get("kid") if isinstance(entry, dict) else None
    return kid if isinstance(kid, str) else None
