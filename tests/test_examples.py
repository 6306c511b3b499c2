"""The shipped examples work: echo and streaming in relay-only mode, the concierge
against the emulator (knowledge, memory, traits and handoff)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tac_actors import TAC
from tac_actors.cli import load_app
from tac_actors.emulator import Emulator
from tac_actors.emulator.seed import EXAMPLE_SEED
from tac_actors.protocol import Text
from tac_actors.testing import CallEnded, open_harness

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ADA = "+15551230001"


async def test_echo_example(autojump_clock: object) -> None:
    tac = load_app(str(EXAMPLES / "echo.py") + ":tac")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        assert (await caller.read_reply()).text == "echo: hello"


async def test_streaming_example_streams_and_can_be_interrupted(autojump_clock: object) -> None:
    tac = load_app(str(EXAMPLES / "streaming.py") + ":tac")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("a story")
        first = await caller.next_frame()
        second = await caller.next_frame()
        assert first.token == "You said a story. " and second.token == "Once "  # type: ignore[union-attr]
        await caller.interrupt(heard="You said a story.")
        # the acknowledgement (an empty final token) comes next: no further word of the
        # story was in flight, since the fake clock stands still until every task waits
        assert (await caller.read_reply()).tokens == ()
        assert caller.received[-1] == Text(token="", last=True)
        late: list[object] = []
        with trio.move_on_after(60):  # far longer than the rest of the story would take
            late.append(await caller.next_frame())
        assert late == []


def _concierge(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> TAC:
    env = {"TAC_SERVICES_URL": emu.url,
           "TWILIO_CONVERSATION_CONFIGURATION_ID": "conv_configuration_example",
           "TWILIO_KNOWLEDGE_BASE_ID": "know_base_example", "TWILIO_API_KEY": "SK1",
           "TWILIO_API_SECRET": "s", "TWILIO_ACCOUNT_SID": emu.account_sid}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_app(str(EXAMPLES / "concierge.py") + ":tac")


async def test_concierge_answers_from_knowledge_memory_and_hands_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = _concierge(emu, monkeypatch)
            async with open_harness(tac) as h, h.call(from_=ADA) as caller:
                await caller.say("hello")
                assert (await caller.read_reply()).text.startswith("Hello Ada!")
                await caller.say("what are your opening hours?")
                assert "Monday to Saturday" in (await caller.read_reply()).text
                await caller.say("what do you remember about me?")
                assert "mechanical keyboard" in (await caller.read_reply()).text
                await caller.say("let me talk to a human please")
                assert "colleague" in (await caller.read_reply()).text
                with pytest.raises(CallEnded) as ended:
                    await caller.read_reply()
    assert ended.value.end is not None
    payload = json.loads(ended.value.end.handoff_data or "")
    assert payload["profileId"] == "mem_profile_00000000000000000000000ada"
    assert payload["reason"].endswith("let me talk to a human please")
    assert "user: what are your opening hours?" in payload["summary"]


async def test_concierge_uses_intelligence_results(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A real-time negative sentiment makes the next answer offer a person; closing the
    conversation writes its summary to Memory and the app logs it (over loopback)."""
    from tac_actors.emulator import intelligence
    from tac_actors.testing import open_texter
    from tests.messaging.conftest import served

    caplog.set_level(logging.INFO, logger="concierge")
    monkeypatch.setenv("CONVERSATION_INTELLIGENCE_CONFIGURATION_ID",
                       intelligence.CONFIGURATION_ID)
    monkeypatch.setenv("CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID",
                       intelligence.SUMMARY_OPERATOR_SID)
    monkeypatch.setenv("TWILIO_PHONE_NUMBER", "+15550000000")
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = _concierge(emu, monkeypatch)
            async with served(tac) as url, open_texter(url, emu) as texter:
                emu.intelligence.set_target(url + "/ci-webhook")
                await texter.send("my keyboard arrived broken, this is terrible")
                await texter.read_reply()
                async with httpx.AsyncClient() as client:  # a real-time operator run
                    await client.post(f"{emu.url}/_emulator/intelligence/"
                                      f"{texter.conversation_id}")
                await emu.wait_until(lambda: emu.intelligence.events()[-1]["delivery"]
                                     != "pending")
                await texter.send("what are your opening hours?")
                offered = (await texter.read_reply()).text
                await texter.close()
                await emu.wait_until(lambda: len(emu.created_summaries()) >= 2)
    assert "Monday to Saturday" in offered and "talk to a person" in offered
    assert "sentiment negative" in caplog.text
    assert "The customer wrote 2 message(s)" in caplog.text


