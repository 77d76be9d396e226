"""The real-server goals' two comparisons, in-process: steadier, for work on the hot paths.

    python benchmarks/asgi_pairs.py            # 25 rounds, about a minute
    python benchmarks/asgi_pairs.py --rounds 5

Each app is called straight through ASGI (no HTTP client, no server), one request after
another, in interleaved rounds of 300 requests; a pair's ratio is the median of the rounds'
own ratios, as in real_server.py. Pairs: one token reused against a bare ``Depends``
returning a ready ``Principal``; a new token each request against the floor route (split,
one RS256 check). Two reference pairs, each against the bare ``Depends``: a dependency that
takes the connection and ``SecurityScopes`` as ``JWTAuth`` does, and the least a cache hit
keyed by SHA-256 can cost (header scan, digest, lookup, expiry check, nothing else), which
shows where the reused token's goal lies. The keys come from an in-memory JWKS: nothing
leaves the process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import httpx
from contenders import (
    AUDIENCE,
    DOMAIN,
    ISSUER,
    ORGANIZATION,
    ROUTE,
    floor_app,
    isp_jwt_app,
    ready_principal_app,
    remembered_token_app,
)
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from fastapi.security import SecurityScopes
from minting import mint_distinct
from starlette.requests import HTTPConnection

from fastapi_isp_jwt import JWTAuth, Principal
from fastapi_isp_jwt.testing import TestIssuer

BATCH = 300

Headers = list[tuple[bytes, bytes]]


def _ready_principal_with_parameters_app(principal: Principal) -> FastAPI:
    """The bare ``Depends`` route, with a dependency taking what ``JWTAuth`` takes."""
    app = FastAPI()

    async def ready(connection: HTTPConnection, security_scopes: SecurityScopes) -> Principal:
        return principal

    @app.get(ROUTE)
    async def streams(caller: Principal = Depends(ready)) -> dict[str, str]:
        return {"subject": caller.subject}

    return app


def _headers(token: str) -> Headers:
    return [(b"host", b"api.example"), (b"authorization", b"Bearer " + token.encode())]


async def _call(app: FastAPI, headers: Headers) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": ROUTE,
        "raw_path": ROUTE.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"{ROUTE} answered {status}")


async def _batch(app: FastAPI, requests: Sequence[Headers]) -> float:
    started = time.perf_counter()
    for headers in requests:
        await _call(app, headers)
    return (time.perf_counter() - started) / len(requests) * 1e6


async def measure(rounds: int) -> dict[str, tuple[float, float, float]]:
    """Per pair: our median µs, the reference's, and the median of per-round ratios."""
    issuer = TestIssuer(ISSUER, organization=ORGANIZATION)
    jwks = issuer.jwks()
    auth = JWTAuth(
        domain=DOMAIN,
        audience=AUDIENCE,
        http_client=httpx.AsyncClient(
            transport=httpx.MockTransport(lambda _: httpx.Response(200, json=jwks))
        ),
    )
    reused = issuer.mint("auth0|reused", ["streams:read"])
    for _ in range(2):  # remembered from the second verification on
        principal = await auth.verifier.verify(reused)
    fresh: Iterator[str] = iter(mint_distinct(issuer, (rounds + 2) * BATCH))
    ours, depends = isp_jwt_app(auth), ready_principal_app(principal)
    public_key = issuer.signing_key.private_key.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)  # the tenant signs with RS256
    floor = floor_app(public_key)
    same = [_headers(reused)] * BATCH
    results: dict[str, tuple[float, float, float]] = {}
    with_parameters = _ready_principal_with_parameters_app(principal)
    for name, (mine, theirs) in {
        "one token reused / bare Depends": (ours, depends),
        "a new token / floor": (ours, floor),
        "(reference) bare Depends taking JWTAuth's parameters / bare Depends": (
            with_parameters,
            depends,
        ),
        "(reference) least a cache hit keyed by SHA-256 costs / bare Depends": (
            remembered_token_app(principal, reused, digest=True),
            depends,
        ),
    }.items():
        new_tokens = name.startswith("a new")
        mine_us: list[float] = []
        theirs_us: list[float] = []
        for number in range(rounds + 1):  # round 0 warms up and is dropped
            batch = [_headers(next(fresh)) for _ in range(BATCH)] if new_tokens else same
            pair = [(mine, mine_us), (theirs, theirs_us)]
            for app, into in pair if number % 2 else reversed(pair):
                # The floor keeps nothing per token: it may take the same new tokens.
                spent = await _batch(app, batch)
                if number:
                    into.append(spent)
        ratio = statistics.median(t / m for m, t in zip(mine_us, theirs_us, strict=True))
        results[name] = (statistics.median(mine_us), statistics.median(theirs_us), ratio)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=25, help="recorded rounds (default 25)")
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.rounds))
    print(f"In-process ASGI, {args.rounds} interleaved rounds of {BATCH} requests, medians.")
    print("\n| pair | ours µs | reference µs | throughput ratio (median of rounds) |")
    print("|---|---:|---:|---:|")
    for name, (mine, theirs, ratio) in results.items():
        print(f"| {name} | {mine:.1f} | {theirs:.1f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
