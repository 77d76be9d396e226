"""logs.py: structured refusal records, never the token, floods folded into summaries."""

from __future__ import annotations

import hashlib
import logging

import pytest

from fastapi_isp_jwt import logs
from fastapi_isp_jwt.logs import (
    KEY_CACHE_EVENT_LEVELS,
    RateLimitedLogger,
    refusal_level,
    refusal_record_fields,
    token_digest,
)
from fastapi_isp_jwt.reasons import Reason

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
ISSUER = "https://tenant.example.auth0.com/"
LOGGER = "tests.refusals"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def refusals(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> RateLimitedLogger:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return RateLimitedLogger(logging.getLogger(LOGGER), interval=60.0, clock=clock)


def fields(reason: Reason = Reason.EXPIRED) -> dict[str, object]:
    return refusal_record_fields(reason, ISSUER, "key-1", "client-1", TOKEN)


def extra(record: logging.LogRecord, name: str) -> object:
    """A structured field of ``record`` (``extra`` fields are set on the record itself)."""
    return record.__dict__[name]


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


# -- fields -----------------------------------------------------------------------------------


def test_refusal_fields_name_reason_issuer_key_and_client() -> None:
    record = fields(Reason.AUDIENCE)
    assert {k: record[k] for k in ("reason", "issuer", "key_id", "client_id")} == {
        "reason": "audience",
        "issuer": ISSUER,
        "key_id": "key-1",
        "client_id": "client-1",
    }


def test_refusal_fields_carry_the_first_12_hex_digits_of_the_tokens_sha256() -> None:
    assert fields()["token_sha256"] == hashlib.sha256(TOKEN.encode()).hexdigest()[:12]


def test_the_digest_is_the_same_for_the_token_as_text_or_bytes() -> None:
    assert token_digest(TOKEN) == token_digest(TOKEN.encode())


def test_no_field_holds_the_token_or_any_of_its_segments() -> None:
    values = [str(value) for value in fields().values()]
    for segment in TOKEN.split("."):
        assert not any(segment in value for value in values)


def test_text_from_the_token_is_stripped_of_control_characters() -> None:
    record = refusal_record_fields(Reason.ISSUER, "https://evil/\nFAKE LINE", None, None, TOKEN)
    assert record["issuer"] == "https://evil/?FAKE LINE"


def test_text_from_the_token_is_cut_short() -> None:
    record = refusal_record_fields(Reason.ISSUER, "x" * 10_000, None, None, TOKEN)
    assert record["issuer"] == "x" * 100


def test_a_value_that_is_not_text_is_logged_as_none() -> None:
    record = refusal_record_fields(Reason.KEY_ID_TYPE, ISSUER, ["not", "text"], 42, TOKEN)
    assert (record["key_id"], record["client_id"]) == (None, None)


def test_a_refusal_with_no_token_has_no_digest() -> None:
    record = refusal_record_fields(Reason.CREDENTIALS_MISSING, None, None, None, None)
    assert record["token_sha256"] is None


# -- levels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "level"),
    [
        (Reason.CREDENTIALS_MISSING, logging.DEBUG),
        (Reason.EXPIRED, logging.INFO),
        (Reason.SIGNATURE, logging.WARNING),
        (Reason.ISSUER_UNAVAILABLE, logging.WARNING),
    ],
)
def test_each_reason_has_a_fixed_level(reason: Reason, level: int) -> None:
    assert refusal_level(reason) == level


# -- rate limiting ----------------------------------------------------------------------------


def test_the_first_refusal_of_a_reason_is_logged_with_its_fields(
    refusals: RateLimitedLogger, caplog: pytest.LogCaptureFixture
) -> None:
    assert refusals.refusal(Reason.EXPIRED, fields()) is True
    (record,) = caplog.records
    assert (record.getMessage(), record.levelno) == ("Token refused: expired", logging.INFO)
    assert extra(record, "token_sha256") == token_digest(TOKEN)


def test_the_logged_line_never_holds_the_token(
    refusals: RateLimitedLogger, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.SIGNATURE, fields(Reason.SIGNATURE))
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(value) for value in vars(caplog.records[0]).values())


