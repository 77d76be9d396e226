"""The key cache: the only part of the library that talks to the token issuer.

It downloads the issuer's JWKS lazily, keeps it for a TTL, refreshes it in the background
before it expires, refetches early (at most once per cooldown) when a token names a key it
does not know, and keeps serving the last good key set through an outage of the issuer.

What to do when is `FreshnessPolicy`'s to say and how to download is `download_keys`'s;
this module schedules the downloads (one at a time per event loop, or in a thread) and runs
them with the drivers of `fastapi_isp_jwt.io`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext

import httpx

from fastapi_isp_jwt import io
from fastapi_isp_jwt.errors import ConfigurationError, IssuerUnavailableError, KeySetError
from fastapi_isp_jwt.grammar import check_endpoint_url, well_known_url
from fastapi_isp_jwt.keycache.clients import DownloadClients
from fastapi_isp_jwt.keycache.flow import Download, FetchError, Source, download_keys
from fastapi_isp_jwt.keycache.policy import Action, FreshnessPolicy
from fastapi_isp_jwt.keys import KeySet, VerificationKey

__all__ = ["JWKSCache"]

# The name operators already route and filter; it predates the cache being a package.
logger = logging.getLogger("fastapi_isp_jwt.jwks")

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
        jwks_url, discovery_url = _locate(jwks_url, issuer, discovery)
        for name, value in (("ttl", ttl), ("timeout", timeout)):
            if not value > 0:
                raise ConfigurationError(f"{name} must be positive")
        for name, value in (("cooldown", cooldown), ("max_stale", max_stale)):
            if not value >= 0:
                raise ConfigurationError(f"{name} must not be negative")
        if max_bytes <= 0:
            raise ConfigurationError("max_bytes must be positive")

        self._source = Source(
            jwks_url=jwks_url,
            discovery_url=discovery_url,
            issuer=issuer,
            ttl=float(ttl),
            timeout=float(timeout),
            max_bytes=max_bytes,
        )
        self._policy = FreshnessPolicy(cooldown=float(cooldown), max_stale=float(max_stale))
        self._http_client = http_client
        self._sync_http_client = sync_http_client
        self._own_clients = DownloadClients()
        self._clock = clock
        self.fetch_count = 0
        # The in-flight async fetch and the loop it runs in: a task of another (perhaps
        # closed) loop is never awaited, a new one is started instead.
        self._inflight: tuple[asyncio.AbstractEventLoop, asyncio.Task[bool]] | None = None
        self._sync_lock = threading.Lock()

    @property
    def source(self) -> str:
        """Where the keys come from (the JWKS URL, or the discovery URL)."""
        return self._source.jwks_url or self._source.discovery_url or ""

    # -- lookups -------------------------------------------------------------------------

    async def get_key(self, kid: str | None) -> VerificationKey:
        """The key ``kid`` names, fetching the key set first when it must.

        Raises `InvalidTokenError` for a key the issuer does not publish (or a
        missing ``kid`` while it publishes several), and `IssuerUnavailableError`
        when no usable key set can be had.
        """
        key, must_fetch = self._look_up(kid)
        if key is not None:
            return key
        if must_fetch:
            await asyncio.shield(self._fetch_task())
        return self._policy.answer(kid, self._clock())

    def get_key_sync(self, kid: str | None) -> VerificationKey:
        """`get_key` for code that runs outside an event loop."""
        key, must_fetch = self._look_up(kid)
        if key is not None:
            return key
        if must_fetch:
            self._fetch_in_this_thread(kid)
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

    def _look_up(self, kid: str | None) -> tuple[VerificationKey | None, bool]:
        """What both lookups share: a fresh key, or whether to wait for a fetch."""
        now = self._clock()
        key = self._policy.settled_key(kid, now)
        if key is not None:
            return key, False
        key, action = self._policy.lookup(kid, now)
        if action is Action.FETCH_IN_BACKGROUND:
            self._fetch_in_background()
        return key, action is Action.FETCH

    # -- lifecycle -----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetch the key set now (joining a fetch already running).

        Raises `IssuerUnavailableError` when the fetch fails; the keys known
        before are kept.
        """
        if not await asyncio.shield(self._fetch_task()):
            raise IssuerUnavailableError(retry_after=self._policy.retry_after(self._clock()))

    async def warm_up(self) -> None:
        """Fetch the key set if none is loaded yet; a failure is logged, not raised."""
        if self._policy.snapshot is None:
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
        """`aclose` for code outside an event loop: nothing to release, no connection is kept.

        A background fetch running in a thread is left to finish (it is bounded by
        ``timeout``).
        """

    # -- scheduling ----------------------------------------------------------------------

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

    def _fetch_in_this_thread(self, kid: str | None) -> None:
        """Fetch here, unless a fetch that ran while this thread waited made it needless.

        A caller waits for another thread's fetch no longer than the fetch timeout, and
        is then answered from what is known.
        """
        if not self._sync_lock.acquire(timeout=self._source.timeout):
            return
        try:
            if self._policy.next_step(kid, self._clock()) is Action.FETCH:
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
                target=self._fetch_sync_then_unlock, name=_THREAD_NAME, daemon=True
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

    # -- one attempt ---------------------------------------------------------------------

    async def _fetch_async(self) -> bool:
        flow = self._begin_attempt()
        try:
            async with self._async_client() as client:
                return self._succeeded(await io.run_async(flow, client))
        except Exception as exc:  # every way a fetch can fail counts as a failed fetch
            return self._failed(exc)

    def _fetch_sync(self) -> bool:
        flow = self._begin_attempt()
        try:
            with self._sync_client() as client:
                return self._succeeded(io.run_sync(flow, client))
        except Exception as exc:  # every way a fetch can fail counts as a failed fetch
            return self._failed(exc)

    def _async_client(self) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        if self._http_client is not None:
            return nullcontext(self._http_client)
        return self._own_clients.async_()

    def _sync_client(self) -> AbstractContextManager[httpx.Client]:
        if self._sync_http_client is not None:
            return nullcontext(self._sync_http_client)
        return self._own_clients.sync()

    def _begin_attempt(self) -> io.Flow[Download]:
        self._policy.begin_attempt(self._clock())
        snapshot = self._policy.snapshot
        return download_keys(
            self._source,
            snapshot.keys if snapshot is not None else None,
            on_jwks_request=self._count_jwks_request,
        )

    def _count_jwks_request(self) -> None:
        self.fetch_count += 1

    # -- outcomes ------------------------------------------------------------------------

    def _succeeded(self, download: Download) -> bool:
        previous = self._policy.snapshot
        failures = self._policy.failures
        self._policy.record_success(download.keys, download.ttl, self._clock())
        if failures:
            logger.info("JWKS %s: fetched again after %d failed attempt(s)", self.source, failures)
        self._log_changes(previous.keys if previous is not None else None, download.keys)
        return True

    def _failed(self, exc: Exception) -> bool:
        now = self._clock()
        self._policy.record_failure(now)
        reason = _describe(exc)
        if self._policy.failures > 1:
            logger.debug("JWKS %s: fetch failed again (%s)", self.source, reason)
            return False
        snapshot = self._policy.snapshot
        if snapshot is None:
            consequence = "no key is known yet"
        else:
            age = now - snapshot.fetched_at
            consequence = f"serving the key set fetched {age:.0f} s ago"
        logger.warning("JWKS %s: fetch failed (%s); %s", self.source, reason, consequence)
        return False

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


def _locate(
    jwks_url: str | None, issuer: str | None, discovery: bool
) -> tuple[str | None, str | None]:
    """The JWKS URL, or the discovery URL, that the options name; checked."""
    if not discovery:
        if jwks_url is None:
            if issuer is None:
                raise ConfigurationError("the key cache needs jwks_url or issuer")
            jwks_url = well_known_url(issuer, "jwks.json")
        return check_endpoint_url("jwks_url", jwks_url), None
    if issuer is None:
        raise ConfigurationError("discovery=True needs the issuer")
    if jwks_url is not None:
        raise ConfigurationError("give jwks_url or discovery=True, not both")
    discovery_url = well_known_url(issuer, "openid-configuration")
    return None, check_endpoint_url("the discovery URL", discovery_url)


def _describe(exc: Exception) -> str:
    if isinstance(exc, (FetchError, KeySetError)):
        return str(exc)
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text[:200]}" if text else name


def _kid_list(kids: frozenset[str]) -> str:
    return "[" + ", ".join(repr(kid[:64]) for kid in sorted(kids)) + "]"
