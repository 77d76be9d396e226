"""What DPoP and telemetry cost per verification, against a plain bearer token in the same run.

``python benchmarks/feature_costs.py`` verifies pre-minted tokens (and pre-signed proofs) with
`Verifier.verify` in one event loop, in interleaved rounds, and prints the median CPU
microseconds per verification and each row's ratio to its baseline:

- a new bearer token each time (the baseline), a new DPoP-bound token with its proof each time,
  its replay check in memory, and in Redis when ``redis-server`` is on the machine (started here
  on 127.0.0.1, no persistence);
- a reused bearer token (the baseline) and a reused mTLS-bound one whose certificate is read,
  as ``JWTAuth`` reads it, from the server's ASGI TLS extension on every request;
- a reused token and a new one with telemetry off (the baseline), with the OpenTelemetry API only
  (no SDK: what most services run), and with the SDK and an in-memory reader.

Keys come from an in-memory JWKS: no network beyond loopback.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from fastapi_isp_jwt import Settings, Verifier
from fastapi_isp_jwt.dpop import DPoPRequest, certificate_thumbprint
from fastapi_isp_jwt.minting import SigningKey, dpop_proof, jwk_thumbprint
from fastapi_isp_jwt.replay import MemoryReplayStore, ReplayStore
from fastapi_isp_jwt.sender import client_certificate
from fastapi_isp_jwt.telemetry import Telemetry
from fastapi_isp_jwt.testing import TestIssuer
from tests.support.certificates import self_signed
from tests.support.redis_server import RedisServer

ISSUER = "https://tenant.example/"
URL = "https://api.example/streams"
DER, PEM = Encoding.DER, Encoding.PEM
PER_ROUND = 300
ROUNDS = 7

Case = Callable[[int], Awaitable[object]]


def verifier(issuer: TestIssuer, **options: object) -> Verifier:
    jwks = issuer.jwks()
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, json=jwks))
    )
    settings = Settings(issuer=ISSUER, audience=issuer.audience)
    return Verifier(settings, http_client=client, **options)  # type: ignore[arg-type]


def bearer_case(issuer: TestIssuer, target: Verifier, count: int) -> Case:
    tokens = [issuer.mint(f"auth0|{n}") for n in range(count)]
    return lambda n: target.verify(tokens[n])


def dpop_case(issuer: TestIssuer, target: Verifier, count: int) -> Case:
    key = SigningKey.generate("ES256")
    jkt = jwk_thumbprint(key.public_jwk())
    tokens = [issuer.mint_dpop_bound(f"auth0|{n}", jkt=jkt) for n in range(count)]
    requests = [
        DPoPRequest(dpop_proof(key, "GET", URL, access_token=token), "GET", URL) for token in tokens
    ]
    return lambda n: target.verify(tokens[n], dpop=requests[n])


def reused_case(issuer: TestIssuer, target: Verifier) -> Case:
    token = issuer.mint()
    return lambda n: target.verify(token)


def reused_certificate_bound_case(issuer: TestIssuer, target: Verifier) -> Case:
    """A reused mTLS-bound token, its certificate read off the scope as the adapter does."""
    certificate = self_signed()
    token = issuer.mint(cnf={"x5t#S256": certificate_thumbprint(certificate.public_bytes(DER))})
    chain = [certificate.public_bytes(PEM).decode("ascii")]
    scope = {"type": "http", "headers": [], "extensions": {"tls": {"client_cert_chain": chain}}}

    def case(n: int) -> Awaitable[object]:
        return target.verify(token, certificate=client_certificate(scope, trusted_proxies=()))

    return case


async def measure(cases: dict[str, Case]) -> dict[str, float]:
    for case in cases.values():  # warm: keys loaded, a reused token remembered
        await case(0)
        await case(1)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    offset = 2
    for _ in range(ROUNDS):
        for name, case in cases.items():
            started = time.thread_time()
            for n in range(offset, offset + PER_ROUND):
                await case(n)
            samples[name].append((time.thread_time() - started) / PER_ROUND * 1e6)
        offset += PER_ROUND
    return {name: statistics.median(values) for name, values in samples.items()}


def redis_store() -> tuple[ReplayStore, RedisServer] | None:
    """A replay store on a Redis server of its own, if ``redis-server`` and ``redis`` are here."""
    executable = shutil.which("redis-server")
    if executable is None or importlib.util.find_spec("redis") is None:
        return None
    import redis.asyncio

    from fastapi_isp_jwt.replay import RedisReplayStore

    server = RedisServer(executable)
    server.start()
    return RedisReplayStore(redis.asyncio.Redis.from_url(server.url)), server


def table(title: str, medians: dict[str, float], baseline: str) -> str:
    lines = [f"| {title} | CPU µs per verification | ratio to {baseline} |", "|---|---:|---:|"]
    lines += [
        f"| {name} | {value:.1f} | {value / medians[baseline]:.3f} |"
        for name, value in medians.items()
    ]
    return "\n".join(lines)


async def main() -> None:
    issuer = TestIssuer(ISSUER)
    count = ROUNDS * PER_ROUND + 2
    off = Telemetry(enabled=False)
    plain = verifier(issuer, telemetry=off)
    cases = {
        "bearer, new token": bearer_case(issuer, plain, count),
        "DPoP, new token and proof, replay in memory": dpop_case(
            issuer, verifier(issuer, telemetry=off, replay_store=MemoryReplayStore()), count
        ),
    }
    shared = redis_store()
    if shared is not None:
        cases["DPoP, new token and proof, replay in Redis"] = dpop_case(
            issuer, verifier(issuer, telemetry=off, replay_store=shared[0]), count
        )
    print(table("DPoP", await measure(cases), "bearer, new token"))
    if shared is not None:
        shared[1].stop()

    cases = {
        "bearer, reused token": reused_case(issuer, plain),
        "mTLS, reused token, certificate from the TLS extension": reused_certificate_bound_case(
            issuer, plain
        ),
    }
    print()
    print(table("mTLS", await measure(cases), "bearer, reused token"))

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    api_only = Telemetry()  # the global providers: the API's stand-ins without an SDK
    sdk = Telemetry(
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        tracer_provider=TracerProvider(),
    )
    targets = {
        "off": verifier(issuer, telemetry=off),
        "API only": verifier(issuer, telemetry=api_only),
        "SDK": verifier(issuer, telemetry=sdk),
    }
    cases = {}
    for label, target in targets.items():
        cases[f"reused token, telemetry {label}"] = reused_case(issuer, target)
    for label, target in targets.items():
        cases[f"new token, telemetry {label}"] = bearer_case(issuer, target, count)
    medians = await measure(cases)
    print()
    for kind in ("reused", "new"):
        rows = {name: value for name, value in medians.items() if name.startswith(kind)}
        print()
        print(table(f"telemetry, {kind} token", rows, f"{kind} token, telemetry off"))


if __name__ == "__main__":
    asyncio.run(main())
