"""Turns, streaming, history and the session of a voice call (in-process)."""

from __future__ import annotations

import trio

from tac_actors import TAC, TACConfig
from tac_actors.testing import open_harness, token_stream


def make_tac() -> TAC:
    return TAC(TACConfig())


async def test_string_reply_is_one_final_text_frame(clock: object) -> None:
    tac = make_tac()

    @tac.on_message_ready
    async def echo(message: str, session: object, memory: object) -> str:
        return f"echo: {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        reply = await caller.read_reply()
        assert reply.text == "echo: hello"
        assert [(t.token, t.last) for t in caller.texts()] == [("echo: hello", True)]


async def test_streamed_reply_tokens_then_empty_last(clock: object) -> None:
    tac = make_tac()

    @tac.on_message_ready
    async def stream(message: str, session: object, memory: object) -> object:
        return token_stream(["a", "b", "c"])

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        reply = await caller.read_reply()
        assert reply.tokens == ("a", "b", "c")
        assert [(t.token, t.last) for t in caller.texts()] == [
            ("a", False), ("b", False), ("c", False), ("", True)]


async def test_sync_callback_and_session_fields(clock: object) -> None:
    tac = make_tac()
    seen = []

    @tac.on_message_ready
    def sync_cb(message: str, session, memory) -> str:  # type: ignore[no-untyped-def]
        seen.append((session.conversation_id, session.call_sid, session.caller, session.called,
                     session.channel, dict(session.custom_parameters), memory.is_empty))
        return "ok"

    async with open_harness(tac) as h, h.call(from_="+15551230001", to="+15559990000") as caller:
        await caller.say("hi")
        await caller.read_reply()
        sid = caller.call_sid
    assert seen == [(sid, sid, "+15551230001", "+15559990000", "voice", {}, True)]


async def test_history_records_both_sides(clock: object) -> None:
    tac = make_tac()
    sessions = []

    @tac.on_message_ready
    async def cb(message: str, session, memory) -> str:  # type: ignore[no-untyped-def]
        sessions.append(session)
        return message.upper()

    async with open_harness(tac) as h, h.call() as caller:
        for word in ("one", "two"):
            await caller.say(word)
            await caller.read_reply()
    history = sessions[0].history
    assert [(e.role, e.text) for e in history] == [
        ("user", "one"), ("assistant", "ONE"), ("user", "two"), ("assistant", "TWO")]


async def test_hang_up_runs_end_hook_once(clock: object) -> None:
    tac = make_tac()
    ended = []
    tac.on_message_ready(lambda m, s, mem: "x")
    tac.on_conversation_ended(lambda s: ended.append(s.call_sid))
    async with open_harness(tac) as h:
        async with h.call() as caller:
            await caller.say("hi")
            await caller.read_reply()
        await trio.testing.wait_all_tasks_blocked()
        assert ended == [caller.call_sid]
        assert len(h.supervisor) == 0
    assert ended == [caller.call_sid]
