"""The one place that talks to the network: drivers that run I/O-free flows over httpx.

A flow is a generator that yields what it needs done, a `Fetch` (send this request, read
at most this much of the answer within this time) or a `Pause`, and is sent back a
`Reply` (or ``None`` after a pause). When a fetch fails on the way (the network, a name
that does not resolve, the deadline) the exception is thrown into the flow at the
``yield``, which decides what it means. What a flow returns, the driver returns.

The logic of an exchange (what to ask, how to read the answer, when to try again) is
written once, in the flow; `run_sync` and `run_async` are the only twins, and they hold
no logic but the I/O. httpx's ``Auth.auth_flow`` is the model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TypeVar, cast

import anyio
import httpx

__all__ = [
    "NETWORK_ERRORS",
    "Fetch",
    "Flow",
    "Pause",
    "Reply",
    "async_client",
    "run_async",
    "run_sync",
    "sync_client",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fetch:
    """Send ``request`` and read at most ``max_bytes`` of the answer, all within ``timeout`` s."""

    request: httpx.Request
    max_bytes: int
    timeout: float


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait this many seconds before the flow goes on."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back; ``body`` is ``None`` when it was larger than allowed (it is not read on)."""

    status: int
    headers: httpx.Headers
    body: bytes | None


Flow = Generator[Fetch | Pause, Reply | None, T]

# What a fetch may raise into a flow: httpx's errors, the resolver's UnicodeError for a
# host it cannot IDNA-encode (httpx lets it through) and TimeoutError when the deadline
# of the whole fetch passes.
NETWORK_ERRORS = (httpx.HTTPError, UnicodeError, TimeoutError)

_Outcome = tuple[Reply | None, BaseException | None]


def run_sync(
    flow: Flow[T], client: httpx.Client, *, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run ``flow`` to its end in this thread."""
    reply, error = None, None
    while True:
        try:
            wanted = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as done:
            return cast(T, done.value)
        if isinstance(wanted, Pause):
            sleep(wanted.seconds)
            reply, error = None, None
        else:
            reply, error = _fetch_in_worker(client, wanted)


async def run_async(
    flow: Flow[T],
    client: httpx.AsyncClient,
    *,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> T:
    """Run ``flow`` to its end in this task."""
    reply, error = None, None
    while True:
        try:
            wanted = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as done:
            return cast(T, done.value)
        if isinstance(wanted, Pause):
            await sleep(wanted.seconds)
            reply, error = None, None
            continue
        try:
            reply, error = await _fetch_async(client, wanted), None
        except NETWORK_ERRORS as exc:
            reply, error = None, exc


@contextmanager
def sync_client(transport: httpx.BaseTransport | None = None) -> Iterator[httpx.Client]:
    """A short-lived client of our own; a transport lent by the caller stays open for it."""
    client = httpx.Client(transport=transport, follow_redirects=False)
    try:
        yield client
    finally:
        if transport is None:
            client.close()


@asynccontextmanager
async def async_client(
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The asynchronous `sync_client`."""
    client = httpx.AsyncClient(transport=transport, follow_redirects=False)
    try:
        yield client
    finally:
        if transport is None:
            await client.aclose()


def _fetch_in_worker(client: httpx.Client, fetch: Fetch) -> _Outcome:
    """One fetch, bounded as a whole: a late answer is dropped with its worker thread.

    httpx's timeout bounds each network operation, not the whole answer: a server sending
    a byte now and then would hold the caller indefinitely.
    """
    result: list[_Outcome] = []

    def work() -> None:
        try:
            result.append((_fetch_sync(client, fetch), None))
        except BaseException as exc:  # handed to the flow, which decides what it means
            result.append((None, exc))

    worker = threading.Thread(target=work, name="fastapi-isp-jwt-io", daemon=True)
    worker.start()
    worker.join(fetch.timeout)
    if not result:
        return None, TimeoutError(f"no complete answer within {fetch.timeout:g} s")
    reply, error = result[0]
    if error is not None and not isinstance(error, NETWORK_ERRORS):
        raise error
    return reply, error


def _prepared(fetch: Fetch) -> httpx.Request:
    # A request built outside a client has no timeout of its own: each network operation
    # gets the whole fetch's, so an abandoned worker cannot wait forever either.
    fetch.request.extensions.setdefault("timeout", httpx.Timeout(fetch.timeout).as_dict())
    return fetch.request


def _fetch_sync(client: httpx.Client, fetch: Fetch) -> Reply:
    response = client.send(_prepared(fetch), stream=True)
    try:
        body = _CappedBody(response.headers, fetch.max_bytes)
        for chunk in () if body.too_large else response.iter_bytes():
            if not body.take(chunk):
                break
        return Reply(response.status_code, response.headers, body.value())
    finally:
        response.close()


async def _fetch_async(client: httpx.AsyncClient, fetch: Fetch) -> Reply:
    with anyio.fail_after(fetch.timeout):
        response = await client.send(_prepared(fetch), stream=True)
        try:
            body = _CappedBody(response.headers, fetch.max_bytes)
            # Closed here, not by the garbage collector after the loop is gone.
            chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
            async with aclosing(chunks):
                async for chunk in chunks:
                    if body.too_large or not body.take(chunk):
                        break
            return Reply(response.status_code, response.headers, body.value())
        finally:
            await response.aclose()


class _CappedBody:
    """Collects a body up to ``limit`` bytes; past that, only notes that it was too large."""

    def __init__(self, headers: httpx.Headers, limit: int) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = limit
        announced = headers.get("Content-Length", "")
        self.too_large = announced.isascii() and announced.isdigit() and int(announced) > limit

    def take(self, chunk: bytes) -> bool:
        """Keeps ``chunk``; ``False`` once the body is too large and reading should stop."""
        self._size += len(chunk)
        self.too_large = self._size > self._limit
        self._chunks.append(chunk)
        return not self.too_large

    def value(self) -> bytes | None:
        return None if self.too_large else b"".join(self._chunks)
