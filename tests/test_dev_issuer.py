"""The dev issuer, spoken to over real HTTP on 127.0.0.1 as a browser or a client would."""

from __future__ import annotations

import base64
import json
import re
import secrets
import stat
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_isp_jwt import ConfigurationError, InvalidTokenError, JWTAuth
from fastapi_isp_jwt.dev_issuer import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SCOPES,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DevClient,
    DevIssuerConfig,
    DevUser,
    RunningDevIssuer,
    load_config,
    load_or_create_key,
    running,
    s256_challenge,
)
from fastapi_isp_jwt.dev_issuer.config import one_client_and_user
from fastapi_isp_jwt.dev_issuer.discovery import authorization_server_metadata
from fastapi_isp_jwt.dev_issuer.server import banner
from fastapi_isp_jwt.grammar import is_loopback_host
from fastapi_isp_jwt.testing import SigningKey, TestIssuer
from tests.support.clock import FakeClock

LOOPBACK_REDIRECT = "http://127.0.0.1:8000/docs/oauth2-redirect"
PUBLIC_CLIENT = DevClient("browser-app", None, ("streams:read",))
FIXED_CLIENT = DevClient(
    "fixed-app", "fixed-secret", ("streams:read",), ("https://app.example/callback",)
)


def _config(**changes: Any) -> DevIssuerConfig:
    defaults = DevIssuerConfig()
    options: dict[str, Any] = {
        "port": 0,
        "clients": (*defaults.clients, PUBLIC_CLIENT, FIXED_CLIENT),
        **changes,
    }
    return DevIssuerConfig(**options)


@pytest.fixture(scope="module")
def dev_issuer() -> Iterator[RunningDevIssuer]:
    with running(_config()) as dev:
        yield dev


@pytest.fixture
def http(dev_issuer: RunningDevIssuer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dev_issuer.issuer) as client:
        yield client


@pytest.fixture(scope="module")
def in_process(dev_issuer: RunningDevIssuer) -> Iterator[TestClient]:
    """The served app itself, called in process: property tests make hundreds of requests."""
    with TestClient(
        dev_issuer.app, base_url=dev_issuer.issuer, raise_server_exceptions=False
    ) as client:
        yield client


def machine_token_request(**changes: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "audience": DEFAULT_AUDIENCE,
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v != ""}


def authorize_params(verifier: str, **changes: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": LOOPBACK_REDIRECT,
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
        "state": "opaque-state-123",
        "audience": DEFAULT_AUDIENCE,
        "scope": "openid streams:read",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v != ""}


def form_action(page: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page)
    assert match is not None, "the page holds no login form"
    return unescape(match.group(1))


def log_in(
    http: httpx.Client,
    verifier: str,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    **changes: str,
) -> httpx.Response:
    page = http.get("/authorize", params=authorize_params(verifier, **changes))
    assert page.status_code == 200
    return http.post(form_action(page.text), data={"username": username, "password": password})


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {name: values[0] for name, values in query.items()}


def code_for(http: httpx.Client, verifier: str, **changes: str) -> str:
    return redirect_query(log_in(http, verifier, **changes))["code"]


def exchange(http: httpx.Client, code: str, verifier: str, **changes: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": LOOPBACK_REDIRECT,
        "client_id": DEFAULT_CLIENT_ID,
    }
    form.update(changes)
    return http.post("/oauth/token", data=form)


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def oauth_error(response: httpx.Response) -> str:
    error: str = response.json()["error"]
    return error


# -- discovery and keys ----------------------------------------------------------------


def test_discovery_names_the_issuer_with_a_trailing_slash_and_its_endpoints(
    http: httpx.Client, dev_issuer: RunningDevIssuer
) -> None:
    meta = http.get("/.well-known/openid-configuration").json()

    assert meta["issuer"] == dev_issuer.issuer
    assert meta["issuer"].endswith("/")
    assert meta["authorization_endpoint"] == dev_issuer.issuer + "authorize"
    assert meta["token_endpoint"] == dev_issuer.issuer + "oauth/token"
    assert meta["jwks_uri"] == dev_issuer.issuer + ".well-known/jwks.json"


def test_discovery_offers_only_s256_pkce_and_the_two_supported_grants(
    http: httpx.Client,
) -> None:
    meta = http.get("/.well-known/openid-configuration").json()

    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert sorted(meta["grant_types_supported"]) == ["authorization_code", "client_credentials"]


def test_authorization_server_metadata_is_served_at_the_rfc_8414_path(
    http: httpx.Client, dev_issuer: RunningDevIssuer
) -> None:
    response = http.get(dev_issuer.metadata_url)

    assert dev_issuer.metadata_url == dev_issuer.issuer + ".well-known/oauth-authorization-server"
    assert response.status_code == 200
    assert response.json()["issuer"] == dev_issuer.issuer


def test_the_openid_configuration_path_serves_the_same_metadata(
    http: httpx.Client, dev_issuer: RunningDevIssuer
) -> None:
    rfc_8414 = http.get(dev_issuer.metadata_url).json()

    assert http.get("/.well-known/openid-configuration").json() == rfc_8414


