from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from tac_actors import TAC
from tac_actors.server import serve


@pytest.fixture(params=["fast", "hypercorn"], autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every server test runs on both WebSocket engines."""
    ENGINE[0] = request.param
    yield request.param
    ENGINE[0] = "fast"


ENGINE = ["fast"]


@asynccontextmanager
async def running(tac: TAC) -> AsyncIterator[str]:
    """Serve ``tac`` on an ephemeral loopback port (with the test's engine); yield its base
    URL. Leaving the block shuts the server down gracefully and waits for it."""
    stop = trio.Event()
    with trio.fail_after(30):  # a hang fails the test instead of blocking the suite
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                engine=ENGINE[0],  # type: ignore[arg-type]
                                                shutdown_trigger=stop.wait))
            try:
                yield binds[0]
            finally:
                stop.set()


def ws_url(base: str, path: str = "/ws") -> str:
    return base.replace("http://", "ws://") + path


Factory = Callable[[], TAC]
