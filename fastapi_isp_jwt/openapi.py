"""What `JWTAuth.install` adds to an app's OpenAPI document: the refusals of guarded routes.

FastAPI documents a route's security scheme and scopes, but not what the scheme answers
when it refuses, so Swagger UI labels a 401 or 403 "Undocumented". Every route whose
dependencies reach the ``JWTAuth`` instance gets 400, 401, 403 (when it requires scopes)
and 503, each with the ``{"detail": ...}`` body and the header the answer carries. The
document is amended when it is built, so routes added after ``install`` are covered too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from fastapi_isp_jwt.security import JWTAuth

__all__ = ["REFUSAL_SCHEMA_NAME", "document_refusals", "routes_guarded_by"]

REFUSAL_SCHEMA_NAME = "AuthRefusal"
_REFUSAL_SCHEMA = {
    "title": REFUSAL_SCHEMA_NAME,
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "required": ["detail"],
}
_CHALLENGE = {
    "description": "The RFC 6750 challenge: `error` and `error_description` say why.",
    "schema": {"type": "string"},
}
_RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer"},
}


def _scopes_of(dependant: Dependant) -> list[str]:
    """The scopes FastAPI hands this dependency, across FastAPI versions."""
    if hasattr(dependant, "own_oauth_scopes"):
        parent = dependant.parent_oauth_scopes or []
        return [*parent, *(s for s in dependant.own_oauth_scopes or [] if s not in parent)]
    return list(getattr(dependant, "security_scopes", None) or [])


def _scopes_reaching(dependant: Dependant, auth: object) -> Iterator[list[str]]:
    for sub in dependant.dependencies:
        if sub.call is auth:
            yield _scopes_of(sub)
        yield from _scopes_reaching(sub, auth)


def routes_guarded_by(
    routes: Sequence[BaseRoute], auth: JWTAuth
) -> Iterator[tuple[BaseRoute, list[str]]]:
    """Each route whose dependencies reach ``auth``, with every scope it requires."""
    for route in routes:
        dependant = getattr(route, "dependant", None)
        if not isinstance(dependant, Dependant):
            continue
        found = list(_scopes_reaching(dependant, auth))
        if found:
            yield route, sorted({scope for scopes in found for scope in scopes})


def scopes_required_by_routes(routes: Sequence[BaseRoute], auth: JWTAuth) -> list[str]:
    """Every scope a route of ``routes`` requires through ``auth``, sorted."""
    return sorted({scope for _, scopes in routes_guarded_by(routes, auth) for scope in scopes})


def _refusal(description: str, header: str, header_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {header: header_spec},
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{REFUSAL_SCHEMA_NAME}"}}
        },
    }


def refusal_responses(scopes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The documented answers of a route guarded by ``JWTAuth`` requiring ``scopes``."""
    responses = {
        "400": _refusal(
            "Malformed credentials: two Authorization headers, or a bearer value that is not "
            "one token (`invalid_request`).",
            "WWW-Authenticate",
            _CHALLENGE,
        ),
        "401": _refusal(
            "No bearer token, or a token this API does not accept: expired, badly signed, for "
            "another audience or organization (`invalid_token`).",
            "WWW-Authenticate",
            _CHALLENGE,
        ),
    }
    if scopes:
        responses["403"] = _refusal(
            f"The token lacks a required scope: {', '.join(scopes)} (`insufficient_scope`).",
            "WWW-Authenticate",
            _CHALLENGE,
        )
    responses["503"] = _refusal(
        "The token issuer's keys cannot be fetched right now.", "Retry-After", _RETRY_AFTER
    )
    return responses


def _amend(schema: dict[str, Any], routes: Sequence[BaseRoute], auth: JWTAuth) -> None:
    paths = schema.get("paths", {})
    amended = False
    for route, scopes in routes_guarded_by(routes, auth):
        operations = paths.get(getattr(route, "path_format", None), {})
        for method in getattr(route, "methods", None) or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue  # not in the schema (include_in_schema=False, HEAD)
            responses = operation.setdefault("responses", {})
            for status, response in refusal_responses(scopes).items():
                responses.setdefault(status, response)
            amended = True
    if amended:
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(REFUSAL_SCHEMA_NAME, _REFUSAL_SCHEMA)


def document_refusals(app: FastAPI, auth: JWTAuth) -> None:
    """Amend ``app``'s OpenAPI document each time FastAPI builds it."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi_with_refusals() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if fresh:
            _amend(schema, app.routes, auth)
        return schema

    app.openapi = openapi_with_refusals  # type: ignore[method-assign]
    app.openapi_schema = None  # a document built before install is built again, amended
