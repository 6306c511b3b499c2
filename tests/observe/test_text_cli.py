"""``tac-actors text`` end to end over loopback: a server in Orchestrator mode against a
running emulator, texted over HTTP as another process would (real clock: every step is
under ``fail_after``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from tac_actors import TAC
from tac_actors.emulator import Emulator
from tac_actors.emulator.seed import EXAMPLE_SEED
from tac_actors.server import serve
from tac_actors.testing.remote_texter import DevInfo, RemoteTexter, TextingError

TOKEN = "text-cli-token"


@asynccontextmanager
async def dev_server(**overrides: Any) -> AsyncIterator[str]:
    async with Emulator.running(seed=EXAMPLE_SEED) as emu:
        tac = TAC(emu.tac_config(**overrides))

        @tac.on_message_ready
        async def cb(message: str, session: Any, memory: Any) -> str:
            return f"[{session.channel}] you said: {message}"

        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                shutdown_trigger=stop.wait))
            try:
                yield binds[0]
            finally:
                stop.set()


async def test_text_a_dev_server_and_read_the_replies() -> None:
    with trio.fail_after(30):
        async with dev_server() as url, httpx.AsyncClient(timeout=10) as client:
            info = await DevInfo.fetch(client, url)
            texter = RemoteTexter(client, url, info, address="+15551230001")
            await texter.send("hello")
            assert await texter.replies(wait=10, quiet=0.05) == ["[sms] you said: hello"]
            await texter.send("again")
            assert await texter.replies(wait=10, quiet=0.05) == ["[sms] you said: again"]
            # a second texter from the same number continues the same conversation
            other = RemoteTexter(client, url, info, address="+15551230001")
            await other.send("third")
            assert other.conversation_id == texter.conversation_id
            assert await other.replies(wait=10, quiet=0.05) == ["[sms] you said: third"]


async def test_signed_webhooks_and_a_clear_error_without_the_token() -> None:
    with trio.fail_after(30):
        async with dev_server(auth_token=TOKEN) as url, \
                httpx.AsyncClient(timeout=10) as client:
            with pytest.raises(TextingError, match="--auth-token"):
                await DevInfo.fetch(client, url)
            info = await DevInfo.fetch(client, url, TOKEN)
            unsigned = RemoteTexter(client, url, info, address="+15551230001")
            with pytest.raises(TextingError, match="signature"):
                await unsigned.send("hello")
            texter = RemoteTexter(client, url, info, address="+15551230002",
                                  channel="whatsapp", auth_token=TOKEN)
            await texter.send("hola")
            assert await texter.replies(wait=10, quiet=0.05) == [
                "[whatsapp] you said: hola"]
