"""Protected-resource metadata (RFC 9728), read as a real client reads it.

The documents are validated with the MCP Python SDK's model of RFC 9728, and the 401
challenge is parsed with that SDK's ``WWW-Authenticate`` helpers: a client that follows
the SDK finds the document from the challenge and the issuer from the document.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI, Security
from fastapi.testclient import TestClient

# The interop extra: installed everywhere but the matrix's lowest-versions session.
pytest.importorskip("mcp", reason="mcp (interop extra) is not installed")

from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
    handle_protected_resource_response,
)
from mcp.shared.auth import ProtectedResourceMetadata

from fastapi_isp_jwt import ALGORITHMS, ConfigurationError, JWTAuth, Principal
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.challenges import BARE_CHALLENGE

ACME = "https://platform.dtc.istreamplanet.net/acme"
GLOBEX = "https://platform.dtc.istreamplanet.net/globex"
TEMPLATE = "https://platform.dtc.istreamplanet.net/{organization}"
WELL_KNOWN = "/.well-known/oauth-protected-resource"


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


def guarded_app(auth: JWTAuth, *, install: bool = True) -> FastAPI:
    app = FastAPI(title="Streams API")

    @app.get("/streams")
    def list_streams(principal: Principal = Security(auth, scopes=["streams:read"])) -> list[str]:
        return []

    @app.post("/streams")
    def create_stream(principal: Principal = Security(auth, scopes=["streams:write"])) -> None:
        return None

    @app.get("/me")
    def me(principal: Principal = Depends(auth)) -> str:
        return principal.subject

    if install:
        auth.install(app)
    return app


async def sdk_reads(response: httpx.Response) -> ProtectedResourceMetadata:
    metadata = await handle_protected_resource_response(response)
    assert metadata is not None, response.text
    return metadata


# -- the documents ---------------------------------------------------------------------------------


@pytest.fixture
def acme_client(issuer: TestIssuer) -> TestClient:
    return TestClient(guarded_app(issuer.auth(audience=ACME)))


def test_the_path_suffixed_document_describes_the_audience(acme_client: TestClient) -> None:
    assert acme_client.get(f"{WELL_KNOWN}/acme").json() == {
        "resource": ACME,
        "authorization_servers": ["https://issuer.test/"],
        "scopes_supported": ["streams:read", "streams:write"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": sorted(ALGORITHMS),
        "dpop_bound_access_tokens_required": False,
        "resource_name": "Streams API",
    }


def test_a_service_requiring_dpop_says_so_in_its_document() -> None:
    auth = JWTAuth(issuer="https://issuer.test/", audience=ACME, dpop="required")
    app = FastAPI(title="Streams API")
    auth.install(app)
    document = TestClient(app).get(f"{WELL_KNOWN}/acme").json()
    assert document["dpop_bound_access_tokens_required"] is True


def test_a_service_without_dpop_leaves_the_dpop_members_out() -> None:
    auth = JWTAuth(issuer="https://issuer.test/", audience=ACME, dpop="disabled")
    app = FastAPI(title="Streams API")
    auth.install(app)
    document = TestClient(app).get(f"{WELL_KNOWN}/acme").json()
    assert "dpop_signing_alg_values_supported" not in document


def test_the_root_document_describes_the_default_audience(acme_client: TestClient) -> None:
    assert acme_client.get(WELL_KNOWN).json()["resource"] == ACME


@pytest.mark.anyio
async def test_the_document_validates_against_the_mcp_sdk_model(acme_client: TestClient) -> None:
    metadata = await sdk_reads(acme_client.get(f"{WELL_KNOWN}/acme"))
    assert str(metadata.resource) == ACME
    assert [str(server) for server in metadata.authorization_servers] == ["https://issuer.test/"]


def test_routes_added_after_install_bring_their_scopes(issuer: TestIssuer) -> None:
    auth = issuer.auth(audience=ACME)
    app = guarded_app(auth)

    @app.delete("/streams/{stream_id}")
    def delete_stream(principal: Principal = Security(auth, scopes=["streams:delete"])) -> None:
        return None

    scopes = TestClient(app).get(WELL_KNOWN).json()["scopes_supported"]
    assert scopes == ["streams:delete", "streams:read", "streams:write"]


def test_every_listed_audience_has_its_document(issuer: TestIssuer) -> None:
    client = TestClient(guarded_app(issuer.auth(audience=[ACME, GLOBEX])))
    assert client.get(f"{WELL_KNOWN}/globex").json()["resource"] == GLOBEX
    assert client.get(WELL_KNOWN).json()["resource"] == ACME


def test_an_audience_without_a_path_is_the_root_document(issuer: TestIssuer) -> None:
    client = TestClient(guarded_app(issuer.auth(audience=[ACME, "https://streams.example.com"])))
    assert client.get(WELL_KNOWN).json()["resource"] == "https://streams.example.com"


@pytest.mark.parametrize("organization", ["acme", "globex"])
def test_a_template_serves_a_document_per_allowed_organization(
    issuer: TestIssuer, organization: str
) -> None:
    auth = issuer.auth(audience=TEMPLATE, organizations=["acme", "globex"])
    document = TestClient(guarded_app(auth)).get(f"{WELL_KNOWN}/{organization}").json()
    assert document["resource"] == TEMPLATE.replace("{organization}", organization)


@pytest.mark.parametrize("suffix", ["/initech", "/acme/streams", "/..", ""])
def test_a_template_serves_nothing_the_verifier_would_refuse(
    issuer: TestIssuer, suffix: str
) -> None:
    auth = issuer.auth(audience=TEMPLATE, organizations=["acme", "globex"])
    assert TestClient(guarded_app(auth)).get(WELL_KNOWN + suffix).status_code == 404


def test_a_template_without_an_allow_list_serves_any_valid_organization(issuer: TestIssuer) -> None:
    client = TestClient(guarded_app(issuer.auth(audience=TEMPLATE)))
    assert client.get(f"{WELL_KNOWN}/initech").json()["resource"].endswith("/initech")


@pytest.mark.parametrize("suffix", ["/live%20streams", "/live%2fstreams"])
def test_an_audience_with_percent_escapes_has_its_document_at_its_own_path(
    issuer: TestIssuer, suffix: str
) -> None:
    audience = "https://api.example.com" + suffix.replace("%2f", "%2F")
    client = TestClient(guarded_app(issuer.auth(audience=audience)))
    assert client.get(WELL_KNOWN + suffix).json()["resource"] == audience


def test_an_escaped_slash_in_an_audience_is_no_path_separator(issuer: TestIssuer) -> None:
    client = TestClient(guarded_app(issuer.auth(audience="https://api.example.com/live%2Fstreams")))
    assert client.get(f"{WELL_KNOWN}/live/streams").status_code == 404


def test_a_template_under_an_escaped_path_serves_each_organizations_document(
    issuer: TestIssuer,
) -> None:
    auth = issuer.auth(audience="https://api.example.com/caf%C3%A9/{organization}")
    document = TestClient(guarded_app(auth)).get(f"{WELL_KNOWN}/caf%c3%a9/acme").json()
    assert document["resource"] == "https://api.example.com/caf%C3%A9/acme"


def test_an_escaped_unreserved_character_names_the_same_organization(issuer: TestIssuer) -> None:
    client = TestClient(guarded_app(issuer.auth(audience=TEMPLATE)))
    assert client.get(f"{WELL_KNOWN}/%61cme").json()["resource"] == ACME


def test_the_metadata_router_alone_serves_the_documents(issuer: TestIssuer) -> None:
    auth = issuer.auth(audience=ACME)
    app = guarded_app(auth, install=False)
    app.include_router(auth.metadata_router())
    assert TestClient(app).get(f"{WELL_KNOWN}/acme").json()["resource"] == ACME


def test_the_metadata_routes_stay_out_of_the_openapi_document(acme_client: TestClient) -> None:
    paths = acme_client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/.well-known")]


# -- the challenge ---------------------------------------------------------------------------------


def test_once_installed_a_401_names_the_metadata_document(acme_client: TestClient) -> None:
    response = acme_client.get("/me")
    document = 'resource_metadata="http://testserver/.well-known/oauth-protected-resource"'
    bearer, dpop = BARE_CHALLENGE.split(", DPoP ")
    assert response.headers["WWW-Authenticate"] == f"{bearer}, {document}, DPoP {document}, {dpop}"


def test_a_401_for_a_bad_token_names_the_document_too(acme_client: TestClient) -> None:
    response = acme_client.get("/me", headers={"Authorization": "Bearer not-a-token"})
    assert extract_resource_metadata_from_www_auth(response) == (
        "http://testserver/.well-known/oauth-protected-resource"
    )
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_the_document_url_follows_the_apps_root_path(issuer: TestIssuer) -> None:
    client = TestClient(guarded_app(issuer.auth(audience=ACME)), root_path="/api")
    assert (
        'resource_metadata="http://testserver/api/.well-known/'
        in (client.get("/me").headers["WWW-Authenticate"])
    )


def test_the_document_url_is_on_the_public_base_url_clients_address(issuer: TestIssuer) -> None:
    auth = issuer.auth(audience=ACME, public_base_url="https://api.example")
    response = TestClient(guarded_app(auth)).get("/me")
    assert extract_resource_metadata_from_www_auth(response) == (
        "https://api.example/.well-known/oauth-protected-resource"
    )


def test_the_document_url_follows_a_trusted_proxys_forwarded_scheme_and_host(
    issuer: TestIssuer,
) -> None:
    auth = issuer.auth(audience=ACME, trusted_proxies=["testclient"])
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
    response = TestClient(guarded_app(auth)).get("/me", headers=forwarded)
    assert extract_resource_metadata_from_www_auth(response) == (
        "https://api.example/.well-known/oauth-protected-resource"
    )


def test_the_document_url_ignores_forwarded_headers_from_anyone_else(
    acme_client: TestClient,
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    response = acme_client.get("/me", headers=forwarded)
    assert extract_resource_metadata_from_www_auth(response) == (
        "http://testserver/.well-known/oauth-protected-resource"
    )


def test_a_403_carries_no_resource_metadata(acme_client: TestClient, issuer: TestIssuer) -> None:
    token = issuer.mint(scopes=["streams:read"], audience=ACME)
    response = acme_client.post("/streams", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "resource_metadata" not in response.headers["WWW-Authenticate"]


def test_without_install_the_challenge_is_unchanged(issuer: TestIssuer) -> None:
    client = TestClient(guarded_app(issuer.auth(audience=ACME), install=False))
    assert client.get("/me").headers["WWW-Authenticate"] == BARE_CHALLENGE


def test_a_service_with_templates_only_names_no_document_it_cannot_serve(
    issuer: TestIssuer,
) -> None:
    client = TestClient(guarded_app(issuer.auth(audience=TEMPLATE)))
    assert client.get("/me").headers["WWW-Authenticate"] == BARE_CHALLENGE


@pytest.mark.anyio
async def test_an_mcp_style_client_discovers_the_issuer_from_a_401(
    acme_client: TestClient,
) -> None:
    refused = acme_client.get("/streams")
    urls = build_protected_resource_metadata_discovery_urls(
        extract_resource_metadata_from_www_auth(refused), "http://testserver/streams"
    )
    metadata = await sdk_reads(acme_client.get(urls[0]))
    assert [str(server) for server in metadata.authorization_servers] == ["https://issuer.test/"]
    assert metadata.scopes_supported == ["streams:read", "streams:write"]


# -- install ---------------------------------------------------------------------------------------


def test_installing_twice_changes_nothing_more(issuer: TestIssuer) -> None:
    auth = issuer.auth(audience=ACME)
    app = guarded_app(auth)
    routes, schema = list(app.routes), TestClient(app).get("/openapi.json").json()
    auth.install(app)
    assert app.routes == routes
    assert TestClient(app).get("/openapi.json").json() == schema


def test_a_second_jwtauth_cannot_be_installed_on_the_same_app(issuer: TestIssuer) -> None:
    app = guarded_app(issuer.auth(audience=ACME))
    with pytest.raises(ConfigurationError, match="another JWTAuth"):
        issuer.auth(audience=GLOBEX).install(app)