def test_metadata_promises_no_id_token(http: httpx.Client) -> None:
    meta = http.get("/.well-known/oauth-authorization-server").json()

    assert "id_token_signing_alg_values_supported" not in meta
    assert "subject_types_supported" not in meta
    assert not {"openid", "profile", "email"} & set(meta["scopes_supported"])
    assert meta["response_types_supported"] == ["code"]


def test_metadata_advertises_the_api_scopes_clients_and_users_may_be_granted(
    http: httpx.Client,
) -> None:
    meta = http.get("/.well-known/oauth-authorization-server").json()

    assert meta["scopes_supported"] == list(DEFAULT_CLIENT_SCOPES)


def test_metadata_names_dpop_proof_algorithms_only_when_given() -> None:
    config = DevIssuerConfig()

    plain = authorization_server_metadata(config)
    with_dpop = authorization_server_metadata(config, dpop_signing_algs=["ES256", "Ed25519"])

    assert "dpop_signing_alg_values_supported" not in plain
    assert with_dpop["dpop_signing_alg_values_supported"] == ["ES256", "Ed25519"]


def test_jwks_key_says_its_purpose_with_use_and_not_key_ops_as_well(http: httpx.Client) -> None:
    # RFC 7517 §4.3: "use" and "key_ops" should not be used together.
    (key,) = http.get("/.well-known/jwks.json").json()["keys"]

    assert key["use"] == "sig"
    assert "key_ops" not in key


def test_jwks_publishes_only_the_public_half_of_the_signing_key(http: httpx.Client) -> None:
    (key,) = http.get("/.well-known/jwks.json").json()["keys"]

    assert key["kty"] == "RSA"
    assert key["use"] == "sig"
    assert "d" not in key
    assert "p" not in key


# -- client credentials ------------------------------------------------------------------


