"""Load from ``wrk`` (Debian's package): one run against one URL, read back as numbers.

wrk is a C load generator with an event loop of its own, so on a 2-core machine it keeps
a Python server's one core busy while using a fraction of the other; a Python load
generator would be the bottleneck it measures. ``wrk_tokens.lua`` makes it send tokens
from a file in turn and print its summary as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk_tokens.lua"


class LoadError(Exception):
    """wrk is missing, failed, or said nothing the script could read."""


@dataclass(frozen=True)
class Load:
    """What one wrk run saw."""

    requests: int
    seconds: float
    non_2xx: int
    timeouts: int
    socket_errors: int  # connect, read and write errors
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.non_2xx + self.timeouts + self.socket_errors


def wrk_path() -> str:
    """``$WRK`` when set (as the tests' component rule reads it), else wrk from ``PATH``."""
    found = os.environ.get("WRK") or shutil.which("wrk")
    if found is None:
        raise LoadError("wrk is not installed: `apt-get install wrk` (or `make wrk` as root)")
    return found


class TokenFile:
    """Tokens written once to a temporary file for wrk to read; removed on close."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if not tokens:
            raise ValueError("a token file needs at least one token")
        self.count = len(tokens)
        with tempfile.NamedTemporaryFile(
            "w", prefix="bench-tokens-", suffix=".txt", delete=False
        ) as file:
            file.write("\n".join(tokens) + "\n")
        self.path = Path(file.name)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def run_wrk(
    url: str,
    tokens: TokenFile,
    *,
    seconds: float,
    connections: int,
    timeout: float = 10.0,
) -> Load:
    """``wrk`` with one thread and ``connections`` connections for ``seconds`` against ``url``."""
    if not url.startswith("http://127.0.0.1:"):
        raise LoadError(f"load goes to the loopback interface only, not {url}")
    command = [
        wrk_path(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        f"{timeout:g}s",
        "--script",
        str(SCRIPT),
        url,
        "--",
        str(tokens.path),
    ]
    completed = subprocess.run(  # noqa: S603 (wrk from PATH, fixed arguments)
        command, capture_output=True, text=True, timeout=seconds + timeout + 30, check=False
    )
    for line in completed.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            summary = json.loads(line.removeprefix("WRK_JSON "))
            return Load(
                requests=summary["requests"],
                seconds=summary["duration_us"] / 1e6,
                non_2xx=summary["status"],
                timeouts=summary["timeout"],
                socket_errors=summary["connect"] + summary["read"] + summary["write"],
                p50_ms=summary["p50_us"] / 1e3,
                p99_ms=summary["p99_us"] / 1e3,
                max_ms=summary["max_us"] / 1e3,
            )
    raise LoadError(f"wrk said nothing readable (exit {completed.returncode}): {completed.stderr}")
