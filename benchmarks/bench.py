"""How fast fastapi-isp-jwt verifies tokens, next to the floor, PyJWT and the peer libraries.

    python benchmarks/bench.py            # the full run (about 90 s on 2 cores)
    python benchmarks/bench.py --quick    # a few iterations, no peers, no chart
    python benchmarks/bench.py --mode both          # and on a real server (real_server.py)
    python benchmarks/bench.py --mode real-server   # only that (needs wrk)

One run, interleaved rounds, medians. It prints a Markdown table of per-operation times
(the floor: raw ``cryptography`` RSA verify and base64url/JSON parsing; ``jwt.decode``
with a pre-loaded key; ``PyJWKClient``; this library's ``verify``; and one FastAPI route
end to end, in-process through ``httpx.ASGITransport``, guarded by nothing, by a
hand-written PyJWT dependency, by this library and by fastapi-auth0, fastapi-cloudauth
and auth0-fastapi-api), the target ratios with pass/fail, the JWKS fetch count for
concurrent requests on a cold cache, and resident memory after many distinct tokens.
The end-to-end medians are drawn to docs/img/bench-end-to-end.png.

Every contender trusts the same imitated tenant and fetches its keys from one JWKS
server on 127.0.0.1; nothing leaves the loopback interface. Tokens are minted before any
clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import importlib.util
import itertools
import json
import os
import platform
import pstats
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import jwt
import rss_probe
from chart import IN_PROCESS_TITLE, REAL_SERVER_TITLE, Bar, Panel, draw_panels
from contenders import (
    AUDIENCE,
    ISSUER,
    ORGANIZATION,
    PEER_NAMES,
    ROUTE,
    isp_jwt_app,
    isp_jwt_auth,
    no_auth_app,
    peer_app,
    pyjwt_app,
    ready_principal_app,
    remembered_token_app,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwks_server import LocalIssuerServer
from minting import mint_distinct
from real_server import RealPlan, RealResults, measure_real_server, render_real
from rounds import CLOCKS, Case, run_rounds

from fastapi_isp_jwt import JWTAuth
from fastapi_isp_jwt.testing import TestIssuer

ROOT = Path(__file__).resolve().parent.parent
CHART_PATH = ROOT / "docs" / "img" / "bench-end-to-end.png"


@dataclass(frozen=True)
class Plan:
    """How much to measure; the full plan takes about 90 s on 2 quiet cores."""

    rounds: int
    warmup_rounds: int
    micro_batch: int
    request_batch: int
    concurrent_requests: int
    rss_tokens: int
    peers: bool
    chart: Path | None
    shared_pool: int = 1000
    clock: str = "cpu"

    @property
    def fresh_tokens_needed(self) -> int:
        per_round = self.micro_batch + self.request_batch
        return (self.warmup_rounds + self.rounds) * per_round + self.concurrent_requests


FULL = Plan(
    rounds=61,
    warmup_rounds=3,
    micro_batch=250,
    request_batch=100,
    concurrent_requests=1000,
    rss_tokens=100_000,
    peers=True,
    chart=CHART_PATH,
)
QUICK = Plan(
    rounds=3,
    warmup_rounds=1,
    micro_batch=20,
    request_batch=10,
    concurrent_requests=100,
    rss_tokens=2000,
    peers=False,
    chart=None,
    shared_pool=50,
)


class BenchmarkError(Exception):
    """A contender did not behave as a correct verifier would: its timings would lie."""


# -- token supplies ----------------------------------------------------------------------


class FreshTokens:
    """Tokens handed out once each, for verifiers that remember tokens they have seen."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens
        self._next = 0

    def take(self, count: int) -> list[str]:
        end = self._next + count
        if end > len(self._tokens):
            raise BenchmarkError("the run needs more fresh tokens than were minted")
        taken = self._tokens[self._next : end]
        self._next = end
        return taken


class TokenPool:
    """Distinct tokens handed out in a cycle, for verifiers that keep no per-token state."""

    def __init__(self, tokens: list[str]) -> None:
        self._cycle = itertools.cycle(tokens)

    def take(self, count: int) -> list[str]:
        return list(itertools.islice(self._cycle, count))


# -- the floor and PyJWT -----------------------------------------------------------------


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _parse(token: str) -> tuple[bytes, bytes]:
    """Decode all three parts (two JSON objects); return the signing input and signature."""
    header, payload, signature = token.split(".")
    json.loads(_b64url(header))
    json.loads(_b64url(payload))
    return f"{header}.{payload}".encode(), _b64url(signature)


