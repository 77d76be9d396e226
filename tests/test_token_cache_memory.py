"""The verified-token cache holds memory to its byte budget, measured as the process's RSS.

Each case runs `benchmarks/cache_memory.py` in a process of its own: 10,000 distinct tokens,
each verified twice (so every one is offered to the cache), then the growth of the resident
set. Without the byte budget, the heavy case grew by over 200 MiB and the large one by over
500 MiB (the figures are in docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc"),
]


def probe(shape: str, cache_bytes: int) -> dict[str, int]:
    completed = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            str(ROOT / "benchmarks" / "cache_memory.py"),
            shape,
            "10000",
            str(cache_bytes),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    report: dict[str, int] = json.loads(completed.stdout)
    return report


def test_heavy_tokens_stay_within_the_byte_budget() -> None:
    report = probe("heavy", 8 * MiB)
    assert report["remembered"] > 0
    assert report["growth"] < 8 * MiB + 16 * MiB


def test_tokens_over_the_remembered_size_take_no_memory_however_many() -> None:
    report = probe("large", 32 * MiB)
    assert report["token_bytes"] > 4096
    assert report["remembered"] == 0
    assert report["growth"] < 16 * MiB


def traced_bytes_per_remembered_token(count: int) -> tuple[float, float]:
    """Bytes traced per token for ``count`` typical tokens remembered, and the cache's
    own estimate of them. In-process: tracemalloc counts what the cache keeps alive."""
    import gc
    import tracemalloc

    import httpx

    from fastapi_isp_jwt import Settings, Verifier
    from fastapi_isp_jwt.testing import TestIssuer

    issuer = TestIssuer("https://tenant.example/", algorithm="EdDSA")
    jwks = issuer.jwks()
    verifier = Verifier(
        Settings(issuer=issuer.issuer, audience=issuer.audience, algorithms=("EdDSA",)),
        sync_http_client=httpx.Client(
            transport=httpx.MockTransport(lambda _: httpx.Response(200, json=jwks))
        ),
    )
    tokens = [issuer.mint(f"auth0|user-{n}", ["streams:read"]) for n in range(count)]
    verifier.verify_sync(issuer.mint())  # keys loaded
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for token in tokens:
            verifier.verify_sync(token)  # first sight: verified, not remembered
            verifier.verify_sync(token)  # second sight: remembered
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    entries, weight = verifier.remembered_tokens
    assert entries == count
    return (after - before) / entries, weight / entries


def test_a_remembered_typical_token_costs_under_a_kibibyte() -> None:
    traced, _ = traced_bytes_per_remembered_token(10_000)  # the benchmark's count
    assert traced < 1024


def test_the_byte_budget_counts_at_least_what_an_entry_really_holds() -> None:
    traced, estimated = traced_bytes_per_remembered_token(3_000)  # a dict just grown
    assert estimated >= traced
