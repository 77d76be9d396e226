"""Authorization codes: random, short-lived, bound to one login, and usable once."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CodeStore", "PendingGrant"]

_MAX_OUTSTANDING = 10_000


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
