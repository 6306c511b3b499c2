"""The issue's first symptom, end to end: an asyncio callback under the served engine (both
WebSocket engines) answers every turn, instead of "no running event loop"."""

from __future__ import annotations

import asyncio
from typing import Any

import trio

from tac_actors import TAC, TACConfig
from tac_actors.testing import connect_caller

from .conftest import running, ws_url


async def test_asyncio_callback_answers_every_turn_when_served() -> None:
    tac = TAC(TACConfig(), asyncio=True)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> Any:
        await asyncio.sleep(0.001)
        first, second = await asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))
        for token in (first, second, f" {message}"):
            await asyncio.sleep(0)
            yield token

    with trio.fail_after(30):
        async with running(tac) as base, connect_caller(ws_url(base)) as caller:
            for turn in range(3):
                await caller.say(f"turn {turn}")
                assert (await caller.read_reply()).text == f"ab turn {turn}"
