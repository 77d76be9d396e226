"""Serving a test issuer's JWKS and discovery document over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from fastapi_isp_jwt import JWTAuth

__all__ = ["ServedIssuer"]

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class PublishingIssuer(Protocol):
    """What the server needs of a `TestIssuer`, which imports this module (never the reverse)."""

    def auth(self, **options: Any) -> JWTAuth: ...

    def jwks(self) -> dict[str, Any]: ...

    def discovery_document(self, jwks_url: str | None = None) -> dict[str, Any]: ...

    def count_jwks_request(self) -> None: ...


class ServedIssuer:
    """A small HTTP server on 127.0.0.1 publishing one issuer's documents (a `TestIssuer`'s).

    Use it as a context manager; the port is picked by the system. Tokens keep the
    issuer's own ``iss``: only the keys travel over HTTP, from `jwks_url`.
    """

    def __init__(self, issuer: PublishingIssuer) -> None:
        self.issuer = issuer
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="isp-test-issuer", daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL, with a trailing slash."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    @property
    def jwks_url(self) -> str:
        return self.url.rstrip("/") + JWKS_PATH

    @property
    def discovery_url(self) -> str:
        return self.url.rstrip("/") + DISCOVERY_PATH

    def auth(self, **options: Any) -> JWTAuth:
        """A ``JWTAuth`` trusting the issuer and fetching its keys from this server over HTTP.

        Keyword arguments are those of ``JWTAuth`` and win over these defaults.
        """
        return self.issuer.auth(**{"jwks_url": self.jwks_url, **options})

    def start(self) -> ServedIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call more than once.

        Every answer closes its connection, so after `stop` no client reaches the issuer,
        not even one that pooled its connection.
        """
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> ServedIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _handler_for(served: ServedIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: test output is no place for access logs."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == JWKS_PATH:
                served.issuer.count_jwks_request()
                self._send(200, served.issuer.jwks())
            elif path == DISCOVERY_PATH:
                self._send(200, served.issuer.discovery_document(served.jwks_url))
            else:
                self._send(404, {"error": "not found"})

        def _send(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                # One request per connection: a kept-alive connection would outlive stop()
                # in its handler thread and keep answering a test that simulates an outage.
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away; there is nobody left to answer

    return Handler
