"""Remembering DPoP proof ids, so that each proof is used once (RFC 9449 §11.1).

A `ReplayStore` answers one question: has this key been seen within its time to live?
`MemoryReplayStore` (the default) remembers within one process; `RedisReplayStore`
shares the memory between every replica that uses the same Redis, so a proof replayed
against another instance is refused too. A store that cannot answer raises
`ReplayStoreUnavailableError` (503 with ``Retry-After``): a proof is never accepted
unchecked.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fastapi_isp_jwt.errors import ConfigurationError, InvalidDPoPProofError
from fastapi_isp_jwt.errors import ReplayStoreUnavailableError as ReplayStoreUnavailableError
from fastapi_isp_jwt.grammar import is_finite_number
from fastapi_isp_jwt.reasons import Reason

__all__ = [
    "MemoryReplayStore",
    "RedisReplayStore",
    "ReplayStore",
    "ReplayStoreUnavailableError",
    "refuse_replay",
]

DEFAULT_MAX_ENTRIES = 200_000
DEFAULT_KEY_PREFIX = "fastapi-isp-jwt:dpop:"
DEFAULT_REDIS_TIMEOUT = 1.0


@runtime_checkable
class ReplayStore(Protocol):
    """Where proof ids are remembered; any object with this one method will do."""

    async def remember(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds: ``True`` the first time, ``False`` on replay.

        Raise `ReplayStoreUnavailableError` when the store cannot answer.
        """
        ...


async def refuse_replay(store: ReplayStore, key: str, ttl: float) -> None:
    """Remember a proof's ``key``; a proof seen before is refused (``dpop_proof_replayed``)."""
    if not await store.remember(key, ttl):
        raise InvalidDPoPProofError(Reason.DPOP_PROOF_REPLAYED)


class MemoryReplayStore:
    """Keys remembered in this process, each until its time to live ends.

    At most ``max_entries`` live keys are held. When that many are live at once, a new
    key cannot be remembered without forgetting one that may still be replayed, so the
    store answers as unavailable (503) until the oldest expire rather than accept a
    proof it cannot check. Safe to share between threads and event loops.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be an integer of at least 1")
        self.max_entries = max_entries
        self._clock = clock
        # Insertion order is nearly expiry order (every proof gets the same time to live),
        # so expired keys are found at the front.
        self._expiries: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiries)

    async def remember(self, key: str, ttl: float) -> bool:
        return self.remember_sync(key, ttl)

    def remember_sync(self, key: str, ttl: float) -> bool:
        """`remember` for code outside an event loop; the same memory."""
        now = self._clock()
        with self._lock:
            expiries = self._expiries
            known = expiries.get(key)
            if known is not None and known > now:
                return False
            self._forget_expired(now)
            if len(expiries) >= self.max_entries:
                soonest = min(expiries.values())
                raise ReplayStoreUnavailableError(retry_after=soonest - now)
            expiries.pop(key, None)
            expiries[key] = now + ttl
            return True

    def _forget_expired(self, now: float) -> None:
        expiries = self._expiries
        while expiries and next(iter(expiries.values())) <= now:
            expiries.popitem(last=False)
        if len(expiries) >= self.max_entries:
            # Keys with longer lives may stand in front of expired ones: sweep them all.
            for key in [k for k, expiry in expiries.items() if expiry <= now]:
                del expiries[key]


class RedisReplayStore:
    """Keys remembered in Redis, shared by every replica using it (``SET key NX PX``).

    ``client`` is a ``redis.asyncio.Redis`` (install the ``redis`` extra:
    ``pip install fastapi-isp-jwt[redis]``); it is used as given and never closed here.
    A store that cannot answer raises `ReplayStoreUnavailableError` with ``retry_after``
    seconds: any error from the client (connection refused, a read-only replica, a
    cluster that cannot be reached...), no answer within ``timeout`` seconds, or a reply
    other than the two ``SET NX`` gives (a key new or not), as a pipeline given for a
    client would make.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_KEY_PREFIX,
        retry_after: float = 1,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigurationError("timeout must be a number of seconds")
        if not (is_finite_number(timeout) and timeout > 0):
            raise ConfigurationError("timeout must be a finite number of seconds > 0")
        self.client = client
        self.prefix = prefix
        self.retry_after = retry_after
        self.timeout = timeout

    async def remember(self, key: str, ttl: float) -> bool:
        milliseconds = max(1, math.ceil(ttl * 1000))
        try:
            created = await asyncio.wait_for(
                self.client.set(self.prefix + key, b"1", nx=True, px=milliseconds), self.timeout
            )
        except Exception:  # whatever the client or its connection raise: no answer
            raise ReplayStoreUnavailableError(retry_after=self.retry_after) from None
        if created is True:
            return True
        if created is None or created is False:
            return False
        raise ReplayStoreUnavailableError(retry_after=self.retry_after)
