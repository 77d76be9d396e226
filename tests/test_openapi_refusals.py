"""After ``auth.install(app)`` the OpenAPI document says how guarded routes refuse.

Swagger UI otherwise labels every 401 and 403 "Undocumented". Each guarded operation
documents 400 and 401, 403 when it requires scopes, and 503, each with the
``{"detail": ...}`` body and the header the real answer carries.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Security
from fastapi.testclient import TestClient

from fastapi_isp_jwt import ConfigurationError, JWTAuth, Principal
from fastapi_isp_jwt.testing import TestIssuer

ACME = "https://platform.dtc.istreamplanet.net/acme"
REFUSAL = {"$ref": "#/components/schemas/AuthRefusal"}


@pytest.fixture
def auth() -> JWTAuth:
    return TestIssuer().auth(audience=ACME)


@pytest.fixture
def app(auth: JWTAuth) -> FastAPI:
    app = FastAPI(title="Streams API")

    @app.get("/streams")
    def list_streams(principal: Principal = Security(auth, scopes=["streams:read"])) -> list[str]:
        return []

    @app.get("/me")
    def me(principal: Principal = Depends(auth)) -> str:
        return principal.subject

    @app.get("/health")
    def health() -> str:
        return "ok"

    auth.install(app)
    return app


def operation(app: FastAPI, path: str, method: str = "get") -> dict[str, Any]:
    schema = TestClient(app).get("/openapi.json").json()
    found: dict[str, Any] = schema["paths"][path][method]
    return found


def test_a_scoped_route_documents_400_401_403_and_503(app: FastAPI) -> None:
    assert set(operation(app, "/streams")["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "503",
    }


def test_a_route_without_scopes_documents_no_403(app: FastAPI) -> None:
    assert set(operation(app, "/me")["responses"]) == {"200", "400", "401", "503"}


def test_an_open_route_documents_no_refusal(app: FastAPI) -> None:
    assert set(operation(app, "/health")["responses"]) == {"200"}


@pytest.mark.parametrize("status", ["400", "401", "403", "503"])
def test_each_refusal_has_the_detail_body(app: FastAPI, status: str) -> None:
    response = operation(app, "/streams")["responses"][status]
    assert response["content"]["application/json"]["schema"] == REFUSAL


def test_the_refusal_body_is_an_object_with_a_detail_string(app: FastAPI) -> None:
    schemas = TestClient(app).get("/openapi.json").json()["components"]["schemas"]
    assert schemas["AuthRefusal"] == {
        "title": "AuthRefusal",
        "type": "object",
        "properties": {"detail": {"type": "string", "title": "Detail"}},
        "required": ["detail"],
    }


@pytest.mark.parametrize("status", ["400", "401", "403"])
def test_refusals_with_a_challenge_document_the_www_authenticate_header(
    app: FastAPI, status: str
) -> None:
    headers = operation(app, "/streams")["responses"][status]["headers"]
    assert headers["WWW-Authenticate"]["schema"] == {"type": "string"}


def test_the_503_documents_retry_after(app: FastAPI) -> None:
    headers = operation(app, "/streams")["responses"]["503"]["headers"]
    assert headers == {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer"},
        }
    }


def test_the_403_names_the_scopes_the_route_requires(app: FastAPI) -> None:
    assert "streams:read" in operation(app, "/streams")["responses"]["403"]["description"]


def test_routes_added_after_install_are_documented(app: FastAPI, auth: JWTAuth) -> None:
    TestClient(app).get("/openapi.json")  # built once before the new route

    @app.post("/streams")
    def create_stream(principal: Principal = Security(auth, scopes=["streams:write"])) -> None:
        return None

    assert "403" in operation(app, "/streams", "post")["responses"]


def test_routers_guarded_at_include_are_documented(app: FastAPI, auth: JWTAuth) -> None:
    router = APIRouter()

    @router.get("/jobs")
    def list_jobs() -> list[str]:
        return []

    app.include_router(router, prefix="/admin", dependencies=[Security(auth, scopes=["admin"])])
    assert "403" in operation(app, "/admin/jobs")["responses"]


def test_a_bound_route_documents_the_refusals_of_its_scopes(app: FastAPI, auth: JWTAuth) -> None:
    of_the_path = auth.bound_to(path_param="org")

    @app.get("/orgs/{org}/streams")
    def org_streams(
        org: str,
        principal: Principal = Security(of_the_path, scopes=["streams:read"]),
    ) -> list[str]:
        return []

    assert set(operation(app, "/orgs/{org}/streams")["responses"]) >= {"401", "403"}


def test_a_refusal_the_route_documents_itself_is_kept(app: FastAPI, auth: JWTAuth) -> None:
    @app.get("/vault", responses={401: {"description": "Locked out"}})
    def vault(principal: Principal = Depends(auth)) -> None:
        return None

    assert operation(app, "/vault")["responses"]["401"] == {"description": "Locked out"}


def test_an_app_built_before_install_is_documented_on_the_next_request(auth: JWTAuth) -> None:
    app = FastAPI()

    @app.get("/me")
    def me(principal: Principal = Depends(auth)) -> None:
        return None

    TestClient(app).get("/openapi.json")
    auth.install(app)
    assert "401" in operation(app, "/me")["responses"]


def test_without_install_refusals_stay_undocumented(auth: JWTAuth) -> None:
    app = FastAPI()

    @app.get("/me")
    def me(principal: Principal = Depends(auth)) -> None:
        return None

    assert "401" not in operation(app, "/me")["responses"]


# -- the audience Swagger UI asks the tenant for ---------------------------------------------------

TEMPLATE = "https://platform.dtc.istreamplanet.net/{organization}"


def test_swagger_login_asks_for_the_audience_it_is_given_when_the_service_accepts_it() -> None:
    app = FastAPI()
    TestIssuer().auth(audience=TEMPLATE).enable_swagger_login(app, client_id="spa", audience=ACME)
    assert app.swagger_ui_init_oauth is not None
    assert app.swagger_ui_init_oauth["additionalQueryStringParams"] == {"audience": ACME}


def test_swagger_login_without_an_exact_audience_asks_for_one() -> None:
    auth = TestIssuer().auth(audience=TEMPLATE)
    with pytest.raises(ConfigurationError, match="pass audience="):
        auth.enable_swagger_login(FastAPI(), client_id="spa")


@pytest.mark.parametrize(
    "audience",
    [TEMPLATE, "https://platform.dtc.istreamplanet.net/acme/", "https://other.example/acme"],
)
def test_swagger_login_refuses_an_audience_whose_tokens_the_service_would_refuse(
    audience: str,
) -> None:
    auth = TestIssuer().auth(audience=TEMPLATE)
    with pytest.raises(ConfigurationError, match="not an audience this API accepts"):
        auth.enable_swagger_login(FastAPI(), client_id="spa", audience=audience)
