"""``make demo`` (examples/demo.py): it serves the example API and stops all of it when asked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Demo:
    def __init__(self, tmp_path: Path) -> None:
        self.app_port = free_port()
        self.issuer_port = free_port()
        environment = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), environment.get("PYTHONPATH")])
        )
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            [
                sys.executable,
                "-u",
                "examples/demo.py",
                "--app-port",
                str(self.app_port),
                "--issuer-port",
                str(self.issuer_port),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for_announcement(self) -> list[str]:
        assert self.process.stdout is not None
        lines: list[str] = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                return lines
        raise AssertionError("the demo ended before it was ready: " + "".join(lines))

    def stopped_within(self, seconds: float) -> int:
        return self.process.wait(timeout=seconds)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    yield running
    if running.process.poll() is None:
        # SIGTERM, so that the demo stops its own child too; kill only what does not listen.
        running.process.terminate()
        try:
            running.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


def test_the_demo_serves_the_example_api_with_a_working_machine_token(demo: Demo) -> None:
    announced = demo.wait_for_announcement()
    curl = next(line for line in announced if "curl -H" in line)
    token = curl.split("Bearer ", 1)[1].split('"', 1)[0]
    response = httpx.get(
        f"http://127.0.0.1:{demo.app_port}/streams",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_the_demo_stops_the_example_api_with_itself(demo: Demo, stop_signal: int) -> None:
    demo.wait_for_announcement()
    assert listening(demo.app_port)
    demo.process.send_signal(stop_signal)
    assert demo.stopped_within(20) == 0
    deadline = time.monotonic() + 5
    while listening(demo.app_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listening(demo.app_port)
    assert not listening(demo.issuer_port)
