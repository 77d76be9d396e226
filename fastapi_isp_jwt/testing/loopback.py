"""Serving HTTP on 127.0.0.1 for tests: one serving loop, and a test issuer's documents on it.

`LoopbackServer` is the serving loop (a thread, an ephemeral port, one `Exchange` per
request); `ServedIssuer` publishes a `TestIssuer`'s JWKS and discovery document with it.
The project's own tests build their misbehaving issuer on the same loop.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Exchange", "LoopbackServer"]


Headers = Sequence[tuple[str, str]]


class Exchange:
    """One request to a `LoopbackServer`, and the means to answer it (or not)."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler
        self.method: str = handler.command
        self.path: str = handler.path.split("?", 1)[0]
        self.headers: Message = handler.headers

    def read_body(self) -> bytes:
        """The request body, announced by Content-Length or sent in chunks."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunks()
        length = int(self.headers.get("Content-Length") or 0)
        return self._handler.rfile.read(length) if length else b""

    def answer(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: Headers = (),
    ) -> None:
        """A whole answer with its Content-Length."""
        self.send_head(status, [("Content-Type", content_type), *headers], length=len(body))
        self.write(body)

    def send_head(self, status: int, headers: Headers, *, length: int | None) -> None:
        """The status line and headers; without a ``length`` the body ends with the connection."""
        handler = self._handler
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        if length is None:
            handler.send_header("Connection", "close")
        else:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()

    def write(self, data: bytes) -> None:
        """Raw bytes to the client, at once."""
        self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def hang_up(self) -> None:
        """Close the connection once this exchange is over, whatever was announced."""
        self._handler.close_connection = True

    def reset(self) -> None:
        """Abort the connection with a TCP reset instead of answering."""
        self.hang_up()
        connection = self._handler.connection
        # A zero linger time turns the close into a reset (RST) rather than a goodbye (FIN).
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    def _read_chunks(self) -> bytes:
        rfile = self._handler.rfile
        chunks: list[bytes] = []
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                rfile.readline()
                return b"".join(chunks)
            chunks.append(rfile.read(size))
            rfile.readline()


Respond = Callable[[Exchange], None]


class LoopbackServer:
    """An HTTP/1.1 server on 127.0.0.1, on a port the system picks, run in a daemon thread.

    Every request with one of ``methods`` is handed to ``respond`` as an `Exchange`;
    other methods get the standard library's 501. A client that hangs up mid-answer ends
    its exchange quietly. `stopping` is set by `stop`, so answers that wait on it end too.
    """

    def __init__(self, respond: Respond, *, methods: Sequence[str] = ("GET",), name: str) -> None:
        self.stopping = threading.Event()
        self._httpd = _Listener(("127.0.0.1", 0), _handler_class(respond, methods))
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The server's base URL, with a trailing slash."""
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call more than once."""
        self.stopping.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def _serve(self) -> None:
        # A short poll keeps stop() quick: fixtures start and stop servers for every test.
        self._httpd.serve_forever(poll_interval=0.02)


class _Listener(ThreadingHTTPServer):
    # Room for every connection a concurrency test opens at once: with the default
    # backlog of 5 the kernel drops the rest and the client retries a second later.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a size cap, a deadline, a test of an outage) is the
        # behaviour under test, not a server fault worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_class(respond: Respond, methods: Sequence[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; with Nagle on, every keep-alive
        # answer would wait for the client's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: test output is no place for access logs."""

        def dispatch(self) -> None:
            try:
                respond(Exchange(self))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away; nobody is left to answer

    for method in methods:
        setattr(Handler, f"do_{method}", Handler.dispatch)
    return Handler