@pytest.mark.parametrize(("script", "told"), [
    ({"answered_by": "machine_start"}, "I reached your voicemail"),
    ({"status": "busy"}, "I couldn't reach you (busy)"),
])
async def test_concierge_calls_back_and_reports_voicemail_or_a_missed_call(
        monkeypatch: pytest.MonkeyPatch, script: dict[str, str], told: str) -> None:
    from tac_actors.testing import open_texter

    from .messaging.conftest import served

    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            emu.script_call(ADA, **script)
            monkeypatch.setenv("TWILIO_PHONE_NUMBER", "+15550000000")
            tac = _concierge(emu, monkeypatch)
            async with served(tac) as url, open_texter(url, emu, address=ADA) as texter:
                await texter.send("please call me back")
                assert (await texter.read_reply()).text.endswith("I'm calling you now.")
                pushed = await texter.read_reply()
                (call,) = emu.made_calls()
                kinds = [e["kind"] for e in await emu.wait_call_events(
                    2 if "status" not in script else 1)]
    assert pushed.text.startswith(told)
    assert (call["to"], call["from"]) == (ADA, "+15550000000")
    assert call["parameters"]["MachineDetection"] == "Enable"
    assert kinds[0] == ("status" if "status" in script else "amd")


async def test_openai_example_says_what_is_missing_without_a_key(
        autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tac = load_app(str(EXAMPLES / "openai_agent.py") + ":tac")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        assert "OPENAI_API_KEY" in (await caller.read_reply()).text


async def test_openai_example_streams_from_a_compatible_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tac_actors.testing.fake_llm import open_fake_openai, text

    with trio.fail_after(20):
        async with open_fake_openai([text("Hi ", "there!")]) as fake:
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
            monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
            tac = load_app(str(EXAMPLES / "openai_agent.py") + ":tac")
            # the example's module-level agent owns an HTTP client: close it with the test
            agent = sys.modules["_tac_app_openai_agent"].agent
            async with agent, open_harness(tac) as h, h.call() as caller:
                await caller.say("hello")
                assert (await caller.read_reply()).tokens == ("Hi ", "there!")
    tools = {t["function"]["name"] for t in fake.requests[0]["tools"]}
    assert tools == {"order_status", "search_knowledge", "retrieve_profile_memory", "handoff"}


async def test_realtime_example_without_a_key_says_what_is_missing(
        monkeypatch: pytest.MonkeyPatch, autojump_clock: object) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tac = load_app(str(EXAMPLES / "realtime_agent.py") + ":tac")
    assert tac.realtime is not None and not tac.realtime.answer_inbound
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        assert "OPENAI_API_KEY" in (await caller.read_reply()).text


async def test_realtime_example_against_the_fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from tac_actors.testing.realtime import open_fake_realtime

    async with open_fake_realtime() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_REALTIME_URL", await fake.serve())
        tac = load_app(str(EXAMPLES / "realtime_agent.py") + ":tac")
        assert tac.realtime is not None and tac.realtime.answer_inbound
        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            update = (await model.wait_for("session.update"))["session"]
            assert [tool["name"] for tool in update["tools"]] == ["order_status", "transfer"]
            await model.wait_for("response.create")
            await model.call_tool("order_status", {"order_id": "A-1"})
            output = await model.wait_for("conversation.item.create")
            assert json.loads(output["item"]["output"])["status"] == "shipped"
            await caller.hang_up()
            await caller.drain()
            del h
