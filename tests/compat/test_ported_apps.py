"""Reference-style apps ported by changing one import prefix, through a simulated call
and an SMS; and the compat helpers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio

from tac_actors.compat import TACConfig, mask_address, mask_email, mask_phone
from tac_actors.compat.adapters import MemoryPromptBuilder
from tac_actors.compat.server import TACServerConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.runtime import Runtime
from tac_actors.testing import SimulatedTexter, open_harness
from tac_actors.testing.fake_llm import call, open_fake_openai, text, tool_calls
from tests.compat.ported_app import build

agents = pytest.importorskip("agents")
openai = pytest.importorskip("openai")
agents.set_tracing_disabled(True)


def sdk_runner(fake: Any, clients: list[Any]) -> Any:
    """The LLM step of the app: an OpenAI Agents SDK agent with the app's tools."""
    async def run(message: str, tools: list[Any]) -> str:
        client = openai.AsyncOpenAI(base_url=fake.url, api_key="k", max_retries=0)
        clients.append(client)
        agent = agents.Agent(
            name="Support", instructions="Be brief.",
            tools=[tool.to_openai_agents_sdk_tool() for tool in tools],
            model=agents.OpenAIResponsesModel(model="gpt-test", openai_client=client))
        try:
            result = await agents.Runner.run(agent, message)
        finally:
            await client.close()
        return str(result.final_output)
    return run


async def test_ported_app_answers_a_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clients: list[Any] = []
    with trio.fail_after(30):
        async with open_fake_openai([tool_calls(call("check_order", {"order_id": "A-1"})),
                                     text("Your order ", "has shipped.")]) as fake:
            tac, seen = build(TACConfig(), sdk_runner(fake, clients))
            async with open_harness(tac) as h, h.call() as caller:
                await caller.say("where is order A-1?")
                assert (await caller.read_reply()).text == "Your order has shipped."
                await caller.say("stream")
                heard = [await caller.next_frame(), await caller.next_frame()]
                assert [f.token for f in heard] == ["Streaming ", "works."]  # type: ignore[union-attr]
                await caller.interrupt(heard="Stream")
                assert (await caller.read_reply()).tokens == ()  # the acknowledgement
                await caller.say("fail")
                assert "wrong" in (await caller.read_reply()).text
                await caller.hang_up()
    assert "shipped" in json.dumps(fake.requests[1]["input"])  # the tool's answer
    assert seen["channels"] == ["VOICE", "VOICE", "VOICE"]
    assert seen["interrupts"] == [("interrupt", "Stream")]
    [(conversation, channel, error)] = seen["errors"]
    assert (channel, error) == ("VOICE", "the model is down") and conversation
    assert seen["ended"] == ["VOICE"]
    assert seen["prompts"] == ["", "", ""]
    logged = [r.getMessage() for r in caplog.records if r.name == "tests.compat.ported_app"]
    assert any("message received" in m and "app=ported" in m for m in logged)
    assert not any("+1555" in m for m in logged), "phone numbers are scrubbed"


async def test_ported_app_answers_an_sms() -> None:
    clients: list[Any] = []
    with trio.fail_after(30):
        async with open_fake_openai([text("Hi Ada!")]) as fake:
            with Emulator(seed=EXAMPLE_SEED) as emu:
                config = emu.tac_config(conversation_configuration_id="conv_configuration_example")
                tac, seen = build(config, sdk_runner(fake, clients))
                async with Runtime.open(tac, transport=emu.transport()) as runtime:
                    assert runtime.messaging is not None
                    texter = SimulatedTexter(emu, runtime.messaging, channel="sms")
                    assert (await texter.send("hello")).status == 200
                    assert (await texter.read_reply()).text == "Hi Ada!"
                    await runtime.shutdown()
    assert seen["channels"] == ["SMS"]


def test_masking_and_server_config() -> None:
    assert mask_phone("+15551230001") == "+1***0001"
    assert mask_phone("123") == "***"
    assert mask_email("ada@example.com") == "a***@example.com"
    assert mask_address("ada@example.com") == "a***@example.com"
    assert mask_address(None) == "***"
    config = TACServerConfig.from_env({"TWILIO_SERVER_HOST": "127.0.0.1",
                                       "TWILIO_SERVER_PORT": "9000"})
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert TACServerConfig.from_env({}).port == 8000
    with pytest.raises(ValueError, match="TWILIO_SERVER_PORT"):
        TACServerConfig.from_env({"TWILIO_SERVER_PORT": "x"})
    assert MemoryPromptBuilder.compose("Be brief.") == "Be brief."


async def test_ported_memory_app_puts_memory_in_the_prompt() -> None:
    from tests.compat.ported_memory_app import build as build_memory_app

    with trio.fail_after(30):
        async with open_fake_openai([text("Sure, Ada: refunds take 5 business days.")]) as fake:
            with Emulator(seed=EXAMPLE_SEED) as emu:
                config = emu.tac_config(
                    conversation_configuration_id="conv_configuration_example")
                tac = build_memory_app(config, fake.url)
                async with Runtime.open(tac, transport=emu.transport()) as runtime:
                    assert runtime.messaging is not None
                    texter = SimulatedTexter(emu, runtime.messaging, channel="sms")
                    assert (await texter.send("how long do refunds take?")).status == 200
                    reply = await texter.read_reply()
                    await runtime.shutdown()
    assert reply.text == "Sure, Ada: refunds take 5 business days."
    [request] = fake.requests
    assert request.get("stream") is None  # whole Chat Completions
    system = request["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are a support")
    assert "Prefers to be contacted by text message" in system["content"]  # an observation
    assert "Ada" in system["content"]  # the profile's Contact traits
