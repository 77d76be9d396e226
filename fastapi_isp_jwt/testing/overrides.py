"""Standing in for the token check in tests, without losing the route's scope checks.

``app.dependency_overrides[require_token] = lambda: principal`` looks right and is a trap:
FastAPI then calls the lambda instead of ``require_token``, and the lambda never looks at
the scopes the route asked for with ``Security(require_token, scopes=[...])``. Every
route answers 200, including those that must answer 403. The override built here declares
a ``SecurityScopes`` parameter, so FastAPI hands it the route's scopes, and it refuses
exactly as the real dependency would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.security import SecurityScopes

from fastapi_isp_jwt import JWTAuth, Principal

__all__ = ["override_principal", "principal_override"]


def principal_override(auth: JWTAuth, principal: Principal) -> Callable[..., Principal]:
    """A dependency to put in ``app.dependency_overrides[auth]``: always ``principal``.

    Scopes required by the route are still checked; a missing one gets the same 403
    (``WWW-Authenticate: Bearer error="insufficient_scope"``) as with a real token.
    """

    def authenticated_as_principal(security_scopes: SecurityScopes) -> Principal:
        return auth.authorize(principal, security_scopes.scopes)

    return authenticated_as_principal


@contextmanager
def override_principal(app: FastAPI, auth: JWTAuth, principal: Principal) -> Iterator[Principal]:
    """Within the ``with`` block, every request to ``app`` is made by ``principal``.

    No token is needed, scope checks still run, and whatever override was in place
    before comes back when the block ends.
    """
    overrides = app.dependency_overrides
    had_previous = auth in overrides
    previous = overrides.get(auth)
    overrides[auth] = principal_override(auth, principal)
    try:
        yield principal
    finally:
        if had_previous:
            overrides[auth] = previous  # type: ignore[assignment]
        else:
            overrides.pop(auth, None)
