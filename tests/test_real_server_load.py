"""A real uvicorn server under wrk through key rotation and issuer outages, in seconds.

The tiny version of ``benchmarks/soak.py`` (phases of 1 s, 50 connections, a 2 s TTL):
every request carries a valid token, so every phase must end with no refusal, no
timeout and no failed connection. How fast it went is the benchmark's business, not
this test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.components import Component, find_executable

pytestmark = pytest.mark.load

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "benchmarks" / "soak.py"
WRK = Component(
    "wrk",
    find_executable("WRK", "wrk"),
    "`apt-get install wrk` (or `make wrk` as root), or WRK=/path/to/wrk",
)
WRK.skip_module_if_missing()

ROTATION = "key 2 published, its tokens start"
OUTAGES = ("JWKS answers 500 past the TTL", "still 500, key 2 tokens", "JWKS hangs per request")


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    wrk = WRK.require()
    report = tmp_path_factory.mktemp("soak") / "soak.json"
    environment = dict(os.environ, WRK=str(wrk))
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")])
    )
    completed = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, str(SOAK), "--tiny", "--json", str(report)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def phase(soak: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in soak["phases"] if p["name"] == name)
    return found


def test_the_soak_runs_every_phase_with_requests(soak: dict[str, Any]) -> None:
    assert len(soak["phases"]) == 8
    assert all(p["requests"] > 0 for p in soak["phases"]), soak["phases"]


def test_no_phase_answers_a_valid_token_with_anything_but_2xx(soak: dict[str, Any]) -> None:
    assert [p["non_2xx"] for p in soak["phases"]] == [0] * 8


def test_tokens_of_a_key_published_right_after_a_download_are_accepted(
    soak: dict[str, Any],
) -> None:
    rotation = phase(soak, ROTATION)
    assert rotation["requests"] > 0
    assert rotation["non_2xx"] == 0


def test_no_request_times_out_while_the_issuer_fails(soak: dict[str, Any]) -> None:
    assert [phase(soak, name)["timeouts"] for name in OUTAGES] == [0, 0, 0]


def test_no_connection_fails_in_any_phase(soak: dict[str, Any]) -> None:
    assert [p["socket_errors"] + p["timeouts"] for p in soak["phases"]] == [0] * 8
