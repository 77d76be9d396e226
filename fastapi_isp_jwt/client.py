"""Client Credentials for calls out of the service: an ``httpx.Auth`` that keeps a platform token.

`ClientCredentials` asks the tenant's token endpoint for an access token
(RFC 6749 §4.4), keeps it until shortly before it expires, and puts it on every request
of the ``httpx.Client`` or ``httpx.AsyncClient`` it is attached to. Token requests go
through a short-lived client of their own rather than through the caller's client: they
never follow redirects, never reach the caller's event hooks (which would see the client
secret in the form body) and never show up in a response's ``history``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, cast

import anyio
import anyio.lowlevel
import httpx

from fastapi_isp_jwt.errors import ConfigurationError, TokenRequestError

__all__ = ["ClientCredentials"]

logger = logging.getLogger(__name__)

# RFC 6750 §2.1 b64token: the only characters a bearer token may be made of.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6749 §5.2: error codes are printable ASCII without '"' and '\'.
_OAUTH_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
_BARE_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?/?")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_MAX_DESCRIPTION = 200
# A token answer is a few hundred bytes to a few KiB; anything past this is not one.
_MAX_ANSWER_BYTES = 64 * 1024
# After a failed renewal, the current token is used without asking again for at least this
# many seconds, even with backoff=0: otherwise every call would make an attempt.
_MIN_RENEWAL_PAUSE = 1.0
# The pause after a failed renewal ends at the latest this many seconds before the token
# expires, so the endpoint gets one more try while the token can still cover for it.
_LAST_RENEWAL_LEAD = 5.0
_REDACTED = "[redacted]"


class _Secret:
    """Holds the client secret so that no ``repr``, ``str`` or ``vars`` dump can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret blanked out."""
        return text.replace(self._value, _REDACTED)

    def __repr__(self) -> str:
        return "'********'"

    __str__ = __repr__


@dataclass(frozen=True, eq=False)
class _Token:
    """One access token and the two moments that matter for it, on the injected clock."""

    value: str = field(repr=False)
    refresh_at: float
    expires_at: float
    # Fetched because the API refused the previous token: if the API refuses this one
    # too, asking again would only spend the tenant's token quota.
    after_refusal: bool


@dataclass(frozen=True)
class _Failure:
    """A token request that did not give a token, and whether asking again may help."""

    error: TokenRequestError
    retryable: bool
    retry_after: float | None = None


@dataclass(frozen=True)
class _Answer:
    """What the token endpoint sent back; the body only if it was of a plausible size."""

    status: int
    headers: httpx.Headers
    body: bytes | None  # None: larger than _MAX_ANSWER_BYTES, and not read further


class _CappedBody:
    """Collects a body up to `_MAX_ANSWER_BYTES`; past that, only notes that it was too large."""

    def __init__(self, headers: httpx.Headers) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        announced = headers.get("Content-Length", "")
        self.too_large = announced.isdigit() and int(announced) > _MAX_ANSWER_BYTES

    def take(self, chunk: bytes) -> bool:
        """Keeps ``chunk``; ``False`` once the body is too large and reading should stop."""
        self._size += len(chunk)
        if self._size > _MAX_ANSWER_BYTES:
            self.too_large = True
            self._chunks.clear()
            return False
        self._chunks.append(chunk)
        return True

    def value(self) -> bytes | None:
        return None if self.too_large else b"".join(self._chunks)


class _BorrowedTransport(httpx.BaseTransport):
    """Lends the caller's transport to a short-lived client without letting it close it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)