@pytest.mark.anyio
async def test_machine_token_round_trip_is_accepted_by_jwtauth(
    dev_issuer: RunningDevIssuer,
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(dev_issuer.token_url, data=machine_token_request())
    auth = JWTAuth(issuer=dev_issuer.issuer, audience=DEFAULT_AUDIENCE)

    principal = await auth.verify(response.json()["access_token"])

    assert principal.is_machine
    assert principal.subject == "dev-client@clients"
    assert principal.organization == "acme"
    assert principal.has_scopes("streams:read", "streams:write", "streams:delete")


def test_machine_token_has_the_tenant_shape(
    http: httpx.Client, dev_issuer: RunningDevIssuer
) -> None:
    token = http.post("/oauth/token", data=machine_token_request()).json()["access_token"]

    claims = claims_of(token)

    assert claims["iss"] == dev_issuer.issuer
    assert claims["aud"] == DEFAULT_AUDIENCE
    assert claims["sub"] == "dev-client@clients"
    assert claims["azp"] == "dev-client"
    assert claims["gty"] == "client-credentials"
    assert claims["scope"] == "streams:read streams:write streams:delete"
    assert claims["permissions"] == ["streams:read", "streams:write", "streams:delete"]
    assert jwt.get_unverified_header(token)["typ"] == "JWT"


def test_token_response_carries_type_lifetime_scope_and_is_not_cached(
    http: httpx.Client,
) -> None:
    response = http.post("/oauth/token", data=machine_token_request())

    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "streams:read streams:write streams:delete"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def test_client_may_authenticate_with_http_basic(http: httpx.Client) -> None:
    form = machine_token_request(client_id="", client_secret="")

    response = http.post("/oauth/token", data=form, auth=("dev-client", "dev-secret"))

    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["azp"] == "dev-client"


def test_token_request_may_be_a_json_object(http: httpx.Client) -> None:
    response = http.post("/oauth/token", json=machine_token_request())

    assert response.status_code == 200
    assert "access_token" in response.json()


def test_requested_scopes_narrow_the_machine_token(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(scope="streams:read"))

    assert response.json()["scope"] == "streams:read"
    assert claims_of(response.json()["access_token"])["permissions"] == ["streams:read"]


def test_any_organization_of_the_platform_is_an_accepted_audience(http: httpx.Client) -> None:
    audience = "https://platform.dtc.istreamplanet.net/globex"

    response = http.post("/oauth/token", data=machine_token_request(audience=audience))

    assert claims_of(response.json()["access_token"])["aud"] == audience


def test_scope_not_granted_to_the_client_is_invalid_scope(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(scope="streams:admin"))

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_scope"


def test_wrong_client_secret_is_invalid_client(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(client_secret="guess"))

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_client"
    assert "guess" not in response.text


def test_unknown_client_is_invalid_client(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(client_id="nobody"))

    assert oauth_error(response) == "invalid_client"


def test_wrong_basic_credentials_get_401_with_a_basic_challenge(http: httpx.Client) -> None:
    form = machine_token_request(client_id="", client_secret="")

    response = http.post("/oauth/token", data=form, auth=("dev-client", "guess"))

    assert response.status_code == 401
    assert oauth_error(response) == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_client_credentials_without_a_secret_is_invalid_client(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(client_secret=""))

    assert oauth_error(response) == "invalid_client"


def test_public_client_may_not_use_client_credentials(http: httpx.Client) -> None:
    form = machine_token_request(client_id="browser-app", client_secret="")

    response = http.post("/oauth/token", data=form)

    assert response.status_code == 400
    assert oauth_error(response) == "unauthorized_client"


def test_missing_audience_is_invalid_request(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(audience=""))

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_audience_that_is_no_api_of_the_issuer_is_invalid_request(http: httpx.Client) -> None:
    form = machine_token_request(audience="https://api.example.com/")

    response = http.post("/oauth/token", data=form)

    assert oauth_error(response) == "invalid_request"


def test_unknown_grant_type_is_unsupported_grant_type(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(grant_type="password"))

    assert response.status_code == 400
    assert oauth_error(response) == "unsupported_grant_type"


def test_missing_grant_type_is_invalid_request(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(grant_type=""))

    assert oauth_error(response) == "invalid_request"


def test_repeated_parameter_is_invalid_request(http: httpx.Client) -> None:
    body = httpx.QueryParams(machine_token_request()).add("audience", DEFAULT_AUDIENCE)

    response = http.post(
        "/oauth/token",
        content=str(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_body_neither_form_nor_json_is_invalid_request(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials",
        headers={"Content-Type": "text/plain"},
    )

    assert oauth_error(response) == "invalid_request"


def test_json_body_that_is_not_an_object_of_strings_is_invalid_request(
    http: httpx.Client,
) -> None:
    response = http.post("/oauth/token", json={"grant_type": ["client_credentials"]})

    assert oauth_error(response) == "invalid_request"


@pytest.mark.parametrize("field", ["client_secret", "client_id", "audience", "scope"])
def test_json_value_holding_a_lone_surrogate_is_invalid_request(
    http: httpx.Client, field: str
) -> None:
    # JSON may escape a lone surrogate; no UTF-8 text can hold one.
    body = json.dumps(machine_token_request(**{field: "dev\ud800"}))

    response = http.post("/oauth/token", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_json_name_holding_a_lone_surrogate_is_invalid_request(http: httpx.Client) -> None:
    body = json.dumps({**machine_token_request(), "x\udfff": "1"})

    response = http.post("/oauth/token", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_form_value_that_is_not_utf8_is_invalid_request(http: httpx.Client) -> None:
    # %ED%A0%80 is how a lone surrogate would look percent-encoded: not valid UTF-8.
    body = (
        str(httpx.QueryParams(machine_token_request(client_secret=""))) + "&client_secret=%ED%A0%80"
    )

    response = http.post(
        "/oauth/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_oversized_body_is_refused_with_413(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data=machine_token_request(padding="x" * 20_000))

    assert response.status_code == 413
    assert oauth_error(response) == "invalid_request"


def test_malformed_basic_header_is_invalid_request(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token",
        data=machine_token_request(client_id="", client_secret=""),
        headers={"Authorization": "Basic not*base64"},
    )

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_basic_header_holding_a_byte_outside_ascii_is_invalid_request(
    http: httpx.Client,
) -> None:
    # HTTP carries header values as bytes; base64 is ASCII, so \xe9 is no Basic credential.
    response = http.post(
        "/oauth/token",
        data=machine_token_request(client_id="", client_secret=""),
        headers=[(b"Authorization", b"Basic \xe9")],
    )

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_secret_sent_both_in_basic_and_in_the_body_is_invalid_request(
    http: httpx.Client,
) -> None:
    basic = base64.b64encode(b"dev-client:dev-secret").decode()

    response = http.post(
        "/oauth/token",
        data=machine_token_request(),
        headers={"Authorization": f"Basic {basic}"},
    )

    assert oauth_error(response) == "invalid_request"


def test_token_endpoint_refuses_get_with_405(http: httpx.Client) -> None:
    assert http.get("/oauth/token").status_code == 405


def test_deeply_nested_json_body_is_invalid_request(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token", content=b"[" * 10_000, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


TOKEN_PARAMETERS = st.sampled_from(
    [
        "grant_type",
        "client_id",
        "client_secret",
        "audience",
        "scope",
        "code",
        "code_verifier",
        "redirect_uri",
        "x",
    ]
)
PARAMETER_VALUES = st.one_of(
    st.sampled_from(
        ["client_credentials", "authorization_code", "dev-client", "dev-secret", DEFAULT_AUDIENCE]
    ),
    st.text(max_size=60),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(TOKEN_PARAMETERS, PARAMETER_VALUES), max_size=8))
def test_token_endpoint_never_fails_with_a_server_error(
    in_process: TestClient, dev_issuer: RunningDevIssuer, form: list[tuple[str, str]]
) -> None:
    response = in_process.post(
        "/oauth/token",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code < 500
    if response.status_code == 200:
        assert claims_of(response.json()["access_token"])["iss"] == dev_issuer.issuer


AUTHORIZE_PARAMETERS = st.sampled_from(
    [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "audience",
        "scope",
        "code_challenge",
        "code_challenge_method",
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(AUTHORIZE_PARAMETERS, st.text(max_size=60)), max_size=8))
def test_authorize_never_fails_with_a_server_error(
    in_process: TestClient, params: list[tuple[str, str]]
) -> None:
    response = in_process.get("/authorize?" + urlencode(params))

    assert response.status_code < 500


# -- browsers on this machine (Swagger UI) ------------------------------------------------


def test_browser_page_on_this_machine_may_call_the_token_endpoint(http: httpx.Client) -> None:
    origin = "http://127.0.0.1:8000"

    preflight = http.options(
        "/oauth/token",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-requested-with",
        },
    )

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin


def test_token_answer_is_readable_by_a_page_on_this_machine(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token",
        data=machine_token_request(),
        headers={"Origin": "http://localhost:8000"},
    )

    assert response.headers["access-control-allow-origin"] == "http://localhost:8000"


def test_token_answer_is_not_readable_by_a_page_elsewhere(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token",
        data=machine_token_request(),
        headers={"Origin": "https://attacker.example"},
    )

    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "127.255.255.254",
        "localhost",
        "[::1]",
        "126.0.0.1",
        "128.0.0.1",
        "127.0.0.256",
        "localhost.example",
        "127.0.0.1.example",
        "[::2]",
        "10.0.0.1",
    ],
)
def test_a_page_may_read_token_answers_exactly_when_its_host_is_loopback(
    in_process: TestClient, host: str
) -> None:
    origin = f"http://{host}:8000"

    response = in_process.post(
        "/oauth/token", data=machine_token_request(), headers={"Origin": origin}
    )

    allowed = response.headers.get("access-control-allow-origin") == origin
    assert allowed == is_loopback_host(host)


def test_origin_of_a_registered_redirect_uri_may_call_the_token_endpoint(
    http: httpx.Client,
) -> None:
    response = http.post(
        "/oauth/token",
        data=machine_token_request(),
        headers={"Origin": "https://app.example"},
    )

    assert response.headers["access-control-allow-origin"] == "https://app.example"


# -- the login page ----------------------------------------------------------------------


def test_authorize_shows_a_form_with_labelled_username_and_password(http: httpx.Client) -> None:
    page = http.get("/authorize", params=authorize_params(new_verifier()))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<label for="username">' in page.text
    assert '<input id="username" name="username"' in page.text
    assert '<label for="password">' in page.text
    assert 'name="password" type="password"' in page.text
    assert '<button type="submit">' in page.text


def test_login_page_says_it_is_for_development_only(http: httpx.Client) -> None:
    page = http.get("/authorize", params=authorize_params(new_verifier()))

    assert "for local development only" in page.text


def test_login_page_may_not_be_framed_cached_or_run_scripts(http: httpx.Client) -> None:
    page = http.get("/authorize", params=authorize_params(new_verifier()))

    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_login_page_escapes_what_the_request_carries(http: httpx.Client) -> None:
    params = authorize_params(new_verifier(), state='"><script>alert(1)</script>')

    page = http.get("/authorize", params=params)

    assert "<script>" not in page.text


# -- authorization code with PKCE --------------------------------------------------------


@pytest.mark.anyio
async def test_user_login_round_trip_token_is_accepted_by_jwtauth(
    dev_issuer: RunningDevIssuer,
) -> None:
    verifier = new_verifier()
    async with httpx.AsyncClient(base_url=dev_issuer.issuer) as client:
        page = await client.get("/authorize", params=authorize_params(verifier))
        login = await client.post(
            form_action(page.text), data={"username": "dev@example.com", "password": "dev"}
        )
        code = redirect_query(login)["code"]
        token_form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": LOOPBACK_REDIRECT,
            "client_id": "dev-client",
        }
        tokens = (await client.post("/oauth/token", data=token_form)).json()
    auth = JWTAuth(issuer=dev_issuer.issuer, audience=DEFAULT_AUDIENCE)

    principal = await auth.verify(tokens["access_token"])

    assert not principal.is_machine
    assert principal.subject.startswith("auth0|")
    assert principal.client_id == "dev-client"
    assert principal.organization == "acme"
    assert principal.scopes == {"openid", "streams:read"}


def test_successful_login_redirects_with_a_code_and_the_state_unchanged(
    http: httpx.Client,
) -> None:
    state = "a b&c=d/é?"

    query = redirect_query(log_in(http, new_verifier(), state=state))

    assert query["state"] == state
    assert len(query["code"]) >= 32


def test_login_redirects_to_the_registered_redirect_uri(http: httpx.Client) -> None:
    response = log_in(http, new_verifier())

    assert response.headers["location"].startswith(LOOPBACK_REDIRECT + "?")


def test_user_token_audience_adds_userinfo_and_has_no_grant_type(
    http: httpx.Client, dev_issuer: RunningDevIssuer
) -> None:
    verifier = new_verifier()
    token = exchange(http, code_for(http, verifier), verifier).json()["access_token"]

    claims = claims_of(token)

    assert claims["aud"] == [DEFAULT_AUDIENCE, dev_issuer.issuer + "userinfo"]
    assert "gty" not in claims
    assert claims["azp"] == "dev-client"


def test_user_gets_only_the_requested_scopes_granted_to_them(http: httpx.Client) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier, scope="openid streams:read streams:write")

    body = exchange(http, code, verifier).json()

    assert body["scope"] == "openid streams:read"
    assert claims_of(body["access_token"])["permissions"] == ["streams:read"]


def test_code_is_single_use(http: httpx.Client) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier)
    assert exchange(http, code, verifier).status_code == 200

    replay = exchange(http, code, verifier)

    assert replay.status_code == 400
    assert oauth_error(replay) == "invalid_grant"


def test_wrong_code_verifier_is_invalid_grant(http: httpx.Client) -> None:
    code = code_for(http, new_verifier())

    response = exchange(http, code, new_verifier())

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_grant"


def test_code_met_with_a_wrong_verifier_cannot_be_tried_again(http: httpx.Client) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier)
    exchange(http, code, new_verifier())

    response = exchange(http, code, verifier)

    assert oauth_error(response) == "invalid_grant"


def test_expired_code_is_invalid_grant() -> None:
    clock = FakeClock()
    with (
        running(_config(code_lifetime=60), clock=clock) as dev,
        httpx.Client(base_url=dev.issuer) as http,
    ):
        verifier = new_verifier()
        code = code_for(http, verifier)
        clock.advance(61)

        response = exchange(http, code, verifier)

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_grant"


def test_redirect_uri_differing_from_the_authorization_request_is_invalid_grant(
    http: httpx.Client,
) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier)

    response = exchange(http, code, verifier, redirect_uri="http://127.0.0.1:9000/other")

    assert oauth_error(response) == "invalid_grant"


