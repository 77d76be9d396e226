"""Swagger UI of an installed app shows every refusal of a guarded route as documented.

Debian's chromium, driven by Playwright with the launch options and loopback-only routing of
``tests/test_browser.py``, opens ``/docs`` of an app served by uvicorn on 127.0.0.1 (its
Swagger UI files served by the app itself) and expands a route that requires a scope. The
page is photographed under pytest's temporary directory.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import Depends, FastAPI, Security
from playwright.sync_api import BrowserContext, Locator, Page

from examples.local_docs import serve_docs_locally
from fastapi_isp_jwt import JWTAuth, Principal
from tests.test_browser import (  # noqa: F401 - fixtures shared with the login test
    CHROMIUM,
    browser,
    chromium,
    outside_requests,
)

STARTUP_TIMEOUT = 30.0

pytestmark = pytest.mark.browser
CHROMIUM.skip_module_if_missing()


def installed_app() -> FastAPI:
    require_token = JWTAuth(
        domain="istreamplanet.auth0.com", audience="https://platform.dtc.istreamplanet.net/acme"
    )
    app = FastAPI(title="Refusals API")
    serve_docs_locally(app)

    @app.post("/streams")
    def create_stream(
        principal: Principal = Security(require_token, scopes=["streams:write"]),
    ) -> None:
        return None

    @app.get("/me")
    def me(principal: Principal = Depends(require_token)) -> str:
        return principal.subject

    require_token.install(app)
    return app


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(installed_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        pytest.fail("the app did not start on 127.0.0.1")
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        listener.close()


@pytest.fixture(scope="module")
def docs_page(browser: BrowserContext, app_url: str) -> Page:  # noqa: F811
    page = browser.new_page()
    page.goto(app_url + "/docs")
    page.get_by_role("heading", name="Refusals API").wait_for()
    return page


def expanded(page: Page, operation_id: str) -> Locator:
    block = page.locator(f"#operations-default-{operation_id}")
    if not block.locator(".responses-table").count():
        block.locator(".opblock-summary").click()
    block.locator(".responses-table").first.wait_for()
    return block


def documented_codes(block: Locator) -> list[str]:
    codes: list[str] = block.locator(".responses-table tr.response").evaluate_all(
        "rows => rows.map(row => row.dataset.code)"
    )
    return codes


@pytest.fixture(scope="module")
def scoped_route(docs_page: Page, tmp_path_factory: pytest.TempPathFactory) -> Locator:
    block = expanded(docs_page, "create_stream_streams_post")
    screenshot = tmp_path_factory.mktemp("screenshots") / "swagger-refusals.png"
    docs_page.mouse.move(0, 0)
    block.screenshot(path=screenshot)
    assert screenshot.stat().st_size > 0
    return block


def test_swagger_ui_lists_every_refusal_of_a_scoped_route(scoped_route: Locator) -> None:
    assert documented_codes(scoped_route) == ["200", "400", "401", "403", "503"]


def test_swagger_ui_describes_the_403_with_the_missing_scope(scoped_route: Locator) -> None:
    row = scoped_route.locator('.responses-table tr.response[data-code="403"]')
    assert "streams:write" in row.locator(".response-col_description").inner_text()


def test_swagger_ui_shows_the_challenge_header_of_the_401(scoped_route: Locator) -> None:
    row = scoped_route.locator('.responses-table tr.response[data-code="401"]')
    assert "WWW-Authenticate" in row.inner_text()


def test_swagger_ui_lists_no_403_for_a_route_without_scopes(docs_page: Page) -> None:
    block = expanded(docs_page, "me_me_get")
    assert documented_codes(block) == ["200", "400", "401", "503"]


def test_the_screenshot_is_saved_under_the_temporary_directory(
    scoped_route: Locator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = list(Path(tmp_path_factory.getbasetemp()).glob("screenshots*/swagger-refusals.png"))
    assert shots
    assert shots[0].stat().st_size > 10_000


def test_the_browser_requests_nothing_beyond_this_machine(
    scoped_route: Locator,
    outside_requests: list[str],  # noqa: F811
) -> None:
    assert outside_requests == []
