"""Authorization codes: random, short-lived, bound to one login by PKCE, and usable once.

PKCE (RFC 7636) is S256 only: ``plain`` protects nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CodeStore",
    "PendingGrant",
    "is_valid_challenge",
    "is_valid_verifier",
    "s256_challenge",
    "verifier_matches",
]

_MAX_OUTSTANDING = 10_000
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
# base64url of a SHA-256 digest, without padding: always 43 characters.
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class PendingGrant:
    """What a code stands for until it is exchanged at the token endpoint."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    audience: str
    scope: tuple[str, ...]
    permissions: tuple[str, ...]
    subject: str


class CodeStore:
    """Issues codes and redeems each at most once, within ``lifetime`` seconds.

    Redeeming removes the code whatever happens next, so a code that met a wrong PKCE
    verifier cannot be tried again (RFC 6749 §4.1.2: codes are single-use).
    """

    def __init__(self, lifetime: float, clock: Callable[[], float]) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._codes: OrderedDict[str, tuple[float, PendingGrant]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, grant: PendingGrant) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired()
            while len(self._codes) >= _MAX_OUTSTANDING:
                self._codes.popitem(last=False)
            self._codes[code] = (self._clock() + self._lifetime, grant)
        return code

    def redeem(self, code: str) -> PendingGrant | None:
        """The grant behind ``code``, or ``None`` if it is unknown, used or expired."""
        with self._lock:
            entry = self._codes.pop(code, None)
        if entry is None:
            return None
        expires_at, grant = entry
        return grant if self._clock() < expires_at else None

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._codes:
            expires_at, _ = next(iter(self._codes.values()))
            if expires_at > now:
                break
            self._codes.popitem(last=False)


def s256_challenge(verifier: str) -> str:
    """The ``code_challenge`` a client sends for ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def is_valid_challenge(challenge: str) -> bool:
    return _CHALLENGE.fullmatch(challenge) is not None


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether a valid ``verifier`` is the secret behind ``challenge`` (in constant time)."""
    return hmac.compare_digest(s256_challenge(verifier), challenge)
