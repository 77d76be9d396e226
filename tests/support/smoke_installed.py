"""Smoke test of an installed fastapi-isp-jwt: ``make dist-check`` runs it in a clean venv.

Run with ``python -I`` from outside the repository, so that the package comes from the
installed distribution and not from a source tree.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path


def main() -> int:
    import fastapi_isp_jwt
    from fastapi_isp_jwt.dev_issuer import create_app

    if Path(fastapi_isp_jwt.__file__).parent.parent.joinpath("pyproject.toml").exists():
        print(f"imported from a source tree, not an install: {fastapi_isp_jwt.__file__}")
        return 1
    if fastapi_isp_jwt.__version__ != version("fastapi-isp-jwt"):
        print(f"__version__ {fastapi_isp_jwt.__version__} != {version('fastapi-isp-jwt')}")
        return 1
    create_app()  # the dev issuer builds its app from the installed package
    command = Path(sys.executable).with_name("fastapi-isp-jwt")
    subprocess.run([command, "--help"], check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    print(f"fastapi-isp-jwt {fastapi_isp_jwt.__version__}: import, CLI and dev issuer work")
    return 0


if __name__ == "__main__":
    sys.exit(main())
