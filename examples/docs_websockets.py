"""A WebSocket route protected like any other, and token checks outside routes."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Security, WebSocket

from fastapi_isp_jwt import AuthError, JWTAuth, Principal

# --8<-- [start:websocket]
require_token = JWTAuth(
    domain="istreamplanet.auth0.com",
    audience="https://platform.dtc.istreamplanet.net/acme",
    # Browsers cannot set headers on a WebSocket: also look in ?access_token=...
    websocket_query_param="access_token",
)
app = FastAPI()


@app.websocket("/streams/{stream_id}/events")
async def stream_events(
    websocket: WebSocket,
    stream_id: str,
    principal: Principal = Security(require_token, scopes=["streams:read"]),
) -> None:
    # Reached only with a valid token; otherwise the handshake was closed with 1008.
    await websocket.accept()
    await websocket.send_json({"stream": stream_id, "watcher": principal.subject})
    await websocket.close()


# --8<-- [end:websocket]


# --8<-- [start:worker]
def handle_job(job: Mapping[str, str], auth: JWTAuth = require_token) -> str:
    """Run a queued job on behalf of the caller whose token came with it."""
    try:
        principal = auth.verify_sync(job["token"])  # blocking; shares the key cache
    except AuthError as refusal:
        return f"refused: {refusal.description}"
    if not principal.has_scopes("streams:write"):
        return "refused: the token lacks streams:write"
    return f"transcoding {job['stream']} for {principal.subject}"


# --8<-- [end:worker]


# --8<-- [start:verify]
async def who_is(token: str, auth: JWTAuth = require_token) -> str | None:
    """The subject of a valid token, or None: for async code outside FastAPI routes."""
    try:
        principal = await auth.verify(token)
    except AuthError:
        return None
    return principal.subject


# --8<-- [end:verify]
