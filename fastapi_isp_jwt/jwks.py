"""The key cache: the only part of the library that talks to the token issuer.

It downloads the issuer's JWKS lazily, keeps it for a TTL, refreshes it in the background
before it expires, refetches early (at most once per cooldown) when a token names a key it
does not know, and keeps serving the last good key set through an outage of the issuer.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from fastapi_isp_jwt.errors import (
    ConfigurationError,
    InvalidTokenError,
    IssuerUnavailableError,
    KeySetError,
)
from fastapi_isp_jwt.keys import KeySet, VerificationKey, load_jwks
from fastapi_isp_jwt.reasons import Reason

__all__ = ["MAX_CACHE_SECONDS", "MIN_CACHE_SECONDS", "JWKSCache"]

logger = logging.getLogger(__name__)

# Bounds for the issuer's Cache-Control max-age: a tiny one must not turn every request
# into a fetch, a huge one must not pin keys after the issuer has removed them.
MIN_CACHE_SECONDS = 60.0
MAX_CACHE_SECONDS = 86400.0
# The last fifth of the TTL is when a background refresh starts, so no request waits on it.
_REFRESH_AHEAD = 0.2
# Failed refreshes are retried after 1, 2, 4... seconds, never more than a minute apart.
_BACKOFF_FIRST = 1.0
_BACKOFF_CAP = 60.0

_REQUEST_HEADERS = {
    "Accept": "application/json",
    # Counting decoded bytes against max_bytes only bounds memory if nothing is compressed.
    "Accept-Encoding": "identity",
    "User-Agent": "fastapi-isp-jwt",
}


_THREAD_NAME = "fastapi-isp-jwt-jwks"


class _FetchError(Exception):
    """A download that did not yield a usable document (status, size, JSON, metadata)."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One successfully loaded key set and the times that govern it."""

    keys: KeySet
    fetched_at: float
    refresh_at: float
    expires_at: float


class _Step(enum.Enum):
    ANSWER = "answer from what is cached"
    FETCH = "fetch, then answer"
    FETCH_IN_BACKGROUND = "answer from what is cached while a fetch runs"


