"""verify() and verify_sync() for code outside routes: the library's own exceptions only."""

from __future__ import annotations

import threading

import pytest

from fastapi_isp_jwt import (
    AuthError,
    ConfigurationError,
    InvalidTokenError,
    IssuerUnavailableError,
    JWTAuth,
    PendingVerification,
    Principal,
    Reason,
    Settings,
    Verifier,
)
from fastapi_isp_jwt.errors import InvalidDPoPProofError
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.clock import FakeClock
from tests.support.issuer_server import IssuerServer, closed_port_url

ACME = "https://platform.dtc.istreamplanet.net/acme"


@pytest.fixture
def auth(server: IssuerServer) -> JWTAuth:
    return JWTAuth(issuer=server.url, audience=ACME)


@pytest.mark.anyio
async def test_verify_returns_the_principal(auth: JWTAuth, issuer: TestIssuer) -> None:
    principal = await auth.verify(issuer.mint("auth0|v", ["streams:read"]))
    assert principal.subject == "auth0|v"
    assert principal.has_scopes("streams:read")


@pytest.mark.anyio
@pytest.mark.parametrize("token", ["", "a.b.c", "x" * 10_000, "Bearer abc"])
async def test_verify_raises_invalid_token_error_for_garbage(auth: JWTAuth, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        await auth.verify(token)


@pytest.mark.anyio
async def test_verify_raises_issuer_unavailable_when_no_key_can_be_had(issuer: TestIssuer) -> None:
    auth = JWTAuth(issuer=issuer.issuer, audience=ACME, jwks_url=closed_port_url())
    with pytest.raises(IssuerUnavailableError) as raised:
        await auth.verify(issuer.mint())
    assert raised.value.status_code == 503
    assert raised.value.retry_after >= 1


def test_verify_sync_returns_the_principal(auth: JWTAuth, issuer: TestIssuer) -> None:
    assert auth.verify_sync(issuer.mint("auth0|sync")).subject == "auth0|sync"


def test_verify_sync_raises_the_same_errors(auth: JWTAuth, issuer: TestIssuer) -> None:
    with pytest.raises(InvalidTokenError, match="expired"):
        auth.verify_sync(issuer.mint_expired())


@pytest.mark.anyio
async def test_verify_sync_shares_the_key_cache_with_verify(
    auth: JWTAuth, issuer: TestIssuer, server: IssuerServer
) -> None:
    await auth.verify(issuer.mint("auth0|a"))
    assert auth.verify_sync(issuer.mint("auth0|b")).subject == "auth0|b"
    assert server.jwks_requests == 1


def test_verify_sync_works_from_many_threads(
    auth: JWTAuth, issuer: TestIssuer, server: IssuerServer
) -> None:
    tokens = [issuer.mint(f"auth0|t{i}") for i in range(16)]
    subjects: list[str] = []
    errors: list[BaseException] = []

    def work(token: str) -> None:
        try:
            subjects.append(auth.verify_sync(token).subject)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(subjects) == sorted(f"auth0|t{i}" for i in range(16))
    assert server.jwks_requests == 1


@pytest.mark.anyio
async def test_a_repeated_token_is_answered_from_the_verified_token_cache(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    token = issuer.mint()
    await auth.verify(token)
    second = await auth.verify(token)
    assert await auth.verify(token) is second


@pytest.mark.anyio
async def test_a_token_seen_once_is_not_kept_in_the_verified_token_cache(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    token = issuer.mint()
    first = await auth.verify(token)
    second = await auth.verify(token)
    assert first == second
    assert second is not first


@pytest.mark.anyio
async def test_the_verified_token_cache_can_be_turned_off(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, token_cache_size=0)
    token = issuer.mint()
    principals = [await auth.verify(token) for _ in range(3)]
    assert principals[0] == principals[2]
    assert principals[1] is not principals[2]


@pytest.mark.anyio
async def test_the_cache_never_serves_a_token_after_its_key_left_the_jwks(
    server: IssuerServer, fresh_issuer: TestIssuer
) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, jwks_cooldown=0)
    old_kid = fresh_issuer.signing_key.kid
    token = fresh_issuer.mint()
    await auth.verify(token)
    cached = await auth.verify(token)
    assert await auth.verify(token) is cached  # served from the verified-token cache
    fresh_issuer.rotate()
    fresh_issuer.retire(old_kid)
    # A token signed by the new key makes the cache refetch the JWKS, dropping the old key.
    await auth.verify(fresh_issuer.mint())
    with pytest.raises(InvalidTokenError):
        await auth.verify(token)


@pytest.mark.anyio
async def test_the_cache_never_serves_a_token_after_its_expiry(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    clock = FakeClock(1_900_000_000.0)
    auth = JWTAuth(issuer=server.url, audience=ACME, leeway=0)
    auth.verifier._clock = clock
    token = issuer.mint(issued_at=clock(), expires_in=60)
    await auth.verify(token)
    cached = await auth.verify(token)
    clock.advance(59)
    assert await auth.verify(token) is cached  # still served from the verified-token cache
    clock.advance(1)
    with pytest.raises(InvalidTokenError, match="expired"):
        await auth.verify(token)


@pytest.mark.anyio
async def test_a_remembered_token_is_refused_without_a_proof_when_dpop_is_required(
    server: IssuerServer, issuer: TestIssuer
) -> None:
    verifier = Verifier(Settings(issuer=server.url, audience=ACME, dpop="required"))
    token = issuer.mint().encode()  # remembered after its second verification
    for _ in range(3):
        with pytest.raises(InvalidDPoPProofError) as raised:
            await verifier.verify(token)
        assert raised.value.reason is Reason.DPOP_PROOF_MISSING
    assert verifier.remembered_tokens[0] == 1


def test_errors_form_one_hierarchy() -> None:
    assert issubclass(InvalidTokenError, AuthError)
    assert issubclass(IssuerUnavailableError, AuthError)
    assert not issubclass(ConfigurationError, AuthError)


def test_from_env_builds_from_variables(server: IssuerServer) -> None:
    auth = JWTAuth.from_env({"ISP_JWT_ISSUER": server.url, "ISP_JWT_AUDIENCE": ACME})
    assert auth.settings.issuers == (server.url,)
    assert auth.settings.audiences == (ACME,)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"ISP_JWT_AUDIENCE": ACME}, "ISP_JWT_DOMAIN or ISP_JWT_ISSUER"),
        ({"ISP_JWT_DOMAIN": "istreamplanet.auth0.com"}, "ISP_JWT_AUDIENCE"),
    ],
)
def test_from_env_names_the_missing_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        JWTAuth.from_env(environ)


