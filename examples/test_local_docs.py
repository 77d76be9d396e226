"""The docs pages served with the app's own Swagger UI and ReDoc files (examples/local_docs.py)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from examples import local_docs
from examples.local_docs import serve_docs_locally

pytestmark = pytest.mark.skipif(
    local_docs.docs_assets_directory() is None, reason="fastapi-offline is not installed"
)


def test_swagger_ui_page_loads_its_script_and_style_from_the_app() -> None:
    app = FastAPI()
    assert serve_docs_locally(app)
    page = TestClient(app).get("/docs").text
    assert 'src="/docs-assets/swagger-ui-bundle.js"' in page
    assert 'href="/docs-assets/swagger-ui.css"' in page
    assert "cdn" not in page.lower()


def test_redoc_page_loads_its_script_from_the_app() -> None:
    app = FastAPI()
    serve_docs_locally(app)
    page = TestClient(app).get("/redoc").text
    assert 'src="/docs-assets/redoc.standalone.js"' in page
    assert "cdn" not in page.lower()
    assert "fonts.googleapis.com" not in page


def test_the_assets_are_served_by_the_app() -> None:
    app = FastAPI()
    serve_docs_locally(app)
    client = TestClient(app)
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = client.get(f"/docs-assets/{name}")
        assert response.status_code == 200, name
        assert len(response.content) > 10_000, name


def test_the_docs_routes_are_replaced_not_doubled() -> None:
    app = FastAPI()
    serve_docs_locally(app)
    paths = [getattr(route, "path", None) for route in app.routes]
    assert paths.count("/docs") == 1
    assert paths.count("/redoc") == 1
    assert paths.count("/docs/oauth2-redirect") == 1


def test_login_settings_made_after_the_switch_reach_the_page() -> None:
    app = FastAPI()
    serve_docs_locally(app)
    app.swagger_ui_init_oauth = {
        "clientId": "docs-client",
        "usePkceWithAuthorizationCodeGrant": True,
    }
    page = TestClient(app).get("/docs").text
    assert "ui.initOAuth(" in page
    assert '"clientId": "docs-client"' in page
    assert "/docs/oauth2-redirect" in page


def test_the_pages_honour_the_root_path_of_a_proxied_app() -> None:
    app = FastAPI()
    serve_docs_locally(app)
    page = TestClient(app, root_path="/api").get("/docs").text
    assert 'src="/api/docs-assets/swagger-ui-bundle.js"' in page
    assert "url: '/api/openapi.json'" in page


def test_pages_switched_off_stay_off() -> None:
    app = FastAPI(redoc_url=None)
    serve_docs_locally(app)
    client = TestClient(app)
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_without_fastapi_offline_the_app_keeps_fastapis_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local_docs, "find_spec", lambda name: None)
    app = FastAPI()
    assert serve_docs_locally(app) is False
    page = TestClient(app).get("/docs").text
    assert "/docs-assets/" not in page
    assert "swagger-ui-bundle.js" in page