def test_the_same_reason_within_the_interval_is_only_counted(
    refusals: RateLimitedLogger, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.EXPIRED, fields())
    clock.now += 10
    assert refusals.refusal(Reason.EXPIRED, fields()) is False
    assert len(caplog.records) == 1


def test_another_reason_within_the_interval_is_logged(
    refusals: RateLimitedLogger, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.EXPIRED, fields())
    refusals.refusal(Reason.AUDIENCE, fields(Reason.AUDIENCE))
    assert lines(caplog) == ["Token refused: expired", "Token refused: audience"]


def test_a_flood_folds_into_one_summary_line_after_the_interval(
    refusals: RateLimitedLogger, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.EXPIRED, fields())
    for _ in range(500):
        clock.now += 0.1
        refusals.refusal(Reason.EXPIRED, fields())
    clock.now = 1061.0
    refusals.refusal(Reason.EXPIRED, fields())
    assert lines(caplog) == [
        "Token refused: expired",
        "Token refused: expired, 500 more time(s) in 61 s",
        "Token refused: expired",
    ]


def test_the_summary_carries_the_reason_and_the_count(
    refusals: RateLimitedLogger, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.EXPIRED, fields())
    refusals.refusal(Reason.EXPIRED, fields())
    clock.now += 60
    refusals.flush()
    summary = caplog.records[-1]
    assert (extra(summary, "reason"), extra(summary, "suppressed")) == ("expired", 1)


def test_a_refusal_of_another_reason_after_the_interval_writes_the_due_summary(
    refusals: RateLimitedLogger, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.EXPIRED, fields())
    refusals.refusal(Reason.EXPIRED, fields())
    clock.now += 120
    refusals.refusal(Reason.AUDIENCE, fields(Reason.AUDIENCE))
    assert lines(caplog) == [
        "Token refused: expired",
        "Token refused: expired, 1 more time(s) in 120 s",
        "Token refused: audience",
    ]


def test_flush_writes_pending_summaries_at_once(
    refusals: RateLimitedLogger, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.EXPIRED, fields())
    clock.now += 5
    refusals.refusal(Reason.EXPIRED, fields())
    refusals.flush()
    assert lines(caplog)[-1] == "Token refused: expired, 1 more time(s) in 5 s"


