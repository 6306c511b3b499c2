"""Every hypercorn connection contains its own failures.

hypercorn's trio worker serves each connection with ``TCPServer.run`` under
``trio.serve_listeners``, which does not contain its handlers: an exception escaping one
connection ends the whole server. One was seen under load, when a client closed its
connection in the middle of a request body: hypercorn's error response raced another
send on the same stream (``trio.BusyResourceError``), and the server (ours behind the
front door, or the emulator) went down with it.

:func:`contain_connection_failures` wraps ``TCPServer.run`` once per process so that an
``Exception`` escaping a connection is logged (rate-limited) and ends that connection
only, as our front door does for its own. Cancellation passes through untouched. If
hypercorn's internals are not as expected, nothing is changed and a debug line says so.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["contain_connection_failures"]

log = logging.getLogger("tac_actors.server")

_MARK = "_tac_contained"
_LOG_EVERY = 10.0


def contain_connection_failures() -> None:
    """Install the wrapper (idempotent)."""
    try:
        from hypercorn.trio.tcp_server import TCPServer
    except ImportError:  # pragma: no cover - hypercorn is a dependency
        return
    run = getattr(TCPServer, "run", None)
    if run is None or getattr(run, _MARK, False):
        if run is None:
            log.debug("hypercorn's TCPServer has no run(): connections are not wrapped")
        return
    TCPServer.run = _contained(run)  # type: ignore[method-assign,assignment]


def _contained(run: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    next_report = [0.0]
    skipped = [0]

    @functools.wraps(run)
    async def contained_run(self: Any) -> None:
        try:
            await run(self)
        except Exception as exc:
            now = trio.current_time()
            if now < next_report[0]:
                skipped[0] += 1
                return
            next_report[0] = now + _LOG_EVERY
            more = f" ({skipped[0]} more since the last report)" if skipped[0] else ""
            skipped[0] = 0
            log.warning("an HTTP connection failed inside hypercorn (%s: %s): closed it%s",
                        type(exc).__name__, exc, more)

    setattr(contained_run, _MARK, True)
    return contained_run
