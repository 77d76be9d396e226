"""A bounded load test: 2,000 requests through the ASGI app while the issuer rotates its keys,
goes down, and comes back. No request carrying a valid token may fail.

Time is real here (the key set lives one second), so the cache's background refreshes,
expiry, stale serving and retries all happen for real; what is asserted is outcomes and
counts, never durations.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.keycache import JWKSCache
from fastapi_isp_jwt.testing import SigningKey, TestIssuer
from tests.support.faults import OK, server_error
from tests.support.issuer_server import IssuerServer

REQUESTS = 2000
CONCURRENCY = 32
WAVES = 40  # of REQUESTS // WAVES requests each, a short pause between waves
PAUSE = 0.1
FORGED_PER_WAVE = 2  # tokens signed by a key the issuer never published
TTL = 1.0

ROTATE_AT, OUTAGE_AT, RECOVERY_AT = 10, 20, 32


def make_app(auth: JWTAuth) -> FastAPI:
    app = FastAPI()

    @app.get("/streams")
    async def list_streams(principal: Principal = Depends(auth)) -> dict[str, str]:
        return {"subject": principal.subject}

    return app


class Tokens:
    """A pool of valid tokens per signing key, and forged ones."""

    def __init__(self, issuer: TestIssuer) -> None:
        self._issuer = issuer
        self._pools: dict[str, list[str]] = {}
        self._forger = SigningKey.generate("RS256")

    def valid(self, keys: list[SigningKey], rng: random.Random) -> str:
        key = rng.choice(keys)
        pool = self._pools.get(key.kid)
        if pool is None:
            pool = [self._issuer.mint(f"auth0|user-{n}", key=key) for n in range(16)]
            self._pools[key.kid] = pool
        return rng.choice(pool)

    def forged(self) -> str:
        return self._issuer.mint("auth0|intruder", key=self._forger)


async def wait_for(condition: Callable[[], bool]) -> None:
    """Let the cache's background work finish (bounded: a bug fails instead of hanging)."""
    for _ in range(500):
        if condition():
            return
        await anyio.sleep(0.01)
    raise AssertionError("the condition never became true")


@pytest.mark.load
@pytest.mark.anyio
async def test_no_valid_request_fails_while_the_issuer_rotates_keys_and_goes_down() -> None:
    rng = random.Random(20241128)
    with IssuerServer() as server:
        issuer = TestIssuer(issuer=server.url)
        server.serve(issuer.jwks)
        auth = JWTAuth(issuer=server.url, audience=issuer.audience, jwks_ttl=TTL)
        cache: JWKSCache = auth.key_sources[server.url]
        tokens = Tokens(issuer)
        first_key = issuer.signing_key
        in_use = [first_key]  # keys whose tokens are being sent
        statuses: dict[str, Counter[int]] = {"valid": Counter(), "forged": Counter()}

        transport = httpx.ASGITransport(app=make_app(auth))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            limit = anyio.Semaphore(CONCURRENCY)

            async def call(kind: str, token: str) -> None:
                async with limit:
                    response = await client.get(
                        "/streams", headers={"Authorization": f"Bearer {token}"}
                    )
                statuses[kind][response.status_code] += 1

            async def wave() -> None:
                size = REQUESTS // WAVES
                async with anyio.create_task_group() as group:
                    for _ in range(size - FORGED_PER_WAVE):
                        group.start_soon(call, "valid", tokens.valid(in_use, rng))
                    for _ in range(FORGED_PER_WAVE):
                        group.start_soon(call, "forged", tokens.forged())
                await anyio.sleep(PAUSE)

            await wave()
            cold_fetches = cache.fetch_count
            for _ in range(1, ROTATE_AT):
                await wave()

            # As the tenant rotates: publish the next key, and sign with it once resource
            # servers have had a routine refresh to pick it up.
            second_key = issuer.rotate()
            for _ in range(ROTATE_AT, OUTAGE_AT):
                if cache.cached_key(second_key.kid):
                    in_use = [first_key, second_key]
                await wave()
            await wait_for(lambda: cache.cached_key(second_key.kid) is not None)
            in_use = [first_key, second_key]

            # Twelve waves with their pauses outlast the one-second key set, so it expires
            # mid-outage and the last good set has to carry the traffic.
            server.fault = server_error()
            before_outage = server.jwks_requests
            for _ in range(OUTAGE_AT, RECOVERY_AT):
                await wave()
            outage_fetches = server.jwks_requests - before_outage

            server.fault = OK
            third_key = issuer.rotate()
            for _ in range(RECOVERY_AT, WAVES):
                if cache.cached_key(third_key.kid):
                    in_use = [second_key, third_key]
                await wave()
            await wait_for(lambda: cache.cached_key(third_key.kid) is not None)

    print(
        f"\n{REQUESTS} requests at concurrency {CONCURRENCY}: valid {dict(statuses['valid'])},"
        f" forged {dict(statuses['forged'])}; JWKS fetches {cache.fetch_count}"
        f" (cold burst {cold_fetches}, failed during the outage {outage_fetches})"
    )
    assert statuses["valid"] == Counter({200: REQUESTS - WAVES * FORGED_PER_WAVE})
    assert statuses["forged"] == Counter({401: WAVES * FORGED_PER_WAVE})
    # The first wave meets a cold cache: one fetch, and at most one refetch for the
    # forger's unknown kid (which misses, and holds every later one off for the cooldown).
    assert cold_fetches <= 2
    assert outage_fetches >= 1  # the key set expired during the outage and a refresh failed
    assert cache.fetch_count < WAVES  # about one per 0.8 s of run, not one per request
