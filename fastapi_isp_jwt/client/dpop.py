"""DPoP on the client side (RFC 9449): a fresh proof for every request, and servers' nonces.

`ProofSigner` signs one proof per request with the client's key: its own ``jti``, the
current time, the request's method and URL without query and fragment, and ``ath`` when an
access token goes with it. It remembers the last nonce each server handed out in a
``DPoP-Nonce`` header (one per origin: scheme, host and port), so the next proof to that
server carries it. Deciding when to send again is the flows' job (`token_request`,
`exchange`); nothing here does I/O.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import httpx

from fastapi_isp_jwt.errors import ConfigurationError
from fastapi_isp_jwt.grammar import is_scope_token
from fastapi_isp_jwt.minting import SigningKey, dpop_proof, jwk_thumbprint

__all__ = ["NONCE_ERROR", "ProofSigner", "asks_for_nonce", "target_uri"]

NONCE_ERROR = "use_dpop_nonce"
# A nonce longer than this is no nonce a sane server sends; it is not echoed back.
_MAX_NONCE_LENGTH = 1024
# RFC 9110 §11: a challenge is a scheme followed by name=value parameters, the value a
# token or a quoted string; several challenges may share one header. Each match is either a
# parameter (name, quoted value or token value) or a bare token (a scheme, or a token68).
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CHALLENGE_PART = re.compile(
    rf'\s*(?:({_TCHARS})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TCHARS}))|({_TCHARS}=*))\s*,?'
)


def target_uri(url: httpx.URL | str) -> str:
    """The ``htu`` of a proof for ``url``: the URL without query and fragment (RFC 9449 §4.2)."""
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


def _origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


class ProofSigner:
    """Signs the DPoP proofs of one client key and remembers each server's latest nonce.

    Safe to share between threads and event loops: the nonces are guarded by a lock that
    is never held while signing.
    """

    def __init__(self, key: SigningKey, *, now: Callable[[], float] = time.time) -> None:
        if not isinstance(key, SigningKey):
            raise ConfigurationError(
                "dpop_key must be a fastapi_isp_jwt.minting.SigningKey (an asymmetric key)"
            )
        self.key = key
        self.thumbprint = jwk_thumbprint(key.public_jwk())
        self._now = now
        self._nonces: dict[tuple[str, str, int | None], str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProofSigner(alg={self.key.alg!r}, thumbprint={self.thumbprint!r})"

    def proof(self, method: str, url: httpx.URL | str, *, access_token: str | None = None) -> str:
        """A new proof for one request to ``url``, with the nonce its server last gave."""
        with self._lock:
            nonce = self._nonces.get(_origin(url))
        return dpop_proof(
            self.key,
            method,
            target_uri(url),
            access_token=access_token,
            nonce=nonce,
            iat=self._now(),
        )

    def note_nonce(self, url: httpx.URL | str, headers: httpx.Headers) -> str | None:
        """Remember the ``DPoP-Nonce`` the server of ``url`` sent, if it sent a usable one.

        Returns the nonce when it differs from the one held (sending again with it may
        help), else ``None``. A server may hand out a new nonce on any answer (§8.2, §9).
        """
        nonce = _nonce_in(headers)
        if nonce is None:
            return None
        origin = _origin(url)
        with self._lock:
            if self._nonces.get(origin) == nonce:
                return None
            self._nonces[origin] = nonce
        return nonce


def asks_for_nonce(response: httpx.Response) -> bool:
    """Whether an API's answer demands a server nonce in the proof (RFC 9449 §9).

    That is a 401 whose ``DPoP`` challenge says ``error="use_dpop_nonce"``; the nonce
    itself comes in the ``DPoP-Nonce`` header.
    """
    if response.status_code != 401:
        return False
    challenges = response.headers.get_list("WWW-Authenticate")
    return any(NONCE_ERROR in _dpop_errors(value) for value in challenges)


def _dpop_errors(challenges: str) -> set[str]:
    """The ``error`` values of the ``DPoP`` challenges in one ``WWW-Authenticate`` value."""
    errors: set[str] = set()
    scheme = ""
    for part in _CHALLENGE_PART.finditer(challenges):
        name, quoted, plain, bare = part.groups()
        if bare is not None:
            scheme = bare.lower()
        elif scheme == "dpop" and name.lower() == "error":
            errors.add(quoted if quoted is not None else plain)
    return errors


def _nonce_in(headers: httpx.Headers) -> str | None:
    values = headers.get_list("DPoP-Nonce")
    if len(values) != 1:
        return None  # none, or several to choose from: none is trusted
    nonce = values[0].strip()
    # RFC 9449 §8.1: nonce = 1*NQCHAR, the very characters of an RFC 6749 scope-token.
    if len(nonce) > _MAX_NONCE_LENGTH or not is_scope_token(nonce):
        return None
    return nonce
