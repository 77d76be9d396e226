"""One API for several organizations, a principal with a custom claim, scopes decided in code."""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Security
from pydantic import Field

from fastapi_isp_jwt import JWTAuth, Principal


# --8<-- [start:principal]
class StreamsPrincipal(Principal):
    """The caller, plus the plan tier the tenant adds to its tokens as a custom claim."""

    # Auth0 custom claims are namespaced URIs; the alias maps one onto a plain field.
    tier: str = Field(default="free", alias="https://streams.example.com/tier")


# --8<-- [end:principal]

# --8<-- [start:auth]
require_token = JWTAuth(
    domain="istreamplanet.auth0.com",
    # Any organization under the platform URI ...
    audience="https://platform.dtc.istreamplanet.net/{organization}",
    # ... as long as it is one of these.
    organizations=["acme", "globex"],
    principal_class=StreamsPrincipal,
)
# --8<-- [end:auth]

app = FastAPI()


# --8<-- [start:routes]
@app.get("/organizations/{organization}/streams")
async def list_streams(
    organization: str,
    principal: StreamsPrincipal = Security(require_token, scopes=["streams:read"]),
) -> dict[str, object]:
    # The token says which organization it was issued for; the path must agree.
    if principal.organization != organization:
        raise HTTPException(status_code=404, detail="No such organization")
    return {"organization": organization, "tier": principal.tier, "streams": []}


@app.delete("/organizations/{organization}/streams/{stream_id}", status_code=204)
async def delete_stream(
    organization: str,
    stream_id: str,
    principal: StreamsPrincipal = Depends(require_token),
) -> None:
    if principal.organization != organization:
        raise HTTPException(status_code=404, detail="No such organization")
    # Which scope is needed depends on the request: a live stream needs a stronger one.
    required = ["streams:delete-live"] if stream_id.startswith("live-") else ["streams:delete"]
    require_token.authorize(principal, required)  # the same 403 as Security(...) gives


# --8<-- [end:routes]
