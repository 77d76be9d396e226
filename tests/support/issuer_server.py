"""The one test issuer on 127.0.0.1: JWKS, discovery, token endpoint, and faults on request.

Tests (and the benchmarks) use it to prove how the library behaves against a real socket,
not a mocked transport. It serves

- ``/.well-known/jwks.json``: whatever key set `serve` was given (a swap is a key rotation);
- ``/.well-known/openid-configuration``: metadata naming `url` (or `discovery_issuer`);
- ``/oauth/token`` and ``/me``: a Client Credentials endpoint and a resource accepting
  its tokens, Bearer or DPoP-bound (see `TokenEndpoint`).

Any path can be made to misbehave with `inject` (``fault`` is the JWKS path's fault), and
`requests` counts every request by path. The HTTP serving loop is the testing kit's
`LoopbackServer`, the same one behind ``fastapi_isp_jwt.testing.ServedIssuer``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from fastapi_isp_jwt.testing.loopback import Exchange, LoopbackServer
from tests.support.faults import (
    OK,
    Fault,
    Reply,
    Stream,
    StreamProgress,
    TrickledHead,
    json_reply,
    send_reply,
    send_stream,
    send_trickled_head,
)
from tests.support.token_endpoint import TokenEndpoint

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
TOKEN_PATH = "/oauth/token"
RESOURCE_PATH = "/me"

Document = Callable[[], dict[str, Any]]
_Server = TypeVar("_Server", bound="IssuerServer")


class IssuerServer(TokenEndpoint):
    """Serves an issuer's documents and token endpoint at `url`; counts, and misbehaves."""

    def __init__(
        self,
        jwks: Document | None = None,
        *,
        cache_control: str | None = None,
        **client: str,
    ) -> None:
        super().__init__(**client)
        self._jwks_source: Document = jwks or (lambda: {"keys": []})
        self._discovery_source: Document = self._discovery
        self._server = LoopbackServer(self._respond, methods=("GET", "POST"), name="test-issuer")
        self._lock = threading.Lock()
        # Cache-Control of every successful JWKS and discovery answer (None: none sent).
        self.cache_control = cache_control
        self.discovery_issuer: str | None = None
        self.faults: dict[str, Fault] = {}
        self.requests: Counter[str] = Counter()
        self._stream_progress = StreamProgress()

    # -- where it is -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        """The issuer URL, with the trailing slash Auth0 uses."""
        return self._server.url

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash, for joining paths to."""
        return self.url.rstrip("/")

    @property
    def jwks_url(self) -> str:
        return self.base_url + JWKS_PATH

    @property
    def discovery_url(self) -> str:
        return self.base_url + DISCOVERY_PATH

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def resource_url(self) -> str:
        return self.base_url + RESOURCE_PATH

    # -- what it serves, and how it misbehaves -----------------------------------------------

    def serve(self, jwks: Document) -> None:
        """Publish the key set ``jwks()`` from now on (read at each request)."""
        self._jwks_source = jwks

    def serve_discovery(self, document: Document) -> None:
        """Publish ``document()`` as the discovery metadata instead of the default."""
        self._discovery_source = document

    def inject(self, path: str, fault: Fault) -> None:
        """Answer every request to ``path`` with ``fault`` until `reset` (``OK``: normally)."""
        with self._lock:
            self.faults[path] = fault

    @property
    def fault(self) -> Fault:
        """The fault of the JWKS path."""
        return self.faults.get(JWKS_PATH, OK)

    @fault.setter
    def fault(self, fault: Fault) -> None:
        self.inject(JWKS_PATH, fault)

    def reset(self) -> None:
        """Back to normal: no faults, no Cache-Control, counts at zero."""
        with self._lock:
            self.faults.clear()
            self.cache_control = None
            self.discovery_issuer = None
            self.requests.clear()
            self._stream_progress = StreamProgress()

    # -- what it saw -------------------------------------------------------------------------

    @property
    def jwks_requests(self) -> int:
        return self.requests[JWKS_PATH]

    @property
    def token_requests(self) -> int:
        return self.requests[TOKEN_PATH]

    @property
    def resource_requests(self) -> int:
        return self.requests[RESOURCE_PATH]

    @property
    def streamed_bytes(self) -> int:
        """How much of the last `Stream` was written before the client left."""
        return self._stream_progress.written

    @property
    def stream_ended(self) -> threading.Event:
        """Set once the server has stopped writing the last `Stream`."""
        return self._stream_progress.ended

    # -- running -----------------------------------------------------------------------------

    def start(self: _Server) -> _Server:
        self._server.start()
        return self

    def stop(self) -> None:
        self.release_tokens()
        self._server.stop()

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ---------------------------------------------------------------------------

    def _respond(self, exchange: Exchange) -> None:
        path = exchange.path
        # Read even when unused: what is left unread would be taken for the next request.
        body = exchange.read_body()
        with self._lock:
            self.requests[path] += 1
            fault = self.faults.get(path, OK)
            progress = self._stream_progress
        if isinstance(fault, Stream):
            progress.written = 0
            send_stream(exchange, fault, progress)
            return
        if isinstance(fault, TrickledHead):
            send_trickled_head(exchange, fault, self._server.stopping)
            return
        reply = self._answer(exchange, body) if fault is OK else fault
        document = reply.body if reply.body is not None else self._document(exchange)
        if document is None:
            reply, document = json_reply(404, {}), b"{}"
        elif reply.status == 200 and self.cache_control and path in (JWKS_PATH, DISCOVERY_PATH):
            reply = replace(reply, headers=(*reply.headers, ("Cache-Control", self.cache_control)))
        send_reply(exchange, reply, document, self._server.stopping)

    def _answer(self, exchange: Exchange, body: bytes) -> Reply:
        """The normal answer; a body of None stands for the path's own document."""
        proofs = exchange.headers.get_all("DPoP") or []
        if exchange.path == TOKEN_PATH and exchange.method == "POST":
            content_type = exchange.headers.get("Content-Type", "").split(";")[0].strip()
            return self.token_answer(body, content_type, proofs, self.token_url)
        if exchange.path == RESOURCE_PATH:
            return self.resource_answer(
                exchange.headers.get("Authorization"),
                body,
                proofs=proofs,
                method=exchange.method,
                url=self.base_url + exchange.path,
            )
        return OK

    def _document(self, exchange: Exchange) -> bytes | None:
        """The path's own document, or None where the path has none."""
        if exchange.method != "GET":
            return None
        if exchange.path == JWKS_PATH:
            return json.dumps(self._jwks_source()).encode()
        if exchange.path == DISCOVERY_PATH:
            return json.dumps(self._discovery_source()).encode()
        return None

    def _discovery(self) -> dict[str, Any]:
        return {"issuer": self.discovery_issuer or self.url, "jwks_uri": self.jwks_url}


def closed_port_url() -> str:
    """A JWKS URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{JWKS_PATH}"
