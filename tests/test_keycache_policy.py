"""keycache/policy.py: when the key cache answers from what it holds and when it fetches.

No network and no clock: the time is a number each test moves by hand.
"""

from __future__ import annotations

import pytest

from fastapi_isp_jwt.errors import InvalidTokenError, IssuerUnavailableError
from fastapi_isp_jwt.keycache.policy import Action, FreshnessPolicy
from fastapi_isp_jwt.keys import KeySet, load_jwks
from fastapi_isp_jwt.testing import SigningKey

TTL = 600.0
COOLDOWN = 30.0
MAX_STALE = 3600.0
START = 1000.0

KID = "current"
OTHER_KID = "next"


def key_set(*kids: str) -> KeySet:
    return load_jwks({"keys": [SigningKey.generate("ES256", kid=kid).public_jwk() for kid in kids]})


ONE_KEY = key_set(KID)
TWO_KEYS = key_set(KID, OTHER_KID)


@pytest.fixture
def policy() -> FreshnessPolicy:
    return FreshnessPolicy(cooldown=COOLDOWN, max_stale=MAX_STALE)


@pytest.fixture
def loaded(policy: FreshnessPolicy) -> FreshnessPolicy:
    """A policy that fetched ONE_KEY at START."""
    policy.begin_attempt(START)
    policy.record_success(ONE_KEY, TTL, START)
    return policy


def fail(policy: FreshnessPolicy, now: float) -> None:
    policy.begin_attempt(now)
    policy.record_failure(now)


# -- before anything is loaded -------------------------------------------------------------


def test_the_first_lookup_must_fetch(policy: FreshnessPolicy) -> None:
    assert policy.lookup(KID, START) == (None, Action.FETCH)


def test_nothing_is_trusted_before_a_key_set_is_loaded(policy: FreshnessPolicy) -> None:
    assert policy.trusted(KID, START) == (None, Action.ANSWER)


def test_without_a_key_set_the_answer_is_issuer_unavailable(policy: FreshnessPolicy) -> None:
    fail(policy, START)

    with pytest.raises(IssuerUnavailableError) as unavailable:
        policy.answer(KID, START)

    assert unavailable.value.retry_after == 1


def test_a_lookup_that_could_not_wait_for_the_first_fetch_is_told_to_retry_in_a_second(
    policy: FreshnessPolicy,
) -> None:
    with pytest.raises(IssuerUnavailableError) as unavailable:
        policy.answer(KID, START)

    assert unavailable.value.retry_after == 1


# -- a fresh key set -----------------------------------------------------------------------


def test_a_fresh_key_is_answered_without_fetching(loaded: FreshnessPolicy) -> None:
    key, action = loaded.lookup(KID, START + TTL * 0.7)

    assert key is not None
    assert key.kid == KID
    assert action is Action.ANSWER


def test_a_settled_key_is_the_fresh_key_before_any_refresh_is_due(
    loaded: FreshnessPolicy,
) -> None:
    key = loaded.settled_key(KID, START + TTL * 0.8 - 1)

    assert key is not None
    assert key.kid == KID


def test_once_a_refresh_is_due_no_key_is_settled(loaded: FreshnessPolicy) -> None:
    assert loaded.settled_key(KID, START + TTL * 0.8) is None


def test_the_last_fifth_of_the_ttl_asks_for_a_refresh_in_the_background(
    loaded: FreshnessPolicy,
) -> None:
    key, action = loaded.lookup(KID, START + TTL * 0.8)

    assert key is not None
    assert action is Action.FETCH_IN_BACKGROUND


def test_a_trusted_key_also_asks_for_the_refresh_ahead_of_expiry(
    loaded: FreshnessPolicy,
) -> None:
    key, action = loaded.trusted(KID, START + TTL * 0.9)

    assert key is not None
    assert action is Action.FETCH_IN_BACKGROUND


def test_an_expired_key_set_must_be_fetched_again(loaded: FreshnessPolicy) -> None:
    assert loaded.lookup(KID, START + TTL) == (None, Action.FETCH)


