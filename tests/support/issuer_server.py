"""A real HTTP server on 127.0.0.1 that publishes a JWKS, and misbehaves on request.

The tests switch it between faults (5xx, garbage, slow, redirect, huge body...) to prove
how the key cache behaves against a real socket, not a mocked transport.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass
class Fault:
    """How the server answers instead of serving the JWKS."""

    status: int = 200
    body: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


OK = Fault()


def server_error() -> Fault:
    return Fault(status=500, body=b'{"error":"boom"}')


def garbage() -> Fault:
    return Fault(body=b"<html>not json</html>", content_type="text/html")


def not_a_jwks() -> Fault:
    return Fault(body=b'{"hello": "world"}')


def slow(seconds: float) -> Fault:
    return Fault(delay=seconds)


def redirect(location: str = "http://127.0.0.1:9/elsewhere") -> Fault:
    return Fault(status=302, body=b"", headers=(("Location", location),))


def huge(size: int = 2 * 1024 * 1024) -> Fault:
    return Fault(body=b'{"keys": [' + b" " * size + b"]}")


class IssuerServer:
    """Serves ``jwks`` (and discovery metadata) at ``url``; counts every JWKS request."""

    def __init__(self, jwks: Callable[[], dict[str, Any]] | None = None) -> None:
        self._jwks_source: Callable[[], dict[str, Any]] = jwks or (lambda: {"keys": []})
        self.fault: Fault = OK
        self.cache_control: str | None = None
        self.jwks_requests = 0
        self.discovery_issuer: str | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The issuer URL, with the trailing slash Auth0 uses."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    def serve(self, jwks: Callable[[], dict[str, Any]]) -> None:
        self._jwks_source = jwks

    def start(self) -> IssuerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.fault = OK
            self.cache_control = None
            self.jwks_requests = 0
            self.discovery_issuer = None

    def __enter__(self) -> IssuerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == JWKS_PATH:
                    with server._lock:
                        server.jwks_requests += 1
                        fault = server.fault
                    self._answer_jwks(fault)
                elif self.path == DISCOVERY_PATH:
                    issuer = server.discovery_issuer or server.url
                    meta = {"issuer": issuer, "jwks_uri": server.jwks_url}
                    self._send(200, json.dumps(meta).encode(), "application/json", ())
                else:
                    self._send(404, b"{}", "application/json", ())

            def _answer_jwks(self, fault: Fault) -> None:
                if fault.delay:
                    time.sleep(fault.delay)
                body = fault.body
                if body is None:
                    body = json.dumps(server._jwks_source()).encode()
                headers = fault.headers
                if server.cache_control and fault.status == 200:
                    headers = (*headers, ("Cache-Control", server.cache_control))
                self._send(fault.status, body, fault.content_type, headers)

            def _send(
                self,
                status: int,
                body: bytes,
                content_type: str,
                headers: tuple[tuple[str, str], ...],
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

        return Handler


def closed_port_url() -> str:
    """A JWKS URL on 127.0.0.1 where nothing listens: connections are refused."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{JWKS_PATH}"


@dataclass
class Stream:
    """A JWKS answer with no Content-Length whose body keeps coming until the client leaves.

    ``chunk`` is written every ``interval`` seconds, up to ``limit`` bytes in all (a bound
    so a client that never stops reading still finishes). Only a client that counts what it
    reads, or watches the clock while reading, gets out early.
    """

    chunk: bytes
    interval: float = 0.0
    limit: int = 256 * 1024 * 1024


def endless(chunk_size: int = 64 * 1024) -> Stream:
    """A body far larger than any JWKS, sent as fast as the client takes it."""
    return Stream(chunk=b" " * chunk_size)


def trickle(interval: float) -> Stream:
    """One byte every ``interval`` seconds: each read is quick, the whole body never ends."""
    return Stream(chunk=b" ", interval=interval)


class StreamingIssuerServer(IssuerServer):
    """An :class:`IssuerServer` that can also answer the JWKS with a :class:`Stream`.

    ``streamed_bytes`` is how much of the last stream was written before the client left,
    and ``stream_ended`` is set once the server has stopped writing it.
    """

    def __init__(self, jwks: Callable[[], dict[str, Any]] | None = None) -> None:
        self.stream: Stream | None = None
        self.streamed_bytes = 0
        self.stream_ended = threading.Event()
        super().__init__(jwks)
        self._httpd.handle_error = self._handle_error  # type: ignore[method-assign]

    def _handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-stream are the point here, not news worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            ThreadingHTTPServer.handle_error(self._httpd, request, client_address)  # type: ignore[arg-type]

    def reset(self) -> None:
        super().reset()
        self.stream = None
        self.streamed_bytes = 0
        self.stream_ended = threading.Event()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self
        base = super()._handler_class()

        class StreamingHandler(base):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:
                stream = server.stream
                if stream is None or self.path != JWKS_PATH:
                    super().do_GET()
                    return
                with server._lock:
                    server.jwks_requests += 1
                    server.streamed_bytes = 0
                    ended = server.stream_ended
                self.close_connection = True
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b'{"keys": [')
                    while server.streamed_bytes < stream.limit:
                        self.wfile.write(stream.chunk)
                        self.wfile.flush()
                        server.streamed_bytes += len(stream.chunk)
                        if stream.interval:
                            time.sleep(stream.interval)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what the stream is there to prove
                finally:
                    ended.set()

        return StreamingHandler