class JWKSCache:
    """The signing keys of one issuer, fetched from its JWKS and kept fresh.

    ``jwks_url`` is where the keys are published; without it the URL is
    ``<issuer>.well-known/jwks.json``, or, with ``discovery=True``, the ``jwks_uri`` of
    the issuer's OpenID configuration (whose ``issuer`` must equal ``issuer`` exactly).

    ``ttl`` is how long a key set is trusted when the issuer sends no ``Cache-Control:
    max-age`` (its ``max-age`` wins, kept within 60 s .. 24 h). A token naming an unknown
    key triggers at most one refetch per ``cooldown``. When the issuer fails, the last good
    key set keeps being served for up to ``max_stale`` seconds after it was fetched.
    ``timeout`` bounds each network operation and the reading of each response, and
    ``max_bytes`` the size of a response.

    The cache works with no lifespan events: the first lookup fetches. It keeps nothing
    bound to an event loop between fetches, so it may be shared by code running in several
    loops (a FastAPI ``TestClient`` used without ``with`` runs each request in a new one).
    ``http_client``/``sync_http_client`` are used when given (and never closed here);
    otherwise a short-lived client is made for each fetch, fetches being rare.
    """

    fetch_count: int
    """How many JWKS requests this cache has sent (discovery requests not included)."""

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        issuer: str | None = None,
        discovery: bool = False,
        ttl: float = 600.0,
        cooldown: float = 30.0,
        max_stale: float = 86400.0,
        timeout: float = 5.0,
        http_client: httpx.AsyncClient | None = None,
        sync_http_client: httpx.Client | None = None,
        max_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if discovery:
            if issuer is None:
                raise ConfigurationError("discovery=True needs the issuer")
            if jwks_url is not None:
                raise ConfigurationError("give jwks_url or discovery=True, not both")
            self._discovery_url: str | None = _well_known(issuer, "openid-configuration")
            _check_url(self._discovery_url, "the discovery URL")
        else:
            if jwks_url is None:
                if issuer is None:
                    raise ConfigurationError("the key cache needs jwks_url or issuer")
                jwks_url = _well_known(issuer, "jwks.json")
            _check_url(jwks_url, "jwks_url")
            self._discovery_url = None
        for name, value in (("ttl", ttl), ("timeout", timeout)):
            if not value > 0:
                raise ConfigurationError(f"{name} must be positive")
        for name, value in (("cooldown", cooldown), ("max_stale", max_stale)):
            if not value >= 0:
                raise ConfigurationError(f"{name} must not be negative")
        if max_bytes <= 0:
            raise ConfigurationError("max_bytes must be positive")

        self._jwks_url = jwks_url
        self._issuer = issuer
        self._ttl = float(ttl)
        self._cooldown = float(cooldown)
        self._max_stale = float(max_stale)
        self._timeout = float(timeout)
        self._max_bytes = max_bytes
        self._http_client = http_client
        self._sync_http_client = sync_http_client
        self._clock = clock

        self.fetch_count = 0
        self._snapshot: _Snapshot | None = None
        self._last_attempt_at = -math.inf
        self._next_attempt_at = -math.inf
        self._failures = 0
        # The in-flight async fetch and the loop it runs in: a task of another (perhaps
        # closed) loop is never awaited, a new one is started instead.
        self._inflight: tuple[asyncio.AbstractEventLoop, asyncio.Task[bool]] | None = None
        self._sync_lock = threading.Lock()

    @property
    def source(self) -> str:
        """Where the keys come from (the JWKS URL, or the discovery URL)."""
        return self._jwks_url or self._discovery_url or ""

    # -- lookups -------------------------------------------------------------------------

    async def get_key(self, kid: str | None) -> VerificationKey:
        """The key ``kid`` names, fetching the key set first when it must.

        Raises `InvalidTokenError` for a key the issuer does not publish (or a
        missing ``kid`` while it publishes several), and `IssuerUnavailableError`
        when no usable key set can be had.
        """
        now = self._clock()
        key = self._fresh_key(kid, now)
        if key is not None:
            return key
        step = self._next_step(kid, now)
        if step is _Step.FETCH:
            await asyncio.shield(self._fetch_task())
        elif step is _Step.FETCH_IN_BACKGROUND:
            self._fetch_in_background()
        return self._answer(kid, self._clock())

    def get_key_sync(self, kid: str | None) -> VerificationKey:
        """Blocking twin of `get_key`, for code that runs outside an event loop."""
        now = self._clock()
        key = self._fresh_key(kid, now)
        if key is not None:
            return key
        step = self._next_step(kid, now)
        if step is _Step.FETCH:
            self._fetch_sync_once(kid)
        elif step is _Step.FETCH_IN_BACKGROUND:
            self._fetch_in_background()
        return self._answer(kid, self._clock())

    def cached_key(self, kid: str | None) -> VerificationKey | None:
        """The key ``kid`` names if it may be trusted right now, else ``None``; never waits.

        Trusted means: in a key set that has not expired, or, while the issuer is failing,
        one not older than ``max_stale``. Like a lookup, it starts a background fetch when
        the key set is about to expire, or when a retry is due during an outage.
        """
        now = self._clock()
        key = self._fresh_key(kid, now)
        if key is not None:
            return key
        snapshot = self._snapshot
        if snapshot is None or now < snapshot.expires_at:
            return None
        if self._failures and now - snapshot.fetched_at <= self._max_stale:
            if now >= self._next_attempt_at:
                self._fetch_in_background()  # the outage may be over
            return snapshot.keys.find(kid)
        return None

    # -- lifecycle -----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetch the key set now (joining a fetch already running).

        Raises `IssuerUnavailableError` when the fetch fails; the keys known
        before are kept.
        """
        if not await asyncio.shield(self._fetch_task()):
            raise IssuerUnavailableError(retry_after=self._retry_after(self._clock()))

    async def warm_up(self) -> None:
        """Fetch the key set if none is loaded yet; a failure is logged, not raised."""
        if self._snapshot is None:
            await asyncio.shield(self._fetch_task())

    async def aclose(self) -> None:
        """Stop a fetch still running as a task of this event loop.

        No connection is kept between fetches, and a client passed in is never closed.
        """
        inflight = self._inflight
        if inflight is None or inflight[0] is not asyncio.get_running_loop():
            return
        task = inflight[1]
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # our own caller is being cancelled, not just the fetch

    def close(self) -> None:
        """Blocking twin of `aclose`: nothing to release, as no connection is kept.

        A background fetch running in a thread is left to finish (it is bounded by
        ``timeout``).
        """

    # -- deciding ------------------------------------------------------------------------

    def _fresh_key(self, kid: str | None, now: float) -> VerificationKey | None:
        """The fast path of every lookup: ``kid`` in a key set that has not expired."""
        snapshot = self._snapshot
        if snapshot is None or now >= snapshot.expires_at:
            return None
        key = snapshot.keys.find(kid)
        if key is not None and now >= snapshot.refresh_at and now >= self._next_attempt_at:
            self._fetch_in_background()
        return key

    def _next_step(self, kid: str | None, now: float) -> _Step:
        """What a lookup of ``kid`` must do before it can answer."""
        if now < self._next_attempt_at:
            return _Step.ANSWER  # backing off after a failure
        snapshot = self._snapshot
        if snapshot is None:
            return _Step.FETCH
        if now < snapshot.expires_at and snapshot.keys.find(kid) is not None:
            return _Step.ANSWER
        if now >= snapshot.expires_at:
            if self._failures and now - snapshot.fetched_at <= self._max_stale:
                # The issuer is down: serve the last good set rather than wait on a retry.
                return _Step.FETCH_IN_BACKGROUND
            return _Step.FETCH
        if kid is None and len(snapshot.keys) > 1:
            return _Step.ANSWER
        if now - self._last_attempt_at >= self._cooldown:
            return _Step.FETCH  # perhaps a key published since the last fetch
        return _Step.ANSWER

    def _answer(self, kid: str | None, now: float) -> VerificationKey:
        snapshot = self._snapshot
        if snapshot is None or (
            now >= snapshot.expires_at and now - snapshot.fetched_at > self._max_stale
        ):
            raise IssuerUnavailableError(retry_after=self._retry_after(now))
        key = snapshot.keys.find(kid)
        if key is not None:
            return key
        if kid is None and len(snapshot.keys) > 1:
            raise InvalidTokenError(Reason.KEY_ID_MISSING)
        raise InvalidTokenError(Reason.UNKNOWN_KEY)

    def _retry_after(self, now: float) -> int:
        return max(1, math.ceil(self._next_attempt_at - now))

    # -- fetching: scheduling ------------------------------------------------------------

    def _fetch_task(self) -> asyncio.Task[bool]:
        """The fetch running in this event loop, started if there is none (single flight)."""
        loop = asyncio.get_running_loop()
        inflight = self._inflight
        if inflight is not None and inflight[0] is loop and not inflight[1].done():
            return inflight[1]
        task = loop.create_task(self._fetch_async())
        self._inflight = (loop, task)
        task.add_done_callback(self._forget_task)
        return task

    def _forget_task(self, task: asyncio.Task[bool]) -> None:
        inflight = self._inflight
        if inflight is not None and inflight[1] is task:
            self._inflight = None

    def _fetch_sync_once(self, kid: str | None) -> None:
        """Fetch in this thread, unless a fetch that ran while it waited made it needless.

        A caller waits for another thread's fetch no longer than the fetch timeout, and
        is then answered from what is known.
        """
        if not self._sync_lock.acquire(timeout=self._timeout):
            return
        try:
            if self._next_step(kid, self._clock()) is _Step.FETCH:
                self._fetch_sync()
        finally:
            self._sync_lock.release()

    def _fetch_in_background(self) -> None:
        """Start a fetch nobody waits for.

        It runs in a thread unless the cache was given an async client, which belongs to
        a long-lived event loop: a task of the caller's loop may be cut short when that
        loop ends (a ``TestClient`` without ``with`` ends one after each request).
        """
        if self._http_client is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self._fetch_task()
                return
        if not self._sync_lock.acquire(blocking=False):
            return  # a blocking fetch is already running
        try:
            thread = threading.Thread(
                target=self._fetch_sync_then_unlock, name="fastapi-isp-jwt-jwks", daemon=True
            )
            thread.start()
        except BaseException:
            self._sync_lock.release()
            raise

    def _fetch_sync_then_unlock(self) -> None:
        try:
            self._fetch_sync()
        finally:
            self._sync_lock.release()

    # -- fetching: one attempt -----------------------------------------------------------

    async def _fetch_async(self) -> bool:
        self._begin_attempt()
        try:
            # httpx's timeout bounds each read; this bounds the whole attempt, so a server
            # that trickles its answer cannot hold the waiting requests.
            document, headers = await asyncio.wait_for(self._download_async(), self._timeout)
            self._install(document, headers)
        except Exception as exc:  # every way a refresh can fail counts as a failed refresh
            self._record_failure(_timed_out(exc, self._timeout))
            return False
        return True

    async def _download_async(self) -> tuple[object, httpx.Headers]:
        client = self._http_client
        if client is None:
            async with httpx.AsyncClient(timeout=self._timeout) as owned:
                return await self._download_with_async(owned)
        return await self._download_with_async(client)

    def _fetch_sync(self) -> None:
        self._begin_attempt()
        # The download runs in a worker so that the whole attempt, not only each read,
        # is bounded by the timeout; a late answer is dropped with its worker.
        outcome: list[tuple[object, httpx.Headers] | BaseException] = []
        worker = threading.Thread(
            target=self._download_sync_into,
            args=(outcome,),
            name="fastapi-isp-jwt-jwks",
            daemon=True,
        )
        worker.start()
        worker.join(self._timeout)
        try:
            if not outcome:
                raise _FetchError(f"the issuer did not answer within {self._timeout} s")
            result = outcome[0]
            if isinstance(result, BaseException):
                raise result
            self._install(*result)
        except Exception as exc:  # every way a refresh can fail counts as a failed refresh
            self._record_failure(exc)

    def _download_sync_into(
        self, outcome: list[tuple[object, httpx.Headers] | BaseException]
    ) -> None:
        try:
            client = self._sync_http_client
            if client is None:
                with httpx.Client(timeout=self._timeout) as owned:
                    outcome.append(self._download_sync(owned))
            else:
                outcome.append(self._download_sync(client))
        except Exception as exc:
            outcome.append(exc)

    async def _download_with_async(self, client: httpx.AsyncClient) -> tuple[object, httpx.Headers]:
        url = self._jwks_url
        if url is None:
            assert self._discovery_url is not None
            metadata, _ = await self._get_json_async(client, self._discovery_url)
            url = self._jwks_uri_from(metadata)
        self.fetch_count += 1
        return await self._get_json_async(client, url)

    def _download_sync(self, client: httpx.Client) -> tuple[object, httpx.Headers]:
        url = self._jwks_url
        if url is None:
            assert self._discovery_url is not None
            metadata, _ = self._get_json_sync(client, self._discovery_url)
            url = self._jwks_uri_from(metadata)
        self.fetch_count += 1
        return self._get_json_sync(client, url)

    async def _get_json_async(
        self, client: httpx.AsyncClient, url: str
    ) -> tuple[object, httpx.Headers]:
        deadline = time.monotonic() + self._timeout
        request = client.stream(
            "GET", url, headers=_REQUEST_HEADERS, follow_redirects=False, timeout=self._timeout
        )
        async with request as response:
            self._check_response(response)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                self._check_body(body, deadline)
        return _parse_json(body), response.headers

    def _get_json_sync(self, client: httpx.Client, url: str) -> tuple[object, httpx.Headers]:
        deadline = time.monotonic() + self._timeout
        request = client.stream(
            "GET", url, headers=_REQUEST_HEADERS, follow_redirects=False, timeout=self._timeout
        )
        with request as response:
            self._check_response(response)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                self._check_body(body, deadline)
        return _parse_json(body), response.headers

    def _check_response(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            # Redirects included: the keys must come from the configured place itself.
            raise _FetchError(f"the issuer answered HTTP {response.status_code}")
        length = response.headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > self._max_bytes:
            raise _FetchError(f"the response is larger than {self._max_bytes} bytes")

    def _check_body(self, body: bytearray, deadline: float) -> None:
        if len(body) > self._max_bytes:
            raise _FetchError(f"the response is larger than {self._max_bytes} bytes")
        if time.monotonic() > deadline:
            raise _FetchError(f"the response took longer than {self._timeout} s to read")

    def _jwks_uri_from(self, metadata: object) -> str:
        if not isinstance(metadata, dict):
            raise _FetchError("the OpenID configuration is not a JSON object")
        # RFC 8414 §3.3: metadata for another issuer must not be used.
        if metadata.get("issuer") != self._issuer:
            raise _FetchError("the OpenID configuration names another issuer")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise _FetchError('the OpenID configuration has no "jwks_uri"')
        try:
            _check_url(jwks_uri, "jwks_uri")
        except ConfigurationError as exc:
            raise _FetchError(str(exc)) from None
        return jwks_uri

    # -- fetching: bookkeeping -----------------------------------------------------------

    def _begin_attempt(self) -> None:
        self._last_attempt_at = self._clock()

    def _install(self, document: object, headers: httpx.Headers) -> None:
        previous = self._snapshot
        keys = load_jwks(document, previous.keys if previous is not None else None)
        ttl = _ttl_from(headers.get("cache-control"), self._ttl)
        now = self._clock()
        self._snapshot = _Snapshot(
            keys=keys,
            fetched_at=now,
            refresh_at=now + ttl * (1 - _REFRESH_AHEAD),
            expires_at=now + ttl,
        )
        if self._failures:
            logger.info(
                "JWKS %s: fetched again after %d failed attempt(s)", self.source, self._failures
            )
        self._failures = 0
        self._next_attempt_at = -math.inf
        self._log_changes(previous.keys if previous is not None else None, keys)

    def _record_failure(self, exc: Exception) -> None:
        self._failures += 1
        backoff = min(_BACKOFF_CAP, _BACKOFF_FIRST * 2 ** min(self._failures - 1, 16))
        now = self._clock()
        self._next_attempt_at = now + backoff
        reason = _describe(exc)
        if self._failures > 1:
            logger.debug("JWKS %s: fetch failed again (%s)", self.source, reason)
            return
        snapshot = self._snapshot
        if snapshot is None:
            consequence = "no key is known yet"
        else:
            age = now - snapshot.fetched_at
            consequence = f"serving the key set fetched {age:.0f} s ago"
        logger.warning("JWKS %s: fetch failed (%s); %s", self.source, reason, consequence)

    def _log_changes(self, before: KeySet | None, after: KeySet) -> None:
        if not after.keys:
            logger.warning("JWKS %s: the issuer publishes no usable key", self.source)
        if before is None:
            logger.info("JWKS %s: loaded keys %s", self.source, _kid_list(after.kids))
            return
        added, removed = after.kids - before.kids, before.kids - after.kids
        if added or removed:
            logger.info(
                "JWKS %s: keys rotated, added %s, removed %s",
                self.source,
                _kid_list(added),
                _kid_list(removed),
            )
        else:
            logger.debug("JWKS %s: fetched, keys unchanged", self.source)


def _well_known(issuer: str, name: str) -> str:
    return issuer + ("" if issuer.endswith("/") else "/") + ".well-known/" + name


def _check_url(url: str, what: str) -> None:
    """Keys must come over TLS, except from this very machine (local issuers, tests)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"{what} is not a valid URL") from exc
    if parsed.scheme == "https" and parsed.host:
        return
    if parsed.scheme == "http" and _is_loopback(parsed.host):
        return
    raise ConfigurationError(f"{what} must be an https URL (plain http only for loopback)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_json(body: bytearray) -> object:
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise _FetchError("the response is not JSON") from exc


def _ttl_from(cache_control: str | None, default: float) -> float:
    """The key set's lifetime: the issuer's max-age, kept within bounds, else ``default``."""
    directives: dict[str, str] = {}
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        directives.setdefault(name, value.strip().strip('"'))
    if "no-cache" in directives or "no-store" in directives:
        return MIN_CACHE_SECONDS
    max_age = directives.get("max-age", "")
    # str.isdigit() also admits digits such as "²" that int() refuses.
    if not (max_age.isascii() and max_age.isdigit()):
        return default
    return min(max(float(max_age), MIN_CACHE_SECONDS), MAX_CACHE_SECONDS)


_Outcome = tuple[object, httpx.Headers] | BaseException


def _timed_out(exc: Exception, timeout: float) -> Exception:
    if isinstance(exc, asyncio.TimeoutError):
        return _FetchError(f"the issuer did not answer within {timeout} s")
    return exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, (_FetchError, KeySetError)):
        return str(exc)
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text[:200]}" if text else name


def _kid_list(kids: frozenset[str]) -> str:
    return "[" + ", ".join(repr(kid[:64]) for kid in sorted(kids)) + "]"
