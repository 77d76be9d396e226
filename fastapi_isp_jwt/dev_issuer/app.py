"""The dev issuer as a FastAPI app: metadata, JWKS, the login page and the token endpoint."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.cors import CORSMiddleware

from fastapi_isp_jwt.dev_issuer.authority import (
    AuthorizationRequest,
    DevAuthority,
    OAuthError,
    with_query,
)
from fastapi_isp_jwt.dev_issuer.config import DevIssuerConfig
from fastapi_isp_jwt.dev_issuer.discovery import (
    AUTHORIZATION_SERVER_METADATA,
    JWKS_PATH,
    OPENID_CONFIGURATION,
    authorization_server_metadata,
)
from fastapi_isp_jwt.dev_issuer.proofs import TokenRequestProofs
from fastapi_isp_jwt.minting import SigningKey, is_unicode_text

__all__ = ["create_app"]

logger = logging.getLogger("fastapi_isp_jwt.dev_issuer")

MAX_BODY_BYTES = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
_FORM = "application/x-www-form-urlencoded"
# Browser apps on this machine (Swagger UI on any port) exchange codes from their own page.
# The hosts are grammar.is_loopback_host's (localhost, 127.0.0.0/8, ::1), written as a regex
# because Starlette's CORSMiddleware takes extra origins only as one; browsers send the
# host of an Origin in its one canonical spelling, so this regex needs no other spelling.
# tests/test_dev_issuer.py holds the two rules to the same answers.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_LOOPBACK_ORIGIN = rf"http://(localhost|127(\.{_OCTET}){{3}}|\[::1\])(:[0-9]{{1,5}})?"

# No scripts, no framing, nothing cached: the page holds a login form.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem;
       border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
.notice { background: #fff4d6; border: 1px solid #e0c060; padding: .5rem; font-size: .85rem; }
.error { color: #a00000; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input { width: 100%; box-sizing: border-box; padding: .5rem; margin-top: .25rem; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font-size: 1rem; }
code { word-break: break-all; }
"""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object kept as its list of members, so that repeated names can be seen."""


def create_app(
    config: DevIssuerConfig | None = None,
    *,
    signing_key: SigningKey | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """Build the dev issuer's ASGI app; it answers as ``config.issuer``.

    ``signing_key`` defaults to a new key held in memory (see
    `load_or_create_key` to keep one in a file).
    ``clock`` measures the lifetime of authorization codes.
    """
    config = config or DevIssuerConfig()
    authority = DevAuthority(config, signing_key=signing_key, clock=clock)
    proofs = TokenRequestProofs(config.issuer + "oauth/token", demand_nonce=config.dpop_nonce)
    app = FastAPI(
        title="fastapi-isp-jwt dev issuer",
        description="A local stand-in for the Auth0 tenant. For development only.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=_registered_origins(config),
        allow_origin_regex=_LOOPBACK_ORIGIN,
        allow_methods=["GET", "POST"],
        allow_headers=["Accept", "Authorization", "Content-Type", "DPoP", "X-Requested-With"],
        expose_headers=["DPoP-Nonce"],
        max_age=600,
    )
    logger.warning("dev issuer at %s: for development only", config.issuer)

    @app.exception_handler(OAuthError)
    async def answer_refusal(request: Request, refusal: OAuthError) -> Response:
        return _refusal_response(request, refusal)

    metadata = authorization_server_metadata(config, dpop_signing_algs=proofs.algorithms)

    @app.get("/.well-known/" + AUTHORIZATION_SERVER_METADATA)
    @app.get("/.well-known/" + OPENID_CONFIGURATION)
    async def discovery() -> JSONResponse:
        return JSONResponse(metadata)

    @app.get("/" + JWKS_PATH)
    async def jwks() -> JSONResponse:
        return JSONResponse(authority.jwks(), headers={"Cache-Control": "max-age=60"})

    @app.get("/authorize")
    async def show_login(request: Request) -> Response:
        return _login_page(request, _authorization_request(authority, request))

    @app.post("/authorize")
    async def log_in(request: Request) -> Response:
        pending = _authorization_request(authority, request)
        form = _single_values(_parse_form(await _read_body(request), _media_type(request)))
        username = form.get("username", "")
        try:
            user = authority.log_in(username, form.get("password", ""))
        except OAuthError as refusal:
            # Wrong credentials: the user tries again; the client hears nothing yet.
            return _login_page(request, pending, username, error=refusal.description)
        return RedirectResponse(authority.grant_code(pending, user), status_code=302)

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        body = await _read_body(request)
        params = _single_values(_parse_token_request(body, _media_type(request)))
        # The proof first: without the nonce demanded, nothing else is worth checking.
        jkt = proofs.thumbprint(request.headers.getlist("dpop"))
        answer = authority.exchange(params, _basic_credentials(request), jkt=jkt)
        headers = dict(_NO_STORE)
        nonce = proofs.current_nonce()
        if nonce is not None:
            headers["DPoP-Nonce"] = nonce  # RFC 9449 §8.2: the one to use next time
        return JSONResponse(answer, headers=headers)

    return app


def _registered_origins(config: DevIssuerConfig) -> list[str]:
    origins = {
        f"{parts.scheme}://{parts.netloc}"
        for client in config.clients
        for parts in map(urlsplit, client.redirect_uris)
    }
    return sorted(origins)


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Request parameters by name; a repeated name is an error, an empty value is absent.

    RFC 6749 §3.1/§3.2: parameters must not be repeated, and one sent without a value is
    treated as omitted. Names and values must be Unicode text (no lone surrogates).
    """
    values: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        # A JSON body may escape a lone surrogate (\ud800): no Unicode text, it would fail
        # later wherever it is encoded, e.g. when a secret is compared.
        if not (is_unicode_text(name) and is_unicode_text(value)):
            raise OAuthError("invalid_request", "parameters must be UTF-8 text")
        if name in seen:
            raise OAuthError("invalid_request", f"the parameter {name!r} was sent more than once")
        seen.add(name)
        if value:
            values[name] = value
    return values


