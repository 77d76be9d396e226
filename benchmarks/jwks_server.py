"""The one local issuer every contender is pointed at: JWKS and discovery over HTTP on 127.0.0.1.

It publishes the documents of the tenant being imitated (``iss`` and ``jwks_uri`` name
``https://istreamplanet.auth0.com/``) and counts every JWKS download, which is how the
cold-cache measurement sees fetches. ``Cache-Control: max-age=600`` keeps every
contender's key cache steady for the length of a run, so no timed round pays for a
refresh that another contender would not pay for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class LocalIssuerServer:
    """Serves ``jwks()`` at :attr:`jwks_url`, and discovery metadata naming ``issuer``.

    Use it as a context manager; the port is chosen by the system.
    """

    def __init__(self, issuer: str, jwks: Callable[[], dict[str, Any]]) -> None:
        self.issuer = issuer
        self._jwks = jwks
        self._jwks_requests = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="bench-jwks", daemon=True
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    @property
    def jwks_url(self) -> str:
        return self.base_url.rstrip("/") + JWKS_PATH

    @property
    def jwks_requests(self) -> int:
        """How many times the JWKS has been served since the server started."""
        with self._lock:
            return self._jwks_requests

    def local_url(self, url: str) -> str:
        """Map a URL on the imitated tenant to the same path on this server."""
        if not url.startswith(self.issuer):
            raise ValueError(f"{url!r} is not a URL of {self.issuer}")
        return self.base_url + url[len(self.issuer) :]

    def __enter__(self) -> LocalIssuerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _count_jwks_request(self) -> None:
        with self._lock:
            self._jwks_requests += 1

    def _discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + JWKS_PATH.lstrip("/"),
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Access logs would drown the results table."""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == JWKS_PATH:
                    server._count_jwks_request()
                    self._send(200, server._jwks())
                elif path == DISCOVERY_PATH:
                    self._send(200, server._discovery())
                else:
                    self._send(404, {"error": "not found"})

            def _send(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Cache-Control", "public, max-age=600")
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away; nobody is left to answer

        return Handler
