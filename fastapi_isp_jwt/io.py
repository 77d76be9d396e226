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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
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
    outcome: _Outcome = (None, None)
    while True:
        step = _advance(flow, outcome)
        if not isinstance(step, _Step):
            return cast(T, step.value)
        if isinstance(step.wanted, Pause):
            sleep(step.wanted.seconds)
            outcome = (None, None)
        else:
            outcome = _fetch_in_worker(client, step.wanted)


async def run_async(
    flow: Flow[T],
    client: httpx.AsyncClient,
    *,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> T:
    """Run ``flow`` to its end in this task."""
    outcome: _Outcome = (None, None)
    while True:
        step = _advance(flow, outcome)
        if not isinstance(step, _Step):
            return cast(T, step.value)
        if isinstance(step.wanted, Pause):
            await sleep(step.wanted.seconds)
            outcome = (None, None)
            continue
        try:
            outcome = (await _fetch_async(client, step.wanted), None)
        except NETWORK_ERRORS as exc:
            outcome = (None, exc)


@contextmanager
def sync_client(
    transport: httpx.BaseTransport | None = None, timeout: float = 5.0
) -> Generator[httpx.Client, None, None]:
    """A short-lived client of our own; a transport lent by the caller is not closed with it."""
    lent = None if transport is None else _LentTransport(transport)
    with httpx.Client(transport=lent, timeout=timeout, follow_redirects=False) as client:
        yield client


@asynccontextmanager
async def async_client(
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - httpx's per-operation timeout, not a deadline
) -> AsyncIterator[httpx.AsyncClient]:
    """The asynchronous `sync_client`."""
    lent = None if transport is None else _LentAsyncTransport(transport)
    async with httpx.AsyncClient(transport=lent, timeout=timeout, follow_redirects=False) as client:
        yield client


@dataclass(frozen=True, slots=True)
class _Step:
    wanted: Fetch | Pause


@dataclass(frozen=True, slots=True)
class _Done:
    value: object


def _advance(flow: Flow[T], outcome: _Outcome) -> _Step | _Done:
    reply, error = outcome
    try:
        wanted = flow.send(reply) if error is None else flow.throw(error)
    except StopIteration as stop:
        return _Done(stop.value)
    return _Step(wanted)


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


def _fetch_sync(client: httpx.Client, fetch: Fetch) -> Reply:
    response = client.send(fetch.request, stream=True, follow_redirects=False)
    try:
        body = _CappedBody(response.headers, fetch.max_bytes)
        if not body.too_large:
            for chunk in response.iter_bytes():
                if not body.take(chunk):
                    break
        return Reply(response.status_code, response.headers, body.value())
    finally:
        response.close()


async def _fetch_async(client: httpx.AsyncClient, fetch: Fetch) -> Reply:
    with anyio.fail_after(fetch.timeout):
        response = await client.send(fetch.request, stream=True, follow_redirects=False)
        try:
            body = _CappedBody(response.headers, fetch.max_bytes)
            if not body.too_large:
                # Closed here, not by the garbage collector after the loop is gone.
                chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
                async with aclosing(chunks):
                    async for chunk in chunks:
                        if not body.take(chunk):
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
        if self._size > self._limit:
            self.too_large = True
            self._chunks.clear()
            return False
        self._chunks.append(chunk)
        return True

    def value(self) -> bytes | None:
        return None if self.too_large else b"".join(self._chunks)


class _LentTransport(httpx.BaseTransport):
    """The caller's transport, used by a client of ours that must not close it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)


class _LentAsyncTransport(httpx.AsyncBaseTransport):
    """The caller's async transport, used by a client of ours that must not close it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)
