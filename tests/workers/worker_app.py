"""The app the worker tests serve: every reply starts with the worker's pid. ``slow``
holds its turn open after the first token until the worker gets SIGUSR1 (so a test can
start a drain while the turn runs)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import trio

from tac_actors import TAC, TACConfig

tac = TAC(TACConfig(shutdown_grace=10.0))


@tac.on_message_ready
async def on_message(message: str, session: object, memory: object) -> AsyncIterator[str]:
    if message != "slow":
        yield f"{os.getpid()}: "
        yield message
        return
    with trio.open_signal_receiver(signal.SIGUSR1) as released:
        yield f"{os.getpid()}: "
        async for _ in released:
            break
    yield message
