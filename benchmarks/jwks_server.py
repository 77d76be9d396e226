"""The one local issuer every contender is pointed at: the tests' issuer server, as the tenant.

The server is tests/support/issuer_server.py, shared with the test suite so that the
repository has one loopback issuer. Benchmarks run as scripts from a checkout, so the
checkout's root is put on the import path (where the benchmark smoke test's PYTHONPATH
puts it too) to reach it.

Here it publishes the documents of the tenant being imitated (``iss`` and ``jwks_uri`` name
``https://istreamplanet.auth0.com/``) and counts every JWKS download, which is how the
cold-cache measurement sees fetches. ``Cache-Control: max-age=600`` keeps every
contender's key cache steady for the length of a run, so no timed round pays for a
refresh that another contender would not pay for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_CHECKOUT = str(Path(__file__).resolve().parent.parent)
if _CHECKOUT not in sys.path:
    # Right after the script's own directory, as PYTHONPATH would put it.
    sys.path.insert(1, _CHECKOUT)

from tests.support.issuer_server import JWKS_PATH, IssuerServer  # noqa: E402

STEADY_CACHE = "public, max-age=600"


class LocalIssuerServer(IssuerServer):
    """Serves ``jwks()`` at :attr:`jwks_url`, and discovery metadata naming ``issuer``.

    Use it as a context manager; the port is chosen by the system.
    """

    def __init__(self, issuer: str, jwks: Callable[[], dict[str, Any]]) -> None:
        super().__init__(jwks, cache_control=STEADY_CACHE)
        self.issuer = issuer
        self.serve_discovery(self._tenant_discovery)

    def local_url(self, url: str) -> str:
        """Map a URL on the imitated tenant to the same path on this server."""
        if not url.startswith(self.issuer):
            raise ValueError(f"{url!r} is not a URL of {self.issuer}")
        return self.url + url[len(self.issuer) :]

    def _tenant_discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + JWKS_PATH.lstrip("/"),
            "id_token_signing_alg_values_supported": ["RS256"],
        }
