"""Serve the interactive docs' JavaScript and CSS from the app itself, not from a CDN.

FastAPI's ``/docs`` and ``/redoc`` pages load Swagger UI and ReDoc from a public CDN, so
they stay blank on a machine without internet access (a laptop offline, a locked-down CI
runner, a private network). The ``fastapi-offline`` package ships those files; when it is
installed, :func:`serve_docs_locally` mounts them under the app and points both pages at
them. Everything else FastAPI does for the docs stays as it is: the OpenAPI document, the
OAuth2 redirect page, and the login settings of ``JWTAuth.enable_swagger_login``.

Usage::

    app = FastAPI()
    serve_docs_locally(app)  # False, and the CDN pages kept, without fastapi-offline
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Route

__all__ = ["ASSETS_PATH", "docs_assets_directory", "serve_docs_locally"]

ASSETS_PATH = "/docs-assets"
_SWAGGER_JS = "swagger-ui-bundle.js"
_SWAGGER_CSS = "swagger-ui.css"
_REDOC_JS = "redoc.standalone.js"
_FAVICON = "favicon.png"


def docs_assets_directory() -> Path | None:
    """Where the installed ``fastapi-offline`` keeps Swagger UI and ReDoc, if it is installed."""
    spec = find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "static"
    wanted = (_SWAGGER_JS, _SWAGGER_CSS, _REDOC_JS)
    return directory if all((directory / name).is_file() for name in wanted) else None


def serve_docs_locally(app: FastAPI, *, assets_path: str = ASSETS_PATH) -> bool:
    """Serve ``app``'s Swagger UI and ReDoc pages with files from the app, not a CDN.

    Replaces the pages at ``app.docs_url`` and ``app.redoc_url`` (those that are on) and
    mounts the files at ``assets_path``. The Swagger UI page reads
    ``app.swagger_ui_init_oauth`` on every request, so ``enable_swagger_login`` may be
    called before or after this. Returns ``False`` and changes nothing when
    ``fastapi-offline`` is not installed.
    """
    directory = docs_assets_directory()
    if directory is None or app.openapi_url is None:
        return False
    openapi_url = app.openapi_url
    replaced = {url for url in (app.docs_url, app.redoc_url) if url}
    app.router.routes[:] = [r for r in app.router.routes if not _serves(r, replaced)]
    app.mount(assets_path, StaticFiles(directory=directory), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{_root_path(request)}{assets_path}/{name}"

    if app.docs_url:

        async def swagger_ui(request: Request) -> HTMLResponse:
            redirect = app.swagger_ui_oauth2_redirect_url
            return get_swagger_ui_html(
                openapi_url=_root_path(request) + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=asset(request, _SWAGGER_JS),
                swagger_css_url=asset(request, _SWAGGER_CSS),
                swagger_favicon_url=asset(request, _FAVICON),
                oauth2_redirect_url=_root_path(request) + redirect if redirect else None,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )

        app.add_route(app.docs_url, swagger_ui, include_in_schema=False)

    if app.redoc_url:

        async def redoc(request: Request) -> HTMLResponse:
            return get_redoc_html(
                openapi_url=_root_path(request) + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=asset(request, _REDOC_JS),
                redoc_favicon_url=asset(request, _FAVICON),
                # The fonts would come from the internet too; the page falls back to its own.
                with_google_fonts=False,
            )

        app.add_route(app.redoc_url, redoc, include_in_schema=False)
    return True


def _serves(route: BaseRoute, paths: set[str]) -> bool:
    return isinstance(route, Route) and route.path in paths


def _root_path(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
