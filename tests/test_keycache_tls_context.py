"""Key downloads share one TLS context per cache: a retry during an outage stays cheap.

Building a TLS context loads the CA bundle (tens of milliseconds holding the GIL, the
event loop standing still). The cache builds it once, however many downloads follow.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.clock import FakeClock
from tests.support.issuer_server import IssuerServer


@pytest.fixture
def bundle_loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every CA bundle load from now on, as the arguments it was called with."""
    loads: list[Any] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    return loads


@pytest.mark.anyio
async def test_async_downloads_load_the_ca_bundle_once(
    server: IssuerServer, issuer: TestIssuer, bundle_loads: list[Any]
) -> None:
    cache = JWKSCache(server.jwks_url)
    for _ in range(3):
        await cache.refresh()
    assert cache.fetch_count == 3
    assert len(bundle_loads) <= 1


def test_sync_downloads_load_the_ca_bundle_once(
    server: IssuerServer, issuer: TestIssuer, bundle_loads: list[Any]
) -> None:
    clock = FakeClock()
    cache = JWKSCache(server.jwks_url, ttl=10, clock=clock)
    for _ in range(3):
        cache.get_key_sync(issuer.signing_key.kid)
        clock.advance(11)  # expired: the next lookup downloads again
    assert cache.fetch_count == 3
    assert len(bundle_loads) <= 1
