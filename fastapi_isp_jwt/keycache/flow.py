"""One download of the issuer's key set, written once as a flow for `fastapi_isp_jwt.io`.

With discovery, the OpenID configuration is read first and its ``jwks_uri`` followed; then
the JWKS itself. Both requests together must finish within the timeout. What comes back is
the key set and how long to trust it, or `FetchError` (or a network error) saying why not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from fastapi_isp_jwt.errors import ConfigurationError, KeySetError
from fastapi_isp_jwt.grammar import check_endpoint_url, well_known_url
from fastapi_isp_jwt.io import Fetch, Flow
from fastapi_isp_jwt.keys import KeySet, load_jwks

__all__ = [
    "MAX_CACHE_SECONDS",
    "MIN_CACHE_SECONDS",
    "Download",
    "FailureKind",
    "FetchError",
    "Source",
    "download_keys",
    "locate",
    "ttl_from",
]

# Bounds for the issuer's Cache-Control max-age: a tiny one must not turn every request
# into a fetch, a huge one must not pin keys after the issuer has removed them.
MIN_CACHE_SECONDS = 60.0
MAX_CACHE_SECONDS = 86400.0

_REQUEST_HEADERS = {
    "Accept": "application/json",
    # Counting decoded bytes against max_bytes only bounds memory if nothing is compressed.
    "Accept-Encoding": "identity",
    "User-Agent": "fastapi-isp-jwt",
}


FailureKind = Literal["http_error", "timeout", "invalid_document"]
"""How a download failed, as the ``result`` of the key-download metric names it."""


class FetchError(Exception):
    """A download that did not yield a usable document (status, size, JSON, metadata).

    ``kind`` sorts it for metrics: an HTTP status other than 200, the time running out, or
    a document that is too large, not JSON, or not a usable JWKS or OpenID configuration.
    """

    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


@dataclass(frozen=True, slots=True)
class Source:
    """Where the keys come from and the limits of one download.

    Exactly one of ``jwks_url`` and ``discovery_url`` is set; with discovery, ``issuer``
    is what the OpenID configuration must name. ``ttl`` is the lifetime of a key set
    served without ``Cache-Control: max-age``.
    """

    jwks_url: str | None
    discovery_url: str | None
    issuer: str | None
    ttl: float
    timeout: float
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Download:
    """What a successful download installs: the key set and how long to trust it."""

    keys: KeySet
    ttl: float


def download_keys(
    source: Source,
    previous: KeySet | None,
    *,
    on_jwks_request: Callable[[], None],
    clock: Callable[[], float] = time.monotonic,
) -> Flow[Download]:
    """Discover (when asked to) and download the key set.

    ``previous`` lends its key objects to keys that did not change; ``on_jwks_request`` is
    called as the JWKS request (not the discovery one) is sent.
    """
    deadline = clock() + source.timeout
    url = source.jwks_url
    if url is None:
        assert source.discovery_url is not None
        metadata, _ = yield from _get_json(source, source.discovery_url, deadline, clock)
        url = _jwks_uri_from(metadata, source.issuer)
    on_jwks_request()
    document, headers = yield from _get_json(source, url, deadline, clock)
    try:
        keys = load_jwks(document, previous)
    except KeySetError as exc:
        raise FetchError(str(exc), "invalid_document") from exc
    return Download(keys, ttl_from(headers.get("cache-control"), source.ttl))


def locate(
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


def ttl_from(cache_control: str | None, default: float) -> float:
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


def _get_json(
    source: Source, url: str, deadline: float, clock: Callable[[], float]
) -> Flow[tuple[object, httpx.Headers]]:
    """GET ``url`` within what is left of the download's time; its JSON and headers."""
    too_slow = f"the issuer did not answer within {source.timeout} s"
    remaining = deadline - clock()
    if remaining <= 0:
        raise FetchError(too_slow, "timeout")
    request = httpx.Request("GET", url, headers=_REQUEST_HEADERS)
    try:
        reply = yield Fetch(request, max_bytes=source.max_bytes, timeout=remaining)
    except TimeoutError:
        raise FetchError(too_slow, "timeout") from None
    assert reply is not None
    if reply.status != 200:
        # Redirects included: the keys must come from the configured place itself.
        raise FetchError(f"the issuer answered HTTP {reply.status}", "http_error")
    if reply.body is None:
        raise FetchError(
            f"the response is larger than {source.max_bytes} bytes", "invalid_document"
        )
    try:
        return json.loads(reply.body), reply.headers
    # JSONDecodeError and UnicodeDecodeError alike; RecursionError: nested past the parser.
    except (ValueError, RecursionError) as exc:
        raise FetchError("the response is not JSON", "invalid_document") from exc


def _jwks_uri_from(metadata: object, issuer: str | None) -> str:
    if not isinstance(metadata, dict):
        raise FetchError("the OpenID configuration is not a JSON object", "invalid_document")
    # RFC 8414 §3.3: metadata for another issuer must not be used.
    if metadata.get("issuer") != issuer:
        raise FetchError("the OpenID configuration names another issuer", "invalid_document")
    jwks_uri = metadata.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError('the OpenID configuration has no "jwks_uri"', "invalid_document")
    try:
        return check_endpoint_url("jwks_uri", jwks_uri)
    except ConfigurationError as exc:
        # The text quotes the issuer's value: keep a hostile one from flooding the log.
        raise FetchError(str(exc)[:200], "invalid_document") from None
