"""The same routes on a real server: uvicorn (uvloop, httptools, one worker) under wrk.

    python benchmarks/real_server.py            # about 3 minutes on 2 cores
    python benchmarks/real_server.py --quick    # seconds: every row once, no peers
    python benchmarks/bench.py --mode both      # this and the in-process run, one chart

Each route is served by a uvicorn process of its own on 127.0.0.1; the local issuer runs
in this process. Each server has a core of its own; ``wrk`` and this process share the
others. ``wrk`` (1 thread, 16 connections) loads one route at a time, for a few
seconds, in interleaved rounds (shuffled order each round, the first round dropped); a
route's figure is the median over rounds of its time per request (1 / throughput). Then
1,000 connections send new tokens to this library and to the hand-written PyJWT
dependency: errors and p99 latency, side by side. Every answer must be a 2xx: wrk counts
the others, and the table shows them.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from contenders import ISSUER, ORGANIZATION, PEER_NAMES, ROUTE
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwks_server import LocalIssuerServer
from loadgen import Load, TokenFile, run_wrk, wrk_path
from minting import mint_distinct
from served_apps import served_environment
from server_process import ServerProcess, pin_load_generator, split_cores

from fastapi_isp_jwt.testing import TestIssuer

RESPONSE_LIMIT = 10.0


@dataclass(frozen=True)
class RealPlan:
    rounds: int = 5
    round_seconds: int = 2
    connections: int = 16
    crowd_connections: int = 1000
    crowd_seconds: int = 4
    peers: bool = True
    # Requests per second no route is expected to reach: sizes the new-token supply.
    rate_ceiling: int = 6500
    pool_size: int = 2000


QUICK_REAL = RealPlan(rounds=1, round_seconds=1, crowd_connections=200, crowd_seconds=1,
                      peers=False, rate_ceiling=4000, pool_size=200)  # fmt: skip


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    app: str
    tokens: str  # "reused": one token; "pool": distinct tokens in turn; "fresh": never seen
    ours: bool = False


ROWS = (
    Row("none", "no auth", "none", "reused"),
    Row("depends", "bare `Depends` returning a ready `Principal`", "depends", "reused"),
    Row("ours_same", "fastapi-isp-jwt, one token reused", "ours", "reused", ours=True),
    Row("floor", "floor: split the token, one RS256 check", "floor", "pool"),
    Row("ours_new", "fastapi-isp-jwt, a new token each request", "ours", "fresh", ours=True),
    Row("pyjwt_preloaded", "hand-written PyJWT (key pre-loaded)", "pyjwt_preloaded", "pool"),
    Row(
        "pyjwt_tutorial", "tutorial PyJWT (`HTTPBearer` + `PyJWKClient`)", "pyjwt_tutorial", "pool"
    ),
    *(Row(name, name, name, "pool") for name in PEER_NAMES),
)
CROWD_ROWS = ("ours_new", "pyjwt_preloaded")


@dataclass
class Measured:
    row: Row
    loads: list[Load] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # server CPU per request, per round
    skipped: str | None = None
    repeated_tokens: bool = False  # a new-token round outran its supply

    @property
    def us_per_request(self) -> list[float]:
        return [1e6 / load.per_second for load in self.loads]

    @property
    def median_us(self) -> float:
        return statistics.median(self.us_per_request)

    @property
    def spread_us(self) -> tuple[float, float]:
        values = self.us_per_request
        if len(values) < 2:
            return values[0], values[0]
        quartiles = statistics.quantiles(values, n=4, method="inclusive")
        return quartiles[0], quartiles[2]

    @property
    def median_cpu_us(self) -> float | None:
        return statistics.median(self.cpu_us) if self.cpu_us else None

    @property
    def errors(self) -> int:
        return sum(load.errors for load in self.loads)


@dataclass
class RealResults:
    measured: dict[str, Measured]
    crowd: dict[str, Load]
    flavour: tuple[str, str]
    load_before: float
    load_after: float
    plan: RealPlan

    def ratio(self, numerator: str, denominator: str) -> float | None:
        """The throughput ratio, as the median of the rounds' own ratios.

        Both routes of a round ran seconds apart, under the same load: a ratio
        taken within each round cancels what the machine did between rounds, which the
        ratio of two medians does not.
        """
        top, bottom = self.measured.get(numerator), self.measured.get(denominator)
        if top is None or bottom is None or not top.loads or not bottom.loads:
            return None
        return statistics.median(
            mine.per_second / theirs.per_second
            for mine, theirs in zip(top.loads, bottom.loads, strict=True)
        )

    def cpu_ratio(self, numerator: str, denominator: str) -> float | None:
        """The same ratio from the servers' own CPU time per request (median of rounds)."""
        top, bottom = self.measured.get(numerator), self.measured.get(denominator)
        if top is None or bottom is None or not top.cpu_us or not bottom.cpu_us:
            return None
        return statistics.median(
            theirs / mine for mine, theirs in zip(top.cpu_us, bottom.cpu_us, strict=True)
        )

    def goals(self) -> list[tuple[str, float | None, float]]:
        return [
            (
                "reused token / bare `Depends` (throughput)",
                self.ratio("ours_same", "depends"),
                0.95,
            ),
            ("new token / floor (throughput)", self.ratio("ours_new", "floor"), 0.90),
        ]

    def cpu_goals(self) -> list[float | None]:
        """The goals' ratios again, from CPU time per request: what the machine's noise
        (other processes, a virtual machine's host) leaves out of throughput."""
        return [self.cpu_ratio("ours_same", "depends"), self.cpu_ratio("ours_new", "floor")]


