"""Busy policies, ordering, deadlines and callback errors."""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from tac_actors import TAC, BusyPolicy, ChannelPolicy, TACConfig, TurnTimeout
from tac_actors.protocol import Text
from tac_actors.testing import Gate, Recorder, open_harness, token_stream

VOICE = TACConfig().voice_policy


def tac_with(**policy: Any) -> TAC:
    return TAC(TACConfig(voice_policy=attrs.evolve(VOICE, **policy)))


async def test_preempt_cancels_running_turn_and_closes_its_reply(clock: object) -> None:
    gate = Gate("A mid-stream")
    tac = tac_with(busy_policy=BusyPolicy.PREEMPT)
    started: list[str] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        started.append(message)
        if message == "A":
            return token_stream(["a1 ", "a2 ", "a3"], gates={1: gate})
        return "reply to B"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        assert await caller.next_frame() == Text(token="a1 ", last=False)
        await caller.say("B")
        assert await caller.next_frame() == Text(token="", last=True)  # A's reply closed
        assert await caller.read_reply() == (await _heard("reply to B"))
        await trio.testing.wait_all_tasks_blocked()
        assert gate.cancelled
        assert not any(t.token.startswith("a2") for t in caller.texts())
        history = h.cell(caller).session.history
    assert started == ["A", "B"]
    assert [(e.role, e.text, e.interrupted) for e in history] == [
        ("user", "A", False), ("assistant", "a1 ", True), ("user", "B", False),
        ("assistant", "reply to B", False)]


async def _heard(text: str) -> Any:
    from tac_actors.testing import HeardReply

    await trio.lowlevel.checkpoint()
    return HeardReply((text,))


async def test_queue_policy_answers_in_arrival_order(clock: object) -> None:
    gate = Gate("A")
    tac = tac_with(busy_policy=BusyPolicy.QUEUE)
    started: list[str] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        started.append(message)
        if message == "A":
            await gate()
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        for word in ("B", "C", "D"):
            await caller.say(word)
        await trio.testing.wait_all_tasks_blocked()
        assert started == ["A"], "queued prompts must wait for the running turn"
        assert h.cell(caller).mailbox.statistics().queued == 3
        gate.open()
        replies = [(await caller.read_reply()).text for _ in range(4)]
    assert replies == ["re A", "re B", "re C", "re D"]
    assert started == ["A", "B", "C", "D"]


async def test_queue_policy_interrupt_stops_running_and_queued_replies(clock: object) -> None:
    """An interrupt applies to every prompt read before it: the running turn (A) is
    cancelled, the queued one (B) never runs; a prompt after it (C) is answered."""
    gate = Gate("A")
    tac = tac_with(busy_policy=BusyPolicy.QUEUE)
    started: list[str] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        started.append(message)
        if message == "A":
            await gate()
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        await caller.say("B")  # queued behind A
        await caller.interrupt()  # takes effect at once, though the actor is busy
        assert (await caller.read_reply()).tokens == ()  # the acknowledgement
        assert gate.cancelled
        await caller.say("C")
        assert (await caller.read_reply()).text == "re C"
        history = h.cell(caller).session.history
    assert started == ["A", "C"]
    assert [(e.role, e.text) for e in history] == [("user", "A"), ("user", "B"),
                                                   ("user", "C"), ("assistant", "re C")]


async def test_turn_timeout_speaks_timeout_words_and_reports(clock: object) -> None:
    tac = tac_with(turn_timeout=5.0)
    rec = Recorder().attach(tac)

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        if message == "slow":
            await trio.sleep_forever()
        return "fast"

    async with open_harness(tac) as h, h.call() as caller:
        start = trio.current_time()
        await caller.say("slow")
        assert (await caller.read_reply()).text == VOICE.timeout_text
        assert trio.current_time() - start == 5.0
        await caller.say("quick")
        assert (await caller.read_reply()).text == "fast"
    assert [(type(e), c.phase) for e, c in rec.errors] == [(TurnTimeout, "timeout")]


async def test_timeout_mid_stream_closes_reply_with_timeout_words(clock: object) -> None:
    tac = tac_with(turn_timeout=3.0)

    async def slow_tokens() -> Any:
        yield "part "
        await trio.sleep_forever()
        yield "never"

    tac.on_message_ready(lambda m, s, mem: slow_tokens())
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        reply = await caller.read_reply()
    assert reply.tokens == ("part ", VOICE.timeout_text)


async def test_callback_error_fallback_on_error_next_turn_works(clock: object) -> None:
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "boom":
            raise RuntimeError("model exploded")
        if message == "bad type":
            return 42
        return "fine"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("boom")
        assert (await caller.read_reply()).text == VOICE.fallback_text
        await caller.say("bad type")
        assert (await caller.read_reply()).text == VOICE.fallback_text
        await caller.say("ok")
        assert (await caller.read_reply()).text == "fine"
    assert [(type(e), c.phase, c.conversation_id) for e, c in rec.errors] == [
        (RuntimeError, "turn", caller.call_sid), (TypeError, "turn", caller.call_sid)]


async def test_error_mid_stream_keeps_tokens_then_fallback(clock: object) -> None:
    tac = TAC(TACConfig())

    async def broken() -> Any:
        yield "so far "
        raise ValueError("stream broke")

    tac.on_message_ready(lambda m, s, mem: broken())
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        reply = await caller.read_reply()
    assert reply.tokens == ("so far ", VOICE.fallback_text)


async def test_custom_fallback_words(clock: object) -> None:
    tac = tac_with(fallback_text="Oops.")

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        raise RuntimeError

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("x")
        assert (await caller.read_reply()).text == "Oops."


async def test_idle_timeout_ends_the_call(clock: object) -> None:
    tac = tac_with(idle_timeout=60.0)
    rec = Recorder().attach(tac)
    tac.on_message_ready(lambda m, s, mem: "hi")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        await caller.read_reply()
        start = trio.current_time()
        code = await caller.wait_closed()
        assert trio.current_time() - start == 60.0
        assert code == 1000
        assert caller.received[-1].__class__.__name__ == "End"
        await rec.ended_seen.wait()
    assert len(rec.ended) == 1


async def test_policy_validation() -> None:
    import pytest

    with pytest.raises(ValueError, match="turn_timeout"):
        ChannelPolicy(turn_timeout=0)
    with pytest.raises(ValueError, match="mailbox_capacity"):
        ChannelPolicy(mailbox_capacity=0)
