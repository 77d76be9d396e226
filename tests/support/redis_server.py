"""A real ``redis-server`` on 127.0.0.1, started and stopped by the tests.

No persistence (nothing written to disk, nothing remembered across a restart), a free
port chosen once and kept across restarts, so clients see "the same server went away
and came back".
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import NoReturn

import pytest

INSTALL_HINT = "apt-get install redis-server"


def find_redis_server(
    environ: Mapping[str, str] = os.environ,
    which: Callable[[str], str | None] = shutil.which,
    skip: Callable[[str], NoReturn] = pytest.skip,
    fail: Callable[[str], NoReturn] = pytest.fail,
) -> str:
    """The ``redis-server`` executable; without it skip, or fail when ``CI=true``.

    A developer on a machine without Redis still runs everything else; CI must never
    pass by skipping the tests that need the real component.
    """
    executable = which("redis-server")
    if executable is not None:
        return executable
    message = f"redis-server not found ({INSTALL_HINT}): Redis replay store tests"
    if environ.get("CI", "").lower() == "true":
        fail(f"{message} cannot be skipped in CI")
    skip(f"{message} skipped")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """``with RedisServer(executable) as server:`` then ``server.url``; `restart` keeps the port."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="fastapi-isp-jwt-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 (the redis-server found on PATH, fixed arguments)
            [
                self.executable,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", self._directory.name),
                *("--daemonize", "no", "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_until_ready()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def _wait_until_ready(self, timeout: float = 10.0) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read() if self._process.stderr else b""
                raise RuntimeError(f"redis-server exited: {error.decode(errors='replace')}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._directory.cleanup()
