"""A person logs in from the example API's docs page, in a real browser, with no internet.

Chromium (``$CHROMIUM``, else ``chromium`` on ``PATH``), driven by Playwright, opens
``/docs`` of ``examples/app.py`` (served by uvicorn in a child process, configured through
``ISP_JWT_*`` as ``make demo`` does, its Swagger UI files served by the app itself through
``examples/local_docs.py``), clicks Authorize, logs in as the dev issuer's demo user (granted
``streams:read`` only) and tries two routes with "Try it out". Every request the browser
makes must stay on 127.0.0.1: anything else is refused and recorded. Without chromium the
tests are skipped with one line saying how to get it; under ``CI=true`` they fail instead.

``UPDATE_SCREENSHOTS=1`` also copies the screenshot of the logged-in page into
``docs/img/``; otherwise it is only written under pytest's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from fastapi_isp_jwt.dev_issuer import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DevIssuerConfig,
    RunningDevIssuer,
    running,
)
from tests.support.components import Component, find_executable

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Component(
    "chromium",
    find_executable("CHROMIUM", "chromium", "chromium-browser"),
    "install it (Debian: apt-get install chromium; macOS: brew install --cask chromium) "
    "or set CHROMIUM=/path/to/chromium",
)
CHROMIUM.skip_module_if_missing()
SCREENSHOT = ROOT / "docs" / "img" / "swagger-logged-in.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ROUTE_SCOPES = ["streams:read", "streams:write", "streams:delete"]
STARTUP_TIMEOUT = 30.0
# Bounds each browser action, so that a broken page fails in seconds rather than hanging.
ACTION_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Outcome:
    """What Swagger UI shows under "Server response" after Execute."""

    status: str
    body: str
    headers: str


@dataclass(frozen=True)
class Login:
    ticked_scopes: list[str]
    authorization_url: str

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.authorization_url).query)


@dataclass(frozen=True)
class TriedRoutes:
    read: Outcome
    write: Outcome


@pytest.fixture(scope="module", autouse=True)
def chromium() -> Path:
    """The browser, checked before any server starts."""
    return CHROMIUM.require()


# -- servers on 127.0.0.1 -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_issuer() -> Iterator[RunningDevIssuer]:
    with running(DevIssuerConfig(port=0)) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def app_url(dev_issuer: RunningDevIssuer) -> Iterator[str]:
    """examples/app.py under uvicorn, configured for Swagger UI login against the dev issuer."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ISP_JWT_")}
    env |= {
        "ISP_JWT_ISSUER": dev_issuer.issuer,
        "ISP_JWT_AUDIENCE": DEFAULT_AUDIENCE,
        "SWAGGER_CLIENT_ID": DEFAULT_CLIENT_ID,
    }
    # The socket is bound here and handed over, so the port is known and cannot be taken.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        command = [sys.executable, "-m", "uvicorn", "examples.app:app"]
        command += ["--fd", str(listener.fileno()), "--log-level", "warning"]
        app = subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=[listener.fileno()])  # noqa: S603
    try:
        _wait_until_serving(app, url + "/openapi.json")
        yield url
    finally:
        _stop(app)


def _wait_until_serving(app: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if app.poll() is not None:
            pytest.fail(f"examples/app.py exited with code {app.returncode} at startup")
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
        else:
            return
    pytest.fail(f"examples/app.py did not answer on {url}")


def _stop(app: subprocess.Popen[bytes]) -> None:
    if app.poll() is None:
        app.send_signal(signal.SIGINT)
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


# -- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outside_requests() -> list[str]:
    """URLs the browser asked for beyond this machine (each one refused)."""
    return []


@pytest.fixture(scope="module")
def browser(
    chromium: Path, tmp_path_factory: pytest.TempPathFactory, outside_requests: list[str]
) -> Iterator[BrowserContext]:
    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK_HOSTS:
            route.continue_()
        else:
            outside_requests.append(route.request.url)
            route.abort("addressunreachable")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.route("**/*", loopback_only)
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def docs_page(browser: BrowserContext, app_url: str, outside_requests: list[str]) -> Page:
    page = browser.new_page()
    page.goto(app_url + "/docs")
    try:
        page.get_by_role("heading", name="Streams API").wait_for()
    except PlaywrightTimeoutError:
        pytest.fail(
            f"Swagger UI did not render; refused requests off this machine: {outside_requests}"
        )
    return page


@pytest.fixture(scope="module")
def login(docs_page: Page) -> Login:
    """Log in as the demo user through the Authorize dialog, ticking every scope offered."""
    docs_page.get_by_role("button", name="Authorize").first.click()
    dialog = docs_page.locator(".modal-ux")
    dialog.get_by_text("select all").click()
    ticked = dialog.locator("input[type=checkbox]:checked").evaluate_all(
        "boxes => boxes.map(box => box.dataset.value)"
    )
    with docs_page.expect_popup() as popup:
        dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    login_page = popup.value
    login_page.get_by_label("Username").fill(DEFAULT_USERNAME)
    authorization_url = login_page.url
    login_page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    # The dev issuer sends the popup back to the docs' redirect page, which hands the code
    # to Swagger UI and closes; Swagger UI then exchanges the code for a token.
    with login_page.expect_event("close"):
        login_page.get_by_role("button", name="Log in").click()
    dialog.get_by_role("heading", name="Authorized").wait_for()
    dialog.get_by_role("button", name="Close").click()
    return Login(ticked_scopes=ticked, authorization_url=authorization_url)


@pytest.fixture(scope="module")
def tried_routes(
    docs_page: Page, login: Login, tmp_path_factory: pytest.TempPathFactory
) -> TriedRoutes:
    """GET /streams and POST /streams/{stream_id} run from the logged-in docs page.

    The page is then photographed, as a person would see it.
    """
    read = try_it_out(docs_page, "list_streams_streams_get")
    write = try_it_out(docs_page, "create_stream_streams__stream_id__post", stream_id="sports")
    screenshot = tmp_path_factory.mktemp("screenshots") / SCREENSHOT.name
    take_screenshot(docs_page, screenshot)
    # A failing run must not replace the picture the docs show.
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" and (read.status, write.status) == (
        "200",
        "403",
    ):
        shutil.copyfile(screenshot, SCREENSHOT)
    return TriedRoutes(read=read, write=write)


