"""A real OAuth 2.0 token endpoint and a protected resource on 127.0.0.1, for client tests.

The endpoint answers Client Credentials requests the way the tenant does (form body in,
JSON token out, RFC 6749 §5.2 errors), counts what it receives and can be scripted to
throttle, fail, hand out short-lived tokens, or send an answer slowly or of unannounced
length. The resource accepts only tokens the endpoint issued and has not revoked, so a
test can make a cached token stale on the server side and watch the client recover.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

TOKEN_PATH = "/oauth/token"
RESOURCE_PATH = "/me"
CLIENT_ID = "service-a"
CLIENT_SECRET = "s3cr3t-Value-never-shown"
AUDIENCE = "https://platform.dtc.istreamplanet.net/acme"

# How long the endpoint waits for a held gate before answering anyway, so a test that
# forgets to release it fails instead of hanging.
_GATE_LIMIT = 10.0


class _Listener(ThreadingHTTPServer):
    # Room for every connection a concurrency test opens at once: with the default
    # backlog of 5 the kernel drops the rest and the client retries a second later.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading an answer midway (the size cap, the deadline) resets
        # the connection; that is the behaviour under test, not a server fault.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the token endpoint, used instead of the normal one."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    # Seconds between the bytes of the body: an endpoint that trickles its answer.
    trickle: float = 0.0
    # False: no Content-Length; the body ends when the connection closes.
    announce_length: bool = True


def json_reply(status: int, payload: object, *headers: tuple[str, str]) -> Reply:
    return Reply(status, json.dumps(payload).encode(), headers)


def oauth_error(error: str, status: int = 400, description: str | None = None) -> Reply:
    payload = {"error": error}
    if description is not None:
        payload["error_description"] = description
    return json_reply(status, payload)


def throttled(retry_after: str | None = None) -> Reply:
    headers = () if retry_after is None else (("Retry-After", retry_after),)
    payload = {"error": "too_many_requests", "error_description": "Global limit has been reached"}
    return json_reply(429, payload, *headers)


def unavailable(status: int = 503) -> Reply:
    return Reply(status, b"<html>upstream unavailable</html>", content_type="text/html")


def redirect(location: str) -> Reply:
    return Reply(307, b"", (("Location", location),))


def token_body(size: int = 0) -> bytes:
    """A valid answer with the token ``abc``, padded with JSON whitespace to ``size`` bytes."""
    payload = {"access_token": "abc", "token_type": "Bearer", "expires_in": 3600}
    body = json.dumps(payload).encode()
    return body + b" " * (size - len(body))


class TokenServer:
    """Serves ``TOKEN_PATH`` and ``RESOURCE_PATH`` on an ephemeral loopback port."""

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        audience: str = AUDIENCE,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.expires_in: object = 86400
        self.token_type = "Bearer"
        self.refuse_every_token = False
        self.token_requests = 0
        self.token_forms: list[dict[str, str]] = []
        self.token_content_types: list[str] = []
        self.resource_requests = 0
        self.resource_bodies: list[bytes] = []
        self.issued: list[str] = []
        self.token_request_arrived = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._script: deque[Reply] = deque()
        self._valid: set[str] = set()
        self._lock = threading.Lock()
        self._httpd = _Listener(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TOKEN_PATH}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def resource_url(self) -> str:
        return self.base_url + RESOURCE_PATH

    def _serve(self) -> None:
        # A short poll keeps shutdown (once per test) quick.
        self._httpd.serve_forever(poll_interval=0.02)

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *replies: Reply) -> None:
        """Answer the next token requests with ``replies``, in order, then normally again."""
        with self._lock:
            self._script.extend(replies)

    def wait_for_token_request(self) -> None:
        """Block until a token request has arrived (it may be held at the gate)."""
        if not self.token_request_arrived.wait(_GATE_LIMIT):
            raise TimeoutError("no token request arrived")

    def hold_tokens(self) -> None:
        """Make token requests wait (after being counted) until :meth:`release_tokens`."""
        self._gate.clear()

    def release_tokens(self) -> None:
        self._gate.set()

    def revoke_all(self) -> None:
        """Make the resource refuse every token issued so far."""
        with self._lock:
            self._valid.clear()

    def _issue(self) -> str:
        token = f"tok-{len(self.issued) + 1}.{secrets.token_urlsafe(12)}"
        self.issued.append(token)
        self._valid.add(token)
        return token

    def _token_answer(self, form: dict[str, str], content_type: str) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if content_type != "application/x-www-form-urlencoded":
                return oauth_error("invalid_request", 400, "Expected a form body")
            if form.get("grant_type") != "client_credentials":
                return oauth_error("unsupported_grant_type", 400)
            if (form.get("client_id"), form.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return oauth_error("invalid_client", 401, "Unauthorized")
            if form.get("audience") != self.audience:
                return oauth_error(
                    "access_denied",
                    403,
                    f"Service not enabled within domain: {form.get('audience')}",
                )
            payload = {
                "access_token": self._issue(),
                "token_type": self.token_type,
                "expires_in": self.expires_in,
            }
            return json_reply(200, payload)

    def _resource_answer(self, authorization: str | None, body: bytes) -> Reply:
        with self._lock:
            self.resource_requests += 1
            self.resource_bodies.append(body)
            scheme, _, token = (authorization or "").partition(" ")
            if scheme != "Bearer" or token not in self._valid or self.refuse_every_token:
                return Reply(
                    401,
                    b'{"detail":"invalid token"}',
                    (("WWW-Authenticate", 'Bearer error="invalid_token"'),),
                )
            return json_reply(200, {"token": token, "body": body.decode("utf-8", "replace")})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in separate writes; with Nagle on, every keep-alive
            # answer would wait for the client's delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self._body()
                if self.path == TOKEN_PATH:
                    content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
                    form = dict(parse_qsl(body.decode("utf-8", "replace")))
                    with server._lock:
                        server.token_requests += 1
                        server.token_forms.append(form)
                        server.token_content_types.append(content_type)
                    server.token_request_arrived.set()
                    server._gate.wait(_GATE_LIMIT)
                    self._send(server._token_answer(form, content_type))
                elif self.path == RESOURCE_PATH:
                    self._send(server._resource_answer(self.headers.get("Authorization"), body))
                else:
                    self._send(json_reply(404, {}))

            def do_GET(self) -> None:
                if self.path == RESOURCE_PATH:
                    self._send(server._resource_answer(self.headers.get("Authorization"), b""))
                else:
                    self._send(json_reply(404, {}))

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    return self._chunked_body()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _chunked_body(self) -> bytes:
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()

            def _send(self, reply: Reply) -> None:
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    if reply.announce_length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.end_headers()
                    if reply.trickle:
                        for index in range(len(reply.body)):
                            self.wfile.write(reply.body[index : index + 1])
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: nothing left to answer

        return Handler
