"""DPoP (RFC 9449) and mTLS-bound tokens (RFC 8705) through a FastAPI app, answer by answer.

Tokens come from the test issuer, whose keys the loopback issuer server publishes; proofs
are signed by a client key of the test's. Every refusal is a 401 with the challenge of the
scheme the request used, never a 500 and never the token or proof echoed.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import Depends, FastAPI, Security, WebSocket
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.dpop import certificate_thumbprint
from fastapi_isp_jwt.minting import SigningKey, dpop_proof, jwk_thumbprint
from fastapi_isp_jwt.testing import TestIssuer
from tests.security.mutations import character_substitutions, insertions_and_deletions
from tests.support.certificates import self_signed
from tests.support.issuer_server import IssuerServer

ACME = "https://platform.dtc.istreamplanet.net/acme"
URL = "http://testserver/streams"
CLIENT_KEY = SigningKey.generate("ES256")
JKT = jwk_thumbprint(CLIENT_KEY.public_jwk())


def make_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.get("/streams")
    async def streams(principal: Principal = Depends(auth)) -> dict[str, Any]:
        return {"subject": principal.subject, "bound_key": principal.bound_key}

    @app.post("/streams")
    async def create(principal: Principal = Security(auth, scopes=["streams:write"])) -> str:
        return principal.subject

    @app.websocket("/control")
    async def control(websocket: WebSocket, principal: Principal = Depends(auth)) -> None:
        await websocket.accept()
        await websocket.send_json({"bound_key": principal.bound_key})
        await websocket.close()

    return app


@pytest.fixture
def auth(server: IssuerServer) -> JWTAuth:
    return JWTAuth(issuer=server.url, audience=ACME)


@pytest.fixture
def client(auth: JWTAuth) -> TestClient:
    return TestClient(make_app(auth), raise_server_exceptions=False)


@pytest.fixture
def bound(issuer: TestIssuer) -> str:
    return issuer.mint_dpop_bound("auth0|alice", ["streams:read"], jkt=JKT)


def dpop(token: str, method: str = "GET", url: str = URL, **options: Any) -> dict[str, str]:
    proof = dpop_proof(CLIENT_KEY, method, url, access_token=token, **options)
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def refused(response: httpx.Response, scheme: str, error: str) -> str:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    realm = 'realm="api", ' if scheme == "Bearer" else ""
    assert challenge.startswith(f'{scheme} {realm}error="{error}"'), challenge
    description: str = response.json()["detail"]
    return description


def test_a_bound_token_with_a_good_proof_is_accepted_and_shows_its_key(
    client: TestClient, bound: str
) -> None:
    response = client.get("/streams", headers=dpop(bound))
    assert response.json() == {"subject": "auth0|alice", "bound_key": JKT}


def test_a_remembered_token_still_needs_a_fresh_proof_each_time(
    client: TestClient, bound: str
) -> None:
    statuses = [client.get("/streams", headers=dpop(bound)).status_code for _ in range(3)]
    headers = dpop(bound)
    assert client.get("/streams", headers=headers).status_code == 200
    replayed = client.get("/streams", headers=headers)
    assert statuses == [200, 200, 200]
    assert refused(replayed, "DPoP", "invalid_dpop_proof") == "The DPoP proof was used before"


def test_a_remembered_dpop_bound_token_sent_as_bearer_is_still_refused(
    client: TestClient, bound: str
) -> None:
    statuses = [client.get("/streams", headers=dpop(bound)).status_code for _ in range(3)]
    response = client.get("/streams", headers={"Authorization": f"Bearer {bound}"})
    assert statuses == [200, 200, 200]
    refused(response, "Bearer", "invalid_token")


def test_a_replayed_proof_is_refused_with_the_dpop_challenge(
    client: TestClient, bound: str
) -> None:
    headers = dpop(bound)
    client.get("/streams", headers=headers)
    response = client.get("/streams", headers=headers)
    refused(response, "DPoP", "invalid_dpop_proof")
    assert 'algs="' in response.headers["www-authenticate"]
    assert bound not in response.text
    assert headers["DPoP"] not in response.text


def test_a_bound_token_sent_as_a_bearer_token_is_refused(client: TestClient, bound: str) -> None:
    response = client.get("/streams", headers={"Authorization": f"Bearer {bound}"})
    assert refused(response, "Bearer", "invalid_token") == (
        "The token is bound to a key and needs proof of possession"
    )


def test_an_unbound_token_under_the_dpop_scheme_is_refused(
    client: TestClient, issuer: TestIssuer
) -> None:
    response = client.get("/streams", headers=dpop(issuer.mint()))
    assert refused(response, "DPoP", "invalid_token") == "The token is not bound to a DPoP key"


@pytest.mark.parametrize(
    ("options", "description"),
    [
        ({"method": "POST"}, "The DPoP proof is for another HTTP method"),
        ({"url": "http://testserver/other"}, "The DPoP proof is for another URL"),
        ({"iat": 1_000_000_000}, "The DPoP proof is too old"),
        ({"omit": ["ath"]}, "The DPoP proof lacks the ath claim"),
    ],
)
def test_a_proof_for_another_request_is_refused(
    client: TestClient, bound: str, options: dict[str, Any], description: str
) -> None:
    response = client.get("/streams", headers=dpop(bound, **options))
    assert refused(response, "DPoP", "invalid_dpop_proof") == description


def test_a_proof_naming_the_same_url_spelled_otherwise_is_accepted(
    client: TestClient, bound: str
) -> None:
    response = client.get("/streams", headers=dpop(bound, url="HTTP://TestServer:80/streams?x=1"))
    assert response.status_code == 200


def test_a_proof_whose_htu_port_has_thousands_of_digits_is_refused(
    client: TestClient, bound: str
) -> None:
    headers = dpop(bound, url="http://testserver:" + "1" * 5000 + "/streams")
    description = refused(client.get("/streams", headers=headers), "DPoP", "invalid_dpop_proof")
    assert description == "The DPoP proof htu claim is malformed"


def test_a_host_header_whose_port_has_thousands_of_digits_is_another_url(
    client: TestClient, bound: str
) -> None:
    headers = {**dpop(bound), "Host": "testserver:" + "1" * 5000}
    description = refused(client.get("/streams", headers=headers), "DPoP", "invalid_dpop_proof")
    assert description == "The DPoP proof is for another URL"


def test_a_proof_by_another_key_than_the_bound_one_is_refused(
    client: TestClient, issuer: TestIssuer
) -> None:
    other = jwk_thumbprint(SigningKey.generate("ES256").public_jwk())
    token = issuer.mint_dpop_bound("auth0|alice", jkt=other)
    response = client.get("/streams", headers=dpop(token))
    assert refused(response, "DPoP", "invalid_dpop_proof") == (
        "The DPoP proof key is not the key the token is bound to"
    )


def test_the_dpop_scheme_without_a_proof_is_refused(client: TestClient, bound: str) -> None:
    response = client.get("/streams", headers={"Authorization": f"DPoP {bound}"})
    assert refused(response, "DPoP", "invalid_dpop_proof") == "A DPoP proof is required"


def test_two_proofs_are_refused(client: TestClient, bound: str) -> None:
    headers = dpop(bound)
    second = dpop(bound)["DPoP"]
    response = client.get(
        "/streams",
        headers=[
            ("Authorization", headers["Authorization"]),
            ("DPoP", headers["DPoP"]),
            ("DPoP", second),
        ],
    )
    assert refused(response, "DPoP", "invalid_dpop_proof") == "Send one DPoP header"


def test_a_missing_scope_under_dpop_is_a_403_with_the_dpop_challenge(
    client: TestClient, bound: str
) -> None:
    response = client.post("/streams", headers=dpop(bound, method="POST"))
    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith('DPoP error="insufficient_scope"')


def test_dpop_required_answers_a_bearer_request_as_one_without_credentials(
    server: IssuerServer, issuer: TestIssuer, bound: str
) -> None:
    client = TestClient(make_app(JWTAuth(issuer=server.url, audience=ACME, dpop="required")))
    response = client.get("/streams", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("DPoP algs=")
    assert client.get("/streams", headers=dpop(bound)).status_code == 200


def test_dpop_disabled_answers_the_dpop_scheme_as_no_credentials(
    server: IssuerServer, bound: str
) -> None:
    client = TestClient(make_app(JWTAuth(issuer=server.url, audience=ACME, dpop="disabled")))
    response = client.get("/streams", headers=dpop(bound))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


def test_a_server_nonce_is_demanded_then_accepted(server: IssuerServer, bound: str) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, dpop_nonce_secret="s" * 32)
    client = TestClient(make_app(auth))
    first = client.get("/streams", headers=dpop(bound))
    assert refused(first, "DPoP", "use_dpop_nonce") == "The DPoP proof must carry a server nonce"
    nonce = first.headers["dpop-nonce"]
    assert client.get("/streams", headers=dpop(bound, nonce=nonce)).status_code == 200


def test_the_url_comes_from_forwarded_headers_only_behind_a_trusted_proxy(
    server: IssuerServer, bound: str
) -> None:
    public = "https://api.example/streams"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
    untrusting = TestClient(make_app(JWTAuth(issuer=server.url, audience=ACME)))
    assert (
        untrusting.get("/streams", headers={**dpop(bound, url=public), **forwarded}).status_code
        == 401
    )
    trusting = TestClient(
        make_app(JWTAuth(issuer=server.url, audience=ACME, trusted_proxies=["testclient"]))
    )
    assert (
        trusting.get("/streams", headers={**dpop(bound, url=public), **forwarded}).status_code
        == 200
    )


def test_a_public_base_url_names_the_url_clients_address(server: IssuerServer, bound: str) -> None:
    auth = JWTAuth(issuer=server.url, audience=ACME, public_base_url="https://api.example/v1")
    client = TestClient(make_app(auth))
    headers = dpop(bound, url="https://api.example/v1/streams")
    assert client.get("/streams", headers=headers).status_code == 200


def test_a_public_base_url_is_the_host_root_when_the_app_knows_its_root_path(
    server: IssuerServer, bound: str
) -> None:
    # A proxy strips /v1 and the server is told so (uvicorn --root-path /v1): the request's
    # path holds the prefix again, so the base names scheme and host only.
    auth = JWTAuth(issuer=server.url, audience=ACME, public_base_url="https://api.example")
    client = TestClient(make_app(auth), root_path="/v1")
    headers = dpop(bound, url="https://api.example/v1/streams")
    assert client.get("/v1/streams", headers=headers).status_code == 200


def test_a_websocket_handshake_takes_dpop_as_a_get_of_its_http_url(
    client: TestClient, bound: str
) -> None:
    headers = dpop(bound, url="http://testserver/control")
    with client.websocket_connect("/control", headers=headers) as websocket:
        assert websocket.receive_json() == {"bound_key": JKT}


def test_a_proxy_forwarding_a_websocket_handshake_as_wss_names_its_https_url(
    server: IssuerServer, bound: str
) -> None:
    # Traefik, for one, forwards a handshake's scheme as ws or wss.
    auth = JWTAuth(issuer=server.url, audience=ACME, trusted_proxies=["testclient"])
    client = TestClient(make_app(auth))
    headers = {
        **dpop(bound, url="https://api.example/control"),
        "X-Forwarded-Proto": "wss",
        "X-Forwarded-Host": "api.example",
    }
    with client.websocket_connect("/control", headers=headers) as websocket:
        assert websocket.receive_json() == {"bound_key": JKT}


def test_a_scope_without_a_scheme_is_taken_as_http(auth: JWTAuth, bound: str) -> None:
    app = make_app(auth)

    async def server_leaving_out_the_scheme(scope: Scope, receive: Receive, send: Send) -> None:
        await app({k: v for k, v in scope.items() if k != "scheme"}, receive, send)

    client = TestClient(server_leaving_out_the_scheme, raise_server_exceptions=False)
    assert client.get("/streams", headers=dpop(bound)).status_code == 200


def test_two_instances_sharing_a_redis_store_refuse_each_others_replays(
    server: IssuerServer, bound: str, redis_server: Any
) -> None:
    import redis.asyncio

    from fastapi_isp_jwt.replay import RedisReplayStore

    headers = dpop(bound)
    answers = []
    for _ in range(2):
        store = RedisReplayStore(redis.asyncio.Redis.from_url(redis_server.url))
        auth = JWTAuth(issuer=server.url, audience=ACME, dpop_replay_store=store)
        answers.append(TestClient(make_app(auth)).get("/streams", headers=headers).status_code)
    assert answers == [200, 401]


def test_an_unreachable_replay_store_answers_503_with_retry_after(
    server: IssuerServer, bound: str
) -> None:
    import redis.asyncio

    from fastapi_isp_jwt.replay import RedisReplayStore
    from tests.support.redis_server import free_port

    store = RedisReplayStore(redis.asyncio.Redis(host="127.0.0.1", port=free_port()))
    auth = JWTAuth(issuer=server.url, audience=ACME, dpop_replay_store=store)
    response = TestClient(make_app(auth), raise_server_exceptions=False).get(
        "/streams", headers=dpop(bound)
    )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1


# -- mTLS-bound tokens (RFC 8705), the certificate from a trusted proxy (RFC 9440) ------------


def certificate() -> bytes:
    return self_signed().public_bytes(Encoding.DER)


def client_cert(der: bytes) -> dict[str, str]:
    return {"Client-Cert": ":" + base64.b64encode(der).decode() + ":"}


@pytest.fixture
def proxied(server: IssuerServer) -> TestClient:
    auth = JWTAuth(issuer=server.url, audience=ACME, trusted_proxies=["testclient"])
    return TestClient(make_app(auth))


def test_a_certificate_bound_token_with_its_certificate_is_accepted(
    proxied: TestClient, issuer: TestIssuer
) -> None:
    der = certificate()
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(der)})
    headers = {"Authorization": f"Bearer {token}", **client_cert(der)}
    assert proxied.get("/streams", headers=headers).status_code == 200


def test_a_certificate_bound_token_with_another_certificate_is_refused(
    proxied: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(certificate())})
    response = proxied.get(
        "/streams", headers={"Authorization": f"Bearer {token}", **client_cert(certificate())}
    )
    assert refused(response, "Bearer", "invalid_token") == (
        "The token is bound to another client certificate"
    )


def test_a_remembered_certificate_bound_token_is_still_held_to_its_certificate(
    proxied: TestClient, issuer: TestIssuer
) -> None:
    der = certificate()
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(der)})
    own = {"Authorization": f"Bearer {token}", **client_cert(der)}
    statuses = [proxied.get("/streams", headers=own).status_code for _ in range(3)]
    other = {"Authorization": f"Bearer {token}", **client_cert(certificate())}
    assert statuses == [200, 200, 200]
    assert refused(proxied.get("/streams", headers=other), "Bearer", "invalid_token") == (
        "The token is bound to another client certificate"
    )


def test_a_certificate_bound_token_without_a_certificate_is_refused(
    proxied: TestClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(certificate())})
    response = proxied.get("/streams", headers={"Authorization": f"Bearer {token}"})
    refused(response, "Bearer", "invalid_token")


def test_a_client_cert_header_from_an_untrusted_peer_is_ignored(
    client: TestClient, issuer: TestIssuer
) -> None:
    der = certificate()
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(der)})
    headers = {"Authorization": f"Bearer {token}", **client_cert(der)}
    refused(client.get("/streams", headers=headers), "Bearer", "invalid_token")


class TLSServer:
    """Plays a server that terminates TLS: hands the app the ASGI ``tls`` extension."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.chain: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "extensions": {"tls": {"client_cert_chain": list(self.chain)}}}
        await self.app(scope, receive, send)


def pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")


@pytest.fixture
def tls(auth: JWTAuth) -> TLSServer:
    return TLSServer(make_app(auth))


def test_a_certificate_bound_token_with_its_certificate_from_the_tls_extension_is_accepted(
    tls: TLSServer, issuer: TestIssuer
) -> None:
    der = certificate()
    tls.chain = [pem(der)]
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(der)})
    response = TestClient(tls).get("/streams", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_each_request_is_held_to_the_certificate_its_connection_presents(
    tls: TLSServer, issuer: TestIssuer
) -> None:
    der = certificate()
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(der)})
    client = TestClient(tls, raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {token}"}
    statuses = []
    for chain in ([pem(der)], [pem(certificate())], [pem(der)], [pem(der)]):
        tls.chain = chain
        statuses.append(client.get("/streams", headers=headers).status_code)
    assert statuses == [200, 401, 200, 200]


@pytest.mark.parametrize("entry", ["not a certificate", "caf\u00e9", b"bytes, not text", None])
def test_a_tls_extension_entry_that_is_no_pem_certificate_counts_as_no_certificate(
    tls: TLSServer, issuer: TestIssuer, entry: object
) -> None:
    tls.chain = [entry]
    client = TestClient(tls, raise_server_exceptions=False)
    bound = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(certificate())})
    refused(
        client.get("/streams", headers={"Authorization": f"Bearer {bound}"}),
        "Bearer",
        "invalid_token",
    )
    plain = client.get("/streams", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert plain.status_code == 200


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_mutated_proof_is_never_accepted_and_never_a_server_error(
    client: TestClient, bound: str, data: st.DataObject
) -> None:
    headers = dpop(bound)
    mutated = data.draw(
        character_substitutions(headers["DPoP"]) | insertions_and_deletions(headers["DPoP"])
    )
    sent = [("Authorization", headers["Authorization"]), ("DPoP", mutated.encode("utf-8"))]
    response = client.get("/streams", headers=sent)
    if mutated == headers["DPoP"]:
        assert response.status_code == 200
    else:
        assert response.status_code in (400, 401), (mutated, response.text)
