"""The key cache: the only part of the library that talks to the token issuer.

It downloads the issuer's JWKS lazily, keeps it for a TTL, refreshes it in the background
before it expires, refetches early (at most once per cooldown) when a token names a key it
does not know, and keeps serving the last good key set through an outage of the issuer.

What to do when is `FreshnessPolicy`'s to say and how to download is `download_keys`'s;
this module schedules the downloads (one at a time per event loop, or in a thread) and runs
them with the drivers of `fastapi_isp_jwt.io`; `CacheReport` logs and measures what happens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx

from fastapi_isp_jwt import io
from fastapi_isp_jwt.errors import ConfigurationError, IssuerUnavailableError
from fastapi_isp_jwt.keycache.clients import DownloadClients
from fastapi_isp_jwt.keycache.flow import Download, Source, download_keys, locate
from fastapi_isp_jwt.keycache.health import KeyCacheHealth, key_cache_health
from fastapi_isp_jwt.keycache.options import (
    check_cooldown,
    check_max_stale,
    check_timeout,
    check_ttl,
)
from fastapi_isp_jwt.keycache.policy import Action, FreshnessPolicy
from fastapi_isp_jwt.keycache.report import CacheReport
from fastapi_isp_jwt.keys import KeySet, VerificationKey
from fastapi_isp_jwt.telemetry import Telemetry, shared

__all__ = ["JWKSCache"]

_THREAD_NAME = "fastapi-isp-jwt-jwks"


class JWKSCache:
    """The signing keys of one issuer, fetched from its JWKS and kept fresh.

    ``jwks_url`` is where the keys are published; without it the URL is
    ``<issuer>.well-known/jwks.json``, or, with ``discovery=True``, the ``jwks_uri`` of
    the issuer's OpenID configuration (whose ``issuer`` must equal ``issuer`` exactly).

    ``ttl`` is how long a key set is trusted when the issuer sends no ``Cache-Control:
    max-age`` (its ``max-age`` wins, kept within 60 s .. 24 h). A token naming an unknown
    key triggers at most one refetch per ``cooldown``. When the issuer fails, the last good
    key set keeps being served for up to ``max_stale`` seconds after it was fetched.
    ``timeout`` bounds each network operation and the whole of each download, and
    ``max_bytes`` the size of a response.

    The cache works with no lifespan events: the first lookup fetches. It keeps nothing
    bound to an event loop between fetches, so it may be shared by code running in several
    loops (a FastAPI ``TestClient`` used without ``with`` runs each request in a new one).
    ``http_client``/``sync_http_client`` are used when given (and never closed here);
    otherwise a short-lived client is made for each fetch (fetches being rare), all of
    them sharing one TLS context.

    Downloads, unknown-key refetches and the key-set gauges are reported to ``telemetry``
    (the process-wide `fastapi_isp_jwt.telemetry.shared` one unless given), and key-cache
    events are logged under ``fastapi_isp_jwt.jwks``; `health` reads the cache's state.
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
        telemetry: Telemetry | None = None,
    ) -> None:
        jwks_url, discovery_url = locate(jwks_url, issuer, discovery)
        if max_bytes <= 0:
            raise ConfigurationError("max_bytes must be positive")

        self._source = Source(
            jwks_url=jwks_url,
            discovery_url=discovery_url,
            issuer=issuer,
            ttl=check_ttl("ttl", ttl),
            timeout=check_timeout("timeout", timeout),
            max_bytes=max_bytes,
        )
        self._policy = FreshnessPolicy(
            cooldown=check_cooldown("cooldown", cooldown),
            max_stale=check_max_stale("max_stale", max_stale),
        )
        self._clients = DownloadClients(http_client, sync_http_client)
        self._clock = clock
        self.fetch_count = 0
        # The in-flight async fetch and the loop it runs in: a task of another (perhaps
        # closed) loop is never awaited, a new one is started instead.
        self._inflight: tuple[asyncio.AbstractEventLoop, asyncio.Task[bool]] | None = None
        self._sync_lock = threading.Lock()
        self._report = CacheReport(
            issuer if issuer is not None else self.source,
            telemetry if telemetry is not None else shared(),
        )
        # Held weakly: a cache that is dropped stops being observed.
        self._report.telemetry.watch_key_caches(self._healths)

    @property
    def source(self) -> str:
        """Where the keys come from (the JWKS URL, or the discovery URL)."""
        return self._source.jwks_url or self._source.discovery_url or ""

    @property
    def key_set(self) -> KeySet | None:
        """The key set held now, whatever its age (``None`` before the first download).

        For tools that show what the issuer publishes: its ``kids`` and the ``skipped``
        keys. Lookups go through `get_key`, which knows whether the set may be trusted.
        """
        snapshot = self._policy.snapshot
        return None if snapshot is None else snapshot.keys

    def health(self) -> KeyCacheHealth:
        """The cache's state now: keys held, their age, staleness, last error, next attempt.

        Reads and changes nothing, so a readiness probe may call it at any rate.
        """
        return key_cache_health(
            self._report.issuer, self._policy, self._clock(), last_error=self._report.last_error
        )

    def _healths(self) -> tuple[KeyCacheHealth]:
        return (self.health(),)

    # -- lookups -------------------------------------------------------------------------

    async def get_key(self, kid: str | None) -> VerificationKey:
        """The key ``kid`` names, fetching the key set first when it must.

        Raises `InvalidTokenError` for a key the issuer does not publish (or a
        missing ``kid`` while it publishes several), and `IssuerUnavailableError`
        when no usable key set can be had.
        """
        key, must_fetch, unknown = self._look_up(kid)
        if key is not None:
            return key
        if must_fetch:
            await asyncio.shield(self._fetch_task(kid if unknown else None))
        return self._policy.answer(kid, self._clock())

    def get_key_sync(self, kid: str | None) -> VerificationKey:
        """`get_key` for code that runs outside an event loop."""
        key, must_fetch, unknown = self._look_up(kid)
        if key is not None:
            return key
        if must_fetch:
            self._fetch_in_this_thread(kid, unknown)
        return self._policy.answer(kid, self._clock())

    def cached_key(self, kid: str | None) -> VerificationKey | None:
        """The key ``kid`` names if it may be trusted right now, else ``None``; never waits.

        Trusted means: in a key set that has not expired, or, while the issuer is failing,
        one not older than ``max_stale``. Like a lookup, it starts a background fetch when
        the key set is about to expire, or when a retry is due during an outage.
        """
        now = self._clock()
        key = self._policy.settled_key(kid, now)
        if key is not None:
            return key
        self._report.keys_in_use(self._policy, now)
        key, action = self._policy.trusted(kid, now)
        if action is Action.FETCH_IN_BACKGROUND:
            self._fetch_in_background()
        return key

    def still_trusts(self, kid: str | None, key: VerificationKey) -> bool:
        """Whether ``key`` is still what ``kid`` names and may be trusted; never waits.

        What a remembered token asks on every request: one look at the fresh set, or
        `cached_key` when the set is due for a refresh or expired.
        """
        snapshot = self._policy.snapshot
        if snapshot is not None and self._clock() < snapshot.refresh_at:
            return snapshot.keys.find(kid) is key
        return self.cached_key(kid) is key

    def _look_up(self, kid: str | None) -> tuple[VerificationKey | None, bool, bool]:
        """What both lookups share: a fresh key, or whether to wait for a fetch.

        The third value says whether ``kid`` names a key the fresh set lacks: the fetch,
        if any, is a refetch for an unknown key.
        """
        now = self._clock()
        key = self._policy.settled_key(kid, now)
        if key is not None:
            return key, False, False
        self._report.keys_in_use(self._policy, now)
        key, action = self._policy.lookup(kid, now)
        if action is Action.FETCH_IN_BACKGROUND:
            self._fetch_in_background()
        unknown = key is None and self._lacks(kid, now)
        if unknown and action is Action.ANSWER:
            self._report.refetch_held_back()
        return key, action is Action.FETCH, unknown

    def _lacks(self, kid: str | None, now: float) -> bool:
        """Whether ``kid`` names a key that the fresh key set does not hold."""
        snapshot = self._policy.snapshot
        return (
            kid is not None
            and snapshot is not None
            and now < snapshot.expires_at
            and snapshot.keys.find(kid) is None
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetch the key set now (joining a fetch already running).

        Raises `IssuerUnavailableError` when the fetch fails; the keys known
        before are kept.
        """
        if not await asyncio.shield(self._fetch_task(None)):
            raise IssuerUnavailableError(retry_after=self._policy.retry_after(self._clock()))

    async def warm_up(self) -> None:
        """Fetch the key set if none is loaded yet; a failure is logged, not raised."""
        if self._policy.snapshot is None:
            await asyncio.shield(self._fetch_task(None))

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
        """`aclose` for code outside an event loop: nothing to release, no connection is kept.

        A background fetch running in a thread is left to finish (it is bounded by
        ``timeout``).
        """

    # -- scheduling ----------------------------------------------------------------------

    def _fetch_task(self, refetch_for: str | None) -> asyncio.Task[bool]:
        """The fetch running in this event loop, started if there is none (single flight).

        ``refetch_for`` is the unknown key id a new fetch is started for, if any.
        """
        loop = asyncio.get_running_loop()
        inflight = self._inflight
        if inflight is not None and inflight[0] is loop and not inflight[1].done():
            return inflight[1]
        task = loop.create_task(self._fetch_async(refetch_for))
        self._inflight = (loop, task)
        task.add_done_callback(self._forget_task)
        return task

    def _forget_task(self, task: asyncio.Task[bool]) -> None:
        inflight = self._inflight
        if inflight is not None and inflight[1] is task:
            self._inflight = None

    def _fetch_in_this_thread(self, kid: str | None, unknown: bool) -> None:
        """Fetch here, unless a fetch that ran while this thread waited made it needless.

        A caller waits for another thread's fetch no longer than the fetch timeout, and
        is then answered from what is known.
        """
        if not self._sync_lock.acquire(timeout=self._source.timeout):
            return
        try:
            if self._policy.next_step(kid, self._clock()) is Action.FETCH:
                self._fetch_sync(kid if unknown else None)
        finally:
            self._sync_lock.release()

    def _fetch_in_background(self) -> None:
        """Start a fetch nobody waits for.

        It runs in a thread unless the cache was given an async client, which belongs to
        a long-lived event loop: a task of the caller's loop may be cut short when that
        loop ends (a ``TestClient`` without ``with`` ends one after each request).
        """
        if self._clients.given is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self._fetch_task(None)
                return
        if not self._sync_lock.acquire(blocking=False):
            return  # a blocking fetch is already running
        try:
            thread = threading.Thread(
                target=self._fetch_sync_then_unlock, name=_THREAD_NAME, daemon=True
            )
            thread.start()
        except BaseException:
            self._sync_lock.release()
            raise

    def _fetch_sync_then_unlock(self) -> None:
        try:
            self._fetch_sync(None)
        finally:
            self._sync_lock.release()

    # -- one attempt ---------------------------------------------------------------------

    async def _fetch_async(self, refetch_for: str | None) -> bool:
        flow = self._begin_attempt(refetch_for)
        started = self._report.start_timer()
        with self._report.download_span():
            try:
                async with self._clients.for_async() as client:
                    download = await io.run_async(flow, client)
            except Exception as exc:  # every way a fetch can fail counts as a failed fetch
                return self._failed(exc, started)
            return self._succeeded(download, started)

    def _fetch_sync(self, refetch_for: str | None) -> bool:
        flow = self._begin_attempt(refetch_for)
        started = self._report.start_timer()
        with self._report.download_span():
            try:
                with self._clients.for_sync() as client:
                    download = io.run_sync(flow, client)
            except Exception as exc:  # every way a fetch can fail counts as a failed fetch
                return self._failed(exc, started)
            return self._succeeded(download, started)

    def _begin_attempt(self, refetch_for: str | None) -> io.Flow[Download]:
        self._policy.begin_attempt(self._clock())
        if refetch_for is not None:
            self._report.refetching_for(refetch_for)
        snapshot = self._policy.snapshot
        return download_keys(
            self._source,
            snapshot.keys if snapshot is not None else None,
            on_jwks_request=self._count_jwks_request,
        )

    def _count_jwks_request(self) -> None:
        self.fetch_count += 1

    # -- outcomes ------------------------------------------------------------------------

    def _succeeded(self, download: Download, started: float) -> bool:
        previous = self._policy.snapshot
        failures = self._policy.failures
        now = self._clock()
        self._policy.record_success(download.keys, download.ttl, now)
        self._report.succeeded(
            previous.keys if previous is not None else None, download.keys, failures, started, now
        )
        return True

    def _failed(self, exc: Exception, started: float) -> bool:
        now = self._clock()
        self._policy.record_failure(now)
        self._report.failed(exc, self._policy, started, now)
        return False