def test_code_issued_to_another_client_is_invalid_grant(http: httpx.Client) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier, client_id="browser-app")

    response = exchange(http, code, verifier, client_id="dev-client")

    assert oauth_error(response) == "invalid_grant"


def test_malformed_code_verifier_is_invalid_request(http: httpx.Client) -> None:
    code = code_for(http, new_verifier())

    response = exchange(http, code, "too-short")

    assert response.status_code == 400
    assert oauth_error(response) == "invalid_request"


def test_code_exchange_without_a_code_is_invalid_request(http: httpx.Client) -> None:
    response = exchange(http, "", new_verifier())

    assert oauth_error(response) == "invalid_request"


def test_code_exchange_with_a_wrong_client_secret_is_invalid_client(http: httpx.Client) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier)

    response = exchange(http, code, verifier, client_secret="guess")

    assert oauth_error(response) == "invalid_client"


def test_code_exchange_with_the_right_client_secret_succeeds(http: httpx.Client) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier)

    response = exchange(http, code, verifier, client_secret="dev-secret")

    assert response.status_code == 200


def test_public_client_completes_the_login_with_pkce_alone(http: httpx.Client) -> None:
    verifier = new_verifier()
    code = code_for(http, verifier, client_id="browser-app")

    response = exchange(http, code, verifier, client_id="browser-app")

    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["azp"] == "browser-app"