class _BorrowedAsyncTransport(httpx.AsyncBaseTransport):
    """The asynchronous twin of `_BorrowedTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)


class ClientCredentials(httpx.Auth):
    """An ``httpx.Auth`` that obtains, caches and renews a Client Credentials access token.

    Pass it as ``auth=`` to an ``httpx.Client`` or an ``httpx.AsyncClient``; one instance
    may serve both, and should be shared by every client that calls the same API so they
    share its token. ``examples/m2m_client.py`` shows both uses.

    Behaviour:

    * the token is reused until ``expires_in`` minus a safety margin (``refresh_margin``
      seconds, at most half the token's lifetime) has passed;
    * however many requests need a new token at once, one token request is made for all
      of them: one for all threads, and one per event loop for tasks;
    * when no valid token is held (the first one, or after expiry), token requests
      answered with 429 or 5xx, or lost to a network error or the timeout, are retried up
      to ``max_attempts`` times in all, waiting ``Retry-After`` when the endpoint sends it
      and a jittered exponential backoff (``backoff``, doubling, capped at ``max_backoff``)
      otherwise; a ``Retry-After`` longer than ``max_backoff`` ends the retries at once;
    * a renewal while the current token is still valid is a single attempt with no
      waiting; if it fails, the current token is used, and no renewal is tried for a pause
      that grows like the backoff (at least 1 s, at most ``max_backoff``, or the endpoint's
      longer ``Retry-After``) and always ends 5 s before the token expires, so callers are
      never held up while a valid token exists;
    * when the API answers 401, a new token is fetched and the request is sent once more
      (only if its body can be sent again; streamed uploads are not replayed); if that new
      token cannot be obtained, the call raises `TokenRequestError` instead of returning
      the 401;
    * every failure is a `TokenRequestError` carrying the
      OAuth ``error`` code and HTTP status; the secret never appears in it, in logs or in
      ``repr``.

    Args:
        token_url: The token endpoint. ``https`` is required except on loopback hosts.
        domain: The tenant's host name instead of ``token_url``: ``"istreamplanet.auth0.com"``
            means ``https://istreamplanet.auth0.com/oauth/token``.
        client_id: The machine-to-machine application's client id.
        client_secret: Its client secret.
        audience: The API the token is for, e.g. ``https://platform.dtc.istreamplanet.net/acme``.
        scope: Scopes to request (a space-delimited string or an iterable); by default the
            tenant grants what the application is authorized for.
        refresh_margin: Seconds before expiry at which the token is renewed.
        timeout: Seconds allowed for each token request attempt as a whole, from connecting
            to the last byte of the answer. Asynchronous attempts are cut off exactly then;
            synchronous ones when the next piece of the answer's body arrives after it (each
            network read is itself limited to ``timeout``). Answers over 64 KiB are refused
            unread.
        max_attempts: Token requests made at most, first one included, before giving up,
            when no valid token is held.
        backoff: Seconds to wait before the first retry when the endpoint gives no
            ``Retry-After``; doubles with every retry, and paces failed renewals too.
        max_backoff: The longest wait between two attempts, and the longest pause between
            failed renewals unless the endpoint asks for more with ``Retry-After``.
        transport: Transport for token requests made from ``httpx.Client`` (custom TLS,
            proxies); the default is httpx's, honouring the proxy environment variables.
        async_transport: The same for requests made from ``httpx.AsyncClient``.
        clock: Monotonic seconds; replaceable so tests control expiry and the pauses
            between renewals (``timeout`` is always measured in real time).
        sleep: How to wait between attempts in synchronous use.
        async_sleep: How to wait between attempts in asynchronous use.
    """

    def __init__(
        self,
        *,
        token_url: str | None = None,
        domain: str | None = None,
        client_id: str,
        client_secret: str,
        audience: str,
        scope: str | Iterable[str] | None = None,
        refresh_margin: float = 60.0,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._token_url = _resolve_token_url(token_url, domain)
        self._client_id = _required_text("client_id", client_id)
        self._secret = _Secret(_required_text("client_secret", client_secret))
        self._audience = _required_text("audience", audience)
        self._scope = _scope_text(scope)
        _require(_is_number(refresh_margin) and refresh_margin >= 0, "refresh_margin must be >= 0")
        _require(_is_number(timeout) and timeout > 0, "timeout must be > 0")
        _require(
            isinstance(max_attempts, int) and not isinstance(max_attempts, bool),
            "max_attempts must be an integer",
        )
        _require(max_attempts >= 1, "max_attempts must be >= 1")
        _require(_is_number(backoff) and backoff >= 0, "backoff must be >= 0")
        _require(
            _is_number(max_backoff) and max_backoff >= backoff, "max_backoff must be >= backoff"
        )
        self._refresh_margin = float(refresh_margin)
        self._timeout = float(timeout)
        self._max_attempts = max_attempts
        self._backoff = float(backoff)
        self._max_backoff = float(max_backoff)
        self._transport = transport
        self._async_transport = async_transport
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep

        self._token: _Token | None = None
        # After a failed renewal the current token counts as fresh until this moment (never
        # past its expiry); reset with every new token, as is the count of failures.
        self._renew_not_before = -math.inf
        self._failed_renewals = 0
        # Bumped after every token request cycle, so callers that queued behind one can
        # tell it has happened and share its outcome instead of starting another.
        self._cycles = 0
        self._last_failure: TokenRequestError | None = None
        # One token request at a time per event loop for tasks. Kept here, not in the loop:
        # an instance dropped while its loop runs on takes its locks with it.
        self._loop_locks: weakref.WeakKeyDictionary[object, anyio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # Guards the fields above; never held over I/O.
        self._state_lock = threading.Lock()
        self._thread_lock = threading.Lock()  # one token request at a time for all threads

    @property
    def token_url(self) -> str:
        """The token endpoint this instance asks."""
        return self._token_url

    @property
    def client_id(self) -> str:
        """The machine-to-machine application's client id."""
        return self._client_id

    @property
    def audience(self) -> str:
        """The API tokens are requested for."""
        return self._audience

    @property
    def scope(self) -> str | None:
        """The space-delimited scopes requested, if any."""
        return self._scope

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token_url={self._token_url!r}, client_id={self._client_id!r}, "
            f"audience={self._audience!r}, client_secret={self._secret!r})"
        )

    # -- public token access -------------------------------------------------------

    def get_token(self) -> str:
        """A valid access token, fetched only if none is cached (blocking)."""
        return self._obtain_sync().value

    async def aget_token(self) -> str:
        """A valid access token, fetched only if none is cached."""
        return (await self._obtain_async()).value

    # -- httpx.Auth ----------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        sent = self._obtain_sync()
        response = yield _authorize(request, sent)
        if not self._refresh_may_help(response, sent):
            return
        fresh = self._obtain_sync(refused=sent)
        if _replayable(request):
            yield _authorize(request, fresh)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        sent = await self._obtain_async()
        response = yield _authorize(request, sent)
        if not self._refresh_may_help(response, sent):
            return
        fresh = await self._obtain_async(refused=sent)
        if _replayable(request):
            yield _authorize(request, fresh)

    def _refresh_may_help(self, response: httpx.Response, sent: _Token) -> bool:
        if response.status_code != 401:
            return False
        if sent is self._token and sent.after_refusal:
            logger.warning(
                "the API refused a token that was itself fetched after a refusal (HTTP 401); "
                "not asking for another before this one expires"
            )
            return False
        logger.info("the API refused the token (HTTP 401); renewing it and retrying once")
        return True

    # -- single flight ---------------------------------------------------------------

    def _obtain_sync(self, refused: _Token | None = None) -> _Token:
        token = self._fresh(refused)
        if token is not None:
            return token
        cycle = self._cycles
        with self._thread_lock:
            token = self._fresh(refused)
            if token is not None:
                return token
            shared = self._outcome_since(cycle, refused)
            if shared is not None:
                return shared
            return self._settle(self._request_sync(refused), refused)

    async def _obtain_async(self, refused: _Token | None = None) -> _Token:
        token = self._fresh(refused)
        if token is not None:
            return token
        cycle = self._cycles
        async with self._loop_lock():
            token = self._fresh(refused)
            if token is not None:
                return token
            shared = self._outcome_since(cycle, refused)
            if shared is not None:
                return shared
            return self._settle(await self._request_async(refused), refused)

    def _loop_lock(self) -> anyio.Lock:
        loop = _running_loop()
        # Under the thread lock: instances are shared by threads that each run a loop.
        with self._state_lock:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = anyio.Lock()
        return lock

    def _fresh(self, refused: _Token | None) -> _Token | None:
        """The current token unless it is due for renewal (a failed renewal defers that)."""
        token = self._token
        if token is None or token is refused:
            return None
        now = self._clock()
        if now < token.refresh_at or now < min(self._renew_not_before, token.expires_at):
            return token
        return None

    def _usable(self, refused: _Token | None) -> bool:
        """Whether a token that has not expired (and was not refused) is at hand."""
        token = self._token
        return token is not None and token is not refused and self._clock() < token.expires_at

    def _outcome_since(self, cycle: int, refused: _Token | None) -> _Token | None:
        """The result of a token request that finished while this caller waited, if any.

        A success would already have been found fresh, so only a failure is left to share:
        callers that queued behind a failed request fail with it rather than each
        repeating the whole retry cycle against an endpoint that is down.
        """
        with self._state_lock:
            failure = self._last_failure if self._cycles != cycle else None
        if failure is None:
            return None
        shared = TokenRequestError(
            str(failure), oauth_error=failure.oauth_error, status_code=failure.status_code
        )
        return self._fallback(refused, shared)

    def _settle(self, outcome: _Token | _Failure, refused: _Token | None) -> _Token:
        """Records how a token request cycle ended; the token to use, or raises."""
        if isinstance(outcome, _Token):
            with self._state_lock:
                # The pause first: a reader without the lock may see the old token
                # unpaused (and queue for the lock), never the new one paused.
                self._renew_not_before = -math.inf
                self._failed_renewals = 0
                self._token = outcome
                self._last_failure = None
                self._cycles += 1
            return outcome
        with self._state_lock:
            self._pause_renewals(outcome)
            self._last_failure = outcome.error
            self._cycles += 1
        return self._fallback(refused, outcome.error)

    def _pause_renewals(self, failure: _Failure) -> None:
        """After a failed renewal, leaves the endpoint alone for a while if the token allows.

        The pause grows like the retry backoff (at least `_MIN_RENEWAL_PAUSE`), is at least
        the endpoint's ``Retry-After``, and ends `_LAST_RENEWAL_LEAD` seconds before the
        token expires at the latest. Called with the state lock held.
        """
        token = self._token
        now = self._clock()
        if token is None or now >= token.expires_at:
            return
        self._failed_renewals += 1
        pause = max(_MIN_RENEWAL_PAUSE, self._backoff_ceiling(self._failed_renewals))
        if failure.retry_after is not None:
            pause = max(pause, failure.retry_after)
        until = min(now + pause, token.expires_at - _LAST_RENEWAL_LEAD)
        # Already too close to expiry for another try in time: the next one comes after it,
        # with the full retry cycle, as for any caller that holds no valid token.
        self._renew_not_before = until if until > now else token.expires_at

    def _fallback(self, refused: _Token | None, error: TokenRequestError) -> _Token:
        """The current token if it is still alive (renewal starts early), else ``error``."""
        token = self._token
        now = self._clock()
        if token is not None and token is not refused and now < token.expires_at:
            logger.warning(
                "token renewal failed (%s); using the current token, which expires in %.0f s; "
                "next renewal attempt in %.0f s",
                error,
                token.expires_at - now,
                max(0.0, self._renew_not_before - now),
            )
            return token
        raise error

    # -- the token request -------------------------------------------------------------

    def _request_sync(self, refused: _Token | None) -> _Token | _Failure:
        """A token, or the last failure; retried only while no valid token is held."""
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt_sync(after_refusal=refused is not None)
            if isinstance(outcome, _Token):
                return outcome
            delay = self._retry_delay(outcome, attempt, refused)
            if delay is None:
                return outcome
            self._sleep(delay)

    async def _request_async(self, refused: _Token | None) -> _Token | _Failure:
        """The asynchronous twin of `_request_sync`."""
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt_async(after_refusal=refused is not None)
            if isinstance(outcome, _Token):
                return outcome
            delay = self._retry_delay(outcome, attempt, refused)
            if delay is None:
                return outcome
            await self._async_sleep(delay)

    def _attempt_sync(self, after_refusal: bool) -> _Token | _Failure:
        started = self._clock()
        try:
            answer = self._send_sync()
        except _REQUEST_ERRORS as exc:
            return self._failure_of(exc)
        return self._interpret(answer, started, after_refusal)

    async def _attempt_async(self, after_refusal: bool) -> _Token | _Failure:
        started = self._clock()
        try:
            answer = await self._send_async()
        except _REQUEST_ERRORS as exc:
            return self._failure_of(exc)
        return self._interpret(answer, started, after_refusal)

    def _send_sync(self) -> _Answer:
        # httpx's timeout bounds each network operation, not the whole answer: an endpoint
        # sending a byte now and then would hold the request (and every caller waiting for
        # the token) indefinitely. Real time, not the injected clock, which may stand still.
        deadline = time.monotonic() + self._timeout
        with (
            self._sync_client() as client,
            client.stream("POST", self._token_url, data=self._form(), headers=_HEADERS) as response,
        ):
            body = _CappedBody(response.headers)
            if not body.too_large:
                for chunk in response.iter_bytes():
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    if not body.take(chunk):
                        break
            return _Answer(response.status_code, response.headers, body.value())

    async def _send_async(self) -> _Answer:
        async with self._async_client() as client:
            # The whole attempt, from connecting to the last byte, within one deadline.
            with anyio.fail_after(self._timeout):
                async with client.stream(
                    "POST", self._token_url, data=self._form(), headers=_HEADERS
                ) as response:
                    body = _CappedBody(response.headers)
                    if not body.too_large:
                        # Closed here, not by the garbage collector after the loop is gone.
                        async with aclosing(
                            cast(AsyncGenerator[bytes, None], response.aiter_bytes())
                        ) as chunks:
                            async for chunk in chunks:
                                if not body.take(chunk):
                                    break
                    return _Answer(response.status_code, response.headers, body.value())

    def _failure_of(self, exc: Exception) -> _Failure:
        """What a token request that raised ``exc`` (one of `_REQUEST_ERRORS`) amounts to."""
        if isinstance(exc, TimeoutError):
            message = (
                f"token endpoint {self._token_url} sent no complete answer "
                f"within {self._timeout:g} s"
            )
            return _Failure(self._error(message), retryable=True)
        if isinstance(exc, httpx.TransportError):
            return self._unreachable(exc)
        message = f"token request failed: {type(exc).__name__}"
        return _Failure(self._error(message), retryable=False)

    def _sync_client(self) -> httpx.Client:
        transport = None if self._transport is None else _BorrowedTransport(self._transport)
        return httpx.Client(transport=transport, timeout=self._timeout, follow_redirects=False)

    def _async_client(self) -> httpx.AsyncClient:
        transport = (
            None
            if self._async_transport is None
            else _BorrowedAsyncTransport(self._async_transport)
        )
        return httpx.AsyncClient(transport=transport, timeout=self._timeout, follow_redirects=False)

    def _form(self) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.reveal(),
            "audience": self._audience,
        }
        if self._scope is not None:
            form["scope"] = self._scope
        return form

    def _retry_delay(self, failure: _Failure, attempt: int, refused: _Token | None) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when there is to be none.

        While a valid token is held nobody needs the new one yet: retrying would only keep
        callers waiting, so the failure ends the cycle and `_pause_renewals` takes over.
        """
        if not failure.retryable or attempt >= self._max_attempts or self._usable(refused):
            return None
        if failure.retry_after is not None:
            delay = failure.retry_after
        else:
            ceiling = self._backoff_ceiling(attempt)
            # Jitter keeps many service replicas from retrying in lockstep; not security.
            delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311
        logger.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            failure.error,
            delay,
            attempt + 1,
            self._max_attempts,
        )
        return delay

    def _backoff_ceiling(self, retry: int) -> float:
        """The longest backoff before the ``retry``-th retry: doubling, at most max_backoff."""
        return min(self._max_backoff, self._backoff * 2.0 ** min(retry - 1, 64))

    def _unreachable(self, exc: httpx.TransportError) -> _Failure:
        # httpx's messages name the host and the socket error, never the request body.
        detail = self._secret.redact(str(exc))[:_MAX_DESCRIPTION] or "no detail"
        message = f"token endpoint {self._token_url} unreachable: {type(exc).__name__} ({detail})"
        return _Failure(self._error(message), retryable=True)

    def _interpret(self, answer: _Answer, started: float, after_refusal: bool) -> _Token | _Failure:
        status = answer.status
        payload = _json_object(answer.body)
        if status == 200:
            if answer.body is None:
                return self._malformed(f"larger than {_MAX_ANSWER_BYTES} bytes")
            return self._token_from(payload, started, after_refusal)
        oauth_error, description = self._oauth_error_of(payload)
        if oauth_error is not None:
            message = f"token endpoint refused the request: {oauth_error} (HTTP {status})"
            if description:
                message += f": {description}"
        else:
            message = f"token endpoint answered HTTP {status}"
        if status != 429 and not 500 <= status <= 599:
            return _Failure(self._error(message, oauth_error, status), retryable=False)
        retry_after = _retry_after(answer.headers)
        if retry_after is not None and retry_after > self._max_backoff:
            # Neither hammer the endpoint early nor hold callers for that long.
            message += (
                f"; the endpoint asked to retry after {retry_after:.0f} s, longer than max_backoff"
            )
            return _Failure(self._error(message, oauth_error, status), False, retry_after)
        return _Failure(self._error(message, oauth_error, status), True, retry_after)

    def _token_from(
        self, payload: dict[str, Any] | None, started: float, after_refusal: bool
    ) -> _Token | _Failure:
        if payload is None:
            return self._malformed("not a JSON object")
        value = payload.get("access_token")
        if not isinstance(value, str) or not _BEARER_TOKEN.fullmatch(value):
            return self._malformed("access_token is missing or not a bearer token")
        token_type = payload.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            return self._malformed("token_type is not Bearer")
        lifetime = _seconds(payload.get("expires_in"))
        if lifetime is None or lifetime <= 0:
            return self._malformed("expires_in is missing or not a positive number of seconds")
        # The lifetime is counted from when the request left, never from when the answer came.
        margin = min(self._refresh_margin, lifetime / 2)
        logger.debug("obtained an access token for %s, valid for %.0f s", self._audience, lifetime)
        return _Token(
            value=value,
            refresh_at=started + lifetime - margin,
            expires_at=started + lifetime,
            after_refusal=after_refusal,
        )

    def _malformed(self, why: str) -> _Failure:
        message = f"token endpoint sent an unusable token response: {why}"
        return _Failure(self._error(message, None, 200), retryable=False)

    def _oauth_error_of(self, payload: dict[str, Any] | None) -> tuple[str | None, str]:
        if payload is None:
            return None, ""
        code = payload.get("error")
        if not isinstance(code, str) or not _OAUTH_ERROR_CODE.fullmatch(code):
            return None, ""
        # Both come from the server, which may echo the request body back.
        code = self._secret.redact(code)
        description = payload.get("error_description")
        if not isinstance(description, str):
            return code, ""
        printable = "".join(ch if ch.isprintable() else " " for ch in description)
        return code, self._secret.redact(printable)[:_MAX_DESCRIPTION]

    def _error(
        self, message: str, oauth_error: str | None = None, status_code: int | None = None
    ) -> TokenRequestError:
        # ``message`` is fixed text plus parts already redacted where they entered (server
        # answers, exception texts): redacting it whole would garble the fixed words
        # whenever the secret is short, and the gaps would hint at the secret.
        return TokenRequestError(message, oauth_error=oauth_error, status_code=status_code)


# An uncompressed answer, so that the size cap counts what crosses the network.
_HEADERS = {"Accept": "application/json", "Accept-Encoding": "identity"}
# What a token request may raise besides a response: httpx's errors, the resolver's
# UnicodeError for a host it cannot IDNA-encode (httpx lets it through) and TimeoutError
# when the attempt's deadline passes.
_REQUEST_ERRORS = (httpx.HTTPError, UnicodeError, TimeoutError)


def _running_loop() -> object:
    """The running event loop: a key that lives exactly as long as the loop does."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio, through anyio)
        return anyio.lowlevel.current_token().native_token


