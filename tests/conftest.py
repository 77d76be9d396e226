from __future__ import annotations

from collections.abc import Iterator

import pytest

from fastapi_isp_jwt.testing import TestIssuer
from tests.support.issuer_server import IssuerServer
from tests.support.redis_server import RedisServer, find_redis_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def _session_server() -> Iterator[IssuerServer]:
    with IssuerServer() as server:
        yield server


@pytest.fixture(scope="session")
def _session_issuer(_session_server: IssuerServer) -> TestIssuer:
    return TestIssuer(issuer=_session_server.url)


@pytest.fixture
def server(_session_server: IssuerServer, _session_issuer: TestIssuer) -> Iterator[IssuerServer]:
    """The real JWKS server on 127.0.0.1, serving ``issuer``'s keys, reset after each test."""
    _session_server.reset()
    _session_server.serve(_session_issuer.jwks)
    yield _session_server
    _session_server.reset()


@pytest.fixture
def issuer(server: IssuerServer, _session_issuer: TestIssuer) -> TestIssuer:
    """The issuer whose JWKS ``server`` publishes (RS256 keys, organization "acme")."""
    return _session_issuer


@pytest.fixture
def fresh_issuer(server: IssuerServer) -> TestIssuer:
    """An issuer with keys of its own, for tests that rotate or retire keys."""
    fresh = TestIssuer(issuer=server.url)
    server.serve(fresh.jwks)
    return fresh


@pytest.fixture(scope="session")
def redis_executable() -> str:
    """The ``redis-server`` to start (skips without it, fails in CI: `find_redis_server`)."""
    return find_redis_server()


@pytest.fixture(scope="session")
def redis_server(redis_executable: str) -> Iterator[RedisServer]:
    """A real Redis on 127.0.0.1, no persistence, shared by the session."""
    with RedisServer(redis_executable) as server:
        yield server
