"""Crashes and restarts, isolation, hang-up, shutdown, handoff and session controls."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from tac_actors import TAC, ActorCrash, BusyPolicy, RestartLimit, TACConfig
from tac_actors.protocol import End, Language, Play, SendDigits, Text
from tac_actors.testing import CallEnded, Gate, Recorder, open_harness, token_stream

VOICE = TACConfig().voice_policy
QUEUE = attrs.evolve(VOICE, busy_policy=BusyPolicy.QUEUE)


async def test_crash_restarts_actor_with_mailbox_intact(clock: object) -> None:
    gate = Gate("A")
    tac = TAC(TACConfig(voice_policy=QUEUE))
    rec = Recorder().attach(tac)
    handled: list[str] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        handled.append(message)
        if message == "A":
            await gate()
        if message == "crash":
            raise ActorCrash("state is broken")
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        await caller.say("crash")
        await caller.say("C")
        await caller.say("D")
        await trio.testing.wait_all_tasks_blocked()
        cell = h.cell(caller)
        assert cell.mailbox.statistics().queued == 3
        gate.open()
        assert (await caller.read_reply()).text == "re A"
        # the restarted incarnation tells the caller something went wrong...
        assert (await caller.read_reply()).text == VOICE.fallback_text
        # ...and the messages queued behind the crash are still handled, in order
        assert (await caller.read_reply()).text == "re C"
        assert (await caller.read_reply()).text == "re D"
        assert cell.statistics().restarts == 1
    assert handled == ["A", "crash", "C", "D"]  # the crashing message is not replayed
    # on_error gets the app's own exception, not a wrapper (C6)
    assert [(type(e), str(e), c.phase) for e, c in rec.errors] == [
        (ActorCrash, "state is broken", "crash")]
    assert len(rec.ended) == 1


async def test_restart_intensity_exceeded_ends_call_cleanly(clock: object) -> None:
    tac = TAC(TACConfig(restart_limit=RestartLimit(max_restarts=3, window=10.0)))
    rec = Recorder().attach(tac)

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        raise ActorCrash(message)

    async with open_harness(tac) as h, h.call() as caller:
        for n in range(3):
            await caller.say(f"crash {n}")
            assert (await caller.read_reply()).text == VOICE.fallback_text
        await caller.say("crash 3")
        assert (await caller.read_reply()).text == VOICE.goodbye_text
        frame = await caller.next_frame()
        assert frame == End()
        assert await caller.wait_closed() == 1000
        await rec.ended_seen.wait()
        assert h.supervisor.statistics().gave_up == 1
    assert [(type(e), str(e), c.phase) for e, c in rec.errors] == [
        (ActorCrash, "crash 0", "crash"), (ActorCrash, "crash 1", "crash"),
        (ActorCrash, "crash 2", "crash"), (ActorCrash, "crash 3", "gave_up")]
    assert len(rec.ended) == 1


async def test_crashes_spread_over_time_do_not_exhaust_the_limit(clock: object) -> None:
    tac = TAC(TACConfig(restart_limit=RestartLimit(max_restarts=1, window=10.0)))

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        raise ActorCrash(message)

    async with open_harness(tac) as h, h.call() as caller:
        for n in range(3):
            await caller.say(f"crash {n}")
            assert (await caller.read_reply()).text == VOICE.fallback_text
            await trio.sleep(11)
        assert h.cell(caller).statistics().restarts == 3


async def test_stuck_call_does_not_delay_another(clock: object) -> None:
    tac = TAC(TACConfig(voice_policy=attrs.evolve(VOICE, turn_timeout=None)))
    stuck = Gate("stuck forever")

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        if message == "hang":
            await stuck()
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as first, h.call() as second:
        await first.say("hang")
        await stuck.wait_reached()
        start = trio.current_time()
        await second.say("hello")
        assert (await second.read_reply()).text == "re hello"
        assert trio.current_time() == start  # answered with no time passing at all
        assert not stuck.cancelled


async def test_hang_up_mid_turn_cancels_turn_and_ends_once(clock: object) -> None:
    gate = Gate("mid-turn")
    finished: list[bool] = []
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)
    tac.on_message_ready(lambda m, s, mem: token_stream(["a", "b"], gates={1: gate},
                                                       finished=finished))
    async with open_harness(tac) as h:
        async with h.call() as caller:
            await caller.say("talk")
            await gate.wait_reached()
            await caller.hang_up()
            await rec.ended_seen.wait()
        assert gate.cancelled and finished == [True]
        assert len(h.supervisor) == 0
        assert h.supervisor.statistics().ended == 1
    assert len(rec.ended) == 1


async def test_graceful_shutdown_lets_running_turn_finish(clock: object) -> None:
    gate = Gate("mid-turn")
    tac = TAC(TACConfig(shutdown_grace=30.0))
    rec = Recorder().attach(tac)
    tac.on_message_ready(lambda m, s, mem: token_stream(["a", "b"], gates={1: gate}))
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("talk")
        await gate.wait_reached()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.shutdown)
            await trio.testing.wait_all_tasks_blocked()
            assert not h.supervisor.statistics().accepting
            gate.open()
        assert (await caller.read_reply()).text == "ab"
        assert await caller.wait_closed() == 1001
        assert not gate.cancelled
    assert len(rec.ended) == 1


async def test_graceful_shutdown_cancels_turns_past_grace(clock: object) -> None:
    gate = Gate("never opens")
    tac = TAC(TACConfig(shutdown_grace=5.0, voice_policy=attrs.evolve(VOICE, turn_timeout=None)))
    rec = Recorder().attach(tac)

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        await gate()
        return "never"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("talk")
        await gate.wait_reached()
        start = trio.current_time()
        await h.shutdown()
        assert trio.current_time() - start == 5.0
        assert gate.cancelled
        assert await caller.wait_closed() == 1001
    assert len(rec.ended) == 1


async def test_new_calls_refused_during_shutdown(clock: object) -> None:
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda m, s, mem: "x")
    async with open_harness(tac) as h:
        await h.shutdown()
        async with h.call() as caller:
            assert await caller.wait_closed() == 1001


async def test_handoff_end_frame_follows_last_token(clock: object) -> None:
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)
    payload = json.dumps({"reason": "wants a human", "conversationId": "c1"})

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        session.request_handoff(payload)
        return token_stream(["Transferring ", "you now."])

    async with open_harness(tac) as h, h.call() as caller:
        await trio.testing.wait_all_tasks_blocked()
        cell = h.cell(caller)  # kept: the supervisor forgets it once the call has ended
        await caller.say("human please")
        with pytest.raises(CallEnded) as ended:
            await caller.read_reply()
            await caller.read_reply()
        assert ended.value.end == End(handoff_data=payload)
        assert await caller.wait_closed() == 1000
    assert [(type(f).__name__, getattr(f, "token", None), getattr(f, "last", None))
            for f in caller.received] == [
        ("Text", "Transferring ", False), ("Text", "you now.", False), ("Text", "", True),
        ("End", None, None)]
    assert len(rec.ended) == 1
    assert cell.stop_reason == "handoff"


async def test_session_controls_send_voice_frames(clock: object) -> None:
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str | None:
        if message == "menu":
            await session.play("https://example.com/music.mp3", loop=2)
            await session.send_digits("12w#")
            await session.set_language(tts_language="fr-FR")
            return "voila"
        await session.end()
        return None

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("menu")
        assert (await caller.read_reply()).text == "voila"
        assert caller.received[:3] == [
            Play(source="https://example.com/music.mp3", loop=2), SendDigits(digits="12w#"),
            Language(tts_language="fr-FR")]
        await caller.say("bye")
        assert await caller.next_frame() == End()
        assert await caller.wait_closed() == 1000


async def test_dtmf_partials_and_twilio_errors_reach_the_app(clock: object) -> None:
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)
    tac.on_message_ready(lambda m, s, mem: f"said {m}")
    tac.on_dtmf(lambda digit, session: f"pressed {digit}")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.press("7")
        assert (await caller.read_reply()).text == "pressed 7"
        await caller.say_partial("I would")
        await caller.say_partial("I would like")
        await caller.say("I would like tea")
        assert (await caller.read_reply()).text == "said I would like tea"
        assert rec.partials == ["I would", "I would like"]
        await caller.report_error("Invalid message received: 64107")
        await rec.error_seen.wait()
    assert [(c.phase, c.detail) for _, c in rec.errors] == [
        ("channel", "Invalid message received: 64107")]
    assert [t for t in caller.received if isinstance(t, Text)] == [
        Text(token="pressed 7", last=True), Text(token="said I would like tea", last=True)]
