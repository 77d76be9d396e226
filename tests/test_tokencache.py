"""The verified-token cache: bounded in entries and bytes, second-sight admission, expiry."""

from __future__ import annotations

import hashlib

from fastapi_isp_jwt.tokencache import MAX_REMEMBERED_TOKEN, VerifiedTokenCache

NOW = 1_000.0
LATER = NOW + 60


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def offer_twice(cache: VerifiedTokenCache[str], name: str, claims: object = None) -> None:
    for _ in range(2):
        cache.offer(digest(name), 900, name, claims or {"sub": name}, LATER, NOW)


def test_a_token_verified_once_is_not_remembered() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10)
    cache.offer(digest("a"), 900, "a", {"sub": "a"}, LATER, NOW)
    assert cache.get(digest("a"), NOW) is None


def test_a_token_verified_twice_is_remembered_until_it_expires() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10)
    offer_twice(cache, "a")
    assert cache.get(digest("a"), LATER - 1) == "a"
    assert cache.get(digest("a"), LATER) is None
    assert cache.size == (0, 0)


def test_other_tokens_between_two_sightings_do_not_keep_a_token_out() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10)
    cache.offer(digest("reused"), 900, "reused", {}, LATER, NOW)
    for number in range(5_000):
        cache.offer(digest(f"one-shot-{number}"), 900, "x", {}, LATER, NOW)
    cache.offer(digest("reused"), 900, "reused", {}, LATER, NOW)
    assert cache.get(digest("reused"), NOW) == "reused"


def test_a_token_longer_than_the_limit_is_never_remembered() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10)
    for _ in range(2):
        cache.offer(digest("big"), MAX_REMEMBERED_TOKEN + 1, "big", {}, LATER, NOW)
    assert cache.get(digest("big"), NOW) is None


def test_the_cache_keeps_within_its_byte_budget_least_recently_used_first_out() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(1_000, max_bytes=200_000)
    heavy = {"permissions": [f"streams:{n}" for n in range(100)]}
    for number in range(100):
        offer_twice(cache, f"t{number}", heavy)
    entries, weight = cache.size
    assert 0 < entries < 100
    assert weight <= 200_000
    assert cache.get(digest("t99"), NOW) == "t99"
    assert cache.get(digest("t0"), NOW) is None


def test_the_cache_keeps_within_its_entry_count() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(3)
    for name in "abcd":
        offer_twice(cache, name)
    assert cache.size[0] == 3
    assert cache.get(digest("a"), NOW) is None


def test_an_entry_heavier_than_an_eighth_of_the_budget_is_not_remembered() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10, max_bytes=40_000)
    offer_twice(cache, "huge", {"blob": "x" * 10_000})
    assert cache.get(digest("huge"), NOW) is None


def test_expired_entries_leave_as_new_ones_come_without_being_looked_up() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(100)
    offer_twice(cache, "old")
    for _ in range(2):
        cache.offer(digest("new"), 900, "new", {}, LATER + 60, LATER + 1)
    assert cache.size[0] == 1


def test_claims_nested_deeper_than_python_recurses_are_not_remembered() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10)
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    offer_twice(cache, "deep", {"x": deep})
    assert cache.get(digest("deep"), NOW) is None
