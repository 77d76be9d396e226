"""The tests' own loopback issuer (tests/support/issuer_server.py) does what the tests rely on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.faults import (
    connection_reset,
    garbage,
    hang,
    server_error,
    truncated,
)
from tests.support.issuer_server import DISCOVERY_PATH, JWKS_PATH, IssuerServer


@pytest.fixture
def own_server() -> Iterator[IssuerServer]:
    with IssuerServer(lambda: {"keys": [{"kid": "one"}]}) as running:
        yield running


def test_requests_are_counted_by_path(own_server: IssuerServer) -> None:
    httpx.get(own_server.jwks_url)
    httpx.get(own_server.jwks_url)
    httpx.get(own_server.discovery_url)

    assert own_server.requests == {JWKS_PATH: 2, DISCOVERY_PATH: 1}


def test_a_fault_is_injected_on_one_path_only(own_server: IssuerServer) -> None:
    own_server.inject(DISCOVERY_PATH, server_error())

    assert httpx.get(own_server.discovery_url).status_code == 500
    assert httpx.get(own_server.jwks_url).json() == {"keys": [{"kid": "one"}]}


def test_wrong_content_is_served_as_given(own_server: IssuerServer) -> None:
    own_server.fault = garbage()

    response = httpx.get(own_server.jwks_url)

    assert response.headers["content-type"] == "text/html"
    assert response.content == b"<html>not json</html>"


def test_a_truncated_body_ends_before_its_announced_length(own_server: IssuerServer) -> None:
    own_server.fault = truncated()

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(own_server.jwks_url)


def test_a_reset_connection_gives_no_answer(own_server: IssuerServer) -> None:
    own_server.fault = connection_reset()

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(own_server.jwks_url)


def test_a_hanging_answer_outlasts_the_client_timeout(own_server: IssuerServer) -> None:
    own_server.fault = hang()

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(own_server.jwks_url, timeout=0.2)


def test_swapping_the_key_set_rotates_the_published_keys(own_server: IssuerServer) -> None:
    own_server.serve(lambda: {"keys": [{"kid": "two"}]})

    assert httpx.get(own_server.jwks_url).json() == {"keys": [{"kid": "two"}]}


def test_reset_restores_normal_service_and_zero_counts(own_server: IssuerServer) -> None:
    own_server.fault = server_error()
    httpx.get(own_server.jwks_url)

    own_server.reset()

    assert own_server.jwks_requests == 0
    assert httpx.get(own_server.jwks_url).status_code == 200
