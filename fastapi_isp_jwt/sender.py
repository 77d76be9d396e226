"""What a request says about its sender besides the token: the URL it addressed, its certificate.

A DPoP proof names the URL the client sent its request to (``htu``), and an mTLS-bound
token the client certificate (``x5t#S256``). Behind a reverse proxy neither is what the
application sees, so both are read from the proxy's headers, but only from proxies the
application names (``trusted_proxies``): anyone else could send those headers too.
``public_base_url`` fixes the scheme, host and any path prefix outright.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Collection, MutableMapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fastapi_isp_jwt.dpop import certificate_thumbprint

__all__ = ["application_url", "client_certificate", "request_url"]

Scope = MutableMapping[str, Any]

_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _from_trusted_proxy(scope: Scope, trusted_proxies: Collection[str]) -> bool:
    client = scope.get("client")
    return bool(trusted_proxies) and client is not None and client[0] in trusted_proxies


@functools.lru_cache(maxsize=256)
def _pem_thumbprint(pem: str) -> str | None:
    # A connection presents one certificate for all its requests: parsing it costs more
    # than the rest of a remembered token's check, so each one is parsed once.
    try:
        der = x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(Encoding.DER)
    except (ValueError, UnicodeError):
        return None
    return certificate_thumbprint(der)


def request_url(
    scope: Scope, *, public_base_url: str | None, trusted_proxies: Collection[str]
) -> str:
    """The URL the client addressed, without query: what a DPoP proof's ``htu`` must name.

    A WebSocket handshake counts as the ``http``/``https`` request it is.
    """
    raw_path = scope.get("raw_path")
    path: str = (
        raw_path.decode("latin-1") if raw_path else scope.get("root_path", "") + scope["path"]
    )
    return _origin(scope, public_base_url, trusted_proxies) + path


def application_url(
    scope: Scope, *, public_base_url: str | None, trusted_proxies: Collection[str]
) -> str:
    """The URL clients address the application's root by (its ``root_path``), no end slash."""
    root_path: str = scope.get("root_path", "")
    return _origin(scope, public_base_url, trusted_proxies) + root_path


def _origin(scope: Scope, public_base_url: str | None, trusted_proxies: Collection[str]) -> str:
    """Scheme and host the client addressed, or the public base URL that stands for them."""
    if public_base_url is not None:
        return public_base_url.rstrip("/")
    scheme: str = scope.get("scheme", "http")  # optional in ASGI, "http" (or "ws") if absent
    host = _header(scope, b"host")
    if _from_trusted_proxy(scope, trusted_proxies):
        proto = _header(scope, b"x-forwarded-proto")
        forwarded_host = _header(scope, b"x-forwarded-host")
        scheme = proto.split(",")[0].strip().lower() if proto else scheme
        host = forwarded_host.split(",")[0].strip() if forwarded_host else host
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    # Some proxies forward a handshake's scheme as ws/wss too: it is an http(s) request.
    return f"{_HTTP_SCHEME.get(scheme, scheme)}://{host}"


def client_certificate(scope: Scope, *, trusted_proxies: Collection[str]) -> str | None:
    """The ``x5t#S256`` of the client's TLS certificate, if the request came with one.

    From the server's TLS extension (ASGI ``tls``), or from a trusted proxy's
    ``Client-Cert`` header (RFC 9440: the DER certificate as ``:base64:``).
    """
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    if chain:
        return _pem_thumbprint(chain[0]) if type(chain[0]) is str else None
    if not _from_trusted_proxy(scope, trusted_proxies):
        return None
    field = _header(scope, b"client-cert")
    if field is None or len(field) < 3 or field[0] != ":" or field[-1] != ":":
        return None
    try:
        der = base64.b64decode(field[1:-1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return certificate_thumbprint(der)
