"""Waiting helpers for tests: bounded waits, and coroutines that must not wait at all.

The fake clock is in tests/support/clock.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def without_suspending(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end in one step; fail if it ever had to wait."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("the coroutine suspended")


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for work done by another thread (bounded, so a bug fails instead of hanging)."""
    pause = threading.Event()
    for _ in range(500):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("the condition never became true")