def test_flush_with_nothing_counted_writes_nothing(
    refusals: RateLimitedLogger, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.refusal(Reason.EXPIRED, fields())
    refusals.flush()
    assert len(caplog.records) == 1


def test_a_hint_is_logged_once_as_a_warning(
    refusals: RateLimitedLogger, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    hint = "the token's issuer differs only by a trailing slash"
    refusals.refusal(Reason.ISSUER, fields(Reason.ISSUER), hints=[hint])
    clock.now += 600
    refusals.refusal(Reason.ISSUER, fields(Reason.ISSUER), hints=[hint])
    hinted = [r for r in caplog.records if getattr(r, "hint", None) == hint]
    assert [r.levelno for r in hinted] == [logging.WARNING]


def test_fields_and_hints_given_as_functions_are_read_only_for_a_written_line(
    refusals: RateLimitedLogger, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def lazy_fields() -> dict[str, object]:
        calls.append("fields")
        return fields()

    def lazy_hints() -> list[str]:
        calls.append("hints")
        return []

    for _ in range(3):
        refusals.refusal(Reason.EXPIRED, lazy_fields, lazy_hints)
    assert calls == ["fields", "hints"]
    assert extra(caplog.records[0], "token_sha256") == token_digest(TOKEN)


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        RateLimitedLogger(interval=0)


# -- key-cache events -------------------------------------------------------------------------


@pytest.fixture
def key_cache_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="fastapi_isp_jwt.jwks")
    return caplog


EVENTS = {
    "first_download": lambda: logs.keys_loaded(ISSUER, ["b", "a"]),
    "rotation": lambda: logs.keys_rotated(ISSUER, ["c"], ["a"]),
    "keys_unchanged": lambda: logs.keys_unchanged(ISSUER),
    "key_skipped": lambda: logs.keys_skipped(ISSUER, [("k", "symmetric keys are never trusted")]),
    "no_usable_key": lambda: logs.no_usable_key(ISSUER),
    "unknown_key_refetch": lambda: logs.unknown_key_refetch(ISSUER, "c"),
    "outage_started": lambda: logs.outage_started(ISSUER, "the issuer answered HTTP 503", 30.0),
    "download_failed_again": lambda: logs.download_failed_again(ISSUER, "timeout", 2),
    "outage_ended": lambda: logs.outage_ended(ISSUER, 4, 75.0),
    "serving_stale": lambda: logs.serving_stale(ISSUER, 700.0, 86400.0),
    "giving_up": lambda: logs.giving_up(ISSUER, 86401.0, 86400.0),
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_each_key_cache_event_is_logged_at_its_level_with_its_name_and_issuer(
    event: str, key_cache_log: pytest.LogCaptureFixture
) -> None:
    EVENTS[event]()
    (record,) = key_cache_log.records
    assert (extra(record, "event"), extra(record, "issuer"), record.levelno) == (
        event,
        ISSUER,
        KEY_CACHE_EVENT_LEVELS[event],
    )


def test_every_documented_key_cache_event_has_a_function() -> None:
    assert set(EVENTS) == set(KEY_CACHE_EVENT_LEVELS)


def test_an_outage_is_a_warning_and_giving_up_an_error() -> None:
    assert KEY_CACHE_EVENT_LEVELS["outage_started"] == logging.WARNING
    assert KEY_CACHE_EVENT_LEVELS["giving_up"] == logging.ERROR


def test_a_rotation_names_the_keys_added_and_removed(
    key_cache_log: pytest.LogCaptureFixture,
) -> None:
    logs.keys_rotated(ISSUER, ["new"], ["old"])
    (record,) = key_cache_log.records
    assert (extra(record, "added"), extra(record, "removed")) == (["new"], ["old"])


def test_an_outage_before_any_key_says_none_is_known(
    key_cache_log: pytest.LogCaptureFixture,
) -> None:
    logs.outage_started(ISSUER, "timeout", None)
    assert "no key is known yet" in key_cache_log.records[0].getMessage()


def test_a_key_id_from_a_token_is_sanitized(key_cache_log: pytest.LogCaptureFixture) -> None:
    logs.unknown_key_refetch(ISSUER, "kid\r\nFAKE")
    assert extra(key_cache_log.records[0], "key_id") == "kid??FAKE"


def test_a_skipped_key_is_a_warning_naming_its_kid_and_the_reason(
    key_cache_log: pytest.LogCaptureFixture,
) -> None:
    logs.keys_skipped(ISSUER, [("weak\nkey", "RSA keys under 2048 bits are too weak")])
    (record,) = key_cache_log.records
    assert record.levelno == logging.WARNING
    assert (extra(record, "skipped_count"), extra(record, "skipped_keys")) == (
        1,
        [{"key_id": "weak?key", "skip_reason": "RSA keys under 2048 bits are too weak"}],
    )
    assert "skipping the published key 'weak?key': RSA keys under" in record.getMessage()


def test_a_skipped_key_without_a_kid_says_so(key_cache_log: pytest.LogCaptureFixture) -> None:
    logs.keys_skipped(ISSUER, [(None, "unsupported key type")])
    assert "skipping the published key (no kid): unsupported key type" in key_cache_log.text


def test_keys_skipped_together_are_one_record_with_their_count_and_the_first_five(
    key_cache_log: pytest.LogCaptureFixture,
) -> None:
    logs.keys_skipped(ISSUER, [(f"k{n}", "unsupported key type") for n in range(8)])

    (record,) = key_cache_log.records
    assert (extra(record, "skipped_count"), extra(record, "skipped_keys")) == (
        8,
        [{"key_id": f"k{n}", "skip_reason": "unsupported key type"} for n in range(5)],
    )
    assert record.getMessage().endswith("'k4': unsupported key type; and 3 more (8 in all)")