def operation(page: Page, operation_id: str) -> Locator:
    return page.locator(f"#operations-default-{operation_id}")


def try_it_out(page: Page, operation_id: str, **parameters: str) -> Outcome:
    """Expand an operation, fill its parameters, Execute, and read the server's response."""
    block = operation(page, operation_id)
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    for name, value in parameters.items():
        block.get_by_placeholder(name).fill(value)
    block.get_by_role("button", name="Execute").click()
    response = block.locator(".live-responses-table tbody tr.response").first
    response.wait_for()
    status = response.locator(".response-col_status").inner_text().split()[0]
    body, headers = response.locator(".response-col_description pre").all_inner_texts()[:2]
    return Outcome(status=status, body=body, headers=headers)


def take_screenshot(page: Page, path: Path) -> None:
    """The logged-in page down to the last response shown, curl commands masked.

    The curl commands carry the access token; it is the dev issuer's and short-lived, but
    a picture in the docs has no business showing a bearer token.
    """
    page.mouse.move(0, 0)  # no hover highlight in the picture
    bottom = page.locator(".live-responses-table").last.evaluate(
        "table => table.getBoundingClientRect().bottom + window.scrollY"
    )
    page.screenshot(
        path=path,
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": bottom + 16},
        mask=[page.locator(".curl-command .curl")],
        mask_color="#41444e",
    )


# -- the specification --------------------------------------------------------------------------


def test_docs_page_loads_swagger_ui_from_the_app_itself(docs_page: Page, app_url: str) -> None:
    scripts = docs_page.locator("script[src]").evaluate_all("nodes => nodes.map(n => n.src)")
    styles = docs_page.locator("link[rel=stylesheet]").evaluate_all(
        "nodes => nodes.map(n => n.href)"
    )
    assert scripts == [app_url + "/docs-assets/swagger-ui-bundle.js"]
    assert styles == [app_url + "/docs-assets/swagger-ui.css"]


def test_authorize_dialog_offers_every_route_scope(login: Login) -> None:
    assert login.ticked_scopes == ROUTE_SCOPES


def test_login_asks_the_issuer_for_the_ticked_scopes(login: Login) -> None:
    assert login.query["scope"] == [" ".join(login.ticked_scopes)]


def test_login_asks_the_issuer_for_the_api_audience_with_pkce(login: Login) -> None:
    assert login.query["client_id"] == [DEFAULT_CLIENT_ID]
    assert login.query["audience"] == [DEFAULT_AUDIENCE]
    assert login.query["code_challenge_method"] == ["S256"]
    assert login.query["response_type"] == ["code"]
    assert len(login.query["code_challenge"][0]) == 43  # base64url of a SHA-256 digest


def test_after_login_the_docs_page_shows_the_api_as_authorized(
    docs_page: Page, login: Login
) -> None:
    authorize = docs_page.locator(".auth-wrapper button.authorize")
    assert "locked" in (authorize.get_attribute("class") or "").split()


def test_route_within_the_users_scopes_answers_200(tried_routes: TriedRoutes) -> None:
    assert tried_routes.read.status == "200"
    assert '"id": "news"' in tried_routes.read.body


def test_route_needing_a_scope_the_user_lacks_answers_403(tried_routes: TriedRoutes) -> None:
    assert tried_routes.write.status == "403"
    assert 'error="insufficient_scope"' in tried_routes.write.headers


def test_browser_requests_nothing_beyond_this_machine(
    tried_routes: TriedRoutes, outside_requests: list[str]
) -> None:
    assert outside_requests == []
