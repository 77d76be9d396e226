"""The README quickstart: one dependency protects every route of a FastAPI app.

The docs include the section between the snippet markers, and the README holds the same
code; ``tests/test_docs.py`` runs it and keeps the two identical.
"""

# --8<-- [start:app]
from fastapi import Depends, FastAPI, Security

from fastapi_isp_jwt import JWTAuth, Principal

require_token = JWTAuth(
    domain="istreamplanet.auth0.com",  # trusts the issuer https://istreamplanet.auth0.com/
    audience="https://platform.dtc.istreamplanet.net/acme",
)
app = FastAPI()


@app.get("/streams")
async def list_streams(principal: Principal = Depends(require_token)) -> dict[str, object]:
    return {"subject": principal.subject, "organization": principal.organization}


@app.post("/streams")
async def create_stream(
    principal: Principal = Security(require_token, scopes=["streams:write"]),
) -> dict[str, str]:
    return {"created_by": principal.subject}


# --8<-- [end:app]