def floor_cases(pool: TokenPool, public_key: rsa.RSAPublicKey, batch: int) -> list[Case]:
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def parsed(count: int) -> list[tuple[bytes, bytes]]:
        return [_parse(token) for token in pool.take(count)]

    async def check_signatures(inputs: Sequence[tuple[bytes, bytes]]) -> None:
        for signing_input, signature in inputs:
            public_key.verify(signature, signing_input, pkcs1, sha256)

    async def parse(tokens: Sequence[str]) -> None:
        for token in tokens:
            _parse(token)

    async def parse_and_check(tokens: Sequence[str]) -> None:
        for token in tokens:
            signing_input, signature = _parse(token)
            public_key.verify(signature, signing_input, pkcs1, sha256)

    return [
        Case(
            "rsa",
            "`cryptography` RS256 signature check (RSA-2048)",
            parsed,
            check_signatures,
            batch,
        ),
        Case("parse", "base64url + JSON of the token's parts", pool.take, parse, batch),
        Case("floor", "**floor**: parse + signature check", pool.take, parse_and_check, batch),
    ]


def pyjwt_cases(
    pool: TokenPool, public_key: rsa.RSAPublicKey, jwks_url: str, batch: int
) -> list[Case]:
    client = jwt.PyJWKClient(jwks_url)
    client.get_signing_key_from_jwt(pool.take(1)[0])  # the key set is loaded here, untimed

    async def decode(tokens: Sequence[str]) -> None:
        for token in tokens:
            jwt.decode(token, public_key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)

    async def lookup_and_decode(tokens: Sequence[str]) -> None:
        for token in tokens:
            key = client.get_signing_key_from_jwt(token)
            jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)

    return [
        Case("jwt_decode", "`jwt.decode`, pre-loaded key", pool.take, decode, batch),
        Case("pyjwk", "`PyJWKClient` lookup + `jwt.decode`", pool.take, lookup_and_decode, batch),
    ]


def library_cases(auth: JWTAuth, fresh: FreshTokens, repeated: str, batch: int) -> list[Case]:
    async def verify(tokens: Sequence[str]) -> None:
        for token in tokens:
            await auth.verify(token)

    return [
        Case(
            "verify_new", "`await auth.verify(t)`, a new token each call", fresh.take, verify, batch
        ),
        Case(
            "verify_same",
            "`await auth.verify(t)`, the same token again",
            lambda count: [repeated] * count,
            verify,
            batch,
        ),
    ]


# -- end to end --------------------------------------------------------------------------


@dataclass
class Route:
    """One contender's app behind an in-process client, and where its tokens come from."""

    key: str
    label: str
    client: httpx.AsyncClient | None
    tokens: Callable[[int], Sequence[str]]
    ours: bool = False
    guarded: bool = True
    charted: bool = True
    skipped: str | None = None
    only_token: str | None = None  # a reference that knows one token and refuses the rest

    async def call(self, token: str) -> httpx.Response:
        if self.client is None:
            raise BenchmarkError(f"{self.label} was not set up: {self.skipped}")
        return await self.client.get(ROUTE, headers={"Authorization": f"Bearer {token}"})

    async def run(self, tokens: Sequence[str]) -> None:
        for token in tokens:
            response = await self.call(token)
            if response.status_code != 200:
                raise BenchmarkError(f"{self.label}: a valid token got {response.status_code}")

    def case(self, batch: int) -> Case:
        return Case(self.key, self.label, self.tokens, self.run, batch)


def _client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.local")


async def preflight(route: Route, valid: str, stranger: str) -> None:
    """A valid token must get 200 (with its subject); a token of an unknown key must not."""
    response = await route.call(valid)
    if response.status_code != 200:
        raise BenchmarkError(f"{route.label}: a valid token got {response.status_code}")
    if not route.guarded:
        return
    subject = jwt.decode(valid, options={"verify_signature": False})["sub"]
    if response.json().get("subject") != subject:
        raise BenchmarkError(f"{route.label}: the answer does not name the token's subject")
    refused = await route.call(stranger)
    if not 400 <= refused.status_code < 500:
        raise BenchmarkError(
            f"{route.label}: a token signed by an unknown key got {refused.status_code}"
        )


