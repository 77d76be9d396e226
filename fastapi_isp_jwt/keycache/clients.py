"""Short-lived HTTP clients for key downloads, sharing one TLS context per cache.

A new httpx client builds its TLS context from the CA bundle: some 30 ms of CPU, nearly
all of it holding the GIL, so a server's event loop stands still meanwhile. A healthy
issuer is asked rarely, but while it fails the cache retries every few seconds and each
attempt paid that again. Built once, the context makes a retry cost what a refresh costs;
connections are still never kept between downloads.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx

from fastapi_isp_jwt import io

__all__ = ["DownloadClients"]


class DownloadClients:
    """Makes a fresh client for each download; the TLS context is made on first use."""

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

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
