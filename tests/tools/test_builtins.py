"""Built-in tools against the emulator, and tools inside live turns (barge-in, handoff)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.emulator import Emulator
from tac_actors.emulator.seed import EXAMPLE_SEED
from tac_actors.protocol import End, Text
from tac_actors.testing import Gate, Recorder, open_harness, token_stream
from tac_actors.tools import ToolCall, ToolRegistry, function_tool
from tac_actors.tools.builtins import (
    create_knowledge_tool,
    create_memory_tool,
    create_studio_handoff_tool,
)

ADA = "+15551230001"


async def test_knowledge_and_memory_tools_against_the_emulator() -> None:
    results: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example",
                                     knowledge_base_id="know_base_example"))
            tools = ToolRegistry([create_knowledge_tool(tac, top_k=3), create_memory_tool(tac)])

            @tac.on_message_ready
            async def cb(message: str, session: Any, memory: Any) -> str:
                results.extend(await tools.run_calls([
                    ToolCall(id="1", name="search_knowledge",
                             arguments={"query": "return refund"}),
                    ToolCall(id="2", name="retrieve_profile_memory",
                             arguments='{"query": "orders"}'),
                ], session))
                return "done"

            async with open_harness(tac) as h, h.call(from_=ADA) as caller:
                await caller.say("go")
                await caller.read_reply()
    knowledge, memory = results
    assert knowledge.ok and memory.ok
    hits = json.loads(knowledge.content)["results"]
    assert "return" in hits[0]["content"].lower()
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert any("keyboard" in o for o in json.loads(memory.content)["observations"])


async def test_knowledge_tool_without_configuration_is_an_error_result(
        autojump_clock: object) -> None:
    tool = create_knowledge_tool(TAC(TACConfig()))
    result = await tool.invoke({"query": "hours"})
    assert not result.ok and "knowledge base" in result.content


async def test_barge_in_during_a_tool_call_cancels_it(autojump_clock: object) -> None:
    gate = Gate("slow tool")
    tac = TAC(TACConfig())

    @function_tool
    async def slow_lookup(order_id: str) -> str:
        """Look an order up.

        Args:
            order_id: The order.
        """
        await gate()
        return "shipped"

    tools = ToolRegistry([slow_lookup])

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message != "where is my order":
            return "something else"

        async def reply() -> Any:
            yield "Let me check. "
            [result] = await tools.run_calls(
                [ToolCall(id="1", name="slow_lookup", arguments={"order_id": "A1"})], session)
            yield f"It is {result.content}."

        return reply()

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("where is my order")
        assert await caller.next_frame() == Text(token="Let me check. ", last=False)
        await gate.wait_reached()
        await caller.interrupt(heard="Let me check.")
        assert await caller.next_frame() == Text(token="", last=True)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.cancelled
        assert tools.statistics().running == 0
        await caller.say("hello?")
        assert (await caller.read_reply()).text == "something else"
        assert [f for f in caller.received if isinstance(f, Text) and "shipped" in f.token] == []


async def test_voice_handoff_tool_last_token_then_end_with_context(
        autojump_clock: object) -> None:
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)
    tools = ToolRegistry([create_studio_handoff_tool(tac, attributes={"queue": "billing"})])

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if "human" in message:
            [result] = await tools.run_calls(
                [ToolCall(id="1", name="handoff", arguments={"reason": "asked for a human"})],
                session)
            assert json.loads(result.content)["status"] == "handoff_requested"
            return token_stream(["A colleague ", "will take over."])
        return "How can I help?"

    async with open_harness(tac) as h, h.call(from_=ADA) as caller:
        await caller.say("hi")
        await caller.read_reply()
        await caller.say("a human please")
        assert await caller.wait_closed() == 1000
    frames = caller.received[1:]
    assert frames[:3] == [Text(token="A colleague ", last=False),
                          Text(token="will take over.", last=False), Text(token="", last=True)]
    assert isinstance(frames[3], End) and len(frames) == 4
    payload = json.loads(frames[3].handoff_data or "")
    assert payload["callSid"] == caller.call_sid and payload["customer"] == ADA
    assert payload["attributes"] == {"queue": "billing", "reason": "asked for a human"}
    assert payload["summary"].startswith("user: hi | assistant: How can I help?")
    assert len(rec.ended) == 1


def test_handoff_tool_needs_a_session() -> None:
    tool = create_studio_handoff_tool(TAC(TACConfig()))
    assert "session" not in json.dumps(tool.to_anthropic_format()["input_schema"])


@pytest.mark.parametrize("top_k", [0, 21])
def test_knowledge_tool_top_k_bounds(top_k: int) -> None:
    with pytest.raises(ValueError):
        create_knowledge_tool(TAC(TACConfig()), top_k=top_k)
