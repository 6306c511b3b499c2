from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from tac_actors import TAC
from tac_actors.server import serve


@pytest.fixture(params=["fast", "hypercorn"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def running(tac: TAC, engine: str) -> AsyncIterator[str]:
    """Serve ``tac`` on an ephemeral loopback port; yield the ``ws://`` URL of /ws."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0, engine=engine,
                                            shutdown_trigger=stop.wait))
        try:
            yield binds[0].replace("http://", "ws://") + "/ws"
        finally:
            stop.set()
