"""The token request cycle as a flow: what it asks for, step by step, with no I/O of its own.

These tests play the part of `io.run_sync` by hand: they read each step the flow yields
and answer it, so the order of fetches and pauses is seen exactly. What the answers mean
and how the cycle behaves over real HTTP is specified in tests/test_client.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from fastapi_isp_jwt.client.options import RequestOptions, Secret
from fastapi_isp_jwt.client.token_request import Failure, Token, request_token
from fastapi_isp_jwt.io import Fetch, Flow, Pause, Reply
from tests.support.clock import FakeClock

TOKEN_URL = "https://tenant.example/oauth/token"


OPTIONS = RequestOptions(
    token_url=TOKEN_URL,
    client_id="service-a",
    secret=Secret("s3cr3t"),
    audience="https://platform.dtc.istreamplanet.net/acme",
    scope=None,
    refresh_margin=60.0,
    timeout=10.0,
    max_attempts=3,
    backoff=1.0,
    max_backoff=10.0,
    clock=FakeClock(),
)


def reply(status: int, payload: object, **headers: str) -> Reply:
    return Reply(status, httpx.Headers(headers), json.dumps(payload).encode())


TOKEN = reply(200, {"access_token": "abc", "token_type": "Bearer", "expires_in": 60})
UNAVAILABLE = reply(503, {"error": "temporarily_unavailable"})


def finish(flow: Flow[Token | Failure], answer: Reply | None) -> Token | Failure:
    with pytest.raises(StopIteration) as stop:
        flow.send(answer)
    outcome: Token | Failure = stop.value.value
    return outcome


def test_the_first_step_is_the_token_request_bounded_by_size_and_time() -> None:
    flow = request_token(OPTIONS, after_refusal=False, holds_valid_token=lambda: False)
    step = next(flow)
    assert isinstance(step, Fetch)
    assert (step.request.method, str(step.request.url)) == ("POST", TOKEN_URL)
    assert (step.max_bytes, step.timeout) == (64 * 1024, 10.0)


def test_a_retryable_answer_is_followed_by_a_pause_and_a_second_request() -> None:
    flow = request_token(OPTIONS, after_refusal=False, holds_valid_token=lambda: False)
    next(flow)
    pause = flow.send(reply(429, {}, **{"Retry-After": "2"}))
    assert pause == Pause(2.0)
    assert isinstance(flow.send(None), Fetch)
    token = finish(flow, TOKEN)
    assert isinstance(token, Token)
    assert token.value == "abc"


def test_a_network_error_thrown_in_at_the_fetch_is_retried() -> None:
    flow = request_token(OPTIONS, after_refusal=False, holds_valid_token=lambda: False)
    next(flow)
    pause = flow.throw(httpx.ConnectError("refused"))
    assert isinstance(pause, Pause)
    assert 0.5 <= pause.seconds <= 1.0


def test_a_failure_while_a_valid_token_is_held_ends_the_cycle_at_once() -> None:
    flow = request_token(OPTIONS, after_refusal=False, holds_valid_token=lambda: True)
    next(flow)
    outcome = finish(flow, UNAVAILABLE)
    assert isinstance(outcome, Failure)
    assert outcome.error.status_code == 503


def test_the_last_attempt_s_failure_is_the_outcome() -> None:
    flow = request_token(
        replace(OPTIONS, max_attempts=1), after_refusal=False, holds_valid_token=lambda: False
    )
    next(flow)
    outcome = finish(flow, UNAVAILABLE)
    assert isinstance(outcome, Failure)
    assert outcome.error.oauth_error == "temporarily_unavailable"
