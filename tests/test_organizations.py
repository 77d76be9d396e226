"""Auth0 Organizations: the claim policy, its options, a token bound to the request's organization.

Everything goes through an app: a token for another organization is refused like a token
for another audience, before the route runs, on HTTP and WebSocket routes, with scopes,
and with the testing kit's override standing in for the token check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Security, WebSocket
from fastapi.testclient import TestClient
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from fastapi_isp_jwt import ConfigurationError, InvalidTokenError, JWTAuth, Principal, Settings
from fastapi_isp_jwt.settings import options_from_env
from fastapi_isp_jwt.testing import TestIssuer, make_principal
from fastapi_isp_jwt.testing.overrides import override_principal
from tests.support.challenges import BARE_CHALLENGE

TEMPLATE = "https://platform.dtc.istreamplanet.net/{organization}"
ACME_ID = "org_9ybsU1dN2dKfDkBi"
GLOBEX_ID = "org_2TgqPmJxA7b3LkQe"
SAME_AS_ANOTHER_AUDIENCE = {"detail": "The token is not intended for this audience"}


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the claim policy ------------------------------------------------------------------------------


def verify(issuer: TestIssuer, token: str, **options: Any) -> Principal:
    return issuer.auth(**options).verify_sync(token)


def test_the_principal_shows_org_id_and_org_name_of_the_token(issuer: TestIssuer) -> None:
    principal = verify(issuer, issuer.mint(org_id=ACME_ID, org_name="acme"))
    assert (principal.org_id, principal.org_name) == (ACME_ID, "acme")


def test_a_token_without_organization_claims_gives_none_on_the_principal(
    issuer: TestIssuer,
) -> None:
    principal = verify(issuer, issuer.mint())
    assert (principal.org_id, principal.org_name) == (None, None)


def test_by_default_malformed_organization_claims_are_ignored(issuer: TestIssuer) -> None:
    assert verify(issuer, issuer.mint(org_id=7)).org_id is None


def test_a_machine_token_carries_its_organization(issuer: TestIssuer) -> None:
    principal = verify(issuer, issuer.mint_machine(org_id=ACME_ID), organization_claims="require")
    assert principal.is_machine
    assert principal.org_id == ACME_ID


def test_allow_accepts_a_token_without_an_organization(issuer: TestIssuer) -> None:
    assert verify(issuer, issuer.mint(), organization_claims="allow").org_id is None


def test_require_refuses_a_token_without_an_organization(issuer: TestIssuer) -> None:
    with pytest.raises(InvalidTokenError, match="The token names no organization"):
        verify(issuer, issuer.mint(), organization_claims="require")


def test_require_refuses_a_token_whose_org_id_is_empty(issuer: TestIssuer) -> None:
    with pytest.raises(InvalidTokenError, match="The token names no organization"):
        verify(issuer, issuer.mint(org_id=""), organization_claims="require")


@pytest.mark.parametrize("claim", ["org_id", "org_name"])
def test_a_checked_organization_claim_that_is_not_text_is_refused(
    issuer: TestIssuer, claim: str
) -> None:
    with pytest.raises(InvalidTokenError, match=f"The token {claim} claim is malformed"):
        verify(
            issuer, issuer.sign({**issuer.claims(), claim: ["acme"]}), organization_claims="allow"
        )


def test_an_org_id_on_the_allow_list_is_accepted(issuer: TestIssuer) -> None:
    token = issuer.mint(org_id=ACME_ID)
    assert verify(issuer, token, organization_claims="allow", org_ids=[ACME_ID]).org_id == ACME_ID


def test_an_org_id_off_the_allow_list_is_refused(issuer: TestIssuer) -> None:
    with pytest.raises(InvalidTokenError, match="The token organization is not allowed"):
        verify(
            issuer, issuer.mint(org_id=GLOBEX_ID), organization_claims="allow", org_ids=[ACME_ID]
        )


def test_with_an_org_id_allow_list_a_token_naming_only_an_org_name_is_refused(
    issuer: TestIssuer,
) -> None:
    with pytest.raises(InvalidTokenError, match="The token organization is not allowed"):
        verify(issuer, issuer.mint(org_name="acme"), organization_claims="allow", org_ids=[ACME_ID])


@pytest.mark.parametrize(
    ("org_id", "org_name", "accepted"),
    [
        (ACME_ID, "acme", True),
        (ACME_ID, "globex", False),
        (GLOBEX_ID, "acme", False),
        (ACME_ID, None, False),
    ],
    ids=["both match", "name off the list", "id off the list", "name missing"],
)
def test_when_ids_and_names_are_both_checked_both_must_match(
    issuer: TestIssuer, org_id: str, org_name: str | None, accepted: bool
) -> None:
    claims: dict[str, Any] = {"org_id": org_id, **({"org_name": org_name} if org_name else {})}
    options = {"organization_claims": "require", "org_ids": [ACME_ID], "org_names": ["acme"]}
    if accepted:
        assert (
            verify(issuer, issuer.sign({**issuer.claims(), **claims}), **options).org_id == ACME_ID
        )
    else:
        with pytest.raises(InvalidTokenError, match="The token organization is not allowed"):
            verify(issuer, issuer.sign({**issuer.claims(), **claims}), **options)


# -- the options -----------------------------------------------------------------------------------


def settings(**options: Any) -> Settings:
    return Settings(domain="istreamplanet.auth0.com", audience=TEMPLATE, **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"organization_claims": "strict"}, "organization_claims must be one of"),
        ({"organization_from": "org_name"}, "organization_from must be one of"),
        ({"org_ids": [ACME_ID]}, "org_ids reads the org_id and org_name claims"),
        ({"org_names": ["acme"]}, "org_names reads the org_id and org_name claims"),
        ({"organization_from": "org_id"}, "organization_from='org_id' reads"),
        ({"organization_claims": "allow", "org_ids": []}, "org_ids must not be empty"),
        ({"organization_claims": "allow", "org_ids": ["acme"]}, "list organization names in"),
        ({"organization_claims": "allow", "org_names": ["Acme"]}, "names are lowercase"),
    ],
)
def test_organization_options_that_cannot_work_fail_at_construction(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings(**options)


def test_organization_options_are_read_from_the_environment() -> None:
    assert options_from_env(
        {
            "ISP_JWT_ORGANIZATION_CLAIMS": "require",
            "ISP_JWT_ORG_IDS": f"{ACME_ID}, {GLOBEX_ID}",
            "ISP_JWT_ORG_NAMES": "acme,globex",
            "ISP_JWT_ORGANIZATION_FROM": "org_id",
        }
    ) == {
        "organization_claims": "require",
        "org_ids": [ACME_ID, GLOBEX_ID],
        "org_names": ["acme", "globex"],
        "organization_from": "org_id",
    }


# -- binding the token to the request's organization -----------------------------------------------


def streams_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()
    reached: list[str] = []
    app.state.reached = reached
    of_the_path = auth.bound_to(path_param="org")

    @app.get("/orgs/{org}/streams")
    def list_streams(
        org: str,
        principal: Principal = Security(of_the_path, scopes=["streams:read"]),
    ) -> dict[str, str]:
        reached.append(org)
        return {"org": org, "subject": principal.subject}

    def tenant_of(connection: HTTPConnection) -> str | None:
        return connection.headers.get("x-organization")

    of_the_header = auth.bound_to(from_request=tenant_of)

    @app.get("/streams")
    def streams_of_the_tenant(
        principal: Principal = Depends(of_the_header),
    ) -> dict[str, str | None]:
        return {"organization": principal.organization}

    async def subdomain(connection: HTTPConnection) -> str | None:
        host = connection.url.hostname or ""
        return host.split(".", 1)[0] if host.count(".") >= 2 else None

    of_the_subdomain = auth.bound_to(from_request=subdomain)

    @app.get("/catalog")
    def catalog(
        principal: Principal = Depends(of_the_subdomain),
    ) -> dict[str, str | None]:
        return {"organization": principal.organization}

    @app.websocket("/orgs/{org}/events")
    async def events(
        websocket: WebSocket,
        org: str,
        principal: Principal = Security(of_the_path, scopes=["streams:read"]),
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"org": org, "subject": principal.subject})
        await websocket.close()

    return app


@pytest.fixture
def auth(issuer: TestIssuer) -> JWTAuth:
    return issuer.auth(audience=TEMPLATE)


@pytest.fixture
def client(auth: JWTAuth) -> TestClient:
    return TestClient(streams_app(auth))


def test_a_token_for_the_organization_of_the_path_reaches_the_route(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint("auth0|alice", ["streams:read"], organization="acme")
    response = client.get("/orgs/acme/streams", headers=bearer(token))
    assert response.json() == {"org": "acme", "subject": "auth0|alice"}


def test_a_token_for_another_organization_is_answered_as_one_for_another_audience(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(scopes=["streams:read"], organization="globex")
    response = client.get("/orgs/acme/streams", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == SAME_AS_ANOTHER_AUDIENCE
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="api", error="invalid_token", '
        'error_description="The token is not intended for this audience"'
    )


def test_a_token_for_another_organization_never_reaches_the_route(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(scopes=["streams:read"], organization="globex")
    client.get("/orgs/acme/streams", headers=bearer(token))
    assert client.app.state.reached == []  # type: ignore[attr-defined]


def test_the_scopes_of_a_bound_route_are_still_required(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(scopes=["streams:write"], organization="acme")
    response = client.get("/orgs/acme/streams", headers=bearer(token))
    assert response.status_code == 403
    assert 'scope="streams:read"' in response.headers["WWW-Authenticate"]


def test_a_bound_route_without_a_token_asks_for_credentials(client: TestClient) -> None:
    response = client.get("/orgs/acme/streams")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE


def test_an_organization_derived_from_a_header_admits_its_tokens(
    client: TestClient, issuer: TestIssuer
) -> None:
    headers = {**bearer(issuer.mint(organization="acme")), "X-Organization": "acme"}
    assert client.get("/streams", headers=headers).json() == {"organization": "acme"}


@pytest.mark.parametrize("named", [{"X-Organization": "globex"}, {}], ids=["other", "none"])
def test_a_request_naming_another_or_no_organization_is_refused(
    client: TestClient, issuer: TestIssuer, named: dict[str, str]
) -> None:
    headers = {**bearer(issuer.mint(organization="acme")), **named}
    response = client.get("/streams", headers=headers)
    assert (response.status_code, response.json()) == (401, SAME_AS_ANOTHER_AUDIENCE)


def test_an_async_derivation_from_the_subdomain_is_awaited(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    client = TestClient(streams_app(auth), base_url="http://globex.streams.example")
    token = issuer.mint(organization="globex")
    assert client.get("/catalog", headers=bearer(token)).json() == {"organization": "globex"}


def test_a_token_without_an_organization_is_refused_on_a_bound_route(issuer: TestIssuer) -> None:
    client = TestClient(streams_app(issuer.auth(audience="https://streams.example.com")))
    token = issuer.mint(scopes=["streams:read"], audience="https://streams.example.com")
    response = client.get("/orgs/acme/streams", headers=bearer(token))
    assert (response.status_code, response.json()) == (401, SAME_AS_ANOTHER_AUDIENCE)


def test_organization_from_org_id_binds_the_auth0_organization(issuer: TestIssuer) -> None:
    auth = issuer.auth(organization_claims="require", organization_from="org_id")
    client = TestClient(streams_app(auth))
    token = issuer.mint(scopes=["streams:read"], org_id=ACME_ID)
    assert client.get(f"/orgs/{ACME_ID}/streams", headers=bearer(token)).status_code == 200
    refused = client.get("/orgs/acme/streams", headers=bearer(token))
    assert (refused.status_code, refused.json()) == (401, SAME_AS_ANOTHER_AUDIENCE)


def test_an_anonymous_caller_of_an_optional_auth_is_refused_on_a_bound_route(
    issuer: TestIssuer,
) -> None:
    client = TestClient(streams_app(issuer.auth(audience=TEMPLATE, auto_error=False)))
    response = client.get("/streams", headers={"X-Organization": "acme"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE


def test_a_websocket_for_the_organization_of_the_path_is_accepted(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint("auth0|alice", ["streams:read"], organization="acme")
    with client.websocket_connect("/orgs/acme/events", headers=bearer(token)) as websocket:
        assert websocket.receive_json() == {"org": "acme", "subject": "auth0|alice"}


def test_a_websocket_for_another_organization_is_closed_with_1008_before_accept(
    client: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(scopes=["streams:read"], organization="globex")
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/orgs/acme/events", headers=bearer(token)),
    ):
        pass
    assert (closed.value.code, closed.value.reason) == (1008, SAME_AS_ANOTHER_AUDIENCE["detail"])


@pytest.fixture
def overridden(client: TestClient, auth: JWTAuth) -> Iterator[TestClient]:
    principal = make_principal("auth0|bob", ["streams:read"], organization="acme")
    with override_principal(client.app, auth, principal):  # type: ignore[arg-type]
        yield client


def test_an_override_of_the_token_check_still_reaches_its_own_organization(
    overridden: TestClient,
) -> None:
    assert overridden.get("/orgs/acme/streams").json() == {"org": "acme", "subject": "auth0|bob"}


def test_an_override_of_the_token_check_does_not_skip_the_binding(overridden: TestClient) -> None:
    response = overridden.get("/orgs/globex/streams")
    assert (response.status_code, response.json()) == (401, SAME_AS_ANOTHER_AUDIENCE)


def test_an_override_of_the_token_check_still_applies_the_routes_scopes(
    client: TestClient, auth: JWTAuth
) -> None:
    principal = make_principal(scopes=["streams:write"], organization="acme")
    with override_principal(client.app, auth, principal):  # type: ignore[arg-type]
        assert client.get("/orgs/acme/streams").status_code == 403


def test_the_bound_path_parameter_is_documented_once(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/orgs/{org}/streams"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["org"]
    assert operation["security"] == [{"JWTAuth": ["streams:read"]}]


@pytest.mark.parametrize(
    "sources",
    [
        {},
        {"path_param": "org", "from_request": lambda c: "acme"},
        {"path_param": "not a name"},
        {"path_param": "_isp_jwt_connection"},
    ],
    ids=["neither", "both", "not an identifier", "kept by the binding"],
)
def test_a_binding_needs_exactly_one_valid_source(auth: JWTAuth, sources: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        auth.bound_to(**sources)


@pytest.mark.parametrize("name", ["connection", "principal", "path"])
def test_any_path_parameter_name_can_be_bound(issuer: TestIssuer, name: str) -> None:
    auth = issuer.auth(audience=TEMPLATE)
    app = FastAPI()

    of_the_path = auth.bound_to(path_param=name)

    @app.get(f"/orgs/{{{name}}}/streams")
    def streams(principal: Principal = Depends(of_the_path)) -> str | None:
        return principal.organization

    token = issuer.mint(aud=TEMPLATE.replace("{organization}", "acme"))
    assert TestClient(app).get("/orgs/acme/streams", headers=bearer(token)).json() == "acme"


def test_an_empty_organization_of_the_request_matches_no_token(issuer: TestIssuer) -> None:
    auth = issuer.auth(organization_claims="allow", organization_from="org_id")
    app = FastAPI()
    blank_unless_named = auth.bound_to(from_request=lambda c: c.headers.get("x-organization", ""))

    @app.get("/streams")
    def streams(principal: Principal = Depends(blank_unless_named)) -> str | None:
        return principal.org_id

    response = TestClient(app).get("/streams", headers=bearer(issuer.mint(org_id="")))
    assert (response.status_code, response.json()) == (401, SAME_AS_ANOTHER_AUDIENCE)