def _authorization_request(authority: DevAuthority, request: Request) -> AuthorizationRequest:
    return authority.check_authorization_request(
        _single_values(list(request.query_params.multi_items()))
    )


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise OAuthError("invalid_request", "the request body is too large", status_code=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise OAuthError("invalid_request", "the request body is too large", status_code=413)
    return bytes(body)


def _parse_form(body: bytes, media_type: str) -> list[tuple[str, str]]:
    if media_type != _FORM:
        raise OAuthError("invalid_request", f"the body must be {_FORM}")
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=64
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the form body cannot be parsed") from None


def _parse_token_request(body: bytes, media_type: str) -> list[tuple[str, str]]:
    """Form-encoded as RFC 6749 says; JSON objects of strings too, as the tenant accepts."""
    if media_type != "application/json":
        return _parse_form(body, media_type)
    try:
        document = json.loads(body, object_pairs_hook=_Pairs)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise OAuthError("invalid_request", "the JSON body cannot be parsed") from None
    if not isinstance(document, _Pairs) or not all(isinstance(v, str) for _, v in document):
        raise OAuthError("invalid_request", "the JSON body must be an object of strings")
    return list(document)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    headers = request.headers.getlist("authorization")
    if not headers:
        return None
    if len(headers) > 1:
        raise OAuthError("invalid_request", "send one Authorization header")
    scheme, _, credentials = headers[0].partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_request", "client authentication uses HTTP Basic only")
    # RFC 6749 §2.3.1: base64 of the form-encoded client id and secret, joined by a colon.
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or a character beyond ASCII
        raise OAuthError("invalid_request", "the Basic credentials are not valid base64") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthError("invalid_request", "the Basic credentials need client_id:client_secret")
    return unquote_plus(client_id), unquote_plus(secret)


def _refusal_response(request: Request, refusal: OAuthError) -> Response:
    answer = {"error": refusal.error, "error_description": refusal.description}
    if refusal.redirect_uri is not None:
        if refusal.state is not None:
            answer["state"] = refusal.state
        return RedirectResponse(with_query(refusal.redirect_uri, answer), status_code=302)
    if request.url.path == "/authorize":
        # The client or its redirect URI cannot be trusted: no redirect, a page instead.
        error, description = escape(refusal.error), escape(refusal.description)
        body = f"<h1>Cannot log in</h1>\n<p><code>{error}</code>: {description}</p>"
        return _html_page("Error", body, refusal.status_code)
    headers = dict(_NO_STORE)
    if refusal.basic_challenge:
        headers["WWW-Authenticate"] = 'Basic realm="fastapi-isp-jwt dev issuer"'
    if refusal.dpop_nonce is not None:
        headers["DPoP-Nonce"] = refusal.dpop_nonce
    return JSONResponse(answer, status_code=refusal.status_code, headers=headers)


def _html_page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    page = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · fastapi-isp-jwt dev issuer</title>"
        f"<style>{_STYLE}</style></head>\n<body><main>\n"
        '<p class="notice">fastapi-isp-jwt dev issuer: for local development only.</p>\n'
        f"{body}\n</main></body></html>\n"
    )
    return HTMLResponse(page, status_code=status_code, headers=_PAGE_HEADERS)


def _login_page(
    request: Request, pending: AuthorizationRequest, username: str = "", error: str | None = None
) -> HTMLResponse:
    # The form posts back to the very request it answers, so the POST is checked exactly
    # like the GET was.
    action = "/authorize?" + request.url.query
    message = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
    return _html_page(
        "Log in",
        "<h1>Log in</h1>\n"
        f"<p>to <strong>{escape(pending.client.client_id)}</strong> "
        f"for <code>{escape(pending.audience)}</code></p>\n"
        f"{message}"
        f'<form method="post" action="{escape(action)}">\n'
        '<label for="username">Username</label>\n'
        '<input id="username" name="username" type="text" autocomplete="username" '
        f'required autofocus value="{escape(username)}">\n'
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>\n'
        '<button type="submit">Log in</button>\n'
        "</form>",
        status_code=400 if error else 200,
    )
