"""`ClientCredentials`: the ``httpx.Auth`` that puts a platform token on outgoing requests.

It holds the token (`state`), lets one caller at a time ask for a new one (one for all
threads, one per event loop for tasks) and runs the token request cycle
(`token_request`) over a short-lived client of its own, in the caller's thread or task.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable

import anyio
import anyio.lowlevel
import httpx

from fastapi_isp_jwt import io
from fastapi_isp_jwt.client.dpop import ProofSigner
from fastapi_isp_jwt.client.exchange import ApiFlow, Renew, api_request
from fastapi_isp_jwt.client.options import (
    RequestOptions,
    Secret,
    required_text,
    scope_text,
    token_endpoint,
)
from fastapi_isp_jwt.client.state import TokenState
from fastapi_isp_jwt.client.token_request import Failure, Token, request_token
from fastapi_isp_jwt.minting import SigningKey

__all__ = ["ClientCredentials"]

logger = logging.getLogger("fastapi_isp_jwt.client")


class ClientCredentials(httpx.Auth):
    """An ``httpx.Auth`` that obtains, caches and renews a Client Credentials access token.

    Pass it as ``auth=`` to an ``httpx.Client`` or an ``httpx.AsyncClient``; one instance
    may serve both, and should be shared by every client that calls the same API so they
    share its token. ``examples/m2m_client.py`` shows both uses.

    Behaviour, told in full in the machine-to-machine guide: the token is reused until
    ``expires_in`` minus ``refresh_margin`` (at most half its lifetime) has passed; one token
    request serves every caller that needs a new token at once (one for all threads, one
    per event loop); without a valid token, 429, 5xx, network errors and timeouts are
    retried up to ``max_attempts`` times in all, waiting ``Retry-After`` or a jittered,
    doubling backoff, and a ``Retry-After`` over ``max_backoff`` ends the retries; a renewal
    while the token is still valid is one attempt, and if it fails the current token is
    used for a pause that ends 5 s before it expires; a 401 from the API fetches a new token
    and replays the request once (not a streamed upload), raising if none can be had. Every
    failure is a `TokenRequestError` with the OAuth ``error`` code and HTTP status; the
    secret never appears in it, in logs or in ``repr``.

    With ``dpop_key`` the tokens are DPoP-bound (RFC 9449): the token request carries a
    proof signed with that key, an endpoint's demand for a nonce (``use_dpop_nonce``) is
    met once, a token whose ``token_type`` is not ``DPoP`` is refused, and every API request
    goes out as ``Authorization: DPoP <token>`` with a fresh ``DPoP`` proof (its method,
    its URL without query and fragment, ``ath``); an API's 401 asking for a nonce is sent
    again once with it. The last nonce of each server is remembered for the next proofs.

    Args:
        token_url: The token endpoint. ``https`` is required except on loopback hosts
            (``localhost``, 127.0.0.0/8 and ``::1``).
        domain: The tenant's host name instead of ``token_url``: ``"istreamplanet.auth0.com"``
            means ``https://istreamplanet.auth0.com/oauth/token``.
        client_id: The machine-to-machine application's client id.
        client_secret: Its client secret.
        audience: The API the token is for, e.g. ``https://platform.dtc.istreamplanet.net/acme``.
        scope: Scopes to request (a space-delimited string or an iterable); by default the
            tenant grants what the application is authorized for.
        refresh_margin: Seconds before expiry at which the token is renewed.
        timeout: Seconds allowed for each token request attempt as a whole, from connecting
            to the last byte of the answer; the attempt is cut off exactly then, from
            ``httpx.Client`` as from ``httpx.AsyncClient``. Answers over 64 KiB are refused
            unread.
        max_attempts: Token requests made at most, first one included, before giving up,
            when no valid token is held.
        backoff: Seconds to wait before the first retry when the endpoint gives no
            ``Retry-After``; doubles with every retry, and paces failed renewals too.
        max_backoff: The longest wait between two attempts, and the longest pause between
            failed renewals unless the endpoint asks for more with ``Retry-After``.
        transport: Transport for token requests made from ``httpx.Client`` (custom TLS,
            proxies); the default is httpx's, honouring the proxy environment variables.
        async_transport: The same for requests made from ``httpx.AsyncClient``.
        clock: Monotonic seconds; replaceable so tests control expiry and the pauses
            between renewals (``timeout`` is always measured in real time).
        sleep: How to wait between attempts in synchronous use.
        async_sleep: How to wait between attempts in asynchronous use.
        dpop_key: The client's DPoP key (``SigningKey.generate("ES256")``, say); keep it
            for as long as its tokens live, since each is bound to it. ``None``: Bearer.
    """

    def __init__(
        self,
        *,
        token_url: str | None = None,
        domain: str | None = None,
        client_id: str,
        client_secret: str,
        audience: str,
        scope: str | Iterable[str] | None = None,
        refresh_margin: float = 60.0,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        dpop_key: SigningKey | None = None,
    ) -> None:
        self._options = RequestOptions(
            token_url=token_endpoint(token_url, domain),
            client_id=required_text("client_id", client_id),
            secret=Secret(required_text("client_secret", client_secret)),
            audience=required_text("audience", audience),
            scope=scope_text(scope),
            refresh_margin=refresh_margin,
            timeout=timeout,
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            clock=clock,
        )
        self._dpop = None if dpop_key is None else ProofSigner(dpop_key)
        self._transport = transport
        self._async_transport = async_transport
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._state = TokenState(self._options)
        self._thread_lock = threading.Lock()  # one token request at a time for all threads
        # One token request at a time per event loop for tasks. Kept here, not in the loop:
        # an instance dropped while its loop runs on takes its locks with it.
        self._loop_locks: weakref.WeakKeyDictionary[object, anyio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._loop_locks_guard = threading.Lock()

    @property
    def token_url(self) -> str:
        """The token endpoint this instance asks."""
        return self._options.token_url

    @property
    def client_id(self) -> str:
        """The machine-to-machine application's client id."""
        return self._options.client_id

    @property
    def audience(self) -> str:
        """The API tokens are requested for."""
        return self._options.audience

    @property
    def scope(self) -> str | None:
        """The space-delimited scopes requested, if any."""
        return self._options.scope

    @property
    def dpop_thumbprint(self) -> str | None:
        """The RFC 7638 thumbprint of the DPoP key (each token's ``cnf.jkt``), if any."""
        return None if self._dpop is None else self._dpop.thumbprint

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"audience={self.audience!r}, client_secret={self._options.secret!r})"
        )

    # -- public token access -------------------------------------------------------

    def get_token(self) -> str:
        """A valid access token, fetched only if none is cached (blocking)."""
        return self._obtain_sync().value

    async def aget_token(self) -> str:
        """A valid access token, fetched only if none is cached."""
        return (await self._obtain_async()).value

    # -- httpx.Auth ----------------------------------------------------------------

    # Both drive the one flow of `exchange.api_request`; they differ only in how a token
    # is obtained.

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._api_request(request, self._obtain_sync())
        answer: httpx.Response | Token | None = None
        while (step := _next_step(flow, answer)) is not None:
            if isinstance(step, Renew):
                answer = self._obtain_sync(refused=step.refused)
            else:
                answer = yield step

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._api_request(request, await self._obtain_async())
        answer: httpx.Response | Token | None = None
        while (step := _next_step(flow, answer)) is not None:
            if isinstance(step, Renew):
                answer = await self._obtain_async(refused=step.refused)
            else:
                answer = yield step

    def _api_request(self, request: httpx.Request, token: Token) -> ApiFlow:
        return api_request(request, token, dpop=self._dpop, renewal_may_help=self._refresh_may_help)

    def _refresh_may_help(self, response: httpx.Response, sent: Token) -> bool:
        if response.status_code != 401:
            return False
        if sent is self._state.token and sent.after_refusal:
            logger.warning(
                "the API refused a token that was itself fetched after a refusal (HTTP 401); "
                "not asking for another before this one expires"
            )
            return False
        logger.info("the API refused the token (HTTP 401); renewing it and retrying once")
        return True

    # -- single flight ---------------------------------------------------------------
    # A caller without a fresh token notes how many cycles have run, waits its turn, and
    # then asks only if no cycle settled the matter meanwhile.

    def _obtain_sync(self, refused: Token | None = None) -> Token:
        return self._state.fresh(refused) or self._in_turn_sync(self._state.cycles, refused)

    async def _obtain_async(self, refused: Token | None = None) -> Token:
        return self._state.fresh(refused) or await self._in_turn_async(self._state.cycles, refused)

    def _in_turn_sync(self, cycle: int, refused: Token | None) -> Token:
        with self._thread_lock:
            return self._state.settled_since(cycle, refused) or self._ask_sync(refused)

    async def _in_turn_async(self, cycle: int, refused: Token | None) -> Token:
        async with self._loop_lock():
            return self._state.settled_since(cycle, refused) or await self._ask_async(refused)

    def _ask_sync(self, refused: Token | None) -> Token:
        with io.sync_client(self._transport) as client:
            outcome = io.run_sync(self._token_request(refused), client, sleep=self._sleep)
        return self._state.settle(outcome, refused)

    async def _ask_async(self, refused: Token | None) -> Token:
        async with io.async_client(self._async_transport) as client:
            flow = self._token_request(refused)
            outcome = await io.run_async(flow, client, sleep=self._async_sleep)
        return self._state.settle(outcome, refused)

    def _token_request(self, refused: Token | None) -> io.Flow[Token | Failure]:
        return request_token(
            self._options,
            after_refusal=refused is not None,
            holds_valid_token=lambda: self._state.holds_valid_token(refused),
            dpop=self._dpop,
        )

    def _loop_lock(self) -> anyio.Lock:
        loop = _running_loop()
        # Guarded: instances are shared by threads that each run a loop.
        with self._loop_locks_guard:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = anyio.Lock()
        return lock


def _running_loop() -> object:
    """The running event loop: a key that lives exactly as long as the loop does."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio, through anyio)
        return anyio.lowlevel.current_token().native_token


def _next_step(
    flow: ApiFlow, answer: httpx.Response | Token | None
) -> httpx.Request | Renew | None:
    """What ``flow`` wants next, given the answer to what it wanted before; ``None``: done."""
    try:
        return flow.send(answer)
    except StopIteration:
        return None
