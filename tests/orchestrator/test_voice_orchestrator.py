"""Voice in Orchestrator mode against the emulator (real loopback sockets, real clock,
every test bounded by ``fail_after``)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tac_actors import TAC
from tac_actors.emulator import Emulator
from tac_actors.emulator.seed import EXAMPLE_SEED, read_seed
from tac_actors.memory.retrieval import OrchestratorConfigError
from tac_actors.testing import open_harness

ADA = "+15551230001"


async def test_callback_sees_seeded_profile_traits_and_observations() -> None:
    seen: list[tuple[Any, Any]] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"))
            assert tac.is_orchestrator_enabled()

            @tac.on_message_ready
            async def cb(message: str, session: Any, memory: Any) -> str:
                seen.append((session.profile, memory))
                return f"Hello {session.profile.trait('Contact', 'firstName')}"

            async with open_harness(tac) as h, h.call(from_=ADA) as caller:
                await caller.say("hi, it's me")
                assert (await caller.read_reply()).text == "Hello Ada"
                await caller.say("again")
                await caller.read_reply()
            recalls = emu.requests(product="memory", path_contains="/Recall")
    profile, memory = seen[0]
    assert profile.traits["Contact"]["email"] == "ada@example.com"
    assert memory.source == "memory"
    assert any("mechanical keyboard" in o.content for o in memory.observations)
    assert memory.summaries and "refunds" in memory.summaries[0].content
    assert len(recalls) == 1  # memory mode "once": cached for the second turn
    assert seen[1][1] == memory


async def test_memory_down_falls_back_without_failing_the_call() -> None:
    seen: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"),
                      memory_mode="always")
            tac.on_message_ready(lambda m, s, mem: seen.append(mem) or "ok")
            async with open_harness(tac) as h, h.call(from_=ADA) as caller:
                emu.faults.down.add("memory")
                await caller.say("hello")
                assert (await caller.read_reply()).text == "ok"
    assert seen[0].source in ("orchestrator", "none")


async def test_voice_call_is_linked_to_its_orchestrator_conversation() -> None:
    seed = read_seed(EXAMPLE_SEED)
    call_sid = "CA" + "7" * 32
    seed["conversations"] = [{
        "id": "conv_conversation_00000000000000000000000777",
        "configurationId": "conv_configuration_example", "status": "ACTIVE",
        "participants": [
            {"id": "conv_participant_1", "type": "CUSTOMER",
             "profileId": "mem_profile_00000000000000000000000ada",
             "addresses": [{"channel": "VOICE", "address": ADA, "channelId": call_sid}]},
            {"id": "conv_participant_2", "type": "AI_AGENT",
             "addresses": [{"channel": "VOICE", "address": "+15559990000",
                            "channelId": call_sid}]},
        ],
    }]
    sessions: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=seed) as emu:
            tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"))
            tac.on_message_ready(lambda m, s, mem: sessions.append(s) or "ok")
            async with open_harness(tac) as h, h.call(from_=ADA, call_sid=call_sid) as caller:
                await caller.say("hello")  # answered at once: the look-up runs beside it
                await caller.read_reply()
                await h.runtime.wait_linked(call_sid)
                await caller.say("again")
                await caller.read_reply()
    session = sessions[1]
    assert session.conversation_id == "conv_conversation_00000000000000000000000777"
    assert session.profile_id == "mem_profile_00000000000000000000000ada"
    assert session.author_info.participant_id == "conv_participant_1"
    assert session.ai_agent_info.participant_id == "conv_participant_2"
    assert session.call_sid == call_sid


async def test_bad_configuration_id_is_a_clear_startup_error() -> None:
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_nope"))
            with pytest.raises(OrchestratorConfigError,
                               match="TWILIO_CONVERSATION_CONFIGURATION_ID"):
                async with open_harness(tac):
                    pass


async def test_media_call_gives_the_realtime_model_what_memory_knows() -> None:
    from tac_actors.realtime import RealtimeOptions
    from tac_actors.testing.realtime import open_fake_realtime

    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu, open_fake_realtime() as fake:
            tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"),
                      realtime=RealtimeOptions(connect=fake.connector, instructions="Be brief"))
            async with open_harness(tac) as h, h.media_call(
                    parameters={"From": ADA, "To": "+15550002222"}) as caller:
                model = await fake.next_session()
                update = (await model.wait_for("session.update"))["session"]
                await caller.hang_up()
                await caller.drain()
                del h
    assert update["instructions"].startswith("Be brief\n\n")
    assert "mechanical keyboard" in update["instructions"]


async def test_an_unlinked_call_from_a_stranger_asks_no_orchestrator_and_warns_not(
        caplog: pytest.LogCaptureFixture) -> None:
    """Review finding 3: a call placed straight on /ws (no Orchestrator conversation) by
    an unknown number logged a WARNING about a 404 on every call of the dev loop."""
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = TAC(emu.tac_config())
            tac.on_message_ready(lambda message, session, memory: f"{memory.source}")
            async with open_harness(tac) as h, h.call(from_="+15550009999") as caller:
                await caller.say("hi")
                assert (await caller.read_reply()).text
            asked = emu.requests(product="conversations", path_contains="/Communications")
    assert asked == []
    assert not [r for r in caplog.records
                if r.name.startswith("tac_actors.memory") and r.levelno >= 30]
