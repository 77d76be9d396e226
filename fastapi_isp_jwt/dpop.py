"""DPoP (RFC 9449): one proof for one request -> the thumbprint of the key that signed it.

`verify_proof` applies the checks of RFC 9449 §4.3 to the ``DPoP`` header of one request,
cheap and I/O-free ones first, and returns the proof key's RFC 7638 thumbprint; then
`check_binding` holds it against the access token's ``cnf.jkt``. Both are pure: the
replay check (`fastapi_isp_jwt.replay`) and reading the request are the caller's.
Optional server nonces (`DPoPNonces`) rotate without any state shared between replicas
beyond one secret.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from fastapi_isp_jwt import base64url
from fastapi_isp_jwt.algorithms import ALGORITHMS, key_fits_algorithm
from fastapi_isp_jwt.dpop_nonces import DPoPNonces
from fastapi_isp_jwt.errors import (
    ConfigurationError,
    InvalidDPoPProofError,
    InvalidTokenError,
    KeySetError,
    UseDPoPNonceError,
)
from fastapi_isp_jwt.grammar import is_finite_number
from fastapi_isp_jwt.keys import VerificationKey, load_jwk
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.token import decode_header, decode_payload, decode_signature, split_compact
from fastapi_isp_jwt.uri import normalized_http_url

__all__ = [
    "DEFAULT_IAT_LEEWAY",
    "DEFAULT_IAT_WINDOW",
    "DPoPMode",
    "DPoPNonces",
    "DPoPPolicy",
    "DPoPRequest",
    "VerifiedProof",
    "access_token_hash",
    "bound_thumbprint",
    "check_binding",
    "jwk_thumbprint",
    "one_proof",
    "verify_proof",
]

DEFAULT_IAT_WINDOW = 60.0
"""Seconds a proof stays acceptable after its ``iat`` (before the leeway)."""
DEFAULT_IAT_LEEWAY = 30.0
"""Seconds of clock skew tolerated between the client and this service, either way."""

PROOF_TYPE = "dpop+jwt"
MAX_JTI_LENGTH = 256
# A proof key is chosen by whoever sends the request, not by a trusted issuer: bound the
# cost of its signature check (a huge modulus or exponent makes verification slow).
_MAX_PROOF_RSA_BITS = 8192
_MAX_PROOF_RSA_EXPONENT_BITS = 32
# RFC 7638 §3.2: the members each key type contributes to its thumbprint.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
_SHA256_BYTES = 32
_T = TypeVar("_T")


class DPoPMode(str, enum.Enum):
    """Which schemes a service accepts: both, DPoP only, or Bearer only."""

    ALLOWED = "allowed"
    REQUIRED = "required"
    DISABLED = "disabled"

    @classmethod
    def parse(cls, value: object, option: str = "dpop") -> DPoPMode:
        """The mode named by ``value`` (a mode or its name, any case)."""
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        names = ", ".join(repr(mode.value) for mode in cls)
        raise ConfigurationError(f"{option} must be one of {names}")


@dataclass(frozen=True)
class DPoPPolicy:
    """What a service accepts in a proof; checked when built, errors name the option.

    ``algorithms`` defaults to every algorithm the library verifies (all asymmetric).
    A proof is accepted from ``iat - leeway`` to ``iat + iat_window + leeway``.
    """

    algorithms: Collection[str] = tuple(ALGORITHMS)
    iat_window: float = DEFAULT_IAT_WINDOW
    leeway: float = DEFAULT_IAT_LEEWAY
    nonces: DPoPNonces | None = None
    max_proof_bytes: int = 8192
    _allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = (self.algorithms,) if isinstance(self.algorithms, str) else self.algorithms
        if not isinstance(names, Collection) or not names:
            raise ConfigurationError("dpop_algorithms must name at least one algorithm")
        for name in names:
            if name not in ALGORITHMS:
                supported = ", ".join(ALGORITHMS)
                raise ConfigurationError(
                    f"dpop_algorithms: {name!r} is not supported; supported: {supported}"
                )
        object.__setattr__(self, "_allowed", frozenset(names))
        for option, value in (("dpop_iat_window", self.iat_window), ("leeway", self.leeway)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{option} must be a number")
            if not (is_finite_number(value) and value >= 0):
                raise ConfigurationError(f"{option} must be a finite number >= 0")
        if isinstance(self.max_proof_bytes, bool) or not isinstance(self.max_proof_bytes, int):
            raise ConfigurationError("dpop_max_proof_bytes must be an integer")
        if self.max_proof_bytes < 256:
            raise ConfigurationError("dpop_max_proof_bytes must be at least 256")

    @property
    def allowed_algorithms(self) -> frozenset[str]:
        """The ``alg`` values a proof may use (the ``algs`` of the ``DPoP`` challenge)."""
        return self._allowed

    @property
    def replay_ttl(self) -> float:
        """How long a proof's ``jti`` must be remembered: as long as the proof is accepted."""
        return self.iat_window + 2 * self.leeway


