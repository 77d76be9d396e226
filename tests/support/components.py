"""Real components the suite starts (a browser, a Redis server): found, or their tests stop.

A developer machine may lack one: its tests are then skipped with one line saying how to
get it, so that ``make test`` passes wherever Python and make exist. Under CI (``CI=true``)
the same absence fails them, so that a pipeline never goes green by skipping what it was
meant to run.

A test module declares the component once and uses both halves of the rule::

    CHROMIUM = Component("chromium", find_executable("CHROMIUM", "chromium"), "install ...")
    CHROMIUM.skip_module_if_missing()  # one line for the whole module, not one per test


    @pytest.fixture(scope="module", autouse=True)
    def chromium() -> Path:
        return CHROMIUM.require()  # fails each selected test under CI
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Component", "find_executable", "in_ci"]


def in_ci() -> bool:
    """Whether the suite runs under CI, which CI services announce with ``CI=true``."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def find_executable(override_variable: str, *names: str) -> Path | None:
    """The program named by ``$override_variable``, else the first of ``names`` on ``PATH``."""
    chosen = os.environ.get(override_variable)
    if chosen:
        return Path(chosen) if Path(chosen).is_file() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


@dataclass(frozen=True)
class Component:
    """A program the tests of one module need, and how a developer gets it."""

    name: str
    path: Path | None
    how_to_get: str

    @property
    def missing_message(self) -> str:
        return f"{self.name} not found: {self.how_to_get}"

    def skip_module_if_missing(self) -> None:
        """Skip the importing module with one line, unless under CI (where `require` fails).

        Failing here would fail the collection even when the module's tests are deselected
        (``-m "not browser"``); failing in a fixture fails only the tests that run.
        """
        if self.path is None and not in_ci():
            pytest.skip(self.missing_message, allow_module_level=True)

    def require(self) -> Path:
        """The component's path; without it, fail under CI and skip elsewhere."""
        if self.path is not None:
            return self.path
        if in_ci():
            pytest.fail(
                f"{self.missing_message} (CI=true: a missing component fails the run)",
                pytrace=False,
            )
        pytest.skip(self.missing_message)
