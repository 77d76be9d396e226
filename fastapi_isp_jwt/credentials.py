"""Reading credentials off a request: the schemes' grammar, and the WebSocket conventions.

RFC 6750 §2.1 and RFC 9449 §7.1 give both schemes one grammar: the scheme, spaces, one
b64token. A malformed value is a bad request (400), never a bad token (401). Browsers
cannot set headers on a WebSocket, so a WebSocket route may also take the token from a
query parameter or the subprotocol pair ``bearer, <token>``, when the application says so.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from fastapi_isp_jwt.errors import InvalidRequestError
from fastapi_isp_jwt.grammar import is_b64token
from fastapi_isp_jwt.reasons import Reason

__all__ = ["BLANK", "DPoPToken", "b64token", "websocket_token"]

BLANK = (b" ", b"\t")


class DPoPToken(bytes):
    """A token that came under the DPoP scheme (its grammar checked with its proof)."""

    @property
    def value(self) -> bytes:
        return bytes(self)


def b64token(credentials: bytes) -> bytes:
    """``credentials`` if they are one RFC 6750 b64token, else 400."""
    if not is_b64token(credentials):
        raise InvalidRequestError(Reason.CREDENTIALS_MALFORMED)
    return credentials


def websocket_token(
    connection: HTTPConnection, *, query_param: str | None, subprotocol: bool
) -> bytes | None:
    """The token a WebSocket handshake carries outside headers, if the application allows it."""
    token: str | None = None
    if query_param is not None:
        given = connection.query_params.getlist(query_param)
        if len(given) > 1:
            raise InvalidRequestError(Reason.CREDENTIALS_MALFORMED)  # several tokens
        token = given[0] if given else None
    if token is None and subprotocol:
        offered = [
            part.strip()
            for value in connection.headers.getlist("sec-websocket-protocol")
            for part in value.split(",")
        ]
        tokens = [offered[n + 1] for n, name in enumerate(offered[:-1]) if name.lower() == "bearer"]
        if len(tokens) > 1:
            raise InvalidRequestError(Reason.CREDENTIALS_MALFORMED)  # several tokens
        token = tokens[0] if tokens else None
    return None if token is None else token.encode("utf-8", "surrogatepass")