# -- refused authorization requests --------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "not-a-sha256-digest"}, "invalid_request"),
        ({"audience": ""}, "invalid_request"),
        ({"audience": "https://api.example.com/"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
    ids=[
        "without-pkce",
        "plain-pkce",
        "pkce-method-missing",
        "malformed-challenge",
        "without-audience",
        "unknown-audience",
        "implicit-flow",
    ],
)
def test_refused_authorization_request_returns_the_error_and_state_to_the_client(
    http: httpx.Client, change: dict[str, str], error: str
) -> None:
    response = http.get("/authorize", params=authorize_params(new_verifier(), **change))

    query = redirect_query(response)
    assert response.headers["location"].startswith(LOOPBACK_REDIRECT + "?")
    assert query["error"] == error
    assert query["state"] == "opaque-state-123"
    assert "code" not in query


def test_unknown_client_gets_an_error_page_and_no_redirect(http: httpx.Client) -> None:
    response = http.get("/authorize", params=authorize_params(new_verifier(), client_id="nobody"))

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "invalid_client" in response.text


def test_redirect_uri_off_this_machine_gets_an_error_page_and_no_redirect(
    http: httpx.Client,
) -> None:
    params = authorize_params(new_verifier(), redirect_uri="https://attacker.example/cb")

    response = http.get("/authorize", params=params)

    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.2:8000/docs/oauth2-redirect",
        "http://127.255.255.254/callback",
        "http://[::1]:8000/callback",
        "http://localhost/callback",
        "http://LOCALHOST:9000/callback",
    ],
)
def test_any_plain_http_loopback_redirect_uri_is_accepted_without_registered_ones(
    in_process: TestClient, redirect_uri: str
) -> None:
    params = authorize_params(new_verifier(), redirect_uri=redirect_uri)

    assert in_process.get("/authorize", params=params).status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://127.0.0.1/callback",
        "http://128.0.0.1/callback",
        "http://127.0.0.1.example/callback",
        "http://localhost.example/callback",
        "http://[::2]/callback",
        "http://0.0.0.0/callback",
        "http://user@127.0.0.1/callback",
        "http://127.0.0.1/callback#fragment",
    ],
)
def test_a_redirect_uri_that_is_not_plain_http_on_loopback_is_refused(
    in_process: TestClient, redirect_uri: str
) -> None:
    params = authorize_params(new_verifier(), redirect_uri=redirect_uri)

    response = in_process.get("/authorize", params=params)

    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8000/callback\r\nSet-Cookie: a=b",
        "http://127.0.0.1:8000/call back",
        "http://local\thost/callback",
        "http://127.0.0.1:8000/callback\x00",
    ],
)
def test_a_loopback_redirect_uri_holding_spaces_or_control_characters_is_refused(
    in_process: TestClient, redirect_uri: str
) -> None:
    # No URI holds them; urlsplit drops tabs and line breaks, so the check would read
    # another URI than the one the browser is sent to.
    params = authorize_params(new_verifier(), redirect_uri=redirect_uri)

    response = in_process.get("/authorize", params=params)

    assert response.status_code == 400
    assert "location" not in response.headers


