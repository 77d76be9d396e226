"""How the test issuer misbehaves: scripted answers (`Reply`) and endless bodies (`Stream`).

A `Reply` replaces one answer of a path: another status, another body, a delay, a body
trickled byte by byte or cut short, a connection reset. A `Stream` is a JWKS answer whose
body keeps coming until the client leaves; a `TrickledHead` never gets past its headers.
The constructors below name the usual faults.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from fastapi_isp_jwt.testing.loopback import Exchange

# How long a hung answer waits at most, so a test that forgets it ends instead of hanging.
HANG_LIMIT = 30.0


@dataclass(frozen=True)
class Reply:
    """One answer of the issuer, used instead of the normal one."""

    status: int = 200
    # None: the path's own document (the JWKS, the discovery metadata).
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    # Seconds to wait before answering anything.
    delay: float = 0.0
    # Seconds between the bytes of the body: an issuer that trickles its answer.
    trickle: float = 0.0
    # False: no Content-Length; the body ends when the connection closes.
    announce_length: bool = True
    # Bytes of the body actually sent, for an answer cut off midway (None: all of it).
    sent_bytes: int | None = None
    # Abort the connection with a TCP reset instead of answering.
    reset: bool = False


OK = Reply()


@dataclass(frozen=True)
class Stream:
    """A JWKS answer with no Content-Length whose body keeps coming until the client leaves.

    ``chunk`` is written every ``interval`` seconds, up to ``limit`` bytes in all (a bound
    so a client that never stops reading still finishes). Only a client that counts what it
    reads, or watches the clock while reading, gets out early.
    """

    chunk: bytes
    interval: float = 0.0
    limit: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class TrickledHead:
    """An answer whose status line and headers come one byte every ``interval``, unfinished.

    Every read is quick; only a deadline on the whole attempt ends the wait.
    """

    interval: float
    head: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"a" * 60


Fault = Reply | Stream | TrickledHead


# -- the faults of a JWKS or discovery endpoint ------------------------------------------------


def server_error() -> Reply:
    return Reply(status=500, body=b'{"error":"boom"}')


def garbage() -> Reply:
    return Reply(body=b"<html>not json</html>", content_type="text/html")


def not_a_jwks() -> Reply:
    return Reply(body=b'{"hello": "world"}')


def slow(seconds: float) -> Reply:
    return Reply(delay=seconds)


def hang() -> Reply:
    """No answer until the server stops (or `HANG_LIMIT` passes)."""
    return Reply(delay=HANG_LIMIT)


def redirect(location: str = "http://127.0.0.1:9/elsewhere", status: int = 302) -> Reply:
    return Reply(status=status, body=b"", headers=(("Location", location),))


def huge(size: int = 2 * 1024 * 1024) -> Reply:
    return Reply(body=b'{"keys": [' + b" " * size + b"]}")


def truncated(body: bytes = b'{"keys": [{"kty": "RSA", "kid": ') -> Reply:
    """An answer announcing more than it sends before the connection closes."""
    return Reply(body=body + b" " * len(body), sent_bytes=len(body))


def connection_reset() -> Reply:
    return Reply(reset=True)


def trickled_head(interval: float) -> TrickledHead:
    return TrickledHead(interval)


def endless(chunk_size: int = 64 * 1024) -> Stream:
    """A body far larger than any JWKS, sent as fast as the client takes it."""
    return Stream(chunk=b" " * chunk_size)


def trickle(interval: float) -> Stream:
    """One byte every ``interval`` seconds: each read is quick, the whole body never ends."""
    return Stream(chunk=b" ", interval=interval)


# -- the answers of a token endpoint -----------------------------------------------------------


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


def token_body(size: int = 0) -> bytes:
    """A valid answer with the token ``abc``, padded with JSON whitespace to ``size`` bytes."""
    payload = {"access_token": "abc", "token_type": "Bearer", "expires_in": 3600}
    body = json.dumps(payload).encode()
    return body + b" " * (size - len(body))


# -- writing them ------------------------------------------------------------------------------


def send_reply(exchange: Exchange, reply: Reply, body: bytes, stopping: threading.Event) -> None:
    """Answer with ``reply`` (its ``body`` already resolved); a stopping server ends a wait."""
    if reply.delay and stopping.wait(reply.delay):
        exchange.reset()
        return
    if reply.reset:
        exchange.reset()
        return
    headers = [("Content-Type", reply.content_type), *reply.headers]
    exchange.send_head(reply.status, headers, length=len(body) if reply.announce_length else None)
    if reply.sent_bytes is not None:
        exchange.write(body[: reply.sent_bytes])
        exchange.hang_up()
    elif reply.trickle:
        for index in range(len(body)):
            exchange.write(body[index : index + 1])
            stopping.wait(reply.trickle)
    else:
        exchange.write(body)
    if not reply.announce_length:
        exchange.hang_up()


class StreamProgress:
    """How much of the last `Stream` was written, and whether the server has stopped writing."""

    def __init__(self) -> None:
        self.written = 0
        self.ended = threading.Event()


def send_stream(exchange: Exchange, stream: Stream, progress: StreamProgress) -> None:
    exchange.hang_up()
    try:
        exchange.send_head(200, [("Content-Type", "application/json")], length=None)
        exchange.write(b'{"keys": [')
        while progress.written < stream.limit:
            exchange.write(stream.chunk)
            progress.written += len(stream.chunk)
            if stream.interval:
                time.sleep(stream.interval)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client stopped reading: what the stream is there to prove
    finally:
        progress.ended.set()


def send_trickled_head(exchange: Exchange, fault: TrickledHead, stopping: threading.Event) -> None:
    exchange.hang_up()
    for byte in fault.head:
        if stopping.wait(fault.interval):
            return
        exchange.write(bytes([byte]))
