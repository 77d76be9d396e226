"""A small streaming-control API protected by fastapi-isp-jwt.

Configured from the environment (``ISP_JWT_ISSUER`` or ``ISP_JWT_DOMAIN``,
``ISP_JWT_AUDIENCE``...). With nothing set it trusts a dev issuer on
``http://127.0.0.1:8765/`` (see ``make demo``), never a real tenant by accident.

Run: ``uvicorn examples.app:app`` from the repository root.
"""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI, HTTPException, Security

from examples.local_docs import serve_docs_locally
from fastapi_isp_jwt import JWTAuth, Principal

DEV_ISSUER = "http://127.0.0.1:8765/"
DEV_AUDIENCE = "https://platform.dtc.istreamplanet.net/acme"

if "ISP_JWT_DOMAIN" in os.environ or "ISP_JWT_ISSUER" in os.environ:
    require_token = JWTAuth.from_env()
else:
    require_token = JWTAuth.from_env(issuer=DEV_ISSUER, audience=DEV_AUDIENCE)

# --8<-- [start:local-docs]
app = FastAPI(title="Streams API", lifespan=require_token.lifespan)
# Swagger UI from the app's own files when fastapi-offline is installed, so that the docs
# page works with no internet access; from FastAPI's CDN otherwise.
serve_docs_locally(app)
# --8<-- [end:local-docs]

swagger_client_id = os.environ.get("SWAGGER_CLIENT_ID")
if swagger_client_id:
    require_token.enable_swagger_login(
        app,
        client_id=swagger_client_id,
        scopes={
            "streams:read": "List streams",
            "streams:write": "Create streams",
            "streams:delete": "Delete streams",
        },
    )

_streams: dict[str, dict[str, str]] = {"news": {"id": "news", "organization": "acme"}}


@app.get("/me")
async def who_am_i(principal: Principal = Depends(require_token)) -> dict[str, object]:
    """Any valid token: who is calling, for which organization, with which scopes."""
    return {
        "subject": principal.subject,
        "organization": principal.organization,
        "client_id": principal.client_id,
        "is_machine": principal.is_machine,
        "scopes": sorted(principal.scopes),
    }


@app.get("/streams")
async def list_streams(
    principal: Principal = Security(require_token, scopes=["streams:read"]),
) -> list[dict[str, str]]:
    return [s for s in _streams.values() if s["organization"] == principal.organization]


@app.post("/streams/{stream_id}", status_code=201)
async def create_stream(
    stream_id: str,
    principal: Principal = Security(require_token, scopes=["streams:write"]),
) -> dict[str, str]:
    organization = principal.organization or ""
    stream = {"id": stream_id, "organization": organization, "created_by": principal.subject}
    _streams[stream_id] = stream
    return stream


@app.delete("/streams/{stream_id}", status_code=204)
async def delete_stream(
    stream_id: str,
    principal: Principal = Security(require_token, scopes=["streams:delete"]),
) -> None:
    stream = _streams.get(stream_id)
    if stream is None or stream["organization"] != principal.organization:
        raise HTTPException(404, detail="No such stream")
    del _streams[stream_id]
