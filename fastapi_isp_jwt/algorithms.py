"""The asymmetric JWS algorithms we verify, and how each checks a signature.

Symmetric (HS*) algorithms and ``none`` are absent on purpose: an issuer that signs
access tokens with a shared secret cannot be verified safely by a resource server, and
their absence here makes the classic RSA-public-key-as-HMAC-secret confusion impossible.

EdDSA has two spellings. ``EdDSA`` (RFC 8037) names the signature scheme and lets the key's
curve choose Ed25519 or Ed448; ``Ed25519`` and ``Ed448`` (RFC 9864, "fully specified")
name the curve too. The signature is computed the same way under either spelling, so a
key published with one spelling verifies tokens written with the other, as long as the
curve agrees (see `key_fits_algorithm`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ALGORITHMS",
    "EDDSA",
    "Algorithm",
    "PublicKey",
    "key_fits_algorithm",
    "same_algorithm",
]

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
_Verify = Callable[[Any, bytes, bytes], bool]


@dataclass(frozen=True, slots=True)
class Algorithm:
    """A JWS algorithm: the key type (and curves) it needs, and its signature check.

    ``curves`` is empty for RSA; otherwise the JWK ``crv`` values a key may have, the
    first being the one a new key gets (`fastapi_isp_jwt.minting.SigningKey.generate`).
    """

    name: str
    kty: str
    curves: tuple[str, ...]
    verify: _Verify


def _rsa(scheme: padding.AsymmetricPadding, hash_algorithm: hashes.HashAlgorithm) -> _Verify:
    def verify(key: rsa.RSAPublicKey, signing_input: bytes, signature: bytes) -> bool:
        # RFC 8017: the signature is exactly as long as the modulus.
        if len(signature) != (key.key_size + 7) // 8:
            return False
        try:
            key.verify(signature, signing_input, scheme, hash_algorithm)
        except InvalidSignature:
            return False
        return True

    return verify


def _rsa_pkcs1(hash_algorithm: hashes.HashAlgorithm) -> _Verify:
    return _rsa(padding.PKCS1v15(), hash_algorithm)


def _rsa_pss(hash_algorithm: hashes.HashAlgorithm) -> _Verify:
    # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
    pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
    return _rsa(pss, hash_algorithm)


def _ecdsa(hash_algorithm: hashes.HashAlgorithm, order: int, size: int) -> _Verify:
    ecdsa = ec.ECDSA(hash_algorithm)

    def verify(key: ec.EllipticCurvePublicKey, signing_input: bytes, signature: bytes) -> bool:
        # RFC 7518 §3.4: R || S, each exactly `size` octets. A DER signature, a short one,
        # or r/s outside [1, n-1] (the "psychic signature" class) never reaches OpenSSL.
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        if not (0 < r < order and 0 < s < order):
            return False
        try:
            key.verify(encode_dss_signature(r, s), signing_input, ecdsa)
        except InvalidSignature:
            return False
        return True

    return verify


def _eddsa(key: object, signing_input: bytes, signature: bytes) -> bool:
    # RFC 8032: an Ed25519 signature is 64 octets, an Ed448 one 114.
    if isinstance(key, ed25519.Ed25519PublicKey):
        size = 64
    elif isinstance(key, ed448.Ed448PublicKey):
        size = 114
    else:
        return False
    if len(signature) != size:
        return False
    try:
        key.verify(signature, signing_input)
    except InvalidSignature:
        return False
    return True


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)
_P521_ORDER = int(
    "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
    "A51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
    16,
)

ALGORITHMS: dict[str, Algorithm] = {
    "RS256": Algorithm("RS256", "RSA", (), _rsa_pkcs1(hashes.SHA256())),
    "RS384": Algorithm("RS384", "RSA", (), _rsa_pkcs1(hashes.SHA384())),
    "RS512": Algorithm("RS512", "RSA", (), _rsa_pkcs1(hashes.SHA512())),
    "PS256": Algorithm("PS256", "RSA", (), _rsa_pss(hashes.SHA256())),
    "PS384": Algorithm("PS384", "RSA", (), _rsa_pss(hashes.SHA384())),
    "PS512": Algorithm("PS512", "RSA", (), _rsa_pss(hashes.SHA512())),
    "ES256": Algorithm("ES256", "EC", ("P-256",), _ecdsa(hashes.SHA256(), _P256_ORDER, 32)),
    "ES384": Algorithm("ES384", "EC", ("P-384",), _ecdsa(hashes.SHA384(), _P384_ORDER, 48)),
    "ES512": Algorithm("ES512", "EC", ("P-521",), _ecdsa(hashes.SHA512(), _P521_ORDER, 66)),
    "EdDSA": Algorithm("EdDSA", "OKP", ("Ed25519", "Ed448"), _eddsa),
    "Ed25519": Algorithm("Ed25519", "OKP", ("Ed25519",), _eddsa),
    "Ed448": Algorithm("Ed448", "OKP", ("Ed448",), _eddsa),
}
"""Every algorithm this library can verify; configuration picks an allow-list from these."""

EDDSA = "EdDSA"
"""The polymorphic spelling of EdDSA, standing for whichever curve the key has."""


def same_algorithm(key_alg: str, token_alg: str, crv: str | None) -> bool:
    """Whether a key published with ``key_alg`` signs what a token calls ``token_alg``.

    Equal names always do. Otherwise only the two spellings of EdDSA are interchangeable,
    and only on the key's own curve: for an Ed25519 key, ``EdDSA`` and ``Ed25519`` are one
    algorithm; ``Ed448`` is never an Ed25519 key's (and vice versa).
    """
    if key_alg == token_alg:
        return True
    spellings = {EDDSA, crv}
    return crv in ("Ed25519", "Ed448") and key_alg in spellings and token_alg in spellings


def key_fits_algorithm(
    algorithm: Algorithm, kty: str, crv: str | None, key_alg: str | None
) -> bool:
    """Whether a key may verify signatures of ``algorithm`` (RFC 8725 §3.1)."""
    if kty != algorithm.kty:
        return False
    if algorithm.curves and crv not in algorithm.curves:
        return False
    return key_alg is None or same_algorithm(key_alg, algorithm.name, crv)
