"""Several sender numbers on one instance: each number reaches its own callback
(``on_message_ready(number=...)``), ``session.called`` says which, replies and outbound
starts go from the right number, on voice and text."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.testing import SimulatedTexter, open_harness

from ..messaging.conftest import emu, in_process, make_tac, served

__all__ = ["emu"]  # the fixture

MAIN, SALES = "+15550000000", "+15550000002"
ADA, BOB = "+15551230001", "+15551230009"


def _routes(tac: TAC) -> None:
    @tac.on_message_ready
    def main_line(message: str, session: Any, memory: Any) -> str:
        return f"main: {message}"

    @tac.on_message_ready(number=SALES)
    async def sales_line(message: str, session: Any, memory: Any) -> str:
        return f"sales ({session.called}): {message}"


async def test_each_number_reaches_its_own_callback_on_voice(autojump_clock: Any) -> None:
    tac = TAC(TACConfig(phone_numbers=f"{MAIN},{SALES}"))
    _routes(tac)
    async with open_harness(tac) as h:
        async with h.call(from_=ADA, to=MAIN) as first, h.call(from_=BOB, to=SALES) as second:
            await first.say("hi")
            await second.say("hi")
            replies = ((await first.read_reply()).text, (await second.read_reply()).text)
        # an outbound call: Twilio's "from" is ours, so the roles swap back
        async with h.call(from_=SALES, to=ADA, setup=False) as outbound:
            await outbound.setup(direction="outbound-api")
            await outbound.say("who is this?")
            reply = (await outbound.read_reply()).text
            await trio.testing.wait_all_tasks_blocked()
            session = h.cell(outbound).session
    assert replies == ("main: hi", f"sales ({SALES}): hi")
    assert reply == f"sales ({SALES}): who is this?"
    assert (session.caller, session.called) == (ADA, SALES)


async def test_each_number_texts_from_itself(emu: Emulator, autojump_clock: Any) -> None:
    tac = make_tac(emu, services_base_url="http://emulator", phone_numbers=[MAIN, SALES])
    _routes(tac)
    async with in_process(emu, tac) as runtime:
        assert runtime.messaging is not None
        main = SimulatedTexter(emu, runtime.messaging, address=ADA)
        sales = SimulatedTexter(emu, runtime.messaging, address=BOB, agent_address=SALES)
        await main.send("hello")
        await sales.send("hello")
        main_reply, sales_reply = await main.read_reply(), await sales.read_reply()
    assert (main_reply.text, main_reply.from_address) == ("main: hello", MAIN)
    assert (sales_reply.text, sales_reply.from_address) == (f"sales ({SALES}): hello", SALES)


async def test_outbound_from_an_explicit_sender_on_text_and_voice() -> None:
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu, phone_numbers=[MAIN, SALES],
                           voice_public_domain="agent.example.com")
            _routes(tac)
            async with served(tac):
                text = await tac.start_conversation("sms", ADA, "Your quote is ready",
                                                    from_=SALES)
                call = await tac.start_conversation("voice", BOB, from_=SALES)
                default = await tac.start_conversation("voice", BOB)
            sent = emu.sent_messages()
            calls = emu.made_calls()
            agents = [p for p in emu.db.all("participant", parent=text.conversation_id)
                      if p["type"] == "AI_AGENT"]
    assert text.session is not None and text.session.called == SALES
    (agent,) = agents
    assert [a["address"] for a in agent["addresses"]] == [SALES]
    assert sent[0]["from"].get("participantId") == agent["id"] or (
        sent[0]["from"].get("address") == SALES)
    assert [(c["from"], c["to"]) for c in calls] == [(SALES, BOB), (MAIN, BOB)]
    assert call.call_sid and default.call_sid


def test_speech_to_speech_sessions_know_the_person_and_our_number() -> None:
    from tac_actors.channels.media import session_from_start
    from tac_actors.protocol.media import MediaStart

    inbound = session_from_start(MediaStart("MZ1", "CA1", custom_parameters={
        "From": ADA, "To": SALES}))
    outbound = session_from_start(MediaStart("MZ2", "CA2", custom_parameters={
        "From": SALES, "To": ADA, "Direction": "outbound-api"}))
    assert (inbound.caller, inbound.called) == (ADA, SALES)
    assert (outbound.caller, outbound.called) == (ADA, SALES)


async def test_a_handoff_goes_out_from_the_number_the_person_texted(
        emu: Emulator, autojump_clock: Any) -> None:
    from tac_actors.testing import Recorder

    tac = make_tac(emu, services_base_url="http://emulator", phone_numbers=[MAIN, SALES],
                   studio_handoff_flow_sid="FW" + "1" * 32)
    recorder = Recorder().attach(tac)

    @tac.on_message_ready
    def reply(message: str, session: Any, memory: Any) -> str:
        session.request_handoff('{"reason": "wants a person"}')
        return "A colleague will take over."

    async with in_process(emu, tac) as runtime:
        assert runtime.messaging is not None
        texter = SimulatedTexter(emu, runtime.messaging, address=BOB, agent_address=SALES)
        await texter.send("a human please")
        await texter.read_reply()
        await recorder.ended_seen.wait()
    (execution,) = emu.studio_executions()
    assert (execution["from"], execution["contact_channel_address"]) == (SALES, BOB)
