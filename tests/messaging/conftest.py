"""Helpers for the messaging tests: an emulator-backed TAC, in-process or served."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio

from tac_actors import TAC
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.runtime import Runtime
from tac_actors.server import serve

AUTH_TOKEN = "test-auth-token"
CONFIGURATION = "conv_configuration_example"


def make_tac(emu: Emulator, **overrides: Any) -> TAC:
    """A TAC in Orchestrator mode against ``emu``, memory off, signatures on."""
    values: dict[str, Any] = {
        "conversation_configuration_id": CONFIGURATION,
        "auth_token": AUTH_TOKEN,
        "whatsapp_number": "whatsapp:+15550000000",
        "rcs_sender_id": "rcs:tac_agent",
    }
    options = overrides.pop("tac_options", {})
    values.update(overrides)
    return TAC(emu.tac_config(**values), memory_mode=options.pop("memory_mode", "never"),
               **options)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """An emulator reached through its in-process transport (MockClock-safe), closed
    after the test."""
    with Emulator(seed=EXAMPLE_SEED) as emulator:
        yield emulator


@asynccontextmanager
async def in_process(emu: Emulator, tac: TAC) -> AsyncIterator[Runtime]:
    """Run ``tac``'s runtime against ``emu`` without sockets."""
    async with Runtime.open(tac, transport=emu.transport()) as runtime:
        yield runtime
        await runtime.shutdown()


@asynccontextmanager
async def served(tac: TAC) -> AsyncIterator[str]:
    """Serve ``tac`` on an ephemeral loopback port; yield its base URL."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                            shutdown_trigger=stop.wait))
        try:
            yield binds[0]
        finally:
            stop.set()
