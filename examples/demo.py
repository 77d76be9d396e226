"""``make demo``: the example API and a local dev issuer, on 127.0.0.1, no Auth0 tenant.

Starts the dev issuer (in this process) and ``examples/app.py`` (uvicorn, in a child
process configured through ``ISP_JWT_*`` variables), then prints where the docs are, how
to log in, and a ready ``curl`` with a machine token. Ctrl-C stops both.

Run: ``python examples/demo.py [--issuer-port 8765] [--app-port 8000]``.
"""

from __future__ import annotations

import argparse
import os
import signal
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

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30.0


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


def start_app(dev: RunningDevIssuer, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ISP_JWT_ISSUER": dev.issuer,
        "ISP_JWT_AUDIENCE": DEFAULT_AUDIENCE,
        "SWAGGER_CLIENT_ID": DEFAULT_CLIENT_ID,
    }
    command = [sys.executable, "-m", "uvicorn", "examples.app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    # A session of its own: Ctrl-C reaches this process only, which then stops the
    # app exactly once and waits for it.
    return subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)  # noqa: S603


def wait_until_serving(app: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if app.poll() is not None:
            return False
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
        else:
            return True
    return False


def stop(app: subprocess.Popen[bytes]) -> None:
    if app.poll() is None:
        app.send_signal(signal.SIGINT)
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
    # kill, timeout and service managers send SIGTERM: stop both as Ctrl-C does, so that
    # no example API is left holding its port.
    signal.signal(signal.SIGTERM, interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--issuer-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--app-port", type=int, default=8000)
    args = parser.parse_args(argv)

    config = DevIssuerConfig(port=args.issuer_port, key_file=default_key_file())
    with running(config) as dev:
        app_url = f"http://127.0.0.1:{args.app_port}"
        app = start_app(dev, args.app_port)
        try:
            if not wait_until_serving(app, app_url + "/openapi.json"):
                print(f"the example API did not start on {app_url}", file=sys.stderr)
                return 1
            announce(dev, app_url, machine_token(dev))
            app.wait()
        except KeyboardInterrupt:
            print("\nstopping the example API and the dev issuer", flush=True)
        finally:
            stop(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
