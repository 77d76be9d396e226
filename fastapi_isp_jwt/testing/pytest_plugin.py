"""pytest fixtures for testing APIs protected by fastapi-isp-jwt.

Installed with the package and loaded automatically (entry point ``pytest11``). Every
fixture name starts with ``isp_`` so it never shadows one of yours.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fastapi_isp_jwt import JWTAuth
from fastapi_isp_jwt.testing import DPoPKey, ServedIssuer, TestIssuer


@pytest.fixture
def isp_issuer() -> TestIssuer:
    """A fresh `TestIssuer` with its own key, for the ``acme`` organization."""
    return TestIssuer()


@pytest.fixture
def isp_auth(isp_issuer: TestIssuer) -> JWTAuth:
    """A ``JWTAuth`` trusting ``isp_issuer``, its keys served in memory."""
    return isp_issuer.auth()


@pytest.fixture
def isp_served_issuer(isp_issuer: TestIssuer) -> Iterator[ServedIssuer]:
    """``isp_issuer``'s JWKS served over real HTTP on 127.0.0.1 for the test's duration."""
    with isp_issuer.serve() as served:
        yield served


@pytest.fixture
def isp_dpop_key() -> DPoPKey:
    """A fresh client DPoP key (ES256): bind tokens to it, send requests with its proofs."""
    return DPoPKey()
