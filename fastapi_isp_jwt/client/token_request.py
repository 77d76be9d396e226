"""One token request cycle, written once for threads and event loops: attempts and retries.

`request_token` is a flow in the sense of `fastapi_isp_jwt.io`: it yields the request to
send and the pauses to take, and `io.run_sync` or `io.run_async` does the I/O. What the
answers mean is `answer.interpret`'s business; this module decides when to ask again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import httpx

from fastapi_isp_jwt.client.answer import MAX_ANSWER_BYTES, MAX_DESCRIPTION, Failure, Token
from fastapi_isp_jwt.client.answer import interpret as interpret_answer
from fastapi_isp_jwt.client.options import RequestOptions
from fastapi_isp_jwt.errors import TokenRequestError
from fastapi_isp_jwt.io import NETWORK_ERRORS, Fetch, Flow, Pause

__all__ = ["request_token"]

logger = logging.getLogger("fastapi_isp_jwt.client")

# An uncompressed answer, so that the size cap counts what crosses the network.
_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "identity",
    "User-Agent": "fastapi-isp-jwt",
}


def request_token(
    options: RequestOptions, *, after_refusal: bool, holds_valid_token: Callable[[], bool]
) -> Flow[Token | Failure]:
    """A token, or the last failure; retried only while ``holds_valid_token()`` is false.

    While a valid token is held nobody needs the new one yet: retrying would only keep
    callers waiting, so the first failure ends the cycle (and renewals pause for a while).
    """
    attempt = 0
    while True:
        attempt += 1
        started = options.clock()
        try:
            reply = yield Fetch(_token_request(options), MAX_ANSWER_BYTES, options.timeout)
        except NETWORK_ERRORS as exc:
            outcome: Token | Failure = _failure_of(exc, options)
        else:
            assert reply is not None  # a fetch is always answered with a reply
            outcome = interpret_answer(reply, options, started, after_refusal)
        if isinstance(outcome, Token):
            return outcome
        if not outcome.retryable or attempt >= options.max_attempts or holds_valid_token():
            return outcome
        delay = _retry_delay(outcome, attempt, options)
        logger.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            outcome.error,
            delay,
            attempt + 1,
            options.max_attempts,
        )
        yield Pause(delay)


def _token_request(options: RequestOptions) -> httpx.Request:
    # Built afresh for every attempt: a form body is read as it is sent.
    return httpx.Request("POST", options.token_url, data=options.form(), headers=_HEADERS)


def _retry_delay(failure: Failure, attempt: int, options: RequestOptions) -> float:
    """The endpoint's ``Retry-After``, or else a jittered, doubling backoff."""
    if failure.retry_after is not None:
        return failure.retry_after
    ceiling = options.backoff_ceiling(attempt)
    # Jitter keeps many service replicas from retrying in lockstep; not security.
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311


def _failure_of(exc: Exception, options: RequestOptions) -> Failure:
    """What a token request that raised ``exc`` (one of io's `NETWORK_ERRORS`) amounts to."""
    if isinstance(exc, TimeoutError):
        message = (
            f"token endpoint {options.token_url} sent no complete answer "
            f"within {options.timeout:g} s"
        )
        return Failure(TokenRequestError(message), retryable=True)
    if isinstance(exc, httpx.TransportError):
        # httpx's messages name the host and the socket error, never the request body,
        # but a proxy's may: redacted all the same.
        detail = options.secret.redact(str(exc))[:MAX_DESCRIPTION] or "no detail"
        message = f"token endpoint {options.token_url} unreachable: {type(exc).__name__} ({detail})"
        return Failure(TokenRequestError(message), retryable=True)
    return Failure(TokenRequestError(f"token request failed: {type(exc).__name__}"), False)
