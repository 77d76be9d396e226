"""The one fake clock of the tests: time that moves only when a test (or a fake sleep) moves it.

Monotonic and wall-clock time are two instances: ``FakeClock()`` starts at 1000.0, as a
monotonic reading may; ``FakeClock(1_900_000_000.0)`` is a wall clock in 2030.
"""

from __future__ import annotations

import anyio.lowlevel


class FakeClock:
    """Call it for the time; `advance` or `set` it; hand `sleep` where code would wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, now: float) -> None:
        self.now = now

    def sleep(self, seconds: float) -> None:
        """Record the wait and let the time pass at once."""
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await anyio.lowlevel.checkpoint()
