"""A route open to anonymous callers that still refuses a bad token."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from fastapi_isp_jwt import JWTAuth, Principal

# --8<-- [start:app]
maybe_token = JWTAuth(
    domain="istreamplanet.auth0.com",
    audience="https://platform.dtc.istreamplanet.net/acme",
    auto_error=False,  # no credentials: the route gets None instead of a 401
)
app = FastAPI()


@app.get("/catalog")
async def catalog(principal: Principal | None = Depends(maybe_token)) -> dict[str, object]:
    if principal is None:
        return {"streams": ["trailer"]}
    return {"streams": ["trailer", "match-of-the-day"], "for": principal.subject}


# --8<-- [end:app]
