"""DPoP in tests: a client's key, the headers of one DPoP request, and proofs broken on purpose.

A test of a DPoP-protected route needs three things: a key the token is bound to, a token
bound to it (``TestIssuer.mint_dpop_bound(jkt=key.thumbprint)``) and, for every request,
``Authorization: DPoP <token>`` with a fresh ``DPoP`` proof for that method and URL.
`DPoPKey.headers` gives the pair; ``broken=`` gives a proof that a resource server must
refuse, one flaw at a time (`BROKEN_PROOFS` names them all).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi_isp_jwt.minting import SigningKey, dpop_proof, jwk_thumbprint

__all__ = ["BROKEN_PROOFS", "DPoPKey"]

# Far beyond any proof window and leeway a service would configure.
_FAR = 3600.0

BROKEN_PROOFS = (
    "method",
    "url",
    "access_token",
    "no_access_token",
    "too_old",
    "in_future",
    "signature",
    "other_key",
    "typ",
    "algorithm",
    "private_key",
    "no_jti",
)
"""Every flaw `DPoPKey.proof` can build in (``broken=``), each one a proof must be refused for.

``method`` and ``url``: made for another request (``htm``, ``htu``). ``access_token``: the
``ath`` of another token; ``no_access_token``: no ``ath``. ``too_old`` and ``in_future``:
``iat`` an hour off. ``signature``: the signature altered. ``other_key``: a sound proof
by a key the token is not bound to. ``typ``: ``JWT`` rather than ``dpop+jwt``.
``algorithm``: claims ``HS256``. ``private_key``: the ``jwk`` header carries a private
member. ``no_jti``: no ``jti``.
"""


class DPoPKey:
    """A client's DPoP key pair, for tests: its thumbprint, its proofs and request headers.

    ``algorithm`` is any the library verifies (``ES256`` by default, as browsers and most
    clients use); ``signing_key`` uses a key of your own instead.
    """

    def __init__(self, algorithm: str = "ES256", *, signing_key: SigningKey | None = None) -> None:
        self.signing_key = signing_key or SigningKey.generate(algorithm)
        self.thumbprint = jwk_thumbprint(self.signing_key.public_jwk())
        """The RFC 7638 thumbprint: the ``cnf.jkt`` of a token bound to this key."""

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self.signing_key.alg!r}, thumbprint={self.thumbprint!r})"

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        broken: str | None = None,
        **changes: Any,
    ) -> str:
        """A fresh proof for one ``method`` request to ``url`` (query and fragment dropped).

        ``access_token`` adds its ``ath``; ``nonce`` a server nonce. ``broken`` names one
        flaw of `BROKEN_PROOFS`. Other keyword arguments (``iat``, ``jti``, ``header``,
        ``claims``, ``omit``) go to ``fastapi_isp_jwt.minting.dpop_proof`` as they are.
        """
        key = self.signing_key
        options: dict[str, Any] = {"access_token": access_token, "nonce": nonce}
        if broken is not None:
            key, flaw = self._flaw(broken, method, access_token)
            options.update(flaw)
        options.update(changes)
        proof = dpop_proof(key, method, url.split("#", 1)[0].split("?", 1)[0], **options)
        return _altered_signature(proof) if broken == "signature" else proof

    def headers(
        self,
        access_token: str,
        method: str,
        url: str,
        *,
        nonce: str | None = None,
        broken: str | None = None,
        **changes: Any,
    ) -> dict[str, str]:
        """``Authorization: DPoP <access_token>`` and its ``DPoP`` proof, for one request.

        Pass them as ``headers=`` of a test client call. Each call makes a new proof:
        sending the same headers twice is a replay, which a service must refuse.
        """
        proof = self.proof(
            method, url, access_token=access_token, nonce=nonce, broken=broken, **changes
        )
        return {"Authorization": f"DPoP {access_token}", "DPoP": proof}

    def _flaw(
        self, broken: str, method: str, access_token: str | None
    ) -> tuple[SigningKey, dict[str, Any]]:
        """The key to sign with and the `dpop_proof` arguments that build the flaw in."""
        key = self.signing_key
        now = time.time()
        flaws: dict[str, dict[str, Any]] = {
            "method": {"claims": {"htm": "DELETE" if method != "DELETE" else "GET"}},
            "url": {"claims": {"htu": "https://elsewhere.invalid/other"}},
            "access_token": {"access_token": f"not-{access_token}"},
            "no_access_token": {"omit": ("ath",)},
            "too_old": {"iat": now - _FAR},
            "in_future": {"iat": now + _FAR},
            "signature": {},
            "other_key": {},
            "typ": {"header": {"typ": "JWT"}},
            "algorithm": {"header": {"alg": "HS256"}},
            "private_key": {"header": {"jwk": {**_public_members(key.public_jwk()), "d": "AAAA"}}},
            "no_jti": {"omit": ("jti",)},
        }
        if broken not in flaws:
            raise ValueError(f"unknown flaw {broken!r}: use one of {', '.join(BROKEN_PROOFS)}")
        if broken == "other_key":
            key = SigningKey.generate(key.alg)
        return key, flaws[broken]


def _public_members(jwk: dict[str, Any]) -> dict[str, Any]:
    return {name: jwk[name] for name in ("kty", "crv", "n", "e", "x", "y") if name in jwk}


def _altered_signature(proof: str) -> str:
    """``proof`` with the first byte of its signature changed: still well-formed, not valid."""
    head, _, signature = proof.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    return f"{head}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
