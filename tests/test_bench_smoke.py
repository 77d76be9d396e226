"""The benchmark script runs and reports every row: proof that it works, not of any speed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"

VERIFICATION_ROWS = (
    "`cryptography` RS256 signature check (RSA-2048)",
    "base64url + JSON of the token's parts",
    "**floor**: parse + signature check",
    "`jwt.decode`, pre-loaded key",
    "`PyJWKClient` lookup + `jwt.decode`",
    "`await auth.verify(t)`, a new token each call",
    "`await auth.verify(t)`, the same token again",
)
MEASURED_ROUTE_ROWS = (
    "no auth",
    "(reference) `Depends` returning a ready `Principal`, no check",
    "(reference) least a cache hit costs, keyed by SHA-256: header scan, digest, lookup",
    "(reference) the same keyed by the token itself, with no digest",
    "hand-written PyJWT dependency",
    "fastapi-isp-jwt, a new token each request",
    "fastapi-isp-jwt, one token reused",
)
PEER_ROWS = ("fastapi-auth0", "fastapi-cloudauth", "auth0-fastapi-api")
TARGET_ROWS = (
    "`auth.verify`, new token / `jwt.decode`",
    "`auth.verify`, same token again / `jwt.decode`",
    "route with this library, new token / hand-written PyJWT dependency",
    "route with this library, one token reused / no auth",
    "JWKS fetches for 100 concurrent requests, cold cache",
)


def run_script(script: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    # The package is imported from this checkout whether or not it is installed.
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")])
    )
    return subprocess.run(  # noqa: S603 (the interpreter running these tests, fixed arguments)
        [sys.executable, str(script), *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    return run_script(BENCH, "--quick")


def table_rows(output: str) -> dict[str, list[str]]:
    """Markdown table rows of the output, by their first cell (header rules left out)."""
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_quick_run_exits_successfully(quick_run: subprocess.CompletedProcess[str]) -> None:
    assert quick_run.returncode == 0, quick_run.stderr


def test_quick_run_times_every_verification_row(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    rows = table_rows(quick_run.stdout)
    for label in VERIFICATION_ROWS:
        assert label in rows, label
        assert is_number(rows[label][0]), (label, rows[label])


def test_quick_run_times_every_end_to_end_row_except_peers(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    rows = table_rows(quick_run.stdout)
    for label in MEASURED_ROUTE_ROWS:
        assert label in rows, label
        assert is_number(rows[label][0]), (label, rows[label])


def test_quick_run_lists_the_peer_rows_as_not_run(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    rows = table_rows(quick_run.stdout)
    for label in PEER_ROWS:
        assert rows[label][0].startswith("not run"), (label, rows[label])


def test_quick_run_gives_every_target_a_measurement_and_a_verdict(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    rows = table_rows(quick_run.stdout)
    for label in TARGET_ROWS:
        measured, _target, verdict = rows[label]
        assert is_number(measured), (label, rows[label])
        assert verdict in ("pass", "FAIL"), (label, rows[label])


def test_quick_run_reports_cold_cache_fetches_and_memory_growth(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    assert "Cold cache: 100 concurrent requests" in quick_run.stdout
    assert "100 x 200" in quick_run.stdout
    assert "RSS growth after verifying 2,000 distinct tokens (twice each)" in quick_run.stdout


def test_quick_run_sets_the_reused_token_route_beside_its_references(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    line = next(
        line
        for line in quick_run.stdout.splitlines()
        if line.startswith("One token reused, against no auth:")
    )
    for reference in (
        "a bare `Depends`",
        "least cache hit keyed by SHA-256",
        "keyed by the token itself",
        "this library",
    ):
        ratio = line.split(reference + " ", 1)[1].split(",")[0].rstrip(".")
        assert is_number(ratio), (reference, line)


def test_the_in_process_pairs_script_gives_both_ratios() -> None:
    completed = run_script(ROOT / "benchmarks" / "asgi_pairs.py", "--rounds", "1")
    assert completed.returncode == 0, completed.stderr
    rows = {
        line.split("|")[1].strip(): line.split("|")[4].strip()
        for line in completed.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| pair")
    }
    assert set(rows) == {
        "one token reused / bare Depends",
        "a new token / floor",
        "(reference) bare Depends taking JWTAuth's parameters / bare Depends",
        "(reference) least a cache hit keyed by SHA-256 costs / bare Depends",
    }
    assert all(is_number(ratio) and float(ratio) > 0 for ratio in rows.values())
