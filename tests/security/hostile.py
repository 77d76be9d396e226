"""Hand-built tokens and the shape of a refusal, shared by the attack tests.

Tokens are assembled here byte by byte with ``cryptography`` (or ``hmac``) rather than a
JWT library, so a test controls every header member, every encoding and every signature
byte, including the ones a well-behaved library would never produce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import Depends, FastAPI, Security

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.minting import PrivateKey

ACME = "https://platform.dtc.istreamplanet.net/acme"

# RFC 6750 §3: error-description values are made of %x20-21 / %x23-5B / %x5D-7E.
RFC6750_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_CHALLENGE = re.compile(
    r'Bearer realm="[^"]*", error="(?P<error>[a-z_]+)", error_description="(?P<description>[^"]*)"'
    r'(, scope="[^"]*")?'
)

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}
_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    """Unpadded base64url, the only encoding a compact JWS segment may use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: object) -> str:
    """A header or payload segment: ``bytes`` as given, anything else as compact JSON."""
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return b64url(raw)


def signing_input(header: object, payload: object) -> bytes:
    return f"{segment(header)}.{segment(payload)}".encode("ascii")


def compact(header: object, payload: object, signature: bytes) -> str:
    return f"{segment(header)}.{segment(payload)}.{b64url(signature)}"


def signature_of(data: bytes, key: PrivateKey, alg: str) -> bytes:
    """The JWS signature of ``data`` under ``alg`` (ECDSA as fixed-size R || S)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(data)
    digest = _HASHES[alg[2:]]
    if isinstance(key, rsa.RSAPrivateKey):
        if alg.startswith("PS"):
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            return key.sign(data, pss, digest)
        return key.sign(data, padding.PKCS1v15(), digest)
    return der_to_raw(key.sign(data, ec.ECDSA(digest)), (key.curve.key_size + 7) // 8)


def der_to_raw(der: bytes, size: int) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sign(
    header: Mapping[str, Any], payload: object, key: PrivateKey, *, as_alg: str | None = None
) -> str:
    """A compact JWS over exactly ``header`` and ``payload``.

    It is signed the way ``header["alg"]`` says, or the way ``as_alg`` says when a test
    needs a genuine signature under a header that names its algorithm wrongly.
    """
    data = signing_input(dict(header), payload)
    return f"{data.decode()}.{b64url(signature_of(data, key, as_alg or header['alg']))}"


def hmac_sign(header: Mapping[str, Any], payload: object, secret: bytes) -> str:
    """A compact JWS MACed with ``secret`` (what an attacker does with a public key)."""
    data = signing_input(dict(header), payload)
    mac = hmac.new(secret, data, _HMAC_DIGESTS[header["alg"]]).digest()
    return f"{data.decode()}.{b64url(mac)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_app(auth: JWTAuth) -> FastAPI:
    """A small streams API: reading needs a token, creating needs ``streams:write`` too."""
    app = FastAPI()

    @app.get("/streams")
    async def list_streams(principal: Principal = Depends(auth)) -> dict[str, object]:
        return {"subject": principal.subject, "organization": principal.organization}

    @app.post("/streams")
    async def create_stream(
        principal: Principal = Security(auth, scopes=["streams:write"]),
    ) -> dict[str, str]:
        return {"created_by": principal.subject}

    return app


def assert_refused(
    response: httpx.Response,
    status: int = 401,
    error: str = "invalid_token",
    *,
    never_echoed: Iterable[str] = (),
) -> str:
    """Check a refusal: exact status, RFC 6750 challenge, nothing echoed; return the reason.

    ``never_echoed`` are strings the attacker controlled (the token, header or claim
    values) which must appear neither in the body nor in any header.
    """
    assert response.status_code == status, (response.status_code, response.text)
    challenge = response.headers["www-authenticate"]
    match = _CHALLENGE.fullmatch(challenge)
    assert match is not None, challenge
    assert match["error"] == error
    description = match["description"]
    assert RFC6750_DESCRIPTION.fullmatch(description), description
    assert response.json() == {"detail": description}
    for text in never_echoed:
        assert text not in response.text
        assert all(text not in value for value in response.headers.values())
    return description