def test_an_expired_key_set_is_not_trusted_while_the_issuer_has_not_failed(
    loaded: FreshnessPolicy,
) -> None:
    assert loaded.trusted(KID, START + TTL) == (None, Action.ANSWER)


def test_the_ttl_given_with_the_keys_sets_their_lifetime(policy: FreshnessPolicy) -> None:
    policy.record_success(ONE_KEY, 120.0, START)

    assert policy.trusted(KID, START + 119)[0] is not None
    assert policy.trusted(KID, START + 120)[0] is None


# -- unknown kids and the cooldown ---------------------------------------------------------


def test_an_unknown_kid_right_after_a_download_asks_for_a_fetch(loaded: FreshnessPolicy) -> None:
    # A key published just after a routine fetch: found at once, not refused for a cooldown.
    assert loaded.lookup("unknown", START + 1) == (None, Action.FETCH)


def test_an_unknown_kid_within_the_cooldown_of_a_miss_is_answered_from_what_is_held(
    loaded: FreshnessPolicy,
) -> None:
    with pytest.raises(InvalidTokenError):
        loaded.answer("made-up", START)

    assert loaded.lookup("unknown", START + COOLDOWN - 1) == (None, Action.ANSWER)


def test_an_unknown_kid_after_the_cooldown_of_a_miss_asks_for_a_fetch(
    loaded: FreshnessPolicy,
) -> None:
    with pytest.raises(InvalidTokenError):
        loaded.answer("made-up", START)

    assert loaded.lookup("unknown", START + COOLDOWN) == (None, Action.FETCH)


def test_the_cooldown_counts_from_the_download_that_missed(loaded: FreshnessPolicy) -> None:
    loaded.begin_attempt(START + 100)
    loaded.record_success(ONE_KEY, TTL, START + 100)
    with pytest.raises(InvalidTokenError):
        loaded.answer("made-up", START + 101)

    assert loaded.next_step("unknown", START + 100 + COOLDOWN - 1) is Action.ANSWER
    assert loaded.next_step("unknown", START + 100 + COOLDOWN) is Action.FETCH


def test_unknown_kids_while_a_fetch_runs_join_it_rather_than_being_refused(
    loaded: FreshnessPolicy,
) -> None:
    with pytest.raises(InvalidTokenError):
        loaded.answer("made-up", START)
    loaded.begin_attempt(START + 1)  # a refresh ahead of expiry, say

    assert loaded.next_step("unknown", START + 2) is Action.FETCH


def test_a_decision_to_fetch_makes_the_next_lookups_join_that_fetch(
    loaded: FreshnessPolicy,
) -> None:
    assert loaded.next_step("new-key", START + 1) is Action.FETCH
    with pytest.raises(InvalidTokenError):
        loaded.answer("made-up", START + 1)  # an earlier waiter found its kid missing

    assert loaded.next_step("new-key", START + 2) is Action.FETCH


def test_an_unknown_kid_is_refused_as_an_unknown_key(loaded: FreshnessPolicy) -> None:
    with pytest.raises(InvalidTokenError, match="unknown key"):
        loaded.answer("unknown", START)


def test_a_missing_kid_is_answered_by_the_only_key(loaded: FreshnessPolicy) -> None:
    key, _ = loaded.lookup(None, START)

    assert key is not None
    assert key.kid == KID


def test_a_missing_kid_among_several_keys_never_asks_for_a_fetch(
    policy: FreshnessPolicy,
) -> None:
    policy.record_success(TWO_KEYS, TTL, START)

    assert policy.lookup(None, START + COOLDOWN) == (None, Action.ANSWER)


def test_a_missing_kid_among_several_keys_is_refused(policy: FreshnessPolicy) -> None:
    policy.record_success(TWO_KEYS, TTL, START)

    with pytest.raises(InvalidTokenError, match="which key"):
        policy.answer(None, START)


# -- failures and backoff ------------------------------------------------------------------


def test_failed_fetches_are_retried_after_1_2_4_seconds(policy: FreshnessPolicy) -> None:
    now = START
    gaps = []
    for _ in range(4):
        fail(policy, now)
        gaps.append(policy.retry_after(now))
        now += gaps[-1]

    assert gaps == [1, 2, 4, 8]


