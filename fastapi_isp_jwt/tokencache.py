"""The verified-token cache: bounded in entries and in bytes, admitting on second sight.

An entry is keyed by the SHA-256 digest of the whole token (the token itself is never
kept) and holds the principal with what decides whether it may still be served: the
token's expiry and the key that verified it. It costs what it holds: each entry is weighed
by the claims it keeps, and the cache stays within ``max_bytes`` as well as ``max_entries``,
least recently used first out. Tokens longer than `MAX_REMEMBERED_TOKEN` bytes are never
kept, and expired entries leave as new ones come, without waiting to be looked up.

Admission is on second sight, through a doorkeeper: a fixed table of fingerprints indexed
by the digest. A token is admitted when it finds its own fingerprint in its slot. Other
tokens can only overwrite slots they happen to share, so no request order, and no flood
of other tokens short of filling the whole table, keeps a token a client reuses out.
"""

from __future__ import annotations

import heapq
import sys
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["DEFAULT_MAX_BYTES", "MAX_REMEMBERED_TOKEN", "VerifiedTokenCache"]

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
MAX_REMEMBERED_TOKEN = 4096
"""Tokens longer than this many bytes are verified every time, never remembered."""

_DOORKEEPER_SLOTS = 1 << 16  # 512 KiB of fingerprints, whatever the traffic
_ENTRY_OVERHEAD = 1500  # the principal and its fields, the digest, dict slot and heap item

E = TypeVar("E")


@dataclass(slots=True)
class _Slot(Generic[E]):
    value: E
    valid_until: float
    weight: int


class VerifiedTokenCache(Generic[E]):
    """Remembered verifications by token digest; every method is safe across threads."""

    def __init__(self, max_entries: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._slots: OrderedDict[bytes, _Slot[E]] = OrderedDict()
        self._expiries: list[tuple[float, bytes]] = []
        self._bytes = 0
        self._doorkeeper = array("Q", bytes(8 * _DOORKEEPER_SLOTS))
        self._lock = threading.Lock()

    @property
    def size(self) -> tuple[int, int]:
        """How many entries are held, and their weight in bytes."""
        return len(self._slots), self._bytes

    def get(self, digest: bytes, now: float) -> E | None:
        """The value remembered for ``digest`` while it is valid, else ``None``."""
        with self._lock:
            slot = self._slots.get(digest)
            if slot is None:
                return None
            if now >= slot.valid_until:
                self._drop(digest)
                return None
            self._slots.move_to_end(digest)
            return slot.value

    def forget(self, digest: bytes) -> None:
        with self._lock:
            if digest in self._slots:
                self._drop(digest)

    def offer(
        self,
        digest: bytes,
        token_length: int,
        value: E,
        claims: Any,
        valid_until: float,
        now: float,
    ) -> None:
        """Remember ``value`` if this token was verified before and it fits the bounds."""
        if token_length > MAX_REMEMBERED_TOKEN or not self._seen_before(digest):
            return
        try:
            weight = _ENTRY_OVERHEAD + 2 * _weight_of(claims)  # claims, and their frozen copies
        except RecursionError:
            return  # nested deeper than is worth remembering
        if weight * 8 > self._max_bytes:
            return  # one entry must never crowd out most of the others
        with self._lock:
            self._drop_expired(now)
            if digest in self._slots:
                self._drop(digest)
            self._slots[digest] = _Slot(value, valid_until, weight)
            self._bytes += weight
            heapq.heappush(self._expiries, (valid_until, digest))
            while len(self._slots) > self._max_entries or self._bytes > self._max_bytes:
                self._drop(next(iter(self._slots)))

    def _seen_before(self, digest: bytes) -> bool:
        index = int.from_bytes(digest[:4], "little") % _DOORKEEPER_SLOTS
        fingerprint = int.from_bytes(digest[4:12], "little") | 1  # never the empty slot's 0
        if self._doorkeeper[index] == fingerprint:
            self._doorkeeper[index] = 0
            return True
        self._doorkeeper[index] = fingerprint
        return False

    def _drop(self, digest: bytes) -> None:
        self._bytes -= self._slots.pop(digest).weight

    def _drop_expired(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            valid_until, digest = heapq.heappop(expiries)
            slot = self._slots.get(digest)
            if slot is not None and slot.valid_until == valid_until:
                self._drop(digest)
        # Entries pushed out by size leave their heap items behind: rebuild when they
        # outnumber the live entries, so the heap stays bounded with the cache.
        if len(expiries) > 2 * len(self._slots) + 64:
            self._expiries = [(s.valid_until, d) for d, s in self._slots.items()]
            heapq.heapify(self._expiries)


def _weight_of(value: Any) -> int:
    """Bytes ``value`` holds as Python objects: what an entry's claims really cost."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        return size + sum(_weight_of(k) + _weight_of(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return size + sum(_weight_of(item) for item in value)
    return size