@dataclass(frozen=True, slots=True)
class DPoPRequest:
    """What the adapter knows of one request: its one DPoP proof, its method, its URL.

    ``url`` is the URL the client addressed (scheme, host, port, path); any query and
    fragment are ignored.
    """

    proof: str | bytes
    method: str
    url: str


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """A proof that holds: the thumbprint of its key, and what the replay check needs."""

    thumbprint: str
    jti: str
    replay_key: str = field(repr=False)
    """Digest of key and ``jti``: fixed length, safe as a store key, one per proof."""


def one_proof(values: Sequence[bytes]) -> bytes:
    """The one ``DPoP`` header value of a request (RFC 9449 §4.3, check 1)."""
    if not values:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_MISSING)
    if len(values) > 1:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_REPEATED)
    return values[0]


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, in base64url.

    Raises ``ValueError`` for a key type without a thumbprint rule or a missing member.
    """
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None or not all(isinstance(jwk.get(name), str) for name in members):
        raise ValueError("the JWK lacks the members of its thumbprint")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"))
    return base64url.encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(access_token: str | bytes) -> str:
    """The ``ath`` of a proof sent with ``access_token``: base64url of its SHA-256."""
    raw = access_token.encode("ascii") if isinstance(access_token, str) else access_token
    return base64url.encode(hashlib.sha256(raw).digest())


def verify_proof(
    request: DPoPRequest,
    *,
    policy: DPoPPolicy,
    now: float,
    access_token: str | bytes | None = None,
) -> VerifiedProof:
    """Check ``request.proof`` against the request and ``access_token``; its key's thumbprint.

    Raises `InvalidDPoPProofError`, or `UseDPoPNonceError` when ``policy`` demands a
    nonce the proof lacks. Without ``access_token`` (a token request) ``ath`` is not
    checked. The ``jti`` is not remembered here: the caller hands ``replay_key`` to a
    `fastapi_isp_jwt.replay.ReplayStore` once the whole request checks out.
    """
    raw, header_end, payload_end = _split(request.proof, policy.max_proof_bytes)
    header = _proof_header(raw[:header_end], policy)
    alg, key, thumbprint = header
    payload = _decoded(decode_payload, raw[header_end + 1 : payload_end], "payload")
    signature = _decoded(decode_signature, raw[payload_end + 1 :], "signature")
    if not ALGORITHMS[alg].verify(key.public_key, raw[:payload_end], signature):
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_SIGNATURE)
    if len(_proof_headers) >= _PROOF_HEADERS_SIZE:
        _proof_headers.clear()
    _proof_headers[raw[:header_end]] = header  # its key signed this proof: worth keeping

    jti = _text_claim(payload, "jti")
    if len(jti) > MAX_JTI_LENGTH:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_CLAIM_MALFORMED, "jti")
    htm = _text_claim(payload, "htm")
    htu = _text_claim(payload, "htu")
    iat = _time_claim(payload, "iat")
    if htm != request.method:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_METHOD)
    target = normalized_http_url(htu)
    if target is None:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_CLAIM_MALFORMED, "htu")
    if target != normalized_http_url(request.url):
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_URL)
    if iat < now - policy.iat_window - policy.leeway:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_TOO_OLD)
    if iat > now + policy.leeway:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_ISSUED_IN_FUTURE)
    if access_token is not None:
        ath = _text_claim(payload, "ath")
        if not hmac.compare_digest(ath.encode("utf-8"), access_token_hash(access_token).encode()):
            raise InvalidDPoPProofError(Reason.DPOP_PROOF_ACCESS_TOKEN)
    if policy.nonces is not None:
        _check_nonce(payload, policy.nonces, now)

    replay_key = hashlib.sha256(f"{thumbprint}.{jti}".encode()).hexdigest()
    return VerifiedProof(thumbprint, jti, replay_key)


def bound_thumbprint(payload: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` of a verified token, or ``None`` when it names no DPoP key.

    A ``cnf`` that is not a non-empty object, or a ``jkt`` that is not a base64url
    SHA-256 thumbprint, is refused (``claim_malformed``): a binding the token states
    badly is never read as no binding.
    """
    if "cnf" not in payload:
        return None
    confirmation = payload["cnf"]
    if not isinstance(confirmation, Mapping) or not confirmation:  # a JSON object, or frozen
        raise InvalidTokenError(Reason.CLAIM_MALFORMED, "cnf")
    if "jkt" not in confirmation:
        return None  # bound another way (an mTLS certificate, RFC 8705)
    jkt = confirmation["jkt"]
    if type(jkt) is not str or not _is_thumbprint(jkt):
        raise InvalidTokenError(Reason.CLAIM_MALFORMED, "cnf")
    return jkt


def certificate_thumbprint(der: bytes) -> str:
    """The RFC 8705 ``x5t#S256`` of a client certificate: base64url SHA-256 of its DER."""
    return base64url.encode(hashlib.sha256(der).digest())


