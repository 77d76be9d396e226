"""The testing kit: TestIssuer's transport, HTTP serving and bound JWTAuth; the principal
override that keeps scope checks; make_principal; and the pytest plugin."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Security
from fastapi.testclient import TestClient

from fastapi_isp_jwt import InvalidTokenError, JWTAuth, Principal
from fastapi_isp_jwt.testing import (
    SigningKey,
    TestIssuer,
    make_principal,
    override_principal,
    principal_override,
)
from fastapi_isp_jwt.testing import pytest_plugin as plugin_module

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
TESTING_PACKAGE = REPO / "fastapi_isp_jwt" / "testing"


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the in-memory transport ------------------------------------------------------------------


def test_transport_serves_the_jwks_to_a_sync_client(issuer: TestIssuer) -> None:
    with httpx.Client(transport=issuer.transport) as client:
        response = client.get(issuer.jwks_url)

    assert response.status_code == 200
    assert response.json() == issuer.jwks()


@pytest.mark.anyio
async def test_transport_serves_the_jwks_to_an_async_client(issuer: TestIssuer) -> None:
    async with httpx.AsyncClient(transport=issuer.transport) as client:
        response = await client.get(issuer.jwks_url)

    assert response.json() == issuer.jwks()


def test_transport_serves_discovery_metadata_naming_the_issuer(issuer: TestIssuer) -> None:
    with httpx.Client(transport=issuer.transport) as client:
        meta = client.get(issuer.discovery_url).json()

    assert meta["issuer"] == "https://issuer.test/"
    assert meta["jwks_uri"] == issuer.jwks_url


def test_transport_answers_404_for_any_other_url(issuer: TestIssuer) -> None:
    with httpx.Client(transport=issuer.transport) as client:
        response = client.get("https://elsewhere.test/.well-known/jwks.json")

    assert response.status_code == 404


def test_transport_publishes_rotation_and_retirement_at_once(issuer: TestIssuer) -> None:
    old = issuer.signing_key
    new = issuer.rotate()
    issuer.retire(old.kid)

    with httpx.Client(transport=issuer.transport) as client:
        kids = [key["kid"] for key in client.get(issuer.jwks_url).json()["keys"]]

    assert kids == [new.kid]


# -- issuer.auth(): a JWTAuth bound to the issuer ------------------------------------------------


@pytest.mark.anyio
async def test_bound_auth_accepts_the_issuer_tokens_with_no_network(issuer: TestIssuer) -> None:
    auth = issuer.auth()

    principal = await auth.verify(issuer.mint("auth0|ann", ["streams:read"]))

    assert principal.subject == "auth0|ann"
    assert principal.scopes == {"streams:read"}
    assert principal.organization == "acme"


def test_bound_auth_verifies_synchronously_too(issuer: TestIssuer) -> None:
    principal = issuer.auth().verify_sync(issuer.mint_machine(["streams:write"]))

    assert principal.is_machine


def test_bound_auth_refuses_tokens_from_another_issuer(issuer: TestIssuer) -> None:
    stranger = TestIssuer("https://stranger.test/")

    with pytest.raises(InvalidTokenError):
        issuer.auth().verify_sync(stranger.mint())


def test_bound_auth_fetches_the_keys_once_for_many_tokens(issuer: TestIssuer) -> None:
    auth = issuer.auth()

    for subject in ("auth0|a", "auth0|b", "auth0|c"):
        auth.verify_sync(issuer.mint(subject))

    assert issuer.jwks_requests == 1


def test_bound_auth_options_win_over_the_defaults(issuer: TestIssuer) -> None:
    auth = issuer.auth(audience="https://platform.dtc.istreamplanet.net/{organization}")

    principal = auth.verify_sync(issuer.mint(organization="globex"))

    assert principal.organization == "globex"


@pytest.mark.anyio
async def test_bound_auth_given_its_own_http_clients_builds_none(
    issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []

    class RecordedClient(httpx.Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)

    class RecordedAsyncClient(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)

    async with httpx.AsyncClient(transport=issuer.transport) as own_async:
        with httpx.Client(transport=issuer.transport) as own_sync:
            monkeypatch.setattr(httpx, "Client", RecordedClient)
            monkeypatch.setattr(httpx, "AsyncClient", RecordedAsyncClient)

            auth = issuer.auth(http_client=own_async, sync_http_client=own_sync)
            principal = await auth.verify(issuer.mint("auth0|ann"))

    assert principal.subject == "auth0|ann"
    assert built == []


def test_bound_auth_can_find_the_keys_through_discovery(issuer: TestIssuer) -> None:
    principal = issuer.auth(discovery=True).verify_sync(issuer.mint())

    assert principal.subject == "auth0|test-user"


def test_bound_auth_accepts_the_algorithm_of_the_issuer_key() -> None:
    issuer = TestIssuer(algorithm="ES256")

    principal = issuer.auth().verify_sync(issuer.mint())

    assert principal.subject == "auth0|test-user"


def test_bound_auth_works_as_a_route_dependency(issuer: TestIssuer) -> None:
    auth = issuer.auth()
    app = FastAPI()

    @app.get("/me")
    async def me(principal: Principal = Depends(auth)) -> dict[str, str]:
        return {"subject": principal.subject}

    response = TestClient(app).get("/me", headers=bearer(issuer.mint("auth0|ann")))

    assert response.json() == {"subject": "auth0|ann"}


# -- issuer.serve(): real HTTP on 127.0.0.1 ----------------------------------------------------


def test_served_issuer_publishes_the_jwks_over_http_on_loopback(issuer: TestIssuer) -> None:
    with issuer.serve() as served:
        response = httpx.get(served.jwks_url)

    assert served.url.startswith("http://127.0.0.1:")
    assert response.json() == issuer.jwks()


def test_served_issuer_discovery_points_at_the_served_jwks(issuer: TestIssuer) -> None:
    with issuer.serve() as served:
        meta = httpx.get(served.discovery_url).json()

    assert meta == issuer.discovery_document(served.jwks_url)


def test_served_issuer_auth_fetches_keys_over_http(issuer: TestIssuer) -> None:
    with issuer.serve() as served:
        principal = served.auth().verify_sync(issuer.mint("auth0|ann"))

    assert principal.subject == "auth0|ann"
    assert issuer.jwks_requests == 1


def test_served_issuer_stops_listening_when_the_block_ends(issuer: TestIssuer) -> None:
    with issuer.serve() as served:
        url = served.jwks_url

    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_served_issuer_may_be_stopped_before_its_block_ends(issuer: TestIssuer) -> None:
    with issuer.serve() as served:
        served.stop()

        with pytest.raises(httpx.ConnectError):
            httpx.get(served.jwks_url)


def test_served_issuer_stopped_refuses_a_client_that_pooled_its_connection(
    issuer: TestIssuer,
) -> None:
    with httpx.Client() as client:
        with issuer.serve() as served:
            assert client.get(served.jwks_url).status_code == 200

        # An outage must look like one even to a client that kept its connection alive.
        with pytest.raises(httpx.ConnectError):
            client.get(served.jwks_url)


# -- signing keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384", "EdDSA"])
def test_signing_key_survives_a_pem_round_trip(alg: str) -> None:
    key = SigningKey.generate(alg)

    loaded = SigningKey.from_pem(key.to_pem(), kid=key.kid, alg=alg)

    assert loaded.public_jwk() == key.public_jwk()


def test_signing_key_from_pem_refuses_a_key_that_does_not_fit_the_algorithm() -> None:
    key = SigningKey.generate("ES256")

    with pytest.raises(ValueError, match="does not fit"):
        SigningKey.from_pem(key.to_pem(), kid=key.kid, alg="ES384")


@pytest.mark.parametrize("alg", ["RSnope", "PSX", "ESnope", "HS256", "none"])
def test_signing_key_cannot_be_generated_for_an_unknown_algorithm(alg: str) -> None:
    with pytest.raises(ValueError, match="unknown algorithm"):
        SigningKey.generate(alg)


@pytest.mark.parametrize("alg", ["RSnope", "PS", "RS256 ", 256])
def test_signing_key_from_pem_refuses_an_unknown_algorithm(alg: Any) -> None:
    key = SigningKey.generate("RS256")

    with pytest.raises(ValueError, match="unknown algorithm"):
        SigningKey.from_pem(key.to_pem(), kid=key.kid, alg=alg)


@pytest.mark.parametrize("kid", [7, "", None])
def test_signing_key_needs_a_kid_that_is_text(kid: Any) -> None:
    key = SigningKey.generate("RS256")

    with pytest.raises(ValueError, match="kid"):
        SigningKey.from_pem(key.to_pem(), kid=kid, alg="RS256")


def test_issuer_given_a_signing_key_signs_and_publishes_with_it() -> None:
    key = SigningKey.generate("RS256", kid="kept-key")

    issuer = TestIssuer(signing_key=key)

    assert [k["kid"] for k in issuer.jwks()["keys"]] == ["kept-key"]


def test_jwks_publishes_the_keys_of_one_moment_while_another_thread_rotates() -> None:
    # A key that rotates the issuer while it is being published stands in for another
    # thread calling rotate() in the middle of jwks(), deterministically.
    issuers: list[TestIssuer] = []

    class RotatesWhilePublished(SigningKey):
        def public_jwk(self) -> dict[str, Any]:
            issuers[0].rotate("EdDSA")
            return super().public_jwk()

    first = SigningKey.generate("EdDSA", kid="first")
    issuer = TestIssuer(signing_key=RotatesWhilePublished(first.kid, first.alg, first.private_key))
    issuers.append(issuer)

    document = issuer.jwks()

    assert [k["kid"] for k in document["keys"]] == ["first"]
    assert len(issuer.published_keys) == 2
    assert issuer.auth().verify_sync(issuer.mint()).subject == "auth0|test-user"


# -- overriding the token check -----------------------------------------------------------------


def scoped_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.get("/streams")
    async def read(principal: Principal = Security(auth, scopes=["streams:read"])) -> str:
        return principal.subject

    @app.post("/streams")
    async def write(principal: Principal = Security(auth, scopes=["streams:write"])) -> str:
        return principal.subject

    return app


def test_a_plain_dependency_override_silently_drops_scope_checks(issuer: TestIssuer) -> None:
    auth = issuer.auth()
    app = scoped_app(auth)
    reader = make_principal(scopes=["streams:read"])

    app.dependency_overrides[auth] = lambda: reader
    response = TestClient(app).post("/streams")

    assert response.status_code == 200  # the trap: a write by a read-only caller


def test_override_principal_refuses_a_missing_scope_exactly_as_a_real_token_is_refused(
    issuer: TestIssuer,
) -> None:
    auth = issuer.auth()
    app = scoped_app(auth)
    client = TestClient(app)
    real = client.post("/streams", headers=bearer(issuer.mint(scopes=["streams:read"])))

    with override_principal(app, auth, make_principal(scopes=["streams:read"])):
        overridden = client.post("/streams")

    assert overridden.status_code == real.status_code == 403
    assert overridden.headers["www-authenticate"] == real.headers["www-authenticate"]
    assert overridden.json() == real.json()


def test_override_principal_lets_a_granted_scope_through_with_no_token(
    issuer: TestIssuer,
) -> None:
    auth = issuer.auth()
    app = scoped_app(auth)

    with override_principal(app, auth, make_principal("auth0|ann", ["streams:read"])):
        response = TestClient(app).get("/streams")

    assert response.status_code == 200
    assert response.json() == "auth0|ann"


def test_override_principal_removes_itself_when_the_block_ends(issuer: TestIssuer) -> None:
    auth = issuer.auth()
    app = scoped_app(auth)

    with override_principal(app, auth, make_principal(scopes=["streams:read"])):
        pass

    assert auth not in app.dependency_overrides
    assert TestClient(app).get("/streams").status_code == 401


def test_override_principal_restores_an_override_that_was_there_before(
    issuer: TestIssuer,
) -> None:
    auth = issuer.auth()
    app = scoped_app(auth)
    outer = principal_override(auth, make_principal("auth0|outer", ["streams:read"]))
    app.dependency_overrides[auth] = outer

    with override_principal(app, auth, make_principal("auth0|inner", ["streams:read"])):
        inner_answer = TestClient(app).get("/streams").json()

    assert inner_answer == "auth0|inner"
    assert app.dependency_overrides[auth] is outer


def test_principal_override_placed_by_hand_keeps_scope_checks(issuer: TestIssuer) -> None:
    auth = issuer.auth()
    app = scoped_app(auth)

    app.dependency_overrides[auth] = principal_override(auth, make_principal(scopes=[]))
    response = TestClient(app).get("/streams")

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_override_principal_with_something_other_than_a_principal_is_a_clear_type_error(
    issuer: TestIssuer,
) -> None:
    auth = issuer.auth()
    app = scoped_app(auth)
    with pytest.raises(TypeError, match="make_principal"):
        override_principal(app, auth, "auth0|ann").__enter__()  # type: ignore[arg-type]
    assert auth not in app.dependency_overrides


def test_principal_override_with_arguments_swapped_is_a_clear_type_error(
    issuer: TestIssuer,
) -> None:
    with pytest.raises(TypeError, match="JWTAuth"):
        principal_override(make_principal(), issuer.auth())  # type: ignore[arg-type]


def test_swapping_in_a_bound_auth_keeps_scope_checks_with_real_tokens(
    issuer: TestIssuer,
) -> None:
    production = JWTAuth(
        domain="istreamplanet.auth0.com", audience="https://platform.dtc.istreamplanet.net/acme"
    )
    app = scoped_app(production)
    app.dependency_overrides[production] = issuer.auth()
    client = TestClient(app)
    token = issuer.mint(scopes=["streams:read"])

    assert client.get("/streams", headers=bearer(token)).status_code == 200
    assert client.post("/streams", headers=bearer(token)).status_code == 403


# -- make_principal ----------------------------------------------------------------------------


@pytest.mark.parametrize("names", ["scopes", "permissions"])
def test_minting_with_scopes_or_permissions_as_one_string_is_a_clear_type_error(
    issuer: TestIssuer, names: str
) -> None:
    # list("streams:read") would grant the scopes "s", "t", "r"...
    with pytest.raises(TypeError, match=names):
        issuer.mint(**{names: "streams:read"})  # type: ignore[arg-type]


def test_make_principal_with_scopes_as_one_string_is_a_clear_type_error() -> None:
    # frozenset("streams:read") would grant the scopes "s", "t", "r"...
    with pytest.raises(TypeError, match="scopes"):
        make_principal(scopes="streams:read")


def test_made_principal_matches_one_verified_from_a_real_token(issuer: TestIssuer) -> None:
    verified = issuer.auth().verify_sync(issuer.mint("auth0|ann", ["a:b", "c:d"]))

    made = make_principal("auth0|ann", ["a:b", "c:d"])

    for field in ("subject", "scopes", "audience", "organization", "client_id", "is_machine"):
        assert getattr(made, field) == getattr(verified, field), field


def test_made_machine_principal_matches_a_verified_client_credentials_token(
    issuer: TestIssuer,
) -> None:
    verified = issuer.auth().verify_sync(issuer.mint_machine(["a:b"]))

    made = make_principal(scopes=["a:b"], machine=True)

    assert (made.subject, made.is_machine) == (verified.subject, verified.is_machine)


def test_made_principal_fills_the_fields_of_a_custom_principal_class() -> None:
    class TieredPrincipal(Principal):
        tier: str

    made = make_principal(principal_class=TieredPrincipal, tier="gold")

    assert made.tier == "gold"
    assert made.claims["tier"] == "gold"


# -- the pytest plugin ---------------------------------------------------------------------------

USER_TEST_MODULE = """
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from fastapi_isp_jwt import Principal

