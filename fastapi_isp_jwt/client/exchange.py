"""One API request made through `ClientCredentials`, written once for threads and event loops.

`api_request` is a flow in the manner of httpx's ``Auth.auth_flow``: it yields the request
to send (with its credentials) and is sent the response; when the API refused the token it
yields `Renew` and is sent a new token. ``ClientCredentials.sync_auth_flow`` and
``async_auth_flow`` only drive it, getting tokens the blocking or the asynchronous way.

What it decides: the credentials (``Bearer``, or ``DPoP`` with a fresh proof), one more
try with the nonce an API asks for (RFC 9449 §9), and one more try with a new token after
a 401, each only for a request whose body can be sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from fastapi_isp_jwt.client.dpop import ProofSigner, asks_for_nonce
from fastapi_isp_jwt.client.token_request import Token

__all__ = ["ApiFlow", "Renew", "api_request"]

logger = logging.getLogger("fastapi_isp_jwt.client")


@dataclass(frozen=True)
class Renew:
    """A new token is wanted: the API refused ``refused``."""

    refused: Token


ApiFlow = Generator[httpx.Request | Renew, httpx.Response | Token | None, None]


def api_request(
    request: httpx.Request,
    token: Token,
    *,
    dpop: ProofSigner | None,
    renewal_may_help: Callable[[httpx.Response, Token], bool],
) -> ApiFlow:
    """Send ``request`` with ``token``; again with a nonce, or a new token, if that may help."""
    response = yield _authorize(request, token, dpop)
    assert isinstance(response, httpx.Response)
    if dpop is not None:
        new_nonce = dpop.note_nonce(request.url, response.headers)
        if asks_for_nonce(response):
            # The token is fine: a new one would not meet the demand. Without a new nonce,
            # or a body to send again, there is nothing more to try.
            if new_nonce is None or not _can_send_again(request):
                return
            logger.info("the API asked for a DPoP nonce; sending the request again with it")
            response = yield _authorize(request, token, dpop)
            assert isinstance(response, httpx.Response)
            dpop.note_nonce(request.url, response.headers)
            if asks_for_nonce(response):
                return
    if not renewal_may_help(response, token):
        return
    fresh = yield Renew(token)
    assert isinstance(fresh, Token)
    if _can_send_again(request):
        response = yield _authorize(request, fresh, dpop)
        if dpop is not None and isinstance(response, httpx.Response):
            dpop.note_nonce(request.url, response.headers)


def _authorize(request: httpx.Request, token: Token, dpop: ProofSigner | None) -> httpx.Request:
    if dpop is None:
        request.headers["Authorization"] = f"Bearer {token.value}"
    else:
        # RFC 9449 §7.1: the DPoP scheme, and a proof for this very request and token.
        request.headers["Authorization"] = f"DPoP {token.value}"
        request.headers["DPoP"] = dpop.proof(request.method, request.url, access_token=token.value)
    return request


def _can_send_again(request: httpx.Request) -> bool:
    """Bytes, JSON and form bodies are held in memory; a streamed upload is consumed."""
    return isinstance(request.stream, httpx.ByteStream)
