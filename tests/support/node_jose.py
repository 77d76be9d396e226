"""panva's ``jose`` for Node as a producer and verifier of tokens.

The package comes from the npm registry, installed by ``make node-jose`` (the tests reach no
network); ``node_jose.mjs`` is copied next to it and answers a whole batch per run, since each
start of Node costs half a second. Node is a component (`tests.support.components`): skipped
with one line on a machine without it, a failure under CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.components import Component, find_executable
from tests.support.producers import VARIANTS, Minted, Variant

__all__ = ["JOSE_VARIANTS", "NODE", "NodeJose"]

NODE = Component("node", find_executable("NODE", "node"), "install Node.js (apt install nodejs)")

# jose 6 signs every algorithm here but Ed448 (under either spelling): WebCrypto has no Ed448.
JOSE_VARIANTS: tuple[Variant, ...] = tuple(v for v in VARIANTS if v.crv != "Ed448")

_SCRIPT = Path(__file__).with_name("node_jose.mjs")
_INSTALL_TIMEOUT = 300.0
_RUN_TIMEOUT = 120.0


class NodeJose:
    """Runs ``node_jose.mjs`` with the ``jose`` installed in ``directory``."""

    def __init__(self, node: Path, directory: Path) -> None:
        self._node = node
        self._directory = directory
        # An ES module finds its imports beside itself: the script runs from jose's folder.
        shutil.copy(_SCRIPT, directory / _SCRIPT.name)

    @property
    def version(self) -> str:
        manifest = self._directory / "node_modules" / "jose" / "package.json"
        version: str = json.loads(manifest.read_text())["version"]
        return version

    def mint(self, variants: Sequence[Variant], claims: Mapping[str, Any]) -> list[Minted | str]:
        """One token per variant, each with a key of its own; a string says why none."""
        request = {"mint": {"claims": dict(claims), "variants": [_wire(v) for v in variants]}}
        return [
            answer["error"] if "error" in answer else Minted(answer["token"], answer["jwks"])
            for answer in self._run(request)
        ]

    def verify(
        self, items: Sequence[tuple[str, Mapping[str, Any], Variant]]
    ) -> list[dict[str, Any] | str]:
        """The claims of each (token, key set, variant), or a string saying why not."""
        request = {
            "verify": [
                {"token": token, "jwks": dict(jwks), "alg": variant.alg}
                for token, jwks, variant in items
            ]
        }
        return [
            answer["error"] if "error" in answer else dict(answer["claims"])
            for answer in self._run(request)
        ]

    def _run(self, request: Mapping[str, Any]) -> list[dict[str, Any]]:
        done = subprocess.run(  # noqa: S603 - a fixed command line, the request on stdin
            [str(self._node), _SCRIPT.name],
            cwd=self._directory,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=_RUN_TIMEOUT,
            check=True,
        )
        answers: list[dict[str, Any]] = json.loads(done.stdout)
        return answers


def _wire(variant: Variant) -> dict[str, str | None]:
    return {"alg": variant.alg, "crv": variant.crv}
