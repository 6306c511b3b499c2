"""Serve a :class:`~tac_actors.TAC` with hypercorn's trio worker, inside your nursery.

``await nursery.start(serve, tac, "127.0.0.1", 0)`` returns the bound URLs. Shutdown is
graceful: when ``shutdown_trigger`` returns, conversations are drained first (running
turns finish within ``config.shutdown_grace``, sockets are closed with 1001), then
hypercorn stops.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable

import hypercorn.config
import hypercorn.trio
import trio

from tac_actors.server.app import create_app, state_of
from tac_actors.tac import TAC

__all__ = ["hypercorn_config", "serve"]

log = logging.getLogger("tac_actors.server")


def hypercorn_config(tac: TAC, host: str, port: int) -> hypercorn.config.Config:
    """The hypercorn settings we run with (see the comments for why)."""
    config = hypercorn.config.Config()
    config.bind = [f"{host}:{port}"]
    config.backlog = 4096  # the default of 100 slows bursts of calls
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    # our own frame limit answers 1009 with a log line; let bigger frames reach it
    config.websocket_max_message_size = max(tac.config.max_frame_bytes * 4, 1 << 20)
    config.graceful_timeout = tac.config.shutdown_grace + 2.0
    # no pings: hypercorn never checks pongs, and its ping task outlives a closed socket
    # (shutdown then waits the whole graceful_timeout). No read timeout either: a caller
    # who says nothing for minutes sends nothing. Quiet calls end by the idle_timeout
    # policy when one is set.
    config.websocket_ping_interval = None
    config.read_timeout = None
    return config


async def serve(tac: TAC, host: str = "0.0.0.0", port: int = 8000, *,
                shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``tac`` until ``shutdown_trigger`` returns (or forever)."""
    app = create_app(tac)
    config = hypercorn_config(tac, host, port)

    async def trigger() -> None:
        if shutdown_trigger is None:
            await trio.sleep_forever()
        else:
            await shutdown_trigger()
        log.info("shutting down: draining conversations")
        await state_of(app).shutdown()

    gc.freeze()  # what start-up allocated never needs a cyclic collection again
    await hypercorn.trio.serve(app, config, shutdown_trigger=trigger, task_status=task_status)
