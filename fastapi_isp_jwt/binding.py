"""Tie the token's organization to the organization a request is about.

``auth.bound_to(path_param="org")`` is a dependency that answers the token's `Principal`
only when the token's organization (from the platform audience, or ``org_id`` when
``organization_from="org_id"``) equals the request's: a path parameter, or what
``from_request(connection)`` derives from it (a subdomain, a header), compared exactly; an
empty organization names none. Anything else is refused before the route runs, exactly as a
token for another audience is (401 ``invalid_token``), so a caller cannot tell an
organization that exists from one that does not.

It depends on ``Security(auth)``: scopes of ``Security(auth.bound_to(...), scopes=[...])``
reach the token check, OpenAPI shows the route as guarded, and an override of ``auth`` in
``app.dependency_overrides`` replaces only the token check, never the binding.
"""

# No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import Path, Security
from starlette.requests import HTTPConnection

from fastapi_isp_jwt.errors import ConfigurationError, InvalidTokenError, MissingCredentialsError
from fastapi_isp_jwt.principal import Principal
from fastapi_isp_jwt.reasons import Reason

if TYPE_CHECKING:
    from fastapi_isp_jwt.security import JWTAuth

__all__ = ["OrganizationOfRequest", "organization_binding"]

OrganizationOfRequest = Callable[[HTTPConnection], str | Awaitable[str | None] | None]
"""Derives the organization a request is about; ``None`` when it names none."""


def organization_binding(
    auth: "JWTAuth",
    *,
    path_param: str | None = None,
    from_request: OrganizationOfRequest | None = None,
) -> Callable[..., Awaitable[Principal]]:
    """The dependency behind `JWTAuth.bound_to`; give exactly one of the two sources."""
    if (path_param is None) == (from_request is None):
        raise ConfigurationError("give exactly one of path_param= or from_request=")
    if path_param is not None and not path_param.isidentifier():
        raise ConfigurationError(f"path_param must name a path parameter, not {path_param!r}")
    by_org_id = auth.settings.organization_from == "org_id"

    # FastAPI finds the connection and the token check by their types: their names are
    # free, and chosen so as to leave every plausible path parameter name to the route.
    async def principal_of_the_requested_organization(
        _isp_jwt_connection: HTTPConnection,
        _isp_jwt_principal: Principal | None = Security(auth),
        **path: str,
    ) -> Principal:
        connection, principal = _isp_jwt_connection, _isp_jwt_principal
        if principal is None:  # auto_error=False: an anonymous caller belongs to no one
            raise auth.refusal_for(connection, MissingCredentialsError(Reason.CREDENTIALS_MISSING))
        if path_param is not None:
            requested: str | None = path[path_param]
        else:
            assert from_request is not None
            derived = from_request(connection)
            requested = await derived if inspect.isawaitable(derived) else derived
        token_organization = principal.org_id if by_org_id else principal.organization
        # An empty organization names none, even against a token whose claim is empty too.
        if not requested or token_organization != requested:
            raise auth.refusal_for(connection, InvalidTokenError(Reason.OTHER_ORGANIZATION))
        return principal

    signature = inspect.signature(principal_of_the_requested_organization)
    parameters = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    if path_param in {p.name for p in parameters}:
        raise ConfigurationError(f"path_param {path_param!r} is a name the binding keeps")
    if path_param is not None:
        # Declared as a path parameter, FastAPI reads, checks and documents it.
        parameters.append(
            inspect.Parameter(
                path_param, inspect.Parameter.KEYWORD_ONLY, default=Path(), annotation=str
            )
        )
    dependency: Any = principal_of_the_requested_organization
    dependency.__signature__ = signature.replace(parameters=parameters)
    return principal_of_the_requested_organization