def test_a_registered_redirect_uri_holding_a_control_character_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="redirect_uris"):
        DevClient("app", "secret", (), ("https://app.example/callback\n",))


def test_client_with_registered_redirect_uris_accepts_only_those(http: httpx.Client) -> None:
    verifier = new_verifier()
    registered = authorize_params(
        verifier, client_id="fixed-app", redirect_uri="https://app.example/callback"
    )
    other = authorize_params(verifier, client_id="fixed-app")

    assert http.get("/authorize", params=registered).status_code == 200
    assert http.get("/authorize", params=other).status_code == 400


def test_repeated_authorize_parameter_gets_an_error_page(http: httpx.Client) -> None:
    params = httpx.QueryParams(authorize_params(new_verifier())).add("client_id", "browser-app")

    response = http.get("/authorize", params=params)

    assert response.status_code == 400
    assert "location" not in response.headers


def test_wrong_password_shows_the_form_again_with_400_and_no_code(http: httpx.Client) -> None:
    response = log_in(http, new_verifier(), password="wrong")

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "wrong username or password" in response.text
    assert 'name="password"' in response.text


def test_unknown_user_is_told_exactly_what_a_wrong_password_is_told(http: httpx.Client) -> None:
    wrong_password = log_in(http, new_verifier(), password="wrong")
    unknown_user = log_in(http, new_verifier(), username="nobody@example.com")

    assert unknown_user.status_code == wrong_password.status_code
    assert "wrong username or password" in unknown_user.text


def test_login_post_is_checked_like_the_authorization_request(http: httpx.Client) -> None:
    params = authorize_params(new_verifier(), code_challenge_method="plain")

    response = http.post(
        "/authorize", params=params, data={"username": "dev@example.com", "password": "dev"}
    )

    assert redirect_query(response)["error"] == "invalid_request"


# -- configuration, key file and startup -------------------------------------------------


def test_pinned_defaults_are_dev_client_and_the_dev_user() -> None:
    config = DevIssuerConfig()

    client = config.client("dev-client")
    assert client is not None
    assert client.client_secret == "dev-secret"
    assert [(u.username, u.password) for u in config.users] == [("dev@example.com", "dev")]
    assert config.issuer == "http://127.0.0.1:8765/"


def test_json_config_file_replaces_clients_and_users(tmp_path: Path) -> None:
    path = tmp_path / "issuer.json"
    path.write_text(
        json.dumps(
            {
                "port": 9000,
                "clients": [{"client_id": "ci", "client_secret": "s3", "scopes": ["a:b"]}],
                "users": [{"username": "ann", "password": "pw", "scopes": "a:b c:d"}],
            }
        )
    )

    config = load_config(path)

    assert config.issuer == "http://127.0.0.1:9000/"
    assert config.clients == (DevClient("ci", "s3", ("a:b",)),)
    assert config.users[0].scopes == ("a:b", "c:d")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib (Python 3.11+)")
def test_toml_config_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "issuer.toml"
    path.write_text(
        'audiences = ["https://api.example.com/"]\n'
        "[[users]]\n"
        'username = "bob"\n'
        'password = "pw"\n'
        'subject = "auth0|bob"\n'
    )

    config = load_config(path)

    assert config.audiences == ("https://api.example.com/",)
    assert config.users == (DevUser("bob", "pw", (), "auth0|bob"),)