def _authorize(request: httpx.Request, token: _Token) -> httpx.Request:
    request.headers["Authorization"] = f"Bearer {token.value}"
    return request


def _replayable(request: httpx.Request) -> bool:
    # Bytes, JSON and form bodies are held in memory and can be sent again; a streamed
    # upload has been consumed by the first attempt.
    return isinstance(request.stream, httpx.ByteStream)


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


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


def _required_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string")
    return _utf8_text(name, value)


def _utf8_text(name: str, value: str) -> str:
    # The form body is UTF-8: a lone surrogate would fail there, at request time.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{name} must be encodable as UTF-8") from None
    return value


def _scope_text(scope: str | Iterable[str] | None) -> str | None:
    if scope is None:
        return None
    parts = scope.split() if isinstance(scope, str) else list(scope)
    if not parts or not all(isinstance(part, str) and part and " " not in part for part in parts):
        raise ConfigurationError("scope must be a space-delimited string or an iterable of scopes")
    return _utf8_text("scope", " ".join(parts))


def _resolve_token_url(token_url: str | None, domain: str | None) -> str:
    if (token_url is None) == (domain is None):
        raise ConfigurationError("pass exactly one of token_url and domain")
    if domain is not None:
        if not isinstance(domain, str) or not _BARE_DOMAIN.fullmatch(domain):
            raise ConfigurationError(
                "domain must be a bare host name such as 'istreamplanet.auth0.com' "
                "(pass token_url for a full URL)"
            )
        host, _, port = domain.rstrip("/").partition(":")
        _require_dns_name("domain", host)
        if port:
            _require_tcp_port("domain", int(port))
        return f"https://{domain.rstrip('/')}/oauth/token"
    assert token_url is not None
    try:
        url = httpx.URL(token_url)
    except (TypeError, httpx.InvalidURL) as exc:
        raise ConfigurationError("token_url is not a valid URL") from exc
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError("token_url must be an absolute https URL")
    if url.scheme == "http" and url.host not in _LOOPBACK_HOSTS:
        # The form body carries the client secret: never in clear text off this machine.
        raise ConfigurationError("token_url must use https (plain http only on loopback)")
    if url.userinfo or url.fragment:
        raise ConfigurationError("token_url must not carry credentials or a fragment")
    # httpx keeps a non-ASCII host in its IDNA (xn--) form here.
    _require_dns_name("token_url", url.raw_host.decode("ascii", "replace"))
    if url.port is not None:
        _require_tcp_port("token_url", url.port)
    return str(url)


def _require_dns_name(name: str, host: str) -> None:
    """Refuses a host the resolver would fail on with a bare ``UnicodeError`` at request time."""
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        encoded = b""
    if not encoded or len(encoded.rstrip(b".")) > 253:
        raise ConfigurationError(
            f"{name}: {host[:80]!r} is not a valid DNS host name "
            "(an empty label, a label over 63 characters or a name over 253)"
        )


def _require_tcp_port(name: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"{name}: the port must be between 1 and 65535")