def test_the_backoff_never_exceeds_a_minute(policy: FreshnessPolicy) -> None:
    for _ in range(40):
        fail(policy, START)

    assert policy.retry_after(START) == 60


def test_no_fetch_starts_while_backing_off(policy: FreshnessPolicy) -> None:
    fail(policy, START)
    fail(policy, START + 1)

    assert policy.lookup(KID, START + 2) == (None, Action.ANSWER)
    assert policy.lookup(KID, START + 3) == (None, Action.FETCH)


def test_retry_after_counts_down_to_the_next_attempt(policy: FreshnessPolicy) -> None:
    for _ in range(4):
        fail(policy, START)

    assert policy.retry_after(START + 2.5) == 6


def test_retry_after_is_at_least_one_second(loaded: FreshnessPolicy) -> None:
    assert loaded.retry_after(START) == 1


def test_refresh_ahead_waits_for_the_backoff(loaded: FreshnessPolicy) -> None:
    fail(loaded, START + TTL * 0.8)

    _, action = loaded.lookup(KID, START + TTL * 0.8 + 0.5)

    assert action is Action.ANSWER


def test_a_success_ends_the_failure_streak(loaded: FreshnessPolicy) -> None:
    fail(loaded, START + TTL)
    fail(loaded, START + TTL + 1)

    loaded.record_success(ONE_KEY, TTL, START + TTL + 3)

    assert loaded.failures == 0
    assert loaded.retry_after(START + TTL + 3) == 1
    assert loaded.lookup(KID, START + TTL + 3)[1] is Action.ANSWER


def test_a_failure_keeps_the_last_good_key_set(loaded: FreshnessPolicy) -> None:
    before = loaded.snapshot

    fail(loaded, START + 10)

    assert loaded.snapshot is before


# -- serving stale through an outage -------------------------------------------------------


def test_during_an_outage_the_expired_set_is_served_while_a_retry_runs_in_the_background(
    loaded: FreshnessPolicy,
) -> None:
    fail(loaded, START + TTL)

    assert loaded.lookup(KID, START + TTL + 1) == (None, Action.FETCH_IN_BACKGROUND)
    assert loaded.answer(KID, START + TTL + 1).kid == KID


def test_during_an_outage_the_expired_set_stays_trusted(loaded: FreshnessPolicy) -> None:
    fail(loaded, START + TTL)

    key, action = loaded.trusted(KID, START + TTL + 0.5)

    assert key is not None
    assert key.kid == KID
    assert action is Action.ANSWER  # the retry is not due yet


def test_a_trusted_stale_key_asks_for_the_due_retry(loaded: FreshnessPolicy) -> None:
    fail(loaded, START + TTL)

    _, action = loaded.trusted(KID, START + TTL + 1)

    assert action is Action.FETCH_IN_BACKGROUND


def test_the_stale_set_is_served_up_to_max_stale_after_its_fetch(
    loaded: FreshnessPolicy,
) -> None:
    fail(loaded, START + TTL)

    assert loaded.trusted(KID, START + MAX_STALE)[0] is not None
    assert loaded.answer(KID, START + MAX_STALE).kid == KID


def test_past_max_stale_the_answer_is_issuer_unavailable(loaded: FreshnessPolicy) -> None:
    fail(loaded, START + TTL)

    assert loaded.trusted(KID, START + MAX_STALE + 1) == (None, Action.ANSWER)
    with pytest.raises(IssuerUnavailableError):
        loaded.answer(KID, START + MAX_STALE + 1)


def test_past_max_stale_a_lookup_waits_for_a_fetch(loaded: FreshnessPolicy) -> None:
    fail(loaded, START + TTL)

    assert loaded.lookup(KID, START + MAX_STALE + 1) == (None, Action.FETCH)


def test_with_max_stale_zero_an_expired_set_is_never_served() -> None:
    strict = FreshnessPolicy(cooldown=COOLDOWN, max_stale=0.0)
    strict.record_success(ONE_KEY, TTL, START)
    fail(strict, START + TTL)

    with pytest.raises(IssuerUnavailableError):
        strict.answer(KID, START + TTL)