def test_deeply_nested_json_config_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "issuer.json"
    path.write_text('{"audiences": ' + "[" * 100_000)

    with pytest.raises(ConfigurationError, match="is not valid"):
        load_config(path)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib (Python 3.11+)")
def test_deeply_nested_toml_config_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "issuer.toml"
    path.write_text("audiences = " + "[" * 100_000)

    with pytest.raises(ConfigurationError, match="is not valid"):
        load_config(path)


@pytest.mark.parametrize("kind", ["clients", "users"])
def test_config_file_entry_missing_a_required_key_is_a_configuration_error(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "issuer.json"
    path.write_text(json.dumps({kind: [{}]}))

    with pytest.raises(ConfigurationError, match="incomplete"):
        load_config(path)


@pytest.mark.parametrize("audiences", [5, {"https://api.example.com/": 1}])
def test_config_file_audiences_that_are_no_list_are_a_configuration_error(
    tmp_path: Path, audiences: object
) -> None:
    path = tmp_path / "issuer.json"
    path.write_text(json.dumps({"audiences": audiences}))

    with pytest.raises(ConfigurationError, match="audiences must be a list"):
        load_config(path)


def test_config_file_key_file_under_an_unknown_users_home_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "issuer.json"
    path.write_text(json.dumps({"key_file": "~no-such-user-here/key.json"}))

    with pytest.raises(ConfigurationError, match="key_file"):
        load_config(path)


def test_config_file_key_file_holding_a_nul_character_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "issuer.json"
    path.write_text(json.dumps({"key_file": "key\u0000.json"}))

    with pytest.raises(ConfigurationError, match="key_file"):
        load_config(path)


def test_config_file_path_holding_a_nul_character_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config("issuer\x00.json")


def test_config_file_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "issuer.json"
    path.write_text(json.dumps({"prot": 9000}))

    with pytest.raises(ConfigurationError, match="prot"):
        load_config(path)


AUDIENCE_TEMPLATES = [
    "https://api.example/{organization}",
    "https://api.example/{organization}/v1",
    "https://api.example/x{organization}y",
    "https://api.example/{organization}x",
    "https://api.example/{organization}/{organization}",
    "https://api.example/{org}",
]


@pytest.mark.parametrize("audience", AUDIENCE_TEMPLATES)
def test_config_accepts_exactly_the_audience_templates_jwtauth_accepts(audience: str) -> None:
    try:
        JWTAuth(issuer="https://issuer.test/", audience=audience)
    except ConfigurationError:
        jwtauth_accepts = False
    else:
        jwtauth_accepts = True

    try:
        DevIssuerConfig(audiences=(audience,))
    except ConfigurationError:
        dev_issuer_accepts = False
    else:
        dev_issuer_accepts = True

    assert dev_issuer_accepts == jwtauth_accepts


@pytest.mark.parametrize(
    "requested",
    [
        "https://api.example/acme/v1",
        "https://api.example/a.b~c-d_e/v1",
        "https://api.example//v1",
        "https://api.example/../v1",
        "https://api.example/acme/x/v1",
        "https://api.example/acme/v1?x=1",
        "https://api.example/acme",
    ],
)
def test_tokens_are_issued_for_exactly_the_audiences_jwtauth_accepts(requested: str) -> None:
    template = "https://api.example/{organization}/v1"
    issuer = TestIssuer()
    auth = issuer.auth(audience=template)
    try:
        auth.verify_sync(issuer.mint(audience=requested))
    except InvalidTokenError:
        jwtauth_accepts = False
    else:
        jwtauth_accepts = True

    config = DevIssuerConfig(audiences=(template,))

    assert config.accepts_audience(requested) == jwtauth_accepts


def test_client_with_a_malformed_redirect_uri_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="redirect_uris"):
        DevClient("app", "secret", (), ("http://127.0.0.1:99999/callback",))


@pytest.mark.parametrize(
    "scope", ["streams read", 'streams"read', "streams\\read", "streams:lüs", ""]
)
def test_a_scope_that_is_not_one_rfc_6749_scope_token_is_refused(scope: str) -> None:
    with pytest.raises(ConfigurationError, match="scope names"):
        DevClient("app", "secret", (scope,))


def test_a_user_whose_subject_is_not_unicode_text_is_refused() -> None:
    # Tokens carry the subject, and minting refuses a lone surrogate: refused here instead.
    with pytest.raises(ConfigurationError, match="subject"):
        DevUser("ann", "password", subject="auth0|\ud800")


@pytest.mark.parametrize(("client_id", "secret"), [("app\udcff", None), ("app", "s\udcff")])
def test_a_client_whose_id_or_secret_is_not_unicode_text_is_refused(
    client_id: str, secret: str | None
) -> None:
    # A lone surrogate comes from a JSON escape or an undecodable command-line byte; a
    # secret holding one could never be compared with what a client sends.
    with pytest.raises(ConfigurationError, match="text"):
        DevClient(client_id, secret)


