"""Fairness, measured without a clock: how often another task gets to run.

``async with schedule_passes() as passes:`` runs a bystander task that counts each
time the scheduler lets it run while the block runs; ``passes.count`` afterwards says
how often that was. A loop that never reaches a schedule point leaves it at zero, one
that yields every N steps gives about steps / N, on any machine and under any clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["SchedulePasses", "schedule_passes"]


class SchedulePasses:
    """The count kept by :func:`schedule_passes`."""

    def __init__(self) -> None:
        self.count = 0
        self._running = True

    async def _tick(self) -> None:
        while self._running:
            self.count += 1
            await trio.lowlevel.cancel_shielded_checkpoint()


@asynccontextmanager
async def schedule_passes() -> AsyncIterator[SchedulePasses]:
    """Count the bystander's turns while the block runs (see the module docstring)."""
    passes = SchedulePasses()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(passes._tick)
        await trio.lowlevel.checkpoint()  # the bystander is running before the block
        passes.count = 0
        try:
            yield passes
        finally:
            passes._running = False
