"""The test matrix: every Python version the package claims, and its lowest dependencies.

``make test-matrix`` runs it, and CI runs it after ``make test``. Sessions:

- ``newest-3.10`` ... ``newest-3.13``: each Python with the newest release of everything;
- ``lowest``: the oldest Python with the lowest version each dependency allows
  (``--resolution lowest-direct``), so every floor in pyproject.toml is one that ran;
- ``httpx2``: the newest Python with ``httpx2`` installed, the transport Starlette's
  TestClient switches to when it is there.

The browser test is left to ``make test``: it runs once, not once per session.

Only interpreters already on this machine are used, never a downloaded one. One missing
on a developer's machine is skipped with a line saying so; under CI it fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
OLDEST, NEWEST = PYTHONS[0], PYTHONS[-1]

# Printed by each session, so its log says what it actually tested.
KEY_DISTRIBUTIONS = (
    "fastapi",
    "starlette",
    "pydantic",
    "pyjwt",
    "cryptography",
    "httpx",
    "httpx2",
    "cachetools",
    "anyio",
    "pytest",
)
PYTEST = ("python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not browser")

ROOT = Path(__file__).parent
LINKS = ROOT / ".nox" / "pythons"

# 2025.10.16: nox.options.download_python and the time each session took.
nox.needs_version = ">=2025.10.16"
nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = os.environ.get("CI", "").lower() == "true"
nox.options.sessions = [*(f"newest-{python}" for python in PYTHONS), "lowest", "httpx2"]
# uv resolves packages from PyPI but must never fetch an interpreter of its own.
os.environ["UV_PYTHON_DOWNLOADS"] = "never"
os.environ["UV_PYTHON_PREFERENCE"] = "only-system"


def _real_executable(candidate: str) -> str | None:
    """The interpreter ``candidate`` runs, or None if it does not run.

    A pyenv shim is on PATH for every installed version but fails for the ones that are
    not selected, and even a working one costs a shell script per start: link the real one.
    """
    try:
        probe = subprocess.run(  # noqa: S603 (an interpreter found on this machine)
            [candidate, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    return probe.stdout.strip() or None


def _pyenv_interpreters(version: str) -> list[Path]:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = root.glob(f"versions/{version}.*/bin/python{version}")
    return sorted(found, key=lambda path: [int(part) for part in path.parts[-3].split(".")])


def _link_interpreters() -> None:
    """Put one working ``pythonX.Y`` per version first on PATH, where nox looks for them."""
    LINKS.mkdir(parents=True, exist_ok=True)
    (LINKS.parent / ".gitignore").write_text("*\n", encoding="utf-8")
    for version in PYTHONS:
        link = LINKS / f"python{version}"
        link.unlink(missing_ok=True)
        on_path = shutil.which(f"python{version}")
        candidates = [*([on_path] if on_path else []), *map(str, _pyenv_interpreters(version))]
        working = next(filter(None, map(_real_executable, candidates)), None)
        if working is not None:
            link.symlink_to(working)
    os.environ["PATH"] = os.pathsep.join([str(LINKS), os.environ.get("PATH", "")])


_link_interpreters()


def _show_versions(session: nox.Session) -> None:
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m, platform, sys\n"
        "def v(name):\n"
        "    try: return m.version(name)\n"
        "    except m.PackageNotFoundError: return None\n"
        "found = ((name, v(name)) for name in sys.argv[1:])\n"
        "print('python', platform.python_version(),"
        " *(f'{name} {version}' for name, version in found if version), sep=', ')",
        *KEY_DISTRIBUTIONS,
        silent=False,
    )


def _test(session: nox.Session) -> None:
    _show_versions(session)
    started = time.monotonic()
    try:
        session.run(*PYTEST, *session.posargs)
    finally:
        # CI has one time budget for everything; each session's share shows in its log.
        session.log(f"{session.name}: the tests took {time.monotonic() - started:.0f} s")


@nox.session(python=PYTHONS)
def newest(session: nox.Session) -> None:
    """The whole suite on one Python with the newest release of every dependency."""
    session.install("-e", ".[test]")
    _test(session)


@nox.session(python=OLDEST)
def lowest(session: nox.Session) -> None:
    """The whole suite on the oldest Python with every direct dependency at its floor."""
    # Without the `interop` extra: mcp, authlib and joserfc need newer pydantic, PyJWT and
    # cryptography than the floors under test here; their tests skip in this session.
    session.install("--resolution", "lowest-direct", "-e", ".[test-tools]")
    _test(session)


@nox.session(python=NEWEST)
def httpx2(session: nox.Session) -> None:
    """The whole suite with Starlette's TestClient on httpx2, which it prefers when present."""
    session.install("-e", ".[test]", "httpx2")
    _test(session)