class Supplies:
    """Where each row's tokens come from; new tokens are handed out once."""

    def __init__(self, reused: str, pool: list[str], fresh: list[str]) -> None:
        self.reused, self.pool, self._fresh = reused, pool, fresh

    def take_fresh(self, count: int) -> list[str]:
        taken, self._fresh = self._fresh[:count], self._fresh[count:]
        if not taken:
            raise RuntimeError("the run needs more new tokens than were minted")
        return taken

    def file_for(self, row: Row, seconds: int, ceiling: int) -> TokenFile:
        if row.tokens == "reused":
            return TokenFile([self.reused])
        if row.tokens == "pool":
            return TokenFile(self.pool)
        return TokenFile(self.take_fresh(seconds * ceiling))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _preflight(server: ServerProcess, row: Row, supplies: Supplies, stranger: str) -> None:
    """A valid token gets 200 and its subject; a stranger's token a 4xx (keys now loaded)."""
    token = supplies.reused if row.tokens == "reused" else supplies.pool[0]
    answer = server.wait_ready(ROUTE, {"Authorization": f"Bearer {token}"})
    if answer.status_code != 200:
        raise RuntimeError(f"{row.label}: a valid token got {answer.status_code}")
    if row.app in ("none", "depends"):
        return
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    if answer.json().get("subject") != subject:
        raise RuntimeError(f"{row.label}: the answer does not name the token's subject")
    refused = server.wait_ready(ROUTE, {"Authorization": f"Bearer {stranger}"})
    if not 400 <= refused.status_code < 500:
        raise RuntimeError(f"{row.label}: an unknown key's token got {refused.status_code}")
    for _ in range(2):  # a token seen twice is remembered: the reused row measures that
        server.wait_ready(ROUTE, {"Authorization": f"Bearer {token}"})


def _start(row: Row, tenant_url: str, options: dict[str, Any]) -> ServerProcess:
    return ServerProcess(served_environment(row.app, tenant_url, **options))


def measure_real_server(plan: RealPlan) -> RealResults:
    wrk_path()  # fail early, before minting
    rows = [row for row in ROWS if plan.peers or row.app not in PEER_NAMES]
    issuer = TestIssuer(ISSUER, organization=ORGANIZATION)
    fresh_rounds = (plan.rounds + 1) * plan.round_seconds + plan.crowd_seconds
    _progress(f"real server: minting {plan.rate_ceiling * fresh_rounds:,} new tokens")
    tokens = mint_distinct(issuer, plan.pool_size + plan.rate_ceiling * fresh_rounds)
    supplies = Supplies(
        issuer.mint("auth0|bench-repeated", ["streams:read"]),
        tokens[: plan.pool_size],
        tokens[plan.pool_size :],
    )
    stranger = TestIssuer(ISSUER, organization=ORGANIZATION).mint("auth0|bench-stranger")
    public_pem = issuer.signing_key.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    options = {"token": supplies.reused, "public_key_pem": public_pem.decode()}
    measured = {row.key: Measured(row) for row in rows}
    servers: dict[str, ServerProcess] = {}
    with LocalIssuerServer(ISSUER, issuer.jwks) as tenant:
        try:
            for row in rows:
                servers[row.key] = _start(row, tenant.url, options)
            for row in rows:
                try:
                    _preflight(servers[row.key], row, supplies, stranger)
                except Exception as exc:
                    # A peer that does not install or start is skipped, with the reason.
                    if row.app not in PEER_NAMES:
                        raise
                    measured[row.key].skipped = f"skipped: {str(exc)[:80]}"
                    servers.pop(row.key).stop()
            pin_load_generator()  # after minting, which used every core
            load_before = os.getloadavg()[0]
            _rounds(plan, rows, servers, measured, supplies)
            crowd = {
                key: _crowd(plan, servers[key], measured[key].row, supplies) for key in CROWD_ROWS
            }
            load_after = os.getloadavg()[0]
            flavour = next(iter(servers.values())).flavour
        finally:
            for server in servers.values():
                server.stop()
    return RealResults(measured, crowd, flavour, load_before, load_after, plan)


