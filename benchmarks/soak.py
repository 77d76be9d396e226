"""A real server through key rotation and issuer outages, under 1,000 connections.

    python benchmarks/soak.py                       # 8 phases of 10 s, about 3 minutes
    python benchmarks/soak.py --phase-seconds 15
    python benchmarks/soak.py --tiny                # seconds: the test suite's version

One uvicorn process (uvloop, httptools, one worker) serves ``/open`` (no guard) and
``/streams`` (``JWTAuth(jwks_ttl=10, jwks_cooldown=2)``); the local issuer in this
process publishes the JWKS with no ``Cache-Control``, so the TTL is 10 s. wrk (1 thread,
1,000 connections, 10 s timeout) loads the server through the phases below, while this
script rotates the issuer's keys and makes its JWKS answer 500 or hang. Every request
carries a valid token: any non-2xx answer is a refusal the library should not have made.

New-token phases send each token at most twice (the verified-token cache admits a token
on its second sight and answers only from the third), so every answer is a full check.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contenders import ISSUER, ORGANIZATION, ROUTE
from jwks_server import LocalIssuerServer
from loadgen import Load, TokenFile, run_wrk
from minting import mint_distinct
from served_apps import OPEN_ROUTE, served_environment
from server_process import ServerProcess

from fastapi_isp_jwt.testing import SigningKey, TestIssuer
from tests.support.faults import OK, Reply, server_error


@dataclass(frozen=True)
class SoakPlan:
    phase_seconds: int = 10
    connections: int = 1000
    response_limit: float = 10.0  # wrk counts a longer wait as a timeout
    jwks_ttl: float = 10.0
    jwks_cooldown: float = 2.0
    hang_seconds: float = 20.0
    # More requests per second than the server is expected to answer: sizes the supply.
    rate_ceiling: int = 6500


TINY = SoakPlan(phase_seconds=1, connections=50, jwks_ttl=2.0, jwks_cooldown=1.0,
                hang_seconds=4.0, rate_ceiling=3000)  # fmt: skip


@dataclass(frozen=True)
class Phase:
    name: str
    route: str
    tokens: str  # "reused", "key 1" or "key 2"
    before: Callable[[Soak], None] = lambda soak: None


@dataclass
class PhaseResult:
    phase: Phase
    load: Load
    sends_per_token: float


class Soak:
    """The issuer, its two keys, the server, and the token supplies of one soak run."""

    def __init__(self, plan: SoakPlan) -> None:
        self.plan = plan
        self.first = TestIssuer(ISSUER, organization=ORGANIZATION)
        self.second = TestIssuer(
            ISSUER, organization=ORGANIZATION, signing_key=SigningKey.generate("RS256")
        )
        self.published = [self.first]
        self.tenant = LocalIssuerServer(ISSUER, self.jwks)
        self.tenant.cache_control = None  # the TTL is the app's jwks_ttl
        self._supplies: dict[str, list[str]] = {}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key for issuer in self.published for key in issuer.jwks()["keys"]]}

    def mint(self, phases: Sequence[Phase]) -> None:
        per_phase = self.plan.rate_ceiling * self.plan.phase_seconds // 2
        for label, issuer in (("key 1", self.first), ("key 2", self.second)):
            count = per_phase * sum(phase.tokens == label for phase in phases)
            _progress(f"soak: minting {count:,} tokens signed by {label}")
            self._supplies[label] = mint_distinct(issuer, count)
        self._supplies["reused"] = [self.first.mint("auth0|soak-reused", ["streams:read"])]

    def tokens_for(self, phase: Phase) -> list[str]:
        if phase.tokens == "reused":
            return self._supplies["reused"]
        per_phase = self.plan.rate_ceiling * self.plan.phase_seconds // 2
        supply = self._supplies[phase.tokens]
        taken, self._supplies[phase.tokens] = supply[:per_phase], supply[per_phase:]
        return taken

    # -- what the issuer does between phases ---------------------------------------------

    def rotate_right_after_a_download(self) -> None:
        """Publish key 2 within moments of a JWKS download (the cooldown's window)."""
        seen = self.tenant.jwks_requests
        deadline = time.monotonic() + self.plan.jwks_ttl + 5
        while self.tenant.jwks_requests == seen and time.monotonic() < deadline:
            time.sleep(0.01)
        self.published = [self.first, self.second]

    def fail_with_500(self) -> None:
        self.tenant.fault = server_error()

    def hang(self) -> None:
        self.tenant.fault = Reply(delay=self.plan.hang_seconds)

    def recover(self) -> None:
        self.tenant.fault = OK


PHASES = (
    Phase("no auth (baseline)", OPEN_ROUTE, "reused"),
    Phase("one token reused", ROUTE, "reused"),
    Phase("new tokens, key 1", ROUTE, "key 1"),
    Phase("key 2 published, its tokens start", ROUTE, "key 2", Soak.rotate_right_after_a_download),
    Phase("JWKS answers 500 past the TTL", ROUTE, "key 1", Soak.fail_with_500),
    Phase("still 500, key 2 tokens", ROUTE, "key 2"),
    Phase("JWKS hangs per request", ROUTE, "key 2", Soak.hang),
    Phase("recovered", ROUTE, "key 2", Soak.recover),
)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_soak(
    plan: SoakPlan, on_server: Callable[[ServerProcess], None] | None = None
) -> dict[str, Any]:
    soak = Soak(plan)
    soak.mint(PHASES)
    results: list[PhaseResult] = []
    with soak.tenant:
        environment = served_environment(
            "soak", soak.tenant.url, jwks_ttl=plan.jwks_ttl, jwks_cooldown=plan.jwks_cooldown
        )
        with ServerProcess(environment) as server:
            first = soak.tokens_for(PHASES[1])[0]
            ready = server.wait_ready(ROUTE, {"Authorization": f"Bearer {first}"})
            if ready.status_code != 200:
                raise RuntimeError(f"the soak server refused a valid token: {ready.status_code}")
            if on_server is not None:
                on_server(server)
            load_before = os.getloadavg()[0]
            for phase in PHASES:
                phase.before(soak)
                tokens = TokenFile(soak.tokens_for(phase))
                try:
                    load = run_wrk(
                        server.url(phase.route),
                        tokens,
                        seconds=plan.phase_seconds,
                        connections=plan.connections,
                        timeout=plan.response_limit,
                    )
                finally:
                    tokens.close()
                results.append(PhaseResult(phase, load, load.requests / tokens.count))
                _progress(f"soak: {phase.name}: {load.requests:,} requests, {load.errors} errors")
            load_after = os.getloadavg()[0]
            flavour = server.flavour
        jwks_requests = soak.tenant.jwks_requests
    return {
        "plan": vars(plan),
        "flavour": list(flavour),
        "load_average": [load_before, load_after],
        "jwks_requests": jwks_requests,
        "phases": [
            {"name": r.phase.name, "sends_per_token": r.sends_per_token, **vars(r.load)}
            for r in results
        ],
    }


def render_soak(report: dict[str, Any]) -> str:
    plan = report["plan"]
    loop, http = report["flavour"]
    before, after = report["load_average"]
    lines = [
        f"Soak: uvicorn ({loop}, {http}, 1 worker), wrk 1 thread, {plan['connections']:,} "
        f"connections, {plan['response_limit']:g} s timeout, phases of "
        f"{plan['phase_seconds']} s; JWTAuth(jwks_ttl={plan['jwks_ttl']:g}, "
        f"jwks_cooldown={plan['jwks_cooldown']:g}); hang {plan['hang_seconds']:g} s per "
        f"request. Load average (1 min) {before:.2f} before, {after:.2f} after.",
        "",
        "| phase | requests | non-2xx | timeouts | socket errors | req/s | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in report["phases"]:
        rate = phase["requests"] / phase["seconds"]
        lines.append(
            f"| {phase['name']} | {phase['requests']:,} | {phase['non_2xx']} | "
            f"{phase['timeouts']} | {phase['socket_errors']} | {rate:,.0f} | "
            f"{phase['p99_ms']:.0f} |"
        )
    most = max(p["sends_per_token"] for p in report["phases"][2:])
    lines += [
        "",
        f"JWKS requests in all: {report['jwks_requests']}. New-token phases sent each token "
        f"at most {most:.2f} times on average"
        + (" (over 2: some answers came from the verified-token cache)." if most > 2 else "."),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tiny", action="store_true", help="phases of 1 s, 50 connections")
    parser.add_argument("--phase-seconds", type=int, help="seconds per phase (default 10)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the server with py-spy for the whole run into this file (speedscope)",
    )
    args = parser.parse_args(argv)
    plan = TINY if args.tiny else SoakPlan()
    if args.phase_seconds:
        plan = SoakPlan(**{**vars(plan), "phase_seconds": args.phase_seconds})
    recorder = _Recorder(args.profile) if args.profile else None
    try:
        report = run_soak(plan, recorder.attach if recorder else None)
    finally:
        if recorder is not None:
            recorder.finish()
    print(render_soak(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _py_spy() -> str:
    """py-spy next to this interpreter (a venv's), else from PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else "py-spy"


class _Recorder:
    """py-spy sampling the server process, for finding what a phase costs."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.process: Any = None

    def attach(self, server: ServerProcess) -> None:
        import subprocess

        command = [_py_spy(), "record", "--pid", str(server.pid), "--rate", "200"]
        command += ["--format", "raw", "--output", str(self.output)]
        self.process = subprocess.Popen(command)  # noqa: S603 (py-spy, fixed arguments)
        time.sleep(1)

    def finish(self) -> None:
        if self.process is not None:
            self.process.wait(timeout=60)


if __name__ == "__main__":
    raise SystemExit(main())