@pytest.mark.parametrize(("username", "password"), [("ann\udcff", "pw"), ("ann", "\udcff")])
def test_a_user_whose_username_or_password_is_not_unicode_text_is_refused(
    username: str, password: str
) -> None:
    with pytest.raises(ConfigurationError, match="text"):
        DevUser(username, password)


def test_one_client_and_user_with_nothing_given_is_the_pinned_default() -> None:
    assert one_client_and_user() == DevIssuerConfig()


def test_one_client_and_user_reads_scopes_as_space_delimited_text() -> None:
    config = one_client_and_user(client_scopes="a:read  a:write", user_scopes="")

    assert (config.clients[0].scopes, config.users[0].scopes) == (("a:read", "a:write"), ())


def test_one_client_and_user_refuses_an_empty_detail_rather_than_use_the_default() -> None:
    with pytest.raises(ConfigurationError, match="client_secret"):
        one_client_and_user(client_secret="")


def test_two_clients_with_one_client_id_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="client_id"):
        DevIssuerConfig(clients=(DevClient("a", "x"), DevClient("a", "y")))


def test_config_repr_shows_no_secret() -> None:
    assert "dev-secret" not in repr(DevIssuerConfig())
    assert "'dev'" not in repr(DevIssuerConfig().users)


def test_key_file_is_created_owner_only_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "dev-key.json"

    first = load_or_create_key(path)
    second = load_or_create_key(path)

    assert second.kid == first.kid
    assert second.public_jwk() == first.public_jwk()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_callers_creating_the_key_file_at_once_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "dev-key.json"

    with ThreadPoolExecutor(max_workers=8) as pool:
        kids = set(pool.map(lambda _: load_or_create_key(path).kid, range(8)))

    assert kids == {load_or_create_key(path).kid}


def test_damaged_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "dev-key.json"
    path.write_text("{not json")

    with pytest.raises(ConfigurationError, match="damaged"):
        load_or_create_key(path)


def key_file_with(path: Path, **changes: object) -> Path:
    key = SigningKey.generate("RS256")
    document = {"kid": key.kid, "alg": key.alg, "private_key": key.to_pem().decode()}
    path.write_text(json.dumps({**document, **changes}))
    return path


def test_deeply_nested_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "dev-key.json"
    path.write_text("[" * 100_000)

    with pytest.raises(ConfigurationError, match="damaged"):
        load_or_create_key(path)


@pytest.mark.parametrize("alg", ["RSnope", "PS", "HS256", 256])
def test_key_file_naming_an_unknown_algorithm_is_a_configuration_error(
    tmp_path: Path, alg: object
) -> None:
    path = key_file_with(tmp_path / "dev-key.json", alg=alg)

    with pytest.raises(ConfigurationError, match="damaged"):
        load_or_create_key(path)


@pytest.mark.parametrize("kid", [7, "", None, "lone-surrogate-\ud800"])
def test_key_file_whose_kid_is_not_text_is_a_configuration_error(
    tmp_path: Path, kid: object
) -> None:
    path = key_file_with(tmp_path / "dev-key.json", kid=kid)

    with pytest.raises(ConfigurationError, match="damaged"):
        load_or_create_key(path)


def test_key_file_holding_an_rsa_key_under_2048_bits_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    # Services refuse such a key in the JWKS, and with it every token the dev issuer signs.
    weak_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    weak = SigningKey("weak", "RS256", weak_rsa)
    path = key_file_with(tmp_path / "dev-key.json", private_key=weak.to_pem().decode())

    with pytest.raises(ConfigurationError, match=r"^key_file .*RSA keys under 2048 bits"):
        load_or_create_key(path)


def test_restarted_issuer_with_the_same_key_file_still_vouches_for_its_tokens(
    tmp_path: Path,
) -> None:
    config = _config(key_file=tmp_path / "dev-key.json")
    with running(config) as first, httpx.Client() as client:
        token = client.post(first.token_url, data=machine_token_request()).json()["access_token"]

    with running(config) as second:
        # Each run binds a new port, so only the keys are compared: the first run's token
        # must verify against the second run's JWKS.
        auth = JWTAuth(issuer=first.issuer, audience=DEFAULT_AUDIENCE, jwks_url=second.jwks_url)
        principal = auth.verify_sync(token)

    assert principal.subject == "dev-client@clients"


def test_pkce_s256_matches_the_rfc_7636_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_startup_banner_says_development_only_and_names_no_secret() -> None:
    text = banner(DevIssuerConfig())

    assert "FOR DEVELOPMENT ONLY" in text
    assert "dev-client" in text
    assert "dev@example.com" in text
    assert "dev-secret" not in text


def test_a_single_audience_string_is_one_audience() -> None:
    config = DevIssuerConfig(port=0, audiences="https://platform.dtc.istreamplanet.net/acme")  # type: ignore[arg-type]
    assert config.audiences == ("https://platform.dtc.istreamplanet.net/acme",)
