"""Interleaved rounds: every case runs once per round, in a shuffled order, then medians.

Interleaving spreads whatever the machine does meanwhile (frequency changes, another
process) over all cases alike, instead of charging it to whichever case ran at that
moment. Each case prepares its inputs before the clock starts, so minting, slicing and
parsing that belong to the setup never count.

Two clocks are offered. ``wall`` is elapsed time. ``cpu`` is the CPU time of the
measuring thread: every case here is CPU-bound work in this one thread (the apps run
in-process, and no key download happens once the rounds start), so on a quiet machine
the two agree, and on a busy one ``cpu`` leaves out the time other processes held the
cores.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}


@dataclass
class Case:
    """One measured operation.

    ``prepare(n)`` returns the ``n`` inputs of one batch (untimed); ``run(inputs)``
    performs the operation once per input (timed).
    """

    key: str
    label: str
    prepare: Callable[[int], Sequence[Any]]
    run: Callable[[Sequence[Any]], Awaitable[None]]
    batch: int
    seconds_per_op: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds_per_op)

    @property
    def spread(self) -> tuple[float, float]:
        """The first and third quartiles of the per-round times."""
        if len(self.seconds_per_op) < 2:
            return self.median, self.median
        quartiles = statistics.quantiles(self.seconds_per_op, n=4, method="inclusive")
        return quartiles[0], quartiles[2]


async def run_rounds(
    cases: Sequence[Case],
    *,
    rounds: int,
    warmup_rounds: int = 1,
    clock: Callable[[], float] = time.thread_time,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run ``warmup_rounds`` rounds whose times are dropped, then ``rounds`` recorded ones."""
    # Everything built so far (apps, token lists) is left out of every later collection,
    # so the collection before each batch only walks what the previous batch left behind.
    gc.collect()
    gc.freeze()
    shuffler = random.Random(seed)
    order = list(cases)
    total = warmup_rounds + rounds
    for number in range(total):
        shuffler.shuffle(order)
        for case in order:
            inputs = case.prepare(case.batch)
            # Garbage left by the previous case is collected here, not on this case's clock.
            gc.collect()
            started = clock()
            await case.run(inputs)
            elapsed = clock() - started
            if number >= warmup_rounds:
                case.seconds_per_op.append(elapsed / len(inputs))
        if progress is not None:
            progress(number + 1, total)
    gc.unfreeze()
