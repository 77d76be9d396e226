"""Signing keys and minting: claims and a header in, a compact JWS out.

The testing kit, the dev issuer and the ``mint`` command all sign here, so a token from
any of them has the tenant's shape and is made the same way. No framework, no network.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import PyJWS
from jwt.algorithms import Algorithm, ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from fastapi_isp_jwt import base64url
from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.dpop import PROOF_TYPE, access_token_hash, jwk_thumbprint

__all__ = [
    "NotUnicodeError",
    "PrivateKey",
    "SigningKey",
    "dpop_proof",
    "is_unicode_text",
    "jwk_thumbprint",
    "jwks_of",
    "sign_token",
    "tenant_claims",
]

# By the JWK curve name each EC algorithm of ALGORITHMS requires.
_EC_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}

_JWK_WRITERS: dict[str, type[Algorithm]] = {
    "RSA": RSAAlgorithm,
    "EC": ECAlgorithm,
    "OKP": OKPAlgorithm,
}
# The members of a public JWK that say which key it is (RFC 7638 §3.2, all key types).
_JWK_PUBLIC_MEMBERS = ("kty", "crv", "n", "e", "x", "y")

# By the JWK curve name each OKP algorithm of ALGORITHMS may use.
_OKP_CURVES: dict[str, type[ed25519.Ed25519PrivateKey] | type[ed448.Ed448PrivateKey]] = {
    "Ed25519": ed25519.Ed25519PrivateKey,
    "Ed448": ed448.Ed448PrivateKey,
}

# PyJWT knows EdDSA only. The RFC 9864 names sign exactly as it does (the key's curve
# decides), so they are taught to a private PyJWS rather than to PyJWT's global one,
# which the application may be using for tokens of its own.
_JWS = PyJWS()
for _name in ("Ed25519", "Ed448"):
    _JWS.register_algorithm(_name, OKPAlgorithm())

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


class NotUnicodeError(ValueError):
    """A header parameter or claim holds text that no UTF-8 JSON can carry.

    A lone surrogate such as ``"\\ud800"`` is a Python string but not Unicode text: the
    JSON of a token holding one could only escape it, and no verifier should accept that.
    """

    def __init__(self, kind: str, name: object) -> None:
        self.kind = kind
        self.name = name
        super().__init__(
            f"the {kind} {name!r} holds text that is not valid Unicode "
            "(a lone surrogate such as '\\ud800'); a token carries UTF-8 text only"
        )


@dataclass(frozen=True)
class SigningKey:
    """One private key of an issuer, with the ``kid`` and ``alg`` it is published under."""

    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        # Checked here, so that a key read from a file fails when it is loaded rather
        # than when it first signs.
        if not isinstance(self.kid, str) or not self.kid or not is_unicode_text(self.kid):
            raise ValueError("a signing key needs a kid that is non-empty text")
        if not _fits(self.private_key, self.alg):
            raise ValueError(f"the key does not fit the algorithm {self.alg!r}")

    @classmethod
    def generate(cls, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        """A new private key for ``alg``, one of ``fastapi_isp_jwt.ALGORITHMS``."""
        kty, curves = _key_type(alg)
        private_key: PrivateKey
        if kty == "RSA":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kty == "EC":
            private_key = ec.generate_private_key(_EC_CURVES[curves[0]])
        else:
            # EdDSA on its own gets Ed25519, the first of its curves.
            private_key = _OKP_CURVES[curves[0]].generate()
        return cls(kid=kid or secrets.token_hex(8), alg=alg, private_key=private_key)

    @classmethod
    def from_pem(cls, pem: bytes, *, kid: str, alg: str) -> SigningKey:
        """Load a private key saved with `to_pem`; ``alg`` must fit the key's type."""
        _key_type(alg)
        private_key = serialization.load_pem_private_key(pem, password=None)
        # Any other key type (DSA, X25519...) is refused by the check in __post_init__.
        return cls(kid=kid, alg=alg, private_key=private_key)  # type: ignore[arg-type]

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, for a local key file only."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, the way an Auth0 tenant publishes it.

        It says what the key is for with ``use`` only: PyJWT's writers add ``key_ops``
        too, which RFC 7517 §4.3 asks not to combine with ``use``.
        """
        writer = _JWK_WRITERS[_key_type(self.alg)[0]]
        written = writer.to_jwk(self.private_key.public_key(), as_dict=True)
        members = {name: written[name] for name in _JWK_PUBLIC_MEMBERS if name in written}
        return {"kid": self.kid, "alg": self.alg, "use": "sig", **members}


def _key_type(alg: object) -> tuple[str, tuple[str, ...]]:
    """The ``kty`` and the curves a key for ``alg`` has; only ALGORITHMS are known."""
    algorithm = ALGORITHMS.get(alg) if isinstance(alg, str) else None
    if algorithm is None:
        raise ValueError(f"unknown algorithm {alg!r}: use one of {', '.join(ALGORITHMS)}")
    return algorithm.kty, algorithm.curves


def _fits(private_key: object, alg: str) -> bool:
    kty, curves = _key_type(alg)
    if kty == "RSA":
        return isinstance(private_key, rsa.RSAPrivateKey)
    if kty == "EC":
        return (
            isinstance(private_key, ec.EllipticCurvePrivateKey)
            and private_key.curve.name == _EC_CURVES[curves[0]].name
        )
    return any(isinstance(private_key, _OKP_CURVES[crv]) for crv in curves)


def jwks_of(keys: Iterable[SigningKey]) -> dict[str, Any]:
    """The JWKS document publishing the public halves of ``keys``, in their order."""
    return {"keys": [key.public_jwk() for key in keys]}


def tenant_claims(
    issuer: str,
    audience: str | list[str],
    *,
    client_id: str,
    subject: str | None = None,
    scopes: Iterable[str] = (),
    permissions: Iterable[str] | None = None,
    expires_in: float = 3600,
    issued_at: float | None = None,
    not_before: float | None = None,
) -> dict[str, Any]:
    """The claims of an access token shaped as the tenant issues them.

    ``subject`` ``None`` makes a Client Credentials (machine) token: ``sub`` is
    ``<client_id>@clients`` and ``gty`` says how it was obtained. ``scope`` is left out
    when there are no scopes, ``permissions`` when none are given, as the tenant does.
    """
    now = time.time() if issued_at is None else issued_at
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": f"{client_id}@clients" if subject is None else subject,
        "aud": audience,
        "iat": int(now),
        "exp": int(now + expires_in),
        "azp": client_id,
    }
    scope_list = list(scopes)
    if scope_list:
        claims["scope"] = " ".join(scope_list)
    if permissions is not None:
        claims["permissions"] = list(permissions)
    if subject is None:
        claims["gty"] = "client-credentials"
    if not_before is not None:
        claims["nbf"] = int(not_before)
    return claims


def sign_token(
    claims: Mapping[str, Any], key: SigningKey, *, header: Mapping[str, Any] | None = None
) -> str:
    """``claims`` signed with ``key``, as a compact JWS.

    The header holds ``typ`` ``JWT`` and the key's ``kid`` and ``alg``; ``header`` adds to
    or replaces any of them, even with values a verifier must refuse (tests build hostile
    tokens this way). Text that is not valid Unicode anywhere in the header or the claims
    raises `NotUnicodeError`, naming the parameter or claim.
    """
    full_header: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
    if header:
        full_header.update(header)
    _check_unicode("header parameter", full_header)
    _check_unicode("claim", claims)
    algorithm = full_header.pop("alg", key.alg)
    payload = json.dumps(dict(claims), separators=(",", ":")).encode("utf-8")
    return _JWS.encode(payload, key.private_key, algorithm=algorithm, headers=full_header)


def dpop_proof(
    key: SigningKey,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    iat: float | None = None,
    jti: str | None = None,
    header: Mapping[str, Any] | None = None,
    claims: Mapping[str, Any] | None = None,
    omit: Iterable[str] = (),
) -> str:
    """A DPoP proof (RFC 9449 §4.2) for one request, signed with ``key``.

    The header carries ``typ`` ``dpop+jwt``, the key's ``alg`` and its public ``jwk``
    (thumbprint members only); ``ath`` is set when ``access_token`` is given. To build a
    proof a server must refuse, ``header`` and ``claims`` add or replace members (an
    ``alg`` there is only claimed: the proof is still signed with the key's) and ``omit``
    drops members by name from both.
    """
    public = key.public_jwk()
    full_header: dict[str, Any] = {
        "typ": PROOF_TYPE,
        "alg": key.alg,
        "jwk": {name: public[name] for name in _JWK_PUBLIC_MEMBERS if name in public},
    }
    full_claims: dict[str, Any] = {
        "jti": jti or secrets.token_urlsafe(16),
        "htm": method,
        "htu": url,
        "iat": int(time.time() if iat is None else iat),
    }
    if access_token is not None:
        full_claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        full_claims["nonce"] = nonce
    full_header.update(header or {})
    full_claims.update(claims or {})
    for name in omit:
        full_header.pop(name, None)
        full_claims.pop(name, None)
    _check_unicode("header parameter", full_header)
    _check_unicode("claim", full_claims)
    # Assembled here rather than by PyJWT, which would put back an omitted "alg" or "typ".
    signing_input = f"{_json_segment(full_header)}.{_json_segment(full_claims)}"
    signature = _JWS.get_algorithm_by_name(key.alg).sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{base64url.encode(signature)}"


def _json_segment(members: Mapping[str, Any]) -> str:
    return base64url.encode(json.dumps(members, separators=(",", ":")).encode("utf-8"))


def _check_unicode(kind: str, members: Mapping[str, Any]) -> None:
    for name, value in members.items():
        if not (_holds_unicode_only(name) and _holds_unicode_only(value)):
            raise NotUnicodeError(kind, name)


def _holds_unicode_only(value: object) -> bool:
    """Whether every string in ``value``, at any depth and in keys too, is Unicode text."""
    if isinstance(value, str):
        return is_unicode_text(value)
    if isinstance(value, Mapping):
        return all(_holds_unicode_only(k) and _holds_unicode_only(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_holds_unicode_only(item) for item in value)
    return True


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` is Unicode text, which a lone surrogate (``"\\ud800"``) is not.

    Such strings come from JSON escapes and undecodable command-line bytes; they fail
    wherever they are encoded, so a token must never carry one.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
