"""The verified-token cache: bounded in entries and bytes, second-sight admission, expiry."""

from __future__ import annotations

import hashlib

from fastapi_isp_jwt.tokencache import (
    ENTRY_BOOKKEEPING,
    MAX_REMEMBERED_TOKEN,
    Remembered,
    VerifiedTokenCache,
)

NOW = 1_000.0
LATER = NOW + 60
LIGHT = 100  # bytes an entry holds alone


class Entry(Remembered):
    __slots__ = ("name",)

    def __init__(self, name: str, valid_until: float = LATER) -> None:
        super().__init__(valid_until)
        self.name = name


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def offer(
    cache: VerifiedTokenCache[Entry],
    name: str,
    *,
    weight: int = LIGHT,
    valid_until: float = LATER,
    now: float = NOW,
    length: int = 900,
) -> None:
    """What the verifier does with a token it has just verified."""
    if cache.admits(digest(name), length):
        cache.remember(digest(name), Entry(name, valid_until), weight, now)


def offer_twice(cache: VerifiedTokenCache[Entry], name: str, **options: object) -> None:
    for _ in range(2):
        offer(cache, name, **options)  # type: ignore[arg-type]


def name_of(entry: Entry | None) -> str | None:
    return None if entry is None else entry.name


def test_a_token_verified_once_is_not_remembered() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(10)
    offer(cache, "a")
    assert cache.get(digest("a"), NOW) is None


def test_a_token_verified_twice_is_remembered_until_it_expires() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(10)
    offer_twice(cache, "a")
    assert name_of(cache.get(digest("a"), LATER - 1)) == "a"
    assert cache.get(digest("a"), LATER) is None
    assert cache.size == (0, 0)


def test_other_tokens_between_two_sightings_do_not_keep_a_token_out() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(10)
    offer(cache, "reused")
    for number in range(5_000):
        offer(cache, f"one-shot-{number}")
    offer(cache, "reused")
    assert name_of(cache.get(digest("reused"), NOW)) == "reused"


def test_a_token_longer_than_the_limit_is_never_remembered() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(10)
    offer_twice(cache, "big", length=MAX_REMEMBERED_TOKEN + 1)
    assert cache.get(digest("big"), NOW) is None


def test_an_entry_weighs_what_it_holds_plus_the_bookkeeping() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(10)
    offer_twice(cache, "a", weight=1_000)
    entries, weight = cache.size
    assert entries == 1
    assert 1_000 + ENTRY_BOOKKEEPING <= weight < 1_000 + ENTRY_BOOKKEEPING + 16


def test_the_cache_keeps_within_its_byte_budget_oldest_first_out() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(1_000, max_bytes=200_000)
    for number in range(100):
        offer_twice(cache, f"t{number}", weight=10_000)
    entries, weight = cache.size
    assert 0 < entries < 100
    assert weight <= 200_000
    assert name_of(cache.get(digest("t99"), NOW)) == "t99"
    assert cache.get(digest("t0"), NOW) is None


def test_the_cache_keeps_within_its_entry_count() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(3)
    for name in "abcd":
        offer_twice(cache, name)
    assert cache.size[0] == 3
    assert cache.get(digest("a"), NOW) is None


def test_an_entry_served_since_it_came_gets_a_second_chance_before_eviction() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(3)
    for name in "abc":
        offer_twice(cache, name)
    assert name_of(cache.get(digest("a"), NOW)) == "a"
    offer_twice(cache, "d")
    assert name_of(cache.get(digest("a"), NOW)) == "a"
    assert cache.get(digest("b"), NOW) is None


def test_an_entry_heavier_than_an_eighth_of_the_budget_is_not_remembered() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(10, max_bytes=40_000)
    offer_twice(cache, "huge", weight=10_000)
    assert cache.get(digest("huge"), NOW) is None


def test_expired_entries_leave_within_a_minute_as_new_ones_come_without_being_looked_up() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(100)
    offer_twice(cache, "old")
    offer_twice(cache, "new", valid_until=LATER + 600, now=LATER + 60)
    assert cache.size[0] == 1


def test_an_entry_replaced_or_evicted_leaves_no_unbounded_bookkeeping_behind() -> None:
    cache: VerifiedTokenCache[Entry] = VerifiedTokenCache(10)
    for number in range(10_000):
        offer_twice(cache, f"t{number}")
        offer_twice(cache, f"t{number}")  # remembered again: a replacement
    entries, _ = cache.size
    assert entries == 10
    assert cache.bookkeeping_size() <= 2 * entries + 64
