"""``make demo`` (examples/demo.py): it serves the example API, refuses ports it cannot have,
and stops all of it when asked."""

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


def ignore_sigint() -> None:
    """What a shell does to a job it starts in the background (``make demo &``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Demo:
    def __init__(
        self,
        tmp_path: Path,
        *,
        app_port: int | None = None,
        issuer_port: int | None = None,
        as_background_job: bool = False,
    ) -> None:
        self.app_port = app_port or free_port()
        self.issuer_port = issuer_port or free_port()
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
            preexec_fn=ignore_sigint if as_background_job else None,
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

    def output_when_ended(self) -> str:
        output, _ = self.process.communicate(timeout=30)
        return output

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGTERM, so that the demo stops its own child too; kill only what does not listen.
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        yield other_program.getsockname()[1]


@pytest.fixture
def refused() -> Iterator[list[Demo]]:
    """Demos expected to refuse to start, stopped anyway if they do not."""
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.stop()


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
    assert wait_until_closed(demo.app_port)
    assert not listening(demo.issuer_port)


def wait_until_closed(port: int) -> bool:
    deadline = time.monotonic() + 5
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not listening(port)


def test_ctrl_c_stops_the_demo_run_as_a_background_job(tmp_path: Path) -> None:
    demo = Demo(tmp_path, as_background_job=True)
    try:
        demo.wait_for_announcement()
        demo.process.send_signal(signal.SIGINT)
        assert demo.stopped_within(20) == 0
        assert wait_until_closed(demo.app_port)
    finally:
        demo.stop()


def test_a_taken_app_port_is_named_with_how_to_choose_another(
    tmp_path: Path, taken_port: int, refused: list[Demo]
) -> None:
    demo = Demo(tmp_path, app_port=taken_port)
    refused.append(demo)
    output = demo.output_when_ended()
    assert demo.process.returncode == 1
    assert f"port {taken_port} is busy" in output
    assert "make demo PORT=" in output


def test_a_taken_app_port_gets_no_curl_pointing_at_the_other_program(
    tmp_path: Path, taken_port: int, refused: list[Demo]
) -> None:
    demo = Demo(tmp_path, app_port=taken_port)
    refused.append(demo)
    assert "curl" not in demo.output_when_ended()


def test_a_taken_issuer_port_is_named_without_a_traceback(
    tmp_path: Path, taken_port: int, refused: list[Demo]
) -> None:
    demo = Demo(tmp_path, issuer_port=taken_port)
    refused.append(demo)
    output = demo.output_when_ended()
    assert demo.process.returncode == 1
    assert f"port {taken_port} is busy" in output
    assert "make demo ISSUER_PORT=" in output
    assert "Traceback" not in output


def test_a_refused_demo_leaves_no_example_api_behind(
    tmp_path: Path, taken_port: int, refused: list[Demo]
) -> None:
    demo = Demo(tmp_path, issuer_port=taken_port)
    refused.append(demo)
    demo.output_when_ended()
    assert not listening(demo.app_port)
