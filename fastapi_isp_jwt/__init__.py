"""Verify iStreamPlanet platform access tokens in FastAPI, in one line.

```python
require_token = JWTAuth(
    domain="istreamplanet.auth0.com",
    audience="https://platform.dtc.istreamplanet.net/acme",
)

@app.get("/streams")
async def list_streams(principal: Principal = Depends(require_token)): ...
```
"""

from fastapi_isp_jwt.algorithms import ALGORITHMS
from fastapi_isp_jwt.audience import ORGANIZATION_PLACEHOLDER, PLATFORM_AUDIENCE_PREFIX
from fastapi_isp_jwt.client import ClientCredentials
from fastapi_isp_jwt.errors import (
    AuthError,
    ConfigurationError,
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    ISPJWTError,
    IssuerUnavailableError,
    KeySetError,
    MissingCredentialsError,
    TokenRequestError,
)
from fastapi_isp_jwt.principal import Claims, Principal
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.security import JWTAuth
from fastapi_isp_jwt.settings import DEFAULT_LEEWAY, Settings
from fastapi_isp_jwt.verified import PendingVerification
from fastapi_isp_jwt.verifier import Verifier

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "DEFAULT_LEEWAY",
    "ORGANIZATION_PLACEHOLDER",
    "PLATFORM_AUDIENCE_PREFIX",
    "AuthError",
    "Claims",
    "ClientCredentials",
    "ConfigurationError",
    "ISPJWTError",
    "InsufficientScopeError",
    "InvalidRequestError",
    "InvalidTokenError",
    "IssuerUnavailableError",
    "JWTAuth",
    "KeySetError",
    "MissingCredentialsError",
    "PendingVerification",
    "Principal",
    "Reason",
    "Settings",
    "TokenRequestError",
    "Verifier",
    "__version__",
]
