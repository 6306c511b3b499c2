from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Deadlines pass in no real time while trio is idle; app code running in a thread or
    on asyncio keeps the run busy (see tac_actors.usercode)."""
    return trio.testing.MockClock(autojump_threshold=0)


class Signal:
    """A trio event that code on any thread or event loop can fire."""

    def __init__(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.event = trio.Event()
        self.count = 0

    def fire(self) -> None:
        self.count += 1
        self._token.run_sync_soon(self.event.set)

    async def wait(self) -> None:
        await self.event.wait()


@pytest.fixture
def signal() -> Callable[[], Signal]:
    return Signal
