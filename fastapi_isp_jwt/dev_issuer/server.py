"""Running the dev issuer with uvicorn on 127.0.0.1: in the foreground, or in a thread."""

from __future__ import annotations

import dataclasses
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from fastapi import FastAPI

from fastapi_isp_jwt.dev_issuer.app import create_app
from fastapi_isp_jwt.dev_issuer.config import DevIssuerConfig
from fastapi_isp_jwt.dev_issuer.discovery import JWKS_PATH, metadata_url
from fastapi_isp_jwt.dev_issuer.keyfile import load_or_create_key
from fastapi_isp_jwt.errors import ConfigurationError
from fastapi_isp_jwt.minting import SigningKey

__all__ = ["RunningDevIssuer", "banner", "running", "serve"]

HOST = "127.0.0.1"
_STARTUP_TIMEOUT = 10.0


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        # Listening before uvicorn starts: once the banner is out, connections queue
        # instead of being refused.
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    return sock


@contextmanager
def _bound(
    config: DevIssuerConfig,
    signing_key: SigningKey | None,
    clock: Callable[[], float],
    on_started: Callable[[], None] | None = None,
) -> Iterator[tuple[DevIssuerConfig, FastAPI, Any, list[socket.socket]]]:
    """The app and its uvicorn server, listening; port 0 becomes the port actually bound.

    ``on_started`` runs once the server serves, its signal handlers in place.
    """
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise ImportError(
            "the dev issuer needs uvicorn: pip install uvicorn "
            "(from a clone of the project: pip install -e '.[dev-issuer]')"
        ) from None
    sock = _bind(config.port)
    try:
        config = dataclasses.replace(config, port=sock.getsockname()[1])
        if signing_key is None and config.key_file is not None:
            signing_key = load_or_create_key(config.key_file)
        app = create_app(config, signing_key=signing_key, clock=clock)

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started and on_started is not None:
                    on_started()

        server = Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        yield config, app, server, [sock]
    finally:
        sock.close()


def banner(config: DevIssuerConfig) -> str:
    """What the dev issuer says when it starts; it names no secret."""
    clients = ", ".join(c.client_id for c in config.clients) or "none"
    users = ", ".join(u.username for u in config.users) or "none"
    key = str(config.key_file) if config.key_file else "in memory (new on every start)"
    return (
        "fastapi-isp-jwt dev issuer: FOR DEVELOPMENT ONLY. It signs tokens for anyone who\n"
        "knows its well-known credentials; never let a production service trust it.\n"
        f"  issuer    {config.issuer}\n"
        f"  metadata  {metadata_url(config)}\n"
        f"  clients   {clients}\n"
        f"  users     {users}\n"
        f"  key file  {key}\n"
    )


def serve(config: DevIssuerConfig, *, out: TextIO = sys.stderr) -> None:
    """Serve in the foreground until interrupted (Ctrl-C).

    The banner comes out once the server serves: a Ctrl-C from then on stops it (one sent
    while uvicorn was still starting could be taken by the event loop and lost).
    """

    def announce() -> None:
        out.write(banner(config))  # the config as bound: its port is the real one
        out.flush()

    with _bound(config, None, time.monotonic, announce) as (config, _, server, sockets):
        server.run(sockets=sockets)


@dataclass(frozen=True)
class RunningDevIssuer:
    """A dev issuer serving in a background thread (see `running`)."""

    config: DevIssuerConfig
    app: FastAPI

    @property
    def issuer(self) -> str:
        return self.config.issuer

    @property
    def token_url(self) -> str:
        return self.config.issuer + "oauth/token"

    @property
    def authorize_url(self) -> str:
        return self.config.issuer + "authorize"

    @property
    def jwks_url(self) -> str:
        return self.config.issuer + JWKS_PATH

    @property
    def metadata_url(self) -> str:
        """The RFC 8414 authorization server metadata."""
        return metadata_url(self.config)


@contextmanager
def running(
    config: DevIssuerConfig | None = None,
    *,
    signing_key: SigningKey | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[RunningDevIssuer]:
    """Serve the dev issuer in a thread for the duration of a ``with`` block.

    Port 0 picks a free port; the issuer URL then names the port actually bound.
    """
    bound = _bound(config or DevIssuerConfig(port=0), signing_key, clock)
    with bound as (config, app, server, sockets):
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": sockets}, name="isp-dev-issuer", daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + _STARTUP_TIMEOUT
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the dev issuer did not start")
                time.sleep(0.01)
            yield RunningDevIssuer(config=config, app=app)
        finally:
            server.should_exit = True
            thread.join()
