"""The verified-token cache: bounded in entries and in bytes, admitting on second sight.

An entry is keyed by the SHA-256 digest of the whole token (the token itself is never
kept) and holds the principal with what decides whether it may still be served: the
token's expiry and the key that verified it. It costs what it holds: the caller weighs
each entry (the bytes its principal holds alone), this cache adds its own bookkeeping, and
it stays within ``max_bytes`` as well as ``max_entries``. Tokens longer than
`MAX_REMEMBERED_TOKEN` bytes are never kept.

Eviction gives a second chance: entries leave in the order they came, except that one
served since it was last considered goes to the back of the line once. Expired entries
leave within a minute of their expiry as new ones come, without waiting to be looked up;
one looked up after its expiry is never served.

Admission is on second sight, through a doorkeeper: a fixed table of fingerprints indexed
by the digest. A token is admitted when it finds its own fingerprint in its slot. Other
tokens can only overwrite slots they happen to share, so no request order, and no flood
of other tokens short of filling the whole table, keeps a token a client reuses out.
"""

from __future__ import annotations

import heapq
import threading
from array import array
from collections import deque
from typing import Generic, TypeVar

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENTRY_BOOKKEEPING",
    "MAX_REMEMBERED_TOKEN",
    "Remembered",
    "VerifiedTokenCache",
]

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
MAX_REMEMBERED_TOKEN = 4096
"""Tokens longer than this many bytes are verified every time, never remembered."""

# What the cache itself spends on an entry: the digest, its dict slot (up to three times
# the slot's size just after the dict grew), its places in the eviction line and expiry
# lists, and the entry's own fields (measured with tracemalloc, rounded up).
ENTRY_BOOKKEEPING = 320

_DOORKEEPER_SLOTS = 1 << 16  # 512 KiB of fingerprints, whatever the traffic
# Weights are kept in units of this many bytes: an entry's count of units stays a small
# number, one Python shares instead of allocating per entry.
_UNIT = 16
_MINUTE = 60


class Remembered:
    """What every remembered entry carries for the cache; callers subclass it."""

    __slots__ = ("_units", "_used", "valid_until")

    def __init__(self, valid_until: float) -> None:
        self.valid_until = valid_until
        self._units = 0
        self._used = False


E = TypeVar("E", bound=Remembered)


class VerifiedTokenCache(Generic[E]):
    """Remembered verifications by token digest; every method is safe across threads."""

    def __init__(self, max_entries: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max_entries = max_entries
        self._max_units = max_bytes // _UNIT
        self._entries: dict[bytes, E] = {}
        self._line: deque[bytes] = deque()  # eviction order; may name entries already gone
        self._expiring: dict[int, list[bytes]] = {}  # by expiry minute; the same
        self._minutes: list[int] = []  # heap of the keys of _expiring
        self._listed = 0  # digests in _expiring
        self._units = 0
        self._doorkeeper = array("Q", bytes(8 * _DOORKEEPER_SLOTS))
        self._lock = threading.Lock()

    @property
    def size(self) -> tuple[int, int]:
        """How many entries are held, and their weight in bytes."""
        return len(self._entries), self._units * _UNIT

    def bookkeeping_size(self) -> int:
        """Places held in the eviction line or the expiry lists (some for entries gone)."""
        return max(len(self._line), self._listed)

    def get(self, digest: bytes, now: float) -> E | None:
        """The entry remembered for ``digest`` while it is valid, else ``None``."""
        # Lock-free: a dict lookup and a flag are atomic, and the hit path is every
        # request that repeats a token.
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry.valid_until:
            self.forget(digest)
            return None
        entry._used = True
        return entry

    def forget(self, digest: bytes) -> None:
        with self._lock:
            if digest in self._entries:
                self._drop(digest)

    def admits(self, digest: bytes, token_length: int) -> bool:
        """Whether a token just verified is to be remembered: seen before, and not too long.

        Each call counts as a sighting; a token is admitted every second one.
        """
        return token_length <= MAX_REMEMBERED_TOKEN and self._seen_before(digest)

    def remember(self, digest: bytes, entry: E, weight: int, now: float) -> None:
        """Keep ``entry`` (holding ``weight`` bytes alone) until its ``valid_until``."""
        units = -(-(weight + ENTRY_BOOKKEEPING) // _UNIT)
        if units * 8 > self._max_units:
            return  # one entry must never crowd out most of the others
        entry._units = units
        entry._used = False
        with self._lock:
            self._drop_expired(now)
            if digest in self._entries:
                self._drop(digest)
            self._entries[digest] = entry
            self._units += units
            self._line.append(digest)
            self._list_expiry(digest, entry.valid_until)
            while len(self._entries) > self._max_entries or self._units > self._max_units:
                self._evict_one()
            self._tidy()

    def _seen_before(self, digest: bytes) -> bool:
        index = int.from_bytes(digest[:4], "little") % _DOORKEEPER_SLOTS
        fingerprint = int.from_bytes(digest[4:12], "little") | 1  # never the empty slot's 0
        if self._doorkeeper[index] == fingerprint:
            self._doorkeeper[index] = 0
            return True
        self._doorkeeper[index] = fingerprint
        return False

    def _drop(self, digest: bytes) -> None:
        self._units -= self._entries.pop(digest)._units

    def _evict_one(self) -> None:
        line = self._line
        while True:
            digest = line.popleft()
            entry = self._entries.get(digest)
            if entry is None:
                continue  # left already; its place in line was never taken back
            if entry._used:
                entry._used = False
                line.append(digest)
                continue
            self._drop(digest)
            return

    def _list_expiry(self, digest: bytes, valid_until: float) -> None:
        minute = int(valid_until // _MINUTE)
        listed = self._expiring.get(minute)
        if listed is None:
            self._expiring[minute] = listed = []
            heapq.heappush(self._minutes, minute)
        listed.append(digest)
        self._listed += 1

    def _drop_expired(self, now: float) -> None:
        minutes = self._minutes
        while minutes and (minutes[0] + 1) * _MINUTE <= now:
            listed = self._expiring.pop(heapq.heappop(minutes))
            self._listed -= len(listed)
            for digest in listed:
                entry = self._entries.get(digest)
                if entry is not None and entry.valid_until <= now:
                    self._drop(digest)

    def _tidy(self) -> None:
        # Entries that left by eviction or replacement keep their places in the line and
        # the expiry lists: rebuild both when they outnumber the live entries, so they
        # stay bounded with the cache.
        live = len(self._entries)
        if len(self._line) > 2 * live + 64:
            self._line = deque(self._entries)
        if self._listed > 2 * live + 64:
            self._expiring, self._minutes, self._listed = {}, [], 0
            for digest, entry in self._entries.items():
                self._list_expiry(digest, entry.valid_until)
