"""JWTAuth on routes: every RFC 6750 answer, against keys served over real HTTP."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import Depends, FastAPI, Security
from fastapi.testclient import TestClient

from fastapi_isp_jwt import ConfigurationError, JWTAuth, MissingCredentialsError, Principal, Reason
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.challenges import BARE_CHALLENGE
from tests.support.faults import server_error
from tests.support.issuer_server import IssuerServer, closed_port_url

ACME = "https://platform.dtc.istreamplanet.net/acme"


def make_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.get("/streams")
    async def list_streams(principal: Principal = Depends(auth)) -> dict[str, object]:
        return {
            "subject": principal.subject,
            "organization": principal.organization,
            "scopes": sorted(principal.scopes),
            "is_machine": principal.is_machine,
        }

    @app.post("/streams")
    async def create_stream(
        principal: Principal = Security(auth, scopes=["streams:write"]),
    ) -> dict[str, str]:
        return {"created_by": principal.subject}

    return app


@pytest.fixture
def auth(server: IssuerServer) -> JWTAuth:
    return JWTAuth(issuer=server.url, audience=ACME)


@pytest.fixture
def client(auth: JWTAuth) -> TestClient:
    # Used without `with`: no lifespan events, a new event loop per request.
    return TestClient(make_app(auth))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_reaches_the_route_with_its_principal(
    client: TestClient, issuer: TestIssuer
) -> None:
    response = client.get("/streams", headers=bearer(issuer.mint("auth0|alice", ["streams:read"])))
    assert response.status_code == 200
    assert response.json() == {
        "subject": "auth0|alice",
        "organization": "acme",
        "scopes": ["streams:read"],
        "is_machine": False,
    }


def test_no_authorization_header_gets_401_with_a_bare_challenge(client: TestClient) -> None:
    response = client.get("/streams")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE
    assert response.json() == {"detail": "Bearer credentials are required"}


def test_another_scheme_is_treated_as_no_credentials(client: TestClient) -> None:
    basic = base64.b64encode(b"user:pass").decode()
    response = client.get("/streams", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer",
        b"Bearer ",
        b"Bearer a b",
        b"Bearer a,b",
        b"Bearer a=b",
        b"Bearer \ta",
        b"Bearer =abc",
        "Bearer ä".encode("latin-1"),
    ],
)
def test_a_malformed_authorization_header_gets_400_invalid_request(
    client: TestClient, value: bytes
) -> None:
    response = client.get("/streams", headers={"Authorization": value})
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_several_authorization_headers_get_400_invalid_request(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint()
    response = client.get(
        "/streams", headers=[("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")]
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_a_b64token_with_trailing_padding_is_a_token_not_a_malformed_header(
    client: TestClient,
) -> None:
    response = client.get("/streams", headers={"Authorization": "Bearer abc=="})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_several_spaces_may_separate_the_scheme_and_the_token(
    client: TestClient, issuer: TestIssuer
) -> None:
    response = client.get("/streams", headers={"Authorization": f"Bearer   {issuer.mint()}"})
    assert response.status_code == 200


def test_the_scheme_name_is_case_insensitive(client: TestClient, issuer: TestIssuer) -> None:
    response = client.get("/streams", headers={"Authorization": f"bearer {issuer.mint()}"})
    assert response.status_code == 200


def test_an_invalid_token_gets_401_invalid_token_with_a_description(client: TestClient) -> None:
    response = client.get("/streams", headers=bearer("not.a.token"))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert response.json()["detail"] in challenge


def test_an_expired_token_gets_401_invalid_token(client: TestClient, issuer: TestIssuer) -> None:
    response = client.get("/streams", headers=bearer(issuer.mint_expired()))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="The token has expired"'
    )


def test_a_token_for_another_organization_gets_401(client: TestClient, issuer: TestIssuer) -> None:
    response = client.get("/streams", headers=bearer(issuer.mint(organization="globex")))
    assert response.status_code == 401
    assert "audience" in response.json()["detail"]


def test_a_token_lacking_the_route_scope_gets_403_insufficient_scope(
    client: TestClient, issuer: TestIssuer
) -> None:
    response = client.post("/streams", headers=bearer(issuer.mint(scopes=["streams:read"])))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The token lacks a required scope", scope="streams:write"'
    )


def test_a_token_with_the_route_scope_as_a_permission_is_allowed(
    client: TestClient, issuer: TestIssuer
) -> None:
    response = client.post("/streams", headers=bearer(issuer.mint(permissions=["streams:write"])))
    assert response.status_code == 200
    assert response.json() == {"created_by": "auth0|test-user"}


def test_an_unreachable_issuer_with_no_known_key_gets_503_with_retry_after(
    issuer: TestIssuer,
) -> None:
    auth = JWTAuth(issuer=issuer.issuer, audience=ACME, jwks_url=closed_port_url())
    response = TestClient(make_app(auth)).get("/streams", headers=bearer(issuer.mint()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "www-authenticate" not in response.headers


def test_an_issuer_answering_500_with_no_known_key_gets_503(
    client: TestClient, server: IssuerServer, issuer: TestIssuer
) -> None:
    server.fault = server_error()
    response = client.get("/streams", headers=bearer(issuer.mint()))
    assert response.status_code == 503


def test_responses_never_echo_the_token(client: TestClient, issuer: TestIssuer) -> None:
    token = issuer.mint_expired()
    response = client.get("/streams", headers=bearer(token))
    assert token not in response.text
    assert all(token not in value for value in response.headers.values())
    signature = token.rsplit(".", 1)[1]
    assert signature not in response.headers["www-authenticate"]


def test_a_machine_token_is_recognised(client: TestClient, issuer: TestIssuer) -> None:
    response = client.get("/streams", headers=bearer(issuer.mint_machine(["streams:read"])))
    assert response.status_code == 200
    assert response.json()["is_machine"] is True


def test_openapi_shows_a_jwt_bearer_scheme_and_route_scopes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "JWTAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert schema["paths"]["/streams"]["get"]["security"] == [{"JWTAuth": []}]
    assert schema["paths"]["/streams"]["post"]["security"] == [{"JWTAuth": ["streams:write"]}]


def test_the_auth_instance_can_be_swapped_with_dependency_overrides(auth: JWTAuth) -> None:
    app = make_app(auth)
    fake = Principal.model_validate(
        {"subject": "auth0|fake", "expires_at": "2030-01-01T00:00:00Z", "scopes": ["x"]}
    )
    app.dependency_overrides[auth] = lambda: fake
    response = TestClient(app).get("/streams")
    assert response.status_code == 200
    assert response.json()["subject"] == "auth0|fake"


def test_auto_error_off_gives_none_without_credentials(server: IssuerServer) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, auto_error=False)
    app = FastAPI()

    @app.get("/maybe")
    async def maybe(principal: Principal | None = Depends(auth)) -> dict[str, str | None]:
        return {"subject": principal.subject if principal else None}

    client = TestClient(app)
    assert client.get("/maybe").json() == {"subject": None}
    assert client.get("/maybe", headers=bearer("bad.token.here")).status_code == 401


def test_a_custom_realm_is_used_in_challenges(server: IssuerServer) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, realm="streams")
    response = TestClient(make_app(auth)).get("/streams")
    assert response.headers["www-authenticate"] == BARE_CHALLENGE.replace('"api"', '"streams"')


def test_a_token_with_an_invalid_signature_gets_401(client: TestClient, issuer: TestIssuer) -> None:
    head, payload, _ = issuer.mint().split(".")
    other = issuer.mint(subject="someone-else").split(".")[2]
    response = client.get("/streams", headers=bearer(f"{head}.{payload}.{other}"))
    assert response.status_code == 401
    assert response.json()["detail"] == "The token signature is invalid"


def test_a_token_from_an_untrusted_issuer_gets_401_without_fetching(
    client: TestClient, server: IssuerServer
) -> None:
    stranger = TestIssuer(issuer="https://evil.example/")
    response = client.get("/streams", headers=bearer(stranger.mint()))
    assert response.status_code == 401
    assert response.json()["detail"] == "The token issuer is not trusted"
    assert server.jwks_requests == 0


def test_a_forged_payload_with_an_original_signature_gets_401(
    client: TestClient, issuer: TestIssuer
) -> None:
    head, payload, signature = issuer.mint(scopes=["streams:read"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "streams:write"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = client.post("/streams", headers=bearer(f"{head}.{forged}.{signature}"))
    assert response.status_code == 401


def test_auto_error_off_still_refuses_anonymous_callers_on_scoped_routes(
    server: IssuerServer,
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, auto_error=False)
    response = TestClient(make_app(auth)).post("/streams")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE


@pytest.mark.parametrize("realm", ['say "hi"', "back\\slash", "line\r\nX-Injected: 1", "€uro"])
def test_a_realm_that_cannot_be_quoted_fails_at_configuration(
    server: IssuerServer, realm: str
) -> None:
    with pytest.raises(ConfigurationError, match="realm"):
        JWTAuth(issuer=server.url, audience=ACME, realm=realm)


def test_a_route_scope_that_is_not_a_scope_token_is_left_out_of_the_challenge(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    app = FastAPI()

    @app.get("/odd")
    async def odd(
        principal: Principal = Security(auth, scopes=["streams:write", 'bad "scope"', "é"]),
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    response = TestClient(app).get("/odd", headers=bearer(issuer.mint()))
    assert response.status_code == 403
    assert response.headers["www-authenticate"].endswith('scope="streams:write"')


def test_a_document_url_that_cannot_be_quoted_is_left_out_of_the_challenge(
    auth: JWTAuth,
) -> None:
    # Starlette before it checked Host headers built the URL from whatever Host was sent.
    challenge = auth.www_authenticate(
        MissingCredentialsError(Reason.CREDENTIALS_MISSING),
        resource_metadata='http://a", error="x/.well-known/oauth-protected-resource',
    )
    assert challenge == BARE_CHALLENGE
