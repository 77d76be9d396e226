"""OAuth 2.0 Protected Resource Metadata (RFC 9728): how a client learns to get a token.

Each accepted audience is a resource identifier. Its document is served at the
well-known path with the identifier's path appended (RFC 9728 §3.1): for
``https://platform.dtc.istreamplanet.net/acme``, ``/.well-known/oauth-protected-resource/acme``.
An audience template serves one document per organization it accepts (its allow-list,
or any valid organization). The bare well-known path describes the service's default
resource: an audience without a path, else the first exact audience; a service with
templates only has none. Paths are compared as sent, escapes and all (RFC 3986 §6.2.2):
``%61`` is ``a``, but ``%2F`` is no ``/``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from fastapi_isp_jwt.audience import ORGANIZATION_PLACEHOLDER, AudiencePolicy
from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.openapi import scopes_supported
from fastapi_isp_jwt.sender import application_url

if TYPE_CHECKING:
    from fastapi_isp_jwt.security import JWTAuth

__all__ = ["WELL_KNOWN_PATH", "ResourceMetadata"]

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"


def _url_path(identifier: str) -> str | None:
    """The path of an http(s) identifier; ``None`` if it is no URL a document can hang on."""
    parts = urlsplit(identifier)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
        return None
    return parts.path


def _path_of(identifier: str) -> str | None:
    """The path a resource identifier adds to the well-known path."""
    path = _url_path(identifier)
    # RFC 9728 §3.1: a terminating slash right after the host is dropped.
    return "" if path == "/" else path


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]")


def _normalized(path: str) -> str:
    """``path`` with escaped unreserved characters decoded and other escapes in capitals."""

    def one(escape: re.Match[str]) -> str:
        character = chr(int(escape[1], 16))
        return character if _UNRESERVED.fullmatch(character) else escape[0].upper()

    return _ESCAPE.sub(one, path)


def _suffix_as_sent(request: Request, suffix: str) -> str:
    """The suffix before the server decoded it: an escaped ``/`` must stay escaped."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        sent = raw.decode("latin-1")
        start = sent.find(WELL_KNOWN_PATH)
        if start >= 0 and unquote(sent[start + len(WELL_KNOWN_PATH) :]) == suffix:
            return sent[start + len(WELL_KNOWN_PATH) :]
    return quote(suffix, safe="/")


class ResourceMetadata:
    """The metadata documents of one `JWTAuth`'s audiences, and the router serving them."""

    def __init__(self, auth: JWTAuth) -> None:
        settings = auth.settings
        self._auth = auth
        self._policy = AudiencePolicy(settings.audiences, settings.organizations)
        exact = [a for a in settings.audiences if ORGANIZATION_PLACEHOLDER not in a]
        self._exact_by_path: dict[str, str] = {}
        for audience in exact:
            path = _path_of(audience)
            if path is not None:
                self._exact_by_path.setdefault(_normalized(path), audience)
        self.default_resource: str | None = self._exact_by_path.get("", exact[0] if exact else None)
        # Each template: its text before and after the placeholder, and their paths.
        self._templates: list[tuple[str, str, str, str]] = []
        for template in settings.audiences:
            if template in exact:
                continue
            prefix, rest = template.split(ORGANIZATION_PLACEHOLDER)
            prefix_path = _url_path(prefix)
            if prefix_path is not None:
                self._templates.append((prefix, _normalized(prefix_path), rest, _normalized(rest)))

    def resource_at(self, suffix: str) -> str | None:
        """The resource whose document lives at ``WELL_KNOWN_PATH + suffix`` (as sent), if any."""
        if suffix == "":
            return self.default_resource
        suffix = _normalized(suffix)
        if suffix in self._exact_by_path:
            return self._exact_by_path[suffix]
        for prefix, prefix_path, rest, rest_path in self._templates:
            if not (suffix.startswith(prefix_path) and suffix.endswith(rest_path)):
                continue
            candidate = prefix + suffix[len(prefix_path) : len(suffix) - len(rest_path)] + rest
            try:
                # The verifier's own rule decides: allow-list, one plain path segment.
                self._policy.match(candidate)
            except InvalidTokenError:
                continue
            return candidate
        return None

    def document(self, resource: str, app: FastAPI) -> dict[str, Any]:
        """The RFC 9728 document of ``resource`` as served by ``app``."""
        document: dict[str, Any] = {
            "resource": resource,
            "authorization_servers": list(self._auth.settings.issuers),
        }
        scopes = scopes_supported(app.openapi(), self._auth.scheme_name)
        if scopes:
            document["scopes_supported"] = scopes
        document["bearer_methods_supported"] = ["header"]
        settings = self._auth.settings
        if settings.dpop != "disabled":
            # RFC 9728 §2: the DPoP members, when this resource accepts DPoP.
            algorithms = sorted(settings.dpop_policy.allowed_algorithms)
            document["dpop_signing_alg_values_supported"] = algorithms
            document["dpop_bound_access_tokens_required"] = settings.dpop == "required"
        document["resource_name"] = app.title
        return document

    def url_for(self, connection: HTTPConnection) -> str | None:
        """Absolute URL of the default document, for the ``resource_metadata`` parameter."""
        if self.default_resource is None:
            return None
        # Where clients reach this service, as DPoP's htu is read: through trusted proxies
        # or the public base URL, never the address a proxy forwarded to.
        root = application_url(
            connection.scope,
            public_base_url=self._auth.public_base_url,
            trusted_proxies=self._auth.trusted_proxies,
        )
        return root.rstrip("/") + WELL_KNOWN_PATH

    def router(self) -> APIRouter:
        router = APIRouter()

        async def protected_resource_metadata(request: Request, suffix: str) -> JSONResponse:
            resource = self.resource_at(_suffix_as_sent(request, suffix))
            if resource is None:
                raise HTTPException(status_code=404, detail="Not Found")
            return JSONResponse(self.document(resource, request.app))

        router.add_api_route(
            WELL_KNOWN_PATH + "{suffix:path}",
            protected_resource_metadata,
            methods=["GET"],
            include_in_schema=False,
        )
        return router