# -- results -----------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    limit: float
    measured: float | None
    integer: bool = False

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "not measured"
        return "pass" if self.measured <= self.limit else "FAIL"

    def row(self) -> str:
        if self.integer:
            shown = "—" if self.measured is None else f"{self.measured:.0f}"
            return f"| {self.label} | {shown} | {self.limit:.0f} | {self.verdict} |"
        shown = "—" if self.measured is None else f"{self.measured:.3f}"
        return f"| {self.label} | {shown} | <= {self.limit:.2f} | {self.verdict} |"


@dataclass
class Results:
    micro: list[Case] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    route_cases: dict[str, Case] = field(default_factory=dict)
    concurrent_requests: int = 0
    cold_fetches: int | None = None
    cold_statuses: dict[int, int] = field(default_factory=dict)
    memory: rss_probe.MemoryReport | None = None
    load_before: float | None = None
    load_after: float | None = None

    def median(self, key: str) -> float | None:
        for case in [*self.micro, *self.route_cases.values()]:
            if case.key == key and case.seconds_per_op:
                return case.median
        return None

    def ratio(self, numerator: str, denominator: str) -> float | None:
        top, bottom = self.median(numerator), self.median(denominator)
        return None if top is None or bottom is None else top / bottom

    def targets(self) -> list[Target]:
        return [
            Target(
                "`auth.verify`, new token / `jwt.decode`",
                0.55,
                self.ratio("verify_new", "jwt_decode"),
            ),
            Target(
                "`auth.verify`, same token again / `jwt.decode`",
                0.05,
                self.ratio("verify_same", "jwt_decode"),
            ),
            Target(
                "route with this library, new token / hand-written PyJWT dependency",
                0.90,
                self.ratio("e2e_ours_new", "e2e_pyjwt"),
            ),
            Target(
                "route with this library, one token reused / no auth",
                1.08,
                self.ratio("e2e_ours_same", "e2e_none"),
            ),
            Target(
                f"JWKS fetches for {self.concurrent_requests:,} concurrent requests, cold cache",
                1,
                None if self.cold_fetches is None else float(self.cold_fetches),
                integer=True,
            ),
        ]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def _commit() -> str:
    """`` at commit <hash>`` when run from a git checkout, else nothing."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git from PATH, if any)
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f" at commit {completed.stdout.strip()}"


def render(results: Results, plan: Plan, elapsed: float) -> str:
    lines = [
        f"fastapi-isp-jwt{_commit()}: {environment()}",
        f"{plan.rounds} interleaved rounds after {plan.warmup_rounds} warm-up; "
        f"batches of {plan.micro_batch} calls / {plan.request_batch} requests; "
        f"medians of per-round means, {plan.clock} clock."
        + _load_note(results.load_before, results.load_after),
        *transport_notes(),
        "",
        "| verification (one call) | median µs | interquartile µs | / `jwt.decode` |",
        "|---|---:|---:|---:|",
    ]
    decode = results.median("jwt_decode")
    for case in results.micro:
        low, high = case.spread
        relative = f"{case.median / decode:.2f}" if decode else "—"
        lines.append(f"| {case.label} | {_us(case.median)} | {_us(low)}-{_us(high)} | {relative} |")
    lines += [
        "",
        "| end to end (one request, in-process) | median µs | interquartile µs | over no auth µs |",
        "|---|---:|---:|---:|",
    ]
    baseline = results.median("e2e_none")
    for route in results.routes:
        measured = results.route_cases.get(route.key)
        if measured is None or not measured.seconds_per_op:
            lines.append(f"| {route.label} | {route.skipped or 'not run'} | | |")
            continue
        low, high = measured.spread
        extra = _us(measured.median - baseline) if baseline is not None else "—"
        lines.append(
            f"| {route.label} | {_us(measured.median)} | {_us(low)}-{_us(high)} | {extra} |"
        )
    lines += ["", "| target ratio | measured | target | result |", "|---|---:|---:|---|"]
    lines += [target.row() for target in results.targets()]
    floors = [
        (label, results.ratio(key, "e2e_none"))
        for label, key in (
            ("a bare `Depends`", "e2e_depends"),
            ("least cache hit keyed by SHA-256", "e2e_floor_digest"),
            ("keyed by the token itself", "e2e_floor_raw"),
            ("this library", "e2e_ours_same"),
        )
    ]
    if all(ratio is not None for _, ratio in floors):
        lines += [
            "",
            "One token reused, against no auth: "
            + ", ".join(f"{label} {ratio:.3f}" for label, ratio in floors)
            + ".",
        ]
    statuses = ", ".join(
        f"{count} x {status}" for status, count in sorted(results.cold_statuses.items())
    )
    lines += [
        "",
        f"Cold cache: {results.concurrent_requests:,} concurrent requests with distinct tokens "
        f"to a fresh app -> {results.cold_fetches} JWKS fetch(es); answers: {statuses}.",
    ]
    memory = results.memory
    if memory is not None:
        full = (
            f"{(memory.rss_cache_full - memory.rss_before) / 2**20:+.1f} MiB at "
            f"{memory.cache_size:,} tokens (cache full), "
            if memory.rss_cache_full is not None
            else ""
        )
        lines.append(
            f"Memory: RSS growth after verifying {memory.tokens:,} distinct tokens "
            f"(twice each) with the default cache size ({memory.cache_size:,}): {full}"
            f"{(memory.rss_after - memory.rss_before) / 2**20:+.1f} MiB at the end "
            f"(from {memory.rss_before / 2**20:.1f} MiB)."
        )
    lines += ["", f"Run time: {elapsed:.0f} s."]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _load_note(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return ""
    # Other work on the machine slows every case; the load says how quiet the run was.
    return f" Load average (1 min) {before:.2f} before, {after:.2f} after."


def transport_notes() -> list[str]:
    """Warnings about the environment that would skew the end-to-end rows."""
    if importlib.util.find_spec("sniffio") is None:
        # httpx's ASGITransport imports sniffio on every request to detect trio; without
        # it the failed import is retried each time (about 40 µs on a 2-core machine).
        return [
            "NOTE: sniffio is not installed, so httpx.ASGITransport retries a failing import "
            "on every request: each end-to-end row is slower by the same amount, and ratios "
            "against 'no auth' look better than they are. `pip install sniffio` to avoid it."
        ]
    return []


def environment(packages: Sequence[str] = ("cryptography", "PyJWT", "fastapi", "httpx")) -> str:
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {versions}"
    )


# -- the run -----------------------------------------------------------------------------


async def cold_cache(server: LocalIssuerServer, tokens: list[str], results: Results) -> None:
    """Many requests at once on an app that has never fetched keys: how many fetches?"""
    auth = isp_jwt_auth(server)
    client = _client_for(isp_jwt_app(auth))
    before = server.jwks_requests
    try:
        responses = await asyncio.gather(
            *(client.get(ROUTE, headers={"Authorization": f"Bearer {token}"}) for token in tokens)
        )
    finally:
        await client.aclose()
        await auth.aclose()
    results.concurrent_requests = len(tokens)
    results.cold_fetches = server.jwks_requests - before
    for response in responses:
        results.cold_statuses[response.status_code] = (
            results.cold_statuses.get(response.status_code, 0) + 1
        )


async def build_routes(
    server: LocalIssuerServer,
    plan: Plan,
    pool: TokenPool,
    fresh: FreshTokens,
    repeated: str,
    stranger: str,
    fetch_client: httpx.AsyncClient,
    owned: list[JWTAuth],
) -> list[Route]:
    ours = isp_jwt_auth(server)
    owned.append(ours)
    ours_client = _client_for(isp_jwt_app(ours))
    remembered = await ours.verify(repeated)
    ready = _client_for(ready_principal_app(remembered))
    routes = [
        Route("e2e_none", "no auth", _client_for(no_auth_app()), pool.take, guarded=False),
        Route(
            "e2e_depends",
            "(reference) `Depends` returning a ready `Principal`, no check",
            ready,
            pool.take,
            guarded=False,
            charted=False,
        ),
        Route(
            "e2e_floor_digest",
            "(reference) least a cache hit costs, keyed by SHA-256: header scan, digest, lookup",
            _client_for(remembered_token_app(remembered, repeated, digest=True)),
            lambda count: [repeated] * count,
            charted=False,
            only_token=repeated,
        ),
        Route(
            "e2e_floor_raw",
            "(reference) the same keyed by the token itself, with no digest",
            _client_for(remembered_token_app(remembered, repeated, digest=False)),
            lambda count: [repeated] * count,
            charted=False,
            only_token=repeated,
        ),
        Route(
            "e2e_pyjwt",
            "hand-written PyJWT dependency",
            _client_for(pyjwt_app(server.jwks_url)),
            pool.take,
        ),
        Route(
            "e2e_ours_new",
            "fastapi-isp-jwt, a new token each request",
            ours_client,
            fresh.take,
            ours=True,
        ),
        Route(
            "e2e_ours_same",
            "fastapi-isp-jwt, one token reused",
            ours_client,
            lambda count: [repeated] * count,
            ours=True,
        ),
    ]
    for name in PEER_NAMES:
        key = "e2e_" + name
        if not plan.peers:
            routes.append(
                Route(key, name, None, pool.take, skipped="not run (--quick, --no-peers)")
            )
            continue
        try:
            app = peer_app(name, server, fetch_client)
        except ImportError:
            routes.append(Route(key, name, None, pool.take, skipped="not installed"))
            continue
        routes.append(Route(key, name, _client_for(app), pool.take))
    for route in routes:
        if route.skipped is None:
            # Loads each contender's keys before any clock starts, and proves it verifies.
            await preflight(route, route.only_token or pool.take(1)[0], stranger)
    return routes


async def measure(plan: Plan, tokens: list[str], issuer: TestIssuer) -> Results:
    results = Results(load_before=_load_average())
    pool = TokenPool(tokens[: plan.shared_pool])
    fresh = FreshTokens(tokens[plan.shared_pool :])
    cold_tokens = fresh.take(plan.concurrent_requests)
    repeated = issuer.mint("auth0|bench-repeated", ["streams:read"])
    stranger = TestIssuer(ISSUER, organization=ORGANIZATION).mint("auth0|bench-stranger")
    public_key = issuer.signing_key.private_key.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)

    owned: list[JWTAuth] = []
    with LocalIssuerServer(ISSUER, issuer.jwks) as server:
        await cold_cache(server, cold_tokens, results)
        async with httpx.AsyncClient() as fetch_client:
            auth = isp_jwt_auth(server)
            owned.append(auth)
            await auth.verify(repeated)  # keys loaded, and the repeated token remembered
            results.micro = [
                *floor_cases(pool, public_key, plan.micro_batch),
                *pyjwt_cases(pool, public_key, server.jwks_url, plan.micro_batch),
                *library_cases(auth, fresh, repeated, plan.micro_batch),
            ]
            results.routes = await build_routes(
                server, plan, pool, fresh, repeated, stranger, fetch_client, owned
            )
            results.route_cases = {
                route.key: route.case(plan.request_batch)
                for route in results.routes
                if route.skipped is None
            }
            try:
                await run_rounds(
                    [*results.micro, *results.route_cases.values()],
                    rounds=plan.rounds,
                    warmup_rounds=plan.warmup_rounds,
                    clock=CLOCKS[plan.clock],
                    progress=_progress,
                )
            finally:
                for route in results.routes:
                    if route.client is not None:
                        await route.client.aclose()
                for owned_auth in owned:
                    await owned_auth.aclose()
    results.load_after = _load_average()
    return results


def _phase(started: float, name: str) -> None:
    print(f"[{time.perf_counter() - started:5.1f} s] {name}", file=sys.stderr, flush=True)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\rround {done}/{total}", end="", file=sys.stderr, flush=True)
        if done == total:
            print(file=sys.stderr)
    elif done % 16 == 0 or done == total:
        # Logs get a line now and then rather than carriage returns.
        print(f"round {done}/{total}", file=sys.stderr, flush=True)


def memory_in_child(count: int) -> rss_probe.MemoryReport:
    """Run :func:`rss_probe.measure` in a fresh interpreter, away from this run's memory."""
    completed = subprocess.run(  # noqa: S603 (this very script, with a fixed argument list)
        [sys.executable, str(Path(__file__).resolve()), "--rss-probe", str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    return rss_probe.MemoryReport(**json.loads(completed.stdout))


def chart(results: Results | None, real: RealResults | None, path: Path) -> None:
    """One panel per mode measured: in-process above, the real server below."""
    panels = []
    if results is not None:
        bars = []
        for route in results.routes:
            case = results.route_cases.get(route.key)
            if case is None or not case.seconds_per_op or not route.charted:
                continue
            low, high = case.spread
            bars.append(Bar(route.label, case.median * 1e6, low * 1e6, high * 1e6, ours=route.ours))
        panels.append(Panel(IN_PROCESS_TITLE, bars))
    if real is not None:
        real_bars = []
        for item in real.measured.values():
            if item.loads:
                low, high = item.spread_us
                real_bars.append(Bar(item.row.label, item.median_us, low, high, item.row.ours))
        panels.append(Panel(REAL_SERVER_TITLE, real_bars))
    draw_panels(panels, path, environment(("fastapi", "uvicorn")))


# -- profiles for whoever tunes the hot path ---------------------------------------------


async def _profiled_calls(kind: str, auth: JWTAuth, tokens: list[str]) -> None:
    if kind == "verify":
        for token in tokens:
            await auth.verify(token)
        return
    async with _client_for(isp_jwt_app(auth)) as client:
        for token in tokens:
            await client.get(ROUTE, headers={"Authorization": f"Bearer {token}"})


def profile(kind: str, count: int) -> None:
    """Print where the time of ``count`` new-token verifications (or requests) goes."""
    issuer = TestIssuer(ISSUER, organization=ORGANIZATION)
    tokens = mint_distinct(issuer, count + 1)

    async def run(server: LocalIssuerServer) -> None:
        auth = isp_jwt_auth(server)
        await auth.verify(tokens[0])
        profiler = cProfile.Profile()
        profiler.enable()
        await _profiled_calls(kind, auth, tokens[1:])
        profiler.disable()
        await auth.aclose()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)

    with LocalIssuerServer(ISSUER, issuer.jwks) as server:
        asyncio.run(run(server))


# -- entry point -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few iterations, no peers, no chart")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument("--rounds", type=int, help="recorded rounds (default: 61, quick: 3)")
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="cpu",
        help="cpu: CPU time of the measuring thread (default); wall: elapsed time",
    )
    parser.add_argument("--json", type=Path, help="also write the medians to this file")
    parser.add_argument(
        "--profile",
        choices=("verify", "request"),
        help="instead of the benchmark, profile 5,000 new-token verifications or requests",
    )
    parser.add_argument(
        "--mode",
        choices=("in-process", "real-server", "both"),
        default="in-process",
        help="in-process (default): httpx.ASGITransport; real-server: uvicorn under wrk",
    )
    parser.add_argument("--rss-probe", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rss_probe is not None:
        print(json.dumps(rss_probe.measure(args.rss_probe).as_dict()))
        return 0
    if args.profile is not None:
        profile(args.profile, 5000)
        return 0
    if args.mode == "real-server":
        real_plan = RealPlan(peers=not args.no_peers, rounds=args.rounds or 5)
        print(render_real(measure_real_server(real_plan)))
        return 0

    plan = QUICK if args.quick else FULL
    plan = Plan(
        rounds=args.rounds or plan.rounds,
        warmup_rounds=plan.warmup_rounds,
        micro_batch=plan.micro_batch,
        request_batch=plan.request_batch,
        concurrent_requests=plan.concurrent_requests,
        rss_tokens=plan.rss_tokens,
        peers=plan.peers and not args.no_peers,
        chart=None if args.no_chart else plan.chart,
        shared_pool=plan.shared_pool,
        clock=args.clock,
    )
    started = time.perf_counter()
    issuer = TestIssuer(ISSUER, organization=ORGANIZATION)
    _phase(started, "minting tokens")
    tokens = mint_distinct(issuer, plan.shared_pool + plan.fresh_tokens_needed)
    _phase(started, "measuring")
    results = asyncio.run(measure(plan, tokens, issuer))
    _phase(started, "measuring memory in a fresh process")
    results.memory = memory_in_child(plan.rss_tokens)
    real: RealResults | None = None
    if args.mode == "both":
        _phase(started, "measuring on a real server")
        real = measure_real_server(RealPlan(peers=plan.peers))
    if plan.chart is not None:
        chart(results, real, plan.chart)
    print(render(results, plan, time.perf_counter() - started))
    if real is not None:
        print("\n" + render_real(real))
    if plan.chart is not None:
        print(f"\nChart: {plan.chart.relative_to(ROOT)}")
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results), indent=2) + "\n")
    return 0


def as_json(results: Results) -> dict[str, Any]:
    cases = [*results.micro, *results.route_cases.values()]
    return {
        "environment": environment(),
        "median_us": {case.key: case.median * 1e6 for case in cases if case.seconds_per_op},
        "targets": {target.label: target.measured for target in results.targets()},
        "cold_cache_fetches": results.cold_fetches,
        "memory": None if results.memory is None else results.memory.as_dict(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
