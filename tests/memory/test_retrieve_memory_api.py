"""``TAC.retrieve_memory`` looks memory up now, whatever ``memory_mode`` (the audit's
defect 1: it returned nothing under "never", the mode in which the README tells you to
call it)."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tac_actors import TAC
from tac_actors.channels.voice import session_from_setup
from tac_actors.config import TACConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.memory.retrieval import MemoryMode, memory_modes
from tac_actors.protocol.relay import Setup
from tac_actors.runtime import Runtime
from tac_actors.session import AuthorInfo, Channel, ConversationSession
from tac_actors.tools import ToolCall, ToolRegistry
from tac_actors.tools.builtins import create_memory_tool


@pytest.mark.parametrize("mode", ["never", "once", "always"])
async def test_retrieve_memory_recalls_in_every_mode(mode: str) -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"),
                  memory_mode=mode)
        async with Runtime.open(tac, transport=emu.transport()) as runtime:
            session = ConversationSession(conversation_id="conv_probe", channel=Channel.SMS,
                                          started_at=datetime.now(UTC))
            session.author_info = AuthorInfo("+15551230001")
            first = await tac.retrieve_memory(session, "refunds")
            again = await tac.retrieve_memory(session, "contact")
            await runtime.shutdown()
    assert first.observations and again.observations
    assert first.source == "memory"


# -- what reaches Memory's /Recall -------------------------------------------------------


class RecallSpy(httpx.AsyncBaseTransport):
    """Forwards to the emulator in-process and keeps every /Recall body."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.recalls: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Recall"):
            self.recalls.append(json.loads(await request.aread() or b"{}"))
        return await self.inner.handle_async_request(request)


def _sms_session() -> ConversationSession:
    session = ConversationSession(conversation_id="conv_probe", channel=Channel.SMS,
                                  started_at=datetime.now(UTC))
    session.author_info = AuthorInfo("+15551230001")
    return session


async def test_retrieve_memory_passes_query_and_conversation_id_as_given() -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        spy = RecallSpy(emu.transport())
        tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"),
                  memory_mode="once")
        async with Runtime.open(tac, transport=spy) as runtime:
            session = _sms_session()
            await tac.retrieve_memory(session)  # primes nothing: not the turn's cache
            await tac.retrieve_memory(session, "refunds")
            await tac.retrieve_memory(session, "refunds", conversation_id="conv_probe")
            await tac.retrieve_memory(session, conversation_id="conv_other")
            await runtime.shutdown()
    assert [(r.get("query"), r.get("conversationId")) for r in spy.recalls] == [
        (None, None), ("refunds", None), ("refunds", "conv_probe"), (None, "conv_other")]


async def test_the_memory_tool_passes_its_query_through_in_once_mode() -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        spy = RecallSpy(emu.transport())
        tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"),
                  memory_mode="once")
        async with Runtime.open(tac, transport=spy) as runtime:
            session = _sms_session()
            await tac.memory_provider.retrieve(session, "turn text")  # fills the cache
            tools = ToolRegistry([create_memory_tool(tac)])
            (result,) = await tools.run_calls([ToolCall(
                id="1", name="retrieve_profile_memory", arguments={"query": "orders"})],
                session)
            await runtime.shutdown()
    assert result.ok and json.loads(result.content)["observations"]
    assert spy.recalls[-1].get("query") == "orders"


async def test_memory_mode_per_channel() -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        spy = RecallSpy(emu.transport())
        tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"),
                  memory_mode={"voice": "never", "sms": "always", "default": "once"})
        async with Runtime.open(tac, transport=spy) as runtime:
            sms = _sms_session()
            voice = ConversationSession(conversation_id="CA1", channel=Channel.VOICE,
                                        started_at=datetime.now(UTC), call_sid="CA1",
                                        author_info=AuthorInfo("+15551230001"))
            chat = ConversationSession(conversation_id="conv_chat", channel=Channel.CHAT,
                                       started_at=datetime.now(UTC),
                                       author_info=AuthorInfo("ada@example.com"))
            heard = await tac.memory_provider.retrieve(voice, "hello")
            texted = await tac.memory_provider.retrieve(sms, "keyboard")
            chatted = await tac.memory_provider.retrieve(chat, "anything")
            await runtime.shutdown()
    assert heard.is_empty and texted.observations and chatted.observations
    assert [r.get("query") for r in spy.recalls] == ["keyboard", None]  # always, once


def test_unknown_memory_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown channel"):
        memory_modes({"fax": "always"})
    with pytest.raises(ValueError):
        memory_modes({"sms": "sometimes"})


def test_reference_channel_objects_set_their_memory_mode() -> None:
    from tac_actors.compat import TAC as CompatTAC
    from tac_actors.compat.channels import SMSChannel, VoiceChannel

    tac = CompatTAC(TACConfig())
    VoiceChannel(tac, config={"memory_mode": "always"})
    SMSChannel(tac, config=types.SimpleNamespace(memory_mode="once"))
    assert memory_modes(tac.memory_mode) == {
        "default": MemoryMode.NEVER, "voice": MemoryMode.ALWAYS, "sms": MemoryMode.ONCE}


@pytest.mark.parametrize(("direction", "person"), [
    ("inbound", "+15551230001"), ("outbound-api", "+15557654321"), (None, "+15551230001")])
def test_voice_author_info_is_the_person_on_the_call(direction: str | None,
                                                     person: str) -> None:
    setup = Setup(call_sid="CA1", from_="+15551230001", to="+15557654321",
                  direction=direction)
    session = session_from_setup(setup)
    assert session.author_info == AuthorInfo(person)
