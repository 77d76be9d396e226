"""Logging in from the interactive docs: Authorization Code with PKCE against the tenant."""

from __future__ import annotations

from fastapi import FastAPI, Security

from fastapi_isp_jwt import JWTAuth, Principal

# --8<-- [start:app]
require_token = JWTAuth(
    domain="istreamplanet.auth0.com",
    audience="https://platform.dtc.istreamplanet.net/acme",
)
app = FastAPI(title="Streams API")
require_token.enable_swagger_login(
    app,
    client_id="your-single-page-application-client-id",
    scopes={"streams:read": "List streams", "streams:write": "Create streams"},
)


@app.get("/streams")
async def list_streams(
    principal: Principal = Security(require_token, scopes=["streams:read"]),
) -> list[str]:
    return []


# --8<-- [end:app]
