"""One uvicorn server process on 127.0.0.1, serving an app of ``served_apps.py``.

uvicorn runs with one worker, and with uvloop and httptools when they are installed
(``pip install 'uvicorn[standard]'``, part of the ``bench`` extra); otherwise with the
asyncio loop and h11, which `ServerProcess.flavour` says. The listening socket is bound
by uvicorn on a port found free just before (not handed over with ``--fd``: uvicorn
takes such a socket for a Unix one and leaves Nagle's algorithm on, which holds every
answer ~40 ms on loopback).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

BENCHMARKS = Path(__file__).resolve().parent
CHECKOUT = BENCHMARKS.parent
STARTUP_LIMIT = 60.0


def server_flavour() -> tuple[str, str]:
    """The event loop and HTTP parser uvicorn gets: the fast ones when installed."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


@functools.cache
def split_cores() -> tuple[set[int], set[int]] | None:
    """The core the server gets to itself, and the cores left for the load generator.

    None with fewer than two cores (or without ``sched_setaffinity``): nothing is pinned.
    Pinned, the server never shares its core with ``wrk`` or the measuring process, so a
    round measures the server rather than where the scheduler happened to put things.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return {cores[-1]}, set(cores[:-1])


def pin_load_generator() -> None:
    """Keep this process (and the ``wrk`` it starts) off the server's core."""
    cores = split_cores()
    if cores is not None:
        os.sched_setaffinity(0, cores[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """``uvicorn --factory served_apps:build`` with ``environment`` added to its own."""

    def __init__(self, environment: dict[str, str], *, backlog: int = 2048) -> None:
        self.port = _free_port()
        self.flavour = server_flavour()
        loop, http = self.flavour
        env = dict(os.environ)
        env.update(environment)
        # The checkout's package and the benchmark modules, whether installed or not.
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(BENCHMARKS), str(CHECKOUT), env.get("PYTHONPATH")])
        )
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "served_apps:build",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--loop",
            loop,
            "--http",
            http,
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            str(backlog),
        ]
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            command, cwd=BENCHMARKS, env=env
        )
        cores = split_cores()
        if cores is not None:
            os.sched_setaffinity(self.process.pid, cores[0])

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (user and system), if readable.

        What the server itself spent, whatever else the machine (or the host under a
        virtual machine) did meanwhile: time the core was taken away is not counted.
        """
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            return None
        # Fields 14 and 15 of proc(5), counted after the command name: utime, stime.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, path: str, headers: dict[str, str]) -> httpx.Response:
        """The first answer of ``path``, once the app has started."""
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server process ended (exit {self.process.returncode})")
            try:
                return httpx.get(self.url(path), headers=headers, timeout=5.0)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