@pytest.mark.anyio
async def test_lifespan_warms_the_key_cache(
    auth: JWTAuth, server: IssuerServer, issuer: TestIssuer
) -> None:
    async with auth.lifespan(None):  # type: ignore[arg-type]
        assert server.jwks_requests == 1
        await auth.verify(issuer.mint())
        assert server.jwks_requests == 1


def test_an_oversized_token_is_refused_before_it_is_hashed(
    auth: JWTAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastapi_isp_jwt.verifier as verifier_module

    hashed: list[int] = []
    real = verifier_module._sha256

    def counting(data: bytes) -> object:
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(verifier_module, "_sha256", counting)
    with pytest.raises(InvalidTokenError, match="too large"):
        auth.verify_sync("a" * 1_000_000)
    assert hashed == []


def test_from_env_issuer_keyword_replaces_a_domain_from_the_environment() -> None:
    auth = JWTAuth.from_env(
        {"ISP_JWT_DOMAIN": "istreamplanet.auth0.com", "ISP_JWT_AUDIENCE": ACME},
        issuer="http://127.0.0.1:9000/",
    )
    assert auth.settings.issuers == ("http://127.0.0.1:9000/",)


# -- verify_now: the request path, deciding without a coroutine what needs no I/O --------


@pytest.mark.anyio
async def test_verify_now_answers_a_token_whose_key_is_in_hand_with_its_principal(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    await auth.warm_up()
    found = auth.verifier.verify_now(issuer.mint("auth0|now").encode())
    assert isinstance(found, Principal)
    assert found.subject == "auth0|now"


@pytest.mark.anyio
async def test_verify_now_leaves_a_key_download_to_finish(
    auth: JWTAuth, issuer: TestIssuer, server: IssuerServer
) -> None:
    found = auth.verifier.verify_now(issuer.mint("auth0|later").encode())
    assert isinstance(found, PendingVerification)
    assert server.jwks_requests == 0
    assert (await found.finish()).subject == "auth0|later"
    assert server.jwks_requests == 1


@pytest.mark.anyio
async def test_verify_now_refuses_at_once_what_needs_no_key(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    stranger = TestIssuer("https://elsewhere.example/")
    with pytest.raises(InvalidTokenError) as raised:
        auth.verifier.verify_now(stranger.mint().encode())
    assert raised.value.reason is Reason.ISSUER


@pytest.mark.anyio
async def test_a_pending_verification_refuses_a_key_the_fetched_set_does_not_hold(
    auth: JWTAuth, server: IssuerServer
) -> None:
    stranger = TestIssuer(server.url)  # the same issuer, signing with a key it never published
    found = auth.verifier.verify_now(stranger.mint().encode())
    assert isinstance(found, PendingVerification)
    with pytest.raises(InvalidTokenError) as raised:
        await found.finish()
    assert raised.value.reason is Reason.UNKNOWN_KEY


@pytest.mark.anyio
async def test_the_callers_grammar_is_not_run_on_a_token_that_is_accepted(
    auth: JWTAuth, issuer: TestIssuer
) -> None:
    checked: list[bytes] = []
    await auth.verifier.verify(issuer.mint().encode(), grammar=checked.append)
    assert checked == []


@pytest.mark.anyio
async def test_the_callers_grammar_answers_first_for_a_token_refused_as_malformed(
    auth: JWTAuth,
) -> None:
    class NotItsGrammar(Exception):
        pass

    def grammar(raw: bytes) -> None:
        raise NotItsGrammar(raw)

    with pytest.raises(NotItsGrammar):
        await auth.verifier.verify(b"a.b!.c", grammar=grammar)


@pytest.mark.anyio
async def test_a_token_refused_as_malformed_but_meeting_the_grammar_keeps_its_own_reason(
    auth: JWTAuth,
) -> None:
    checked: list[bytes] = []
    with pytest.raises(InvalidTokenError) as raised:
        await auth.verifier.verify(b"a.b.c.d", grammar=checked.append)
    assert (raised.value.reason, checked) == (Reason.MALFORMED, [b"a.b.c.d"])
