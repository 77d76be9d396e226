"""What `JWTAuth.install` adds to an app's OpenAPI document: the refusals of guarded routes.

FastAPI documents a route's security scheme and scopes, but not what the scheme answers
when it refuses, so Swagger UI labels a 401 or 403 "Undocumented". Every operation the
document shows as guarded by the ``JWTAuth`` scheme gets 400, 401, 403 (when it requires scopes)
and 503, each with the ``{"detail": ...}`` body and the header the answer carries. The
document is amended when it is built, so routes added after ``install`` are covered too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows

from fastapi_isp_jwt.audience import ORGANIZATION_PLACEHOLDER, AudiencePolicy
from fastapi_isp_jwt.errors import ConfigurationError, InvalidTokenError
from fastapi_isp_jwt.settings import Settings

if TYPE_CHECKING:
    from fastapi_isp_jwt.security import JWTAuth

__all__ = [
    "REFUSAL_SCHEMA_NAME",
    "document_refusals",
    "refusal_responses",
    "scopes_supported",
    "swagger_login",
]

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


def guarded_operations(
    schema: dict[str, Any], scheme_name: str
) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """Each operation of ``schema`` guarded by the scheme, with the scopes it requires.

    FastAPI writes a guarded operation's scheme and scopes into its ``security`` list,
    whatever carries the dependency (the route, its router, an include), so the document
    is the one place that knows them all.
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            requirements = [r for r in operation.get("security", []) if scheme_name in r]
            if requirements:
                yield operation, sorted({s for r in requirements for s in r[scheme_name]})


def scopes_supported(schema: dict[str, Any], scheme_name: str) -> list[str]:
    """Every scope an operation of ``schema`` requires through the scheme, sorted."""
    return sorted({s for _, scopes in guarded_operations(schema, scheme_name) for s in scopes})


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


def _amend(schema: dict[str, Any], scheme_name: str) -> None:
    amended = False
    for operation, scopes in guarded_operations(schema, scheme_name):
        responses = operation.setdefault("responses", {})
        for status, response in refusal_responses(scopes).items():
            responses.setdefault(status, response)  # what the app documents itself wins
        amended = True
    if amended:
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(REFUSAL_SCHEMA_NAME, _REFUSAL_SCHEMA)


def document_refusals(app: FastAPI, auth: JWTAuth) -> None:
    """Amend ``app``'s OpenAPI document each time FastAPI builds it anew."""
    build: Callable[[], dict[str, Any]] = app.openapi
    amended: list[dict[str, Any]] = []
    routes_seen = [len(app.routes)]

    def openapi_with_refusals() -> dict[str, Any]:
        if len(app.routes) != routes_seen[0]:
            # Routes added since the document was built: older FastAPI keeps serving the
            # cached one, newer rebuilds it; either way the new routes are documented.
            app.openapi_schema = None
            routes_seen[0] = len(app.routes)
        schema = build()
        # FastAPI rebuilds the document when routes change: amend each new one once.
        if not amended or amended[0] is not schema:
            _amend(schema, auth.scheme_name)
            amended[:] = [schema]
        return schema

    app.openapi = openapi_with_refusals  # type: ignore[method-assign]


def _login_audience(settings: Settings, audience: str | None) -> str:
    """The audience Swagger UI asks for: one whose tokens this API accepts."""
    if audience is None:
        exact = [a for a in settings.audiences if ORGANIZATION_PLACEHOLDER not in a]
        if not exact:
            raise ConfigurationError(
                "every audience is a template: pass audience= naming one organization's API, "
                f"e.g. {settings.audiences[0].replace(ORGANIZATION_PLACEHOLDER, 'acme')!r}"
            )
        return exact[0]
    try:
        AudiencePolicy(settings.audiences, settings.organizations).match(audience)
    except InvalidTokenError:
        raise ConfigurationError(
            f"swagger login: {audience!r} is not an audience this API accepts, "
            "so the tokens Swagger UI gets would be refused"
        ) from None
    return audience


def swagger_login(
    app: FastAPI,
    settings: Settings,
    description: str | None,
    *,
    client_id: str,
    scopes: Mapping[str, str] | None,
    audience: str | None,
    issuer: str | None,
) -> OAuth2Model:
    """Swagger UI set up for the Authorization Code flow with PKCE; the scheme to show."""
    base = issuer or settings.issuers[0]
    base = base if base.endswith("/") else base + "/"
    chosen_audience = _login_audience(settings, audience)
    app.swagger_ui_init_oauth = {
        "clientId": client_id,
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": " ".join(scopes or {}),
        "additionalQueryStringParams": {"audience": chosen_audience},
    }
    app.openapi_schema = None
    return OAuth2Model(
        flows=OAuthFlows(
            authorizationCode=OAuthFlowAuthorizationCode(
                authorizationUrl=base + "authorize",
                tokenUrl=base + "oauth/token",
                scopes=dict(scopes or {}),
            )
        ),
        description=description,
    )
