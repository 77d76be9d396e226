"""The HTTP client of each key download: the one the cache was given, else a short-lived one.

Short-lived clients share one TLS context per cache. A new httpx client builds its TLS
context from the CA bundle: some 30 ms of CPU, nearly all of it holding the GIL, so a
server's event loop stands still meanwhile. A healthy issuer is asked rarely, but while it
fails the cache retries every few seconds and each attempt paid that again. Built once, the
context makes a retry cost what a refresh costs; connections are still never kept between
downloads.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)

import httpx

from fastapi_isp_jwt import io

__all__ = ["DownloadClients"]


class DownloadClients:
    """The client for each download: ``given`` or ``given_sync`` when set, else a fresh one.

    A given client is never closed here; a fresh one is closed after its download. The TLS
    context of the fresh ones is made on first use.
    """

    def __init__(
        self, given: httpx.AsyncClient | None = None, given_sync: httpx.Client | None = None
    ) -> None:
        self.given = given
        self._given_sync = given_sync
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def for_async(self) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        """The client of one download run in an event loop."""
        return self.async_() if self.given is None else nullcontext(self.given)

    def for_sync(self) -> AbstractContextManager[httpx.Client]:
        """The client of one download run in a thread."""
        return self.sync() if self._given_sync is None else nullcontext(self._given_sync)

    def tls_context(self) -> ssl.SSLContext:
        # What httpx would build for each client (its CA bundle, SSL_CERT_FILE honoured).
        with self._lock:
            if self._context is None:
                self._context = httpx.create_ssl_context()
            return self._context

    @contextmanager
    def sync(self) -> Iterator[httpx.Client]:
        with (
            httpx.HTTPTransport(verify=self.tls_context()) as transport,
            io.sync_client(transport) as client,
        ):
            yield client

    @asynccontextmanager
    async def async_(self) -> AsyncIterator[httpx.AsyncClient]:
        async with (
            httpx.AsyncHTTPTransport(verify=self.tls_context()) as transport,
            io.async_client(transport) as client,
        ):
            yield client