def check_binding(
    payload: Mapping[str, Any], proof: VerifiedProof | None, certificate: str | None = None
) -> str | None:
    """Hold a verified token against what its request presents (RFC 9449 §7, RFC 8705 §3).

    ``proof`` ``None`` means the Bearer scheme: a token with a ``cnf`` is refused then (no
    downgrade), except one bound to the client certificate whose thumbprint is
    ``certificate``. With a proof the token must name that very key in ``cnf.jkt``, whose
    thumbprint is returned (for the principal to show).
    """
    jkt = bound_thumbprint(payload)
    if proof is None:
        if "cnf" not in payload:
            return None
        bound_certificate = payload["cnf"].get("x5t#S256")
        if jkt is not None or type(bound_certificate) is not str or certificate is None:
            raise InvalidTokenError(Reason.SENDER_CONSTRAINED)
        if not hmac.compare_digest(bound_certificate, certificate):
            raise InvalidTokenError(Reason.CERTIFICATE_MISMATCH)
        return None
    if jkt is None:
        raise InvalidTokenError(Reason.NOT_DPOP_BOUND)
    if not hmac.compare_digest(jkt, proof.thumbprint):
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_BINDING)
    return jkt


# -- the steps -------------------------------------------------------------------------------


def _split(proof: object, max_bytes: int) -> tuple[bytes, int, int]:
    """The proof's bytes and where its two dots are: size first, then compact shape."""
    kind = type(proof)
    if kind is not str and kind is not bytes:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_MALFORMED)
    assert isinstance(proof, str | bytes)
    if len(proof) > max_bytes:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_TOO_LARGE)
    if not proof.isascii():
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_MALFORMED)
    raw = proof.encode("ascii") if isinstance(proof, str) else proof
    try:
        return (raw, *split_compact(raw, max_bytes))
    except InvalidTokenError:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_MALFORMED) from None


def _decoded(decode: Callable[[bytes], _T], segment: bytes, part: str) -> _T:
    try:
        return decode(segment)
    except InvalidTokenError:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_ENCODING, part) from None


# A client sends the same header segment with every proof: what a segment yields (its key
# loaded and checked, its thumbprint) is kept, bounded, once its key has signed a proof.
_PROOF_HEADERS_SIZE = 1024
_proof_headers: dict[bytes, tuple[str, VerificationKey, str]] = {}


def _proof_header(segment: bytes, policy: DPoPPolicy) -> tuple[str, VerificationKey, str]:
    """A proof header's ``alg``, key and key thumbprint, checked in the order refusals go."""
    known = _proof_headers.get(segment)
    if known is not None and known[0] in policy.allowed_algorithms:  # alg: the policy's rule
        return known
    header = _decoded(decode_header, segment, "header")
    if type(header.get("typ")) is not str or header["typ"] != PROOF_TYPE:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_TYPE)
    alg = header.get("alg")
    if type(alg) is not str or alg not in policy.allowed_algorithms:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_ALGORITHM)
    if "crit" in header or "b64" in header:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_HEADER)
    key = _proof_key(header.get("jwk"))
    if not key_fits_algorithm(ALGORITHMS[alg], key.kty, key.crv, key.alg):
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_KEY_MISMATCH)
    return alg, key, jwk_thumbprint(header["jwk"])


def _proof_key(jwk: object) -> VerificationKey:
    """The public key of the ``jwk`` header, by the rules for an issuer's keys and more."""
    try:
        key = load_jwk(jwk)
    except KeySetError:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_KEY) from None
    if isinstance(key.public_key, rsa.RSAPublicKey):
        numbers = key.public_key.public_numbers()
        if (
            numbers.n.bit_length() > _MAX_PROOF_RSA_BITS
            or numbers.e.bit_length() > _MAX_PROOF_RSA_EXPONENT_BITS
        ):
            raise InvalidDPoPProofError(Reason.DPOP_PROOF_KEY)
    return key


def _text_claim(payload: Mapping[str, Any], name: str) -> str:
    if name not in payload:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_CLAIM_MISSING, name)
    value = payload[name]
    if type(value) is not str or not value:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_CLAIM_MALFORMED, name)
    return value


def _time_claim(payload: Mapping[str, Any], name: str) -> float:
    if name not in payload:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_CLAIM_MISSING, name)
    value = payload[name]
    kind = type(value)
    # bool is an int subclass, and `true` is no time; nor is NaN or a numeric string.
    if kind is not int and (kind is not float or not math.isfinite(value)):
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_CLAIM_MALFORMED, name)
    return value  # type: ignore[no-any-return]


def _check_nonce(payload: Mapping[str, Any], nonces: DPoPNonces, now: float) -> None:
    if "nonce" not in payload:
        raise UseDPoPNonceError(Reason.DPOP_NONCE_REQUIRED, nonces.issue(now))
    nonce = payload["nonce"]
    if type(nonce) is not str or not nonce:
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_CLAIM_MALFORMED, "nonce")
    if not nonces.accepts(nonce, now):
        raise UseDPoPNonceError(Reason.DPOP_NONCE_STALE, nonces.issue(now))


def _is_thumbprint(text: str) -> bool:
    try:
        return len(base64url.decode(text)) == _SHA256_BYTES
    except ValueError:
        return False
