"""An OpenAI Agents SDK agent, unchanged, answering a call and an SMS in asyncio mode,
against the fake OpenAI server (Responses API, streamed and whole; Chat Completions whole),
with a barge-in that cancels the SDK's streamed run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from tac_actors import TAC, TACConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.protocol import Text
from tac_actors.runtime import Runtime
from tac_actors.testing import Recorder, SimulatedTexter, open_harness
from tac_actors.testing.fake_llm import FakeLLM, Park, call, open_fake_openai, text, tool_calls
from tests.usercode.test_asyncio_mode import frames_after_ack

agents = pytest.importorskip("agents")
openai = pytest.importorskip("openai")

from agents import Agent, Runner  # noqa: E402
from agents import function_tool as agents_function_tool  # noqa: E402
from openai.types.responses import ResponseTextDeltaEvent  # noqa: E402

agents.set_tracing_disabled(True)

LOOKUPS: list[str] = []


@agents_function_tool
async def order_status(order_id: str) -> str:
    """The status of an order."""
    await asyncio.sleep(0)
    LOOKUPS.append(order_id)
    return json.dumps({"order_id": order_id, "status": "shipped"})


CLIENTS: list[Any] = []


async def close_clients(tac: TAC) -> None:
    """Close the SDK's HTTP clients on the loop they ran on (no unclosed sockets)."""
    assert tac.bridge is not None
    while CLIENTS:
        await tac.bridge.run(CLIENTS.pop().close)


def make_agent(fake: FakeLLM, api: str = "responses") -> Agent:
    client = openai.AsyncOpenAI(base_url=fake.url, api_key="test-key", max_retries=0)
    CLIENTS.append(client)
    model: Any
    if api == "responses":
        model = agents.OpenAIResponsesModel(model="gpt-test", openai_client=client)
    else:
        model = agents.OpenAIChatCompletionsModel(model="gpt-test", openai_client=client)
    return Agent(name="Support", instructions="Be brief.", tools=[order_status], model=model)


def whole_reply_tac(agent: Agent) -> TAC:
    tac = TAC(TACConfig(), asyncio=True)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        result = await Runner.run(agent, message)
        return str(result.final_output)

    return tac


def streamed_tac(agent: Agent) -> TAC:
    tac = TAC(TACConfig(), asyncio=True)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> AsyncIterator[str]:
        result = Runner.run_streamed(agent, message)
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(event.data,
                                                                ResponseTextDeltaEvent):
                yield event.data.delta

    return tac


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_runner_run_answers_a_call_with_a_tool(api: str) -> None:
    LOOKUPS.clear()
    with trio.fail_after(30):
        async with open_fake_openai([tool_calls(call("order_status", {"order_id": "A-1"})),
                                     text("Order A-1 ", "has shipped.")]) as fake:
            tac = whole_reply_tac(make_agent(fake, api))
            async with open_harness(tac) as h, h.call() as caller:
                await caller.say("where is my order A-1?")
                assert (await caller.read_reply()).text == "Order A-1 has shipped."
                await close_clients(tac)
    assert LOOKUPS == ["A-1"]
    assert all(body.get("stream") in (None, False) for body in fake.requests)
    assert fake.requests[0]["model"] == "gpt-test"


async def test_runner_run_streamed_streams_and_barge_in_cancels_it() -> None:
    park = Park(after=1)
    with trio.fail_after(30):
        async with open_fake_openai([text("Let me ", "check ", "that.", park=park),
                                     text("Sure.")]) as fake:
            tac = streamed_tac(make_agent(fake))
            rec = Recorder().attach(tac)
            async with open_harness(tac) as h, h.call() as caller:
                await caller.say("hello")
                assert await caller.next_frame() == Text(token="Let me ", last=False)
                await park.reached.wait()
                await caller.interrupt(heard="Let me")
                assert await frames_after_ack(caller) == []
                await park.abandoned.wait()  # the SDK's HTTP stream was closed
                await caller.say("ok")
                assert (await caller.read_reply()).text == "Sure."
                await close_clients(tac)
    assert fake.requests[0]["stream"] is True
    assert len(rec.interrupts) == 1 and rec.errors == []


async def test_the_same_agent_answers_an_sms() -> None:
    with trio.fail_after(30):
        async with open_fake_openai([text("Hi Ada, ", "how can I help?")]) as fake:
            with Emulator(seed=EXAMPLE_SEED) as emu:
                config = emu.tac_config(
                    conversation_configuration_id="conv_configuration_example")
                tac = TAC(config, memory_mode="never", asyncio=True)
                agent = make_agent(fake)

                @tac.on_message_ready
                async def reply(message: str, session: Any, memory: Any) -> str:
                    result = await Runner.run(agent, message)
                    return str(result.final_output)

                async with Runtime.open(tac, transport=emu.transport()) as runtime:
                    assert runtime.messaging is not None
                    texter = SimulatedTexter(emu, runtime.messaging, channel="sms")
                    assert (await texter.send("hello")).status == 200
                    assert (await texter.read_reply()).text == "Hi Ada, how can I help?"
                    await close_clients(tac)
                    await runtime.shutdown()


async def test_async_openai_client_streams_in_a_callback() -> None:
    """The vendor SDK directly: ``AsyncOpenAI`` chat streaming, tokens yielded as they
    come."""
    with trio.fail_after(30):
        async with open_fake_openai([text("Hello ", "from ", "the stream.")]) as fake:
            client = openai.AsyncOpenAI(base_url=fake.url, api_key="k", max_retries=0)
            CLIENTS.append(client)
            tac = TAC(TACConfig(), asyncio=True)

            @tac.on_message_ready
            async def reply(message: str, session: Any, memory: Any) -> AsyncIterator[str]:
                stream = await client.chat.completions.create(
                    model="gpt-test", stream=True,
                    messages=[{"role": "user", "content": message}])
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content

            async with open_harness(tac) as h, h.call() as caller:
                await caller.say("hi")
                heard = await caller.read_reply()
                assert heard.tokens[:3] == ("Hello ", "from ", "the stream.")
                await close_clients(tac)
