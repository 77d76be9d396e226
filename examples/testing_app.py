"""A small channels API, protected as in production; ``test_testing_app.py`` tests it.

Nothing here knows about tests: the tests either swap ``require_token`` for a ``JWTAuth``
that trusts a test issuer, or stand in a principal for the token check.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Security

from fastapi_isp_jwt import JWTAuth, Principal

require_token = JWTAuth(
    domain="istreamplanet.auth0.com",
    audience="https://platform.dtc.istreamplanet.net/acme",
)
app = FastAPI(title="Channels API")

_channels: dict[str, str] = {"news": "acme"}


@app.get("/whoami")
async def whoami(principal: Principal = Depends(require_token)) -> dict[str, object]:
    return {"subject": principal.subject, "machine": principal.is_machine}


@app.get("/channels")
async def list_channels(
    principal: Principal = Security(require_token, scopes=["channels:read"]),
) -> list[str]:
    return sorted(name for name, org in _channels.items() if org == principal.organization)


@app.post("/channels/{name}", status_code=201)
async def create_channel(
    name: str,
    principal: Principal = Security(require_token, scopes=["channels:write"]),
) -> dict[str, str]:
    _channels[name] = principal.organization or ""
    return {"name": name, "created_by": principal.subject}
