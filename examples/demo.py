"""``make demo``: the example API and a local dev issuer, on 127.0.0.1, no Auth0 tenant.

Starts the dev issuer (in this process) and ``examples/app.py`` (uvicorn, in a child
process configured through ``ISP_JWT_*`` variables), then prints where the docs are, how
to log in, and a ready ``curl`` with a machine token. Ctrl-C stops both.

The demo binds the example API's port itself and hands the socket to uvicorn, so whatever
answers there is the demo's own: a port another program holds is named, with how to choose
another, and the demo exits with status 1 before printing anything to try.

Run: ``python examples/demo.py [--issuer-port 8765] [--app-port 8000]``
(``make demo PORT=8001 ISSUER_PORT=8766``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fastapi_isp_jwt.dev_issuer import (
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    DEFAULT_USERNAME,
    DevIssuerConfig,
    RunningDevIssuer,
    default_key_file,
    running,
)
from fastapi_isp_jwt.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
# The title of examples/app.py: what the demo expects to find answering on its port.
APP_TITLE = "Streams API"


class PortBusy(Exception):
    """Another program listens on a port the demo was asked to use."""

    def __init__(self, port: int, make_variable: str, option: str) -> None:
        alternative = free_port_after(port)
        super().__init__(
            f"port {port} is busy: another program listens on {HOST}:{port}.\n"
            f"Choose another: make demo {make_variable}={alternative} "
            f"(or: python examples/demo.py {option} {alternative})"
        )


def port_is_free(port: int) -> bool:
    with contextlib.suppress(OSError), listen_on(port):
        return True
    return False


def free_port_after(port: int) -> int:
    """A port to suggest instead of ``port``: the next one free, else any free one."""
    for candidate in range(port + 1, min(port + 100, 65536)):
        if port_is_free(candidate):
            return candidate
    with listen_on(0) as any_free:
        chosen: int = any_free.getsockname()[1]
    return chosen


def listen_on(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: any free port); OSError when taken."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Lets a restarted demo reuse its port at once; on Linux it never shares a port
        # that another program is listening on.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def machine_token(dev: RunningDevIssuer) -> str:
    """A Client Credentials token, fetched from the dev issuer as any client would."""
    response = httpx.post(
        dev.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "audience": DEFAULT_AUDIENCE,
        },
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def start_app(dev: RunningDevIssuer, listener: socket.socket) -> subprocess.Popen[bytes]:
    """examples/app.py under uvicorn, serving on ``listener``, which the demo bound."""
    env = {
        **os.environ,
        "ISP_JWT_ISSUER": dev.issuer,
        "ISP_JWT_AUDIENCE": DEFAULT_AUDIENCE,
        "SWAGGER_CLIENT_ID": DEFAULT_CLIENT_ID,
    }
    command = [sys.executable, "-m", "uvicorn", "examples.app:app"]
    command += ["--fd", str(listener.fileno()), "--log-level", "warning"]
    # A session of its own: Ctrl-C reaches this process only, which then stops the
    # app exactly once and waits for it.
    return subprocess.Popen(  # noqa: S603
        command, cwd=REPO, env=env, start_new_session=True, pass_fds=[listener.fileno()]
    )


def serves_the_example_api(app: subprocess.Popen[bytes], app_url: str) -> bool:
    """Whether the demo's own child answers on ``app_url`` with the example API."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if app.poll() is not None:
            return False
        try:
            response = httpx.get(app_url + "/openapi.json", timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        # Only the child holds the socket, yet check what answers before pointing at it.
        title = response.json().get("info", {}).get("title") if response.is_success else None
        return title == APP_TITLE and app.poll() is None
    return False


def stop(app: subprocess.Popen[bytes]) -> None:
    if app.poll() is None:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


def announce(dev: RunningDevIssuer, app_url: str, token: str) -> None:
    print(
        "\n"
        "fastapi-isp-jwt demo (development only: the dev issuer trusts anyone who knows\n"
        "its published credentials)\n"
        f"  API docs    {app_url}/docs\n"
        f"              Authorize, then log in as {DEFAULT_USERNAME}"
        f" / password {DEFAULT_PASSWORD}\n"
        f"  dev issuer  {dev.issuer}\n"
        "\n"
        f"A machine token for {DEFAULT_CLIENT_ID} (scopes streams:read streams:write "
        "streams:delete):\n"
        f'  curl -H "Authorization: Bearer {token}" {app_url}/streams\n'
        "\n"
        "Press Ctrl-C to stop both.",
        flush=True,
    )


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored:
    # Ctrl-C (or kill -INT) must stop the demo wherever it runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # kill, timeout and service managers send SIGTERM: stop both as Ctrl-C does, so that
    # no example API is left holding its port.
    signal.signal(signal.SIGTERM, interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--issuer-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--app-port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        return run_demo(args.issuer_port, args.app_port)
    except (PortBusy, ConfigurationError) as cannot_start:
        print(f"demo: {cannot_start}", file=sys.stderr)
        return 1


def run_demo(issuer_port: int, app_port: int) -> int:
    with contextlib.ExitStack() as stack:
        try:
            listener = stack.enter_context(listen_on(app_port))
        except OSError:
            raise PortBusy(app_port, "PORT", "--app-port") from None
        app_url = f"http://{HOST}:{listener.getsockname()[1]}"
        config = DevIssuerConfig(port=issuer_port, key_file=default_key_file())
        try:
            dev = stack.enter_context(running(config))
        except ConfigurationError:
            if port_is_free(issuer_port):
                raise  # not the port: main() prints why
            raise PortBusy(issuer_port, "ISSUER_PORT", "--issuer-port") from None
        app = start_app(dev, listener)
        listener.close()  # the child serves it now
        try:
            if not serves_the_example_api(app, app_url):
                print(f"demo: the example API did not start on {app_url}", file=sys.stderr)
                return 1
            announce(dev, app_url, machine_token(dev))
            code = app.wait()
            print(f"demo: the example API stopped by itself (exit code {code})", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nstopping the example API and the dev issuer", flush=True)
        finally:
            stop(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