def test_issuer_fixture_mints_tokens_the_auth_fixture_accepts(isp_issuer, isp_auth):
    assert isp_auth.verify_sync(isp_issuer.mint("auth0|ann")).subject == "auth0|ann"

def test_auth_fixture_protects_a_route(isp_issuer, isp_auth):
    app = FastAPI()

    @app.get("/streams")
    def streams(principal: Principal = Security(isp_auth, scopes=["streams:read"])):
        return principal.subject

    client = TestClient(app)
    token = isp_issuer.mint(scopes=["streams:read"])
    assert client.get("/streams", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/streams").status_code == 401

def test_served_issuer_fixture_serves_over_http(isp_issuer, isp_served_issuer):
    auth = isp_served_issuer.auth()
    assert auth.verify_sync(isp_issuer.mint()).organization == "acme"
    assert isp_issuer.jwks_requests == 1

def test_each_test_gets_a_fresh_issuer(isp_issuer):
    assert isp_issuer.jwks_requests == 0
"""


def test_plugin_fixtures_work_in_a_user_test_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user_api=USER_TEST_MODULE)

    # The entry point may or may not be installed here; load the module by name either way.
    result = pytester.runpytest("-p", "no:fastapi_isp_jwt", "-p", plugin_module.__name__)

    result.assert_outcomes(passed=4)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="reading TOML needs Python 3.11+")
def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    project = _pyproject()["project"]

    assert project["entry-points"]["pytest11"] == {"fastapi_isp_jwt": plugin_module.__name__}


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads((REPO / "pyproject.toml").read_text())
    raise AssertionError("unreachable: skipped before Python 3.11")


def test_plugin_fixture_names_are_all_prefixed_so_they_never_clash() -> None:
    tree = ast.parse(Path(plugin_module.__file__ or "").read_text())
    fixtures = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)
    ]

    assert fixtures == ["isp_issuer", "isp_auth", "isp_served_issuer", "isp_dpop_key"]


# -- the testing package's own rules ------------------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(TESTING_PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_testing_package_imports_only_the_public_surface_minting_and_itself(path: Path) -> None:
    ours = {name for name in imported_modules(path) if name.startswith("fastapi_isp_jwt")}

    assert all(
        name in ("fastapi_isp_jwt", "fastapi_isp_jwt.minting")
        or name.startswith("fastapi_isp_jwt.testing")
        for name in ours
    ), ours


def module_name_of(path: Path) -> str:
    return "fastapi_isp_jwt.testing" + ("" if path.stem == "__init__" else f".{path.stem}")


def test_testing_package_modules_import_each_other_in_one_direction_only() -> None:
    imports = {
        module_name_of(path): {
            name for name in imported_modules(path) if name.startswith("fastapi_isp_jwt.testing")
        }
        for path in TESTING_PACKAGE.glob("*.py")
    }
    # Every module reached from a module, through any chain of imports, type-only ones too.
    reached = {module: set(direct) for module, direct in imports.items()}
    for _ in imports:
        for module in reached:
            reached[module] |= {far for near in reached[module] for far in reached.get(near, ())}

    assert [module for module in sorted(reached) if module in reached[module]] == []


@pytest.mark.parametrize(
    "path",
    sorted(p for p in TESTING_PACKAGE.parent.rglob("*.py") if TESTING_PACKAGE not in p.parents),
    ids=lambda path: str(path.relative_to(TESTING_PACKAGE.parent)),
)
def test_no_module_outside_the_testing_package_imports_it(path: Path) -> None:
    reached = {
        name for name in imported_modules(path) if name.startswith("fastapi_isp_jwt.testing")
    }

    assert reached == set()


@pytest.mark.parametrize(
    "path",
    sorted(p for p in TESTING_PACKAGE.glob("*.py") if p.name != "pytest_plugin.py"),
    ids=lambda path: path.name,
)
def test_only_the_plugin_imports_pytest(path: Path) -> None:
    assert not {n for n in imported_modules(path) if n == "pytest" or n.startswith("_pytest")}


def test_an_overridden_auth_downloads_nothing_when_the_app_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from fastapi_isp_jwt import JWTAuth
    from fastapi_isp_jwt.testing import make_principal, override_principal

    require_token = JWTAuth(
        domain="istreamplanet.auth0.com", audience="https://platform.dtc.istreamplanet.net/acme"
    )
    app = FastAPI(lifespan=require_token.lifespan)

    @app.get("/me")
    async def me(principal: Principal = Depends(require_token)) -> str:
        return principal.subject

    from fastapi_isp_jwt import io

    sent: list[str] = []

    def refuse_to_fetch(client: object, fetch: io.Fetch) -> io.Reply:
        sent.append(str(fetch.request.url))
        raise AssertionError("the key cache sent a request")

    # Every request of the library goes through these two: none may be made.
    monkeypatch.setattr(io, "_fetch_async", refuse_to_fetch)
    monkeypatch.setattr(io, "_fetch_sync", refuse_to_fetch)
    with (
        override_principal(app, require_token, make_principal("auth0|alice")),
        TestClient(app) as client,
    ):
        assert client.get("/me").json() == "auth0|alice"
    assert sent == []
