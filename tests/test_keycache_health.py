"""keycache/health.py: the state of one issuer's key cache, read from its policy at a time."""

from __future__ import annotations

import pytest

from fastapi_isp_jwt.keycache.health import KeyCacheHealth, key_cache_health
from fastapi_isp_jwt.keycache.policy import FreshnessPolicy
from fastapi_isp_jwt.keys import KeySet, load_jwks
from fastapi_isp_jwt.testing import SigningKey

ISSUER = "https://tenant.example.auth0.com/"
TTL = 600.0
MAX_STALE = 3600.0
START = 1000.0


def key_set(*kids: str) -> KeySet:
    return load_jwks({"keys": [SigningKey.generate("ES256", kid=kid).public_jwk() for kid in kids]})


@pytest.fixture
def policy() -> FreshnessPolicy:
    return FreshnessPolicy(cooldown=30.0, max_stale=MAX_STALE)


@pytest.fixture
def loaded(policy: FreshnessPolicy) -> FreshnessPolicy:
    """Two keys fetched at START."""
    policy.begin_attempt(START)
    policy.record_success(key_set("a", "b"), TTL, START)
    return policy


def test_before_any_download_nothing_is_known_and_a_fetch_may_start_now(
    policy: FreshnessPolicy,
) -> None:
    assert key_cache_health(ISSUER, policy, START) == KeyCacheHealth(
        issuer=ISSUER,
        keys_known=0,
        age_seconds=None,
        stale=False,
        ready=False,
        failures=0,
        last_error=None,
        next_attempt_in=0.0,
    )


def test_fresh_keys_are_ready_with_their_age_and_the_refresh_ahead_of_expiry(
    loaded: FreshnessPolicy,
) -> None:
    health = key_cache_health(ISSUER, loaded, START + 100)
    assert (health.keys_known, health.age_seconds, health.stale, health.ready) == (
        2,
        100.0,
        False,
        True,
    )
    assert health.next_attempt_in == pytest.approx(TTL * 0.8 - 100)


def test_expired_keys_within_max_stale_are_stale_but_ready(loaded: FreshnessPolicy) -> None:
    loaded.record_failure(START + TTL)
    health = key_cache_health(ISSUER, loaded, START + TTL + 1)
    assert (health.stale, health.ready, health.failures) == (True, True, 1)


def test_keys_older_than_max_stale_are_not_ready(loaded: FreshnessPolicy) -> None:
    loaded.record_failure(START + MAX_STALE)
    health = key_cache_health(ISSUER, loaded, START + MAX_STALE + 1)
    assert (health.stale, health.ready) == (False, False)


def test_during_an_outage_the_next_attempt_is_the_backoff(loaded: FreshnessPolicy) -> None:
    now = START + TTL
    loaded.record_failure(now)
    loaded.record_failure(now)
    assert key_cache_health(ISSUER, loaded, now).next_attempt_in == 2.0


def test_the_last_error_is_the_one_given(loaded: FreshnessPolicy) -> None:
    health = key_cache_health(ISSUER, loaded, START, last_error="the issuer answered HTTP 503")
    assert health.last_error == "the issuer answered HTTP 503"


def test_an_empty_key_set_is_not_ready(policy: FreshnessPolicy) -> None:
    policy.record_success(key_set(), TTL, START)
    assert key_cache_health(ISSUER, policy, START).ready is False


def test_health_is_plain_data_for_a_json_route(loaded: FreshnessPolicy) -> None:
    assert key_cache_health(ISSUER, loaded, START).to_dict() == {
        "issuer": ISSUER,
        "keys_known": 2,
        "age_seconds": 0.0,
        "stale": False,
        "ready": True,
        "failures": 0,
        "last_error": None,
        "next_attempt_in": TTL * 0.8,
    }


def test_reading_health_changes_nothing(loaded: FreshnessPolicy) -> None:
    before = (loaded.snapshot, loaded.failures, loaded.next_attempt_at)
    key_cache_health(ISSUER, loaded, START + TTL * 2)
    assert (loaded.snapshot, loaded.failures, loaded.next_attempt_at) == before