def _rounds(
    plan: RealPlan,
    rows: Sequence[Row],
    servers: dict[str, ServerProcess],
    measured: dict[str, Measured],
    supplies: Supplies,
) -> None:
    order = [row for row in rows if row.key in servers]
    shuffler = random.Random(16)
    for number in range(plan.rounds + 1):  # round 0 warms every server up and is dropped
        shuffler.shuffle(order)
        seconds = 1 if number == 0 else plan.round_seconds
        for row in order:
            tokens = supplies.file_for(row, seconds, plan.rate_ceiling)
            server = servers[row.key]
            cpu_before = server.cpu_seconds()
            try:
                load = run_wrk(
                    server.url(ROUTE),
                    tokens,
                    seconds=seconds,
                    connections=plan.connections,
                    timeout=RESPONSE_LIMIT,
                )
            finally:
                tokens.close()
            if row.tokens == "fresh" and load.requests > tokens.count:
                measured[row.key].repeated_tokens = True
            cpu_after = server.cpu_seconds()
            if number:
                measured[row.key].loads.append(load)
                if cpu_before is not None and cpu_after is not None and load.requests:
                    cpu = (cpu_after - cpu_before) / load.requests * 1e6
                    measured[row.key].cpu_us.append(cpu)
        _progress(f"real server: round {number}/{plan.rounds} done")


def _crowd(plan: RealPlan, server: ServerProcess, row: Row, supplies: Supplies) -> Load:
    tokens = supplies.file_for(row, plan.crowd_seconds, plan.rate_ceiling)
    try:
        return run_wrk(
            server.url(ROUTE),
            tokens,
            seconds=plan.crowd_seconds,
            connections=plan.crowd_connections,
            timeout=RESPONSE_LIMIT,
        )
    finally:
        tokens.close()


# -- the report --------------------------------------------------------------------------


def render_real(results: RealResults) -> str:
    plan = results.plan
    loop, http = results.flavour
    lines = [
        f"Real server: uvicorn ({loop}, {http}, 1 worker) on 127.0.0.1, one process per route; "
        f"wrk 1 thread, {plan.connections} connections; {plan.rounds} interleaved rounds of "
        f"{plan.round_seconds} s after a warm-up round; medians; {_pinning()}. "
        f"Load average (1 min) {results.load_before:.2f} before, {results.load_after:.2f} after.",
        "",
        "| route (real server) | µs per request | interquartile µs | req/s | "
        "server CPU µs per request | non-2xx + errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for item in results.measured.values():
        if not item.loads:
            lines.append(f"| {item.row.label} | {item.skipped or 'not run'} | | | | |")
            continue
        low, high = item.spread_us
        note = " (tokens repeated)" if item.repeated_tokens else ""
        cpu = item.median_cpu_us
        lines.append(
            f"| {item.row.label}{note} | {item.median_us:.1f} | {low:.1f}-{high:.1f} | "
            f"{1e6 / item.median_us:,.0f} | {'—' if cpu is None else f'{cpu:.1f}'} | "
            f"{item.errors} |"
        )
    lines += [
        "",
        "| goal (real server; median of the rounds' ratios) | measured | goal | result | "
        "by server CPU time |",
        "|---|---:|---:|---|---:|",
    ]
    for (label, ratio, goal), cpu_ratio in zip(results.goals(), results.cpu_goals(), strict=True):
        shown = "—" if ratio is None else f"{ratio:.3f}"
        verdict = "not measured" if ratio is None else ("pass" if ratio >= goal else "FAIL")
        by_cpu = "—" if cpu_ratio is None else f"{cpu_ratio:.3f}"
        lines.append(f"| {label} | {shown} | >= {goal:.2f} | {verdict} | {by_cpu} |")
    lines += [
        "",
        f"| {plan.crowd_connections:,} connections, new tokens, {plan.crowd_seconds} s | "
        "requests | req/s | non-2xx | timeouts | socket errors | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, load in results.crowd.items():
        lines.append(
            f"| {results.measured[key].row.label} | {load.requests:,} | {load.per_second:,.0f} | "
            f"{load.non_2xx} | {load.timeouts} | {load.socket_errors} | {load.p50_ms:.1f} | "
            f"{load.p99_ms:.1f} |"
        )
    return "\n".join(lines)


def _pinning() -> str:
    cores = split_cores()
    if cores is None:
        return "nothing pinned (one core)"
    server, rest = cores
    return f"each server pinned to core {min(server)}, wrk and this process to {sorted(rest)}"


def as_json(results: RealResults) -> dict[str, Any]:
    return {
        "median_us": {k: m.median_us for k, m in results.measured.items() if m.loads},
        "server_cpu_us": {k: m.median_cpu_us for k, m in results.measured.items() if m.cpu_us},
        "goals": {label: ratio for label, ratio, _ in results.goals()},
        "crowd": {k: vars(load) for k, load in results.crowd.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="every row once, no peers")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    parser.add_argument("--rounds", type=int, help="recorded rounds (default 5)")
    args = parser.parse_args(argv)
    plan = QUICK_REAL if args.quick else RealPlan()
    plan = RealPlan(
        **{
            **vars(plan),
            "peers": plan.peers and not args.no_peers,
            "rounds": args.rounds or plan.rounds,
        }
    )
    started = time.perf_counter()
    results = measure_real_server(plan)
    print(render_real(results))
    print(f"\nRun time: {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
