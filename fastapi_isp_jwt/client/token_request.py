"""One token request cycle, written once for threads and event loops, and what its answers mean.

`request_token` is a flow in the sense of `fastapi_isp_jwt.io`: it yields the request to
send and the pauses to take, and `io.run_sync` or `io.run_async` does the I/O. `interpret`
reads an answer: a token, or a failure and whether asking again may help. Text that comes
from the endpoint (which may echo the request body back) has the secret redacted before it
reaches a message. With a DPoP key every attempt carries a fresh proof, and an endpoint
asking for its nonce (``use_dpop_nonce``, RFC 9449 §8) is asked once more with it.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from fastapi_isp_jwt.client.dpop import NONCE_ERROR, ProofSigner
from fastapi_isp_jwt.client.options import RequestOptions
from fastapi_isp_jwt.errors import TokenRequestError
from fastapi_isp_jwt.grammar import is_b64token, is_oauth_error_code
from fastapi_isp_jwt.io import NETWORK_ERRORS, Fetch, Flow, Pause, Reply

__all__ = ["Failure", "Token", "interpret", "request_token"]

logger = logging.getLogger("fastapi_isp_jwt.client")

# A token answer is a few hundred bytes to a few KiB; anything past this is not one.
MAX_ANSWER_BYTES = 64 * 1024
# The most of a server's or a network error's text that goes into a message.
MAX_DESCRIPTION = 200


@dataclass(frozen=True, eq=False)
class Token:
    """One access token and the two moments that matter for it, on the injected clock."""

    value: str = field(repr=False)
    refresh_at: float
    expires_at: float
    # Fetched because the API refused the previous token: if the API refuses this one
    # too, asking again would only spend the tenant's token quota.
    after_refusal: bool


@dataclass(frozen=True)
class Failure:
    """A token request that did not give a token, and whether asking again may help."""

    error: TokenRequestError
    retryable: bool
    retry_after: float | None = None


# An uncompressed answer, so that the size cap counts what crosses the network.
_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "identity",
    "User-Agent": "fastapi-isp-jwt",
}


def request_token(
    options: RequestOptions,
    *,
    after_refusal: bool,
    holds_valid_token: Callable[[], bool],
    dpop: ProofSigner | None = None,
) -> Flow[Token | Failure]:
    """A token, or the last failure; retried only while ``holds_valid_token()`` is false.

    While a valid token is held nobody needs the new one yet: retrying would only keep
    callers waiting, so the first failure ends the cycle (and renewals pause for a while).
    With ``dpop`` the token must be DPoP-bound; a demand for a nonce is met once per
    cycle, at once and without counting as an attempt.
    """
    attempt = 0
    nonce_sent_on_demand = False
    while True:
        attempt += 1
        started = options.clock()
        request = _token_request(options, dpop)
        try:
            reply = yield Fetch(request, MAX_ANSWER_BYTES, options.timeout)
        except NETWORK_ERRORS as exc:
            outcome: Token | Failure = _failure_of(exc, options)
        else:
            assert reply is not None  # a fetch is always answered with a reply
            outcome = interpret(reply, options, started, after_refusal, dpop_bound=dpop is not None)
            new_nonce = dpop.note_nonce(options.token_url, reply.headers) if dpop else None
            if _asks_for_nonce(outcome) and new_nonce and not nonce_sent_on_demand:
                logger.info("the token endpoint asked for a DPoP nonce; asking again with it")
                nonce_sent_on_demand = True
                attempt -= 1  # the same attempt, now with the nonce
                continue
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


def _token_request(options: RequestOptions, dpop: ProofSigner | None) -> httpx.Request:
    # Built afresh for every attempt: a form body is read as it is sent, and a DPoP proof
    # is good for one request only.
    headers = (
        _HEADERS if dpop is None else {**_HEADERS, "DPoP": dpop.proof("POST", options.token_url)}
    )
    return httpx.Request("POST", options.token_url, data=options.form(), headers=headers)


def _asks_for_nonce(outcome: Token | Failure) -> bool:
    return isinstance(outcome, Failure) and outcome.error.oauth_error == NONCE_ERROR


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


def interpret(
    reply: Reply,
    options: RequestOptions,
    started: float,
    after_refusal: bool,
    *,
    dpop_bound: bool = False,
) -> Token | Failure:
    """The token in a 200 answer, or what any other answer amounts to.

    ``dpop_bound``: the token asked for is bound to the client's DPoP key, so the
    answer's ``token_type`` must be ``DPoP`` rather than ``Bearer``.
    """
    status = reply.status
    payload = _json_object(reply.body)
    if status == 200:
        if reply.body is None:
            return _malformed(f"larger than {MAX_ANSWER_BYTES} bytes")
        expected_type = "DPoP" if dpop_bound else "Bearer"
        return _token_from(payload, options, started, after_refusal, expected_type)
    oauth_error, description = _oauth_error_of(payload, options)
    if oauth_error is not None:
        message = f"token endpoint refused the request: {oauth_error} (HTTP {status})"
        if description:
            message += f": {description}"
    else:
        message = f"token endpoint answered HTTP {status}"
    # ``message`` is fixed text plus parts redacted where they entered: redacting it whole
    # would garble the fixed words whenever the secret is short, and hint at the secret.
    error = TokenRequestError(message, oauth_error=oauth_error, status_code=status)
    if status != 429 and not 500 <= status <= 599:
        return Failure(error, retryable=False)
    retry_after = _retry_after(reply.headers)
    if retry_after is not None and retry_after > options.max_backoff:
        # Neither hammer the endpoint early nor hold callers for that long.
        message += (
            f"; the endpoint asked to retry after {retry_after:.0f} s, longer than max_backoff"
        )
        error = TokenRequestError(message, oauth_error=oauth_error, status_code=status)
        return Failure(error, False, retry_after)
    return Failure(error, True, retry_after)


def _token_from(
    payload: dict[str, Any] | None,
    options: RequestOptions,
    started: float,
    after_refusal: bool,
    expected_type: str,
) -> Token | Failure:
    if payload is None:
        return _malformed("not a JSON object")
    value = payload.get("access_token")
    if not isinstance(value, str) or not value.isascii() or not is_b64token(value.encode()):
        return _malformed("access_token is missing or not a bearer token")
    token_type = payload.get("token_type")
    # RFC 6749 §5.1: the type is case-insensitive. A Bearer token where a DPoP-bound one was
    # asked for would be sent unbound: refused, never used.
    if not isinstance(token_type, str) or token_type.lower() != expected_type.lower():
        return _malformed(f"token_type is not {expected_type}")
    lifetime = _seconds(payload.get("expires_in"))
    if lifetime is None or lifetime <= 0:
        return _malformed("expires_in is missing or not a positive number of seconds")
    # The lifetime is counted from when the request left, never from when the answer came.
    margin = min(options.refresh_margin, lifetime / 2)
    logger.debug("obtained an access token for %s, valid for %.0f s", options.audience, lifetime)
    return Token(
        value=value,
        refresh_at=started + lifetime - margin,
        expires_at=started + lifetime,
        after_refusal=after_refusal,
    )


def _malformed(why: str) -> Failure:
    message = f"token endpoint sent an unusable token response: {why}"
    return Failure(TokenRequestError(message, status_code=200), retryable=False)


def _oauth_error_of(
    payload: dict[str, Any] | None, options: RequestOptions
) -> tuple[str | None, str]:
    if payload is None:
        return None, ""
    code = payload.get("error")
    if not isinstance(code, str) or not is_oauth_error_code(code):
        return None, ""
    # Both come from the server, which may echo the request body back.
    code = options.secret.redact(code)
    description = payload.get("error_description")
    if not isinstance(description, str):
        return code, ""
    printable = "".join(ch if ch.isprintable() else " " for ch in description)
    return code, options.secret.redact(printable)[:MAX_DESCRIPTION]


def _json_object(body: bytes | None) -> dict[str, Any] | None:
    if body is None:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    return payload if isinstance(payload, dict) else None


def _retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date)."""
    raw = headers.get("Retry-After", "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _seconds(value: object) -> float | None:
    # Some token endpoints send expires_in as a numeric string; accept that, nothing looser.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        number = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            return None
    else:
        return None
    return number if math.isfinite(number) else None
