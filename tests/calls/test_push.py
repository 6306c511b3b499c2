"""tac.send_response: a reply pushed into a live conversation from outside its turns.
Voice: it obeys the barge-in gate; text: it goes through the messaging outbox."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.emulator import Emulator
from tac_actors.protocol.relay import Text
from tac_actors.testing import Gate, GatedTransport, SimulatedTexter, open_harness

from ..messaging.conftest import emu, in_process, make_tac

__all__ = ["emu"]  # the fixture


async def test_push_to_a_quiet_call_is_spoken_and_recorded(autojump_clock: Any) -> None:
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda m, s, mem: f"re {m}")
    async with open_harness(tac) as h, h.call() as caller:
        await trio.testing.wait_all_tasks_blocked()  # the setup is handled
        await tac.send_response(caller.call_sid, "Are you still there?")
        pushed = await caller.read_reply()
        await caller.say("yes")
        answer = await caller.read_reply()
        session = h.cell(caller).session
        history = [(e.role, e.text) for e in session.history]
    assert pushed.text == "Are you still there?" and answer.text == "re yes"
    assert history == [("assistant", "Are you still there?"), ("user", "yes"),
                       ("assistant", "re yes")]


async def test_barge_in_stops_a_pushed_stream_like_any_reply(autojump_clock: Any) -> None:
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda m, s, mem: f"re {m}")
    transports: list[GatedTransport] = []

    def wrap(inner: Any) -> GatedTransport:
        transports.append(GatedTransport(inner))
        return transports[0]

    async def stream() -> Any:
        for i in range(6):
            yield f"p{i} "
            await trio.sleep(0.1)

    async with open_harness(tac) as h, h.call(wrap=wrap) as caller:
        await trio.testing.wait_all_tasks_blocked()
        transports[0].stall()  # the push's frames queue behind a slow socket
        await tac.send_response(caller.call_sid, stream())
        await trio.sleep(0.25)  # a few tokens are out of the push, none on the wire
        await caller.interrupt(heard="p0 ")
        transports[0].release()
        await caller.say("ping")
        texts: list[str] = []
        while True:
            frame = await caller.next_frame()
            if isinstance(frame, Text):
                texts.append(frame.token)
                if frame.token == "re ping":
                    break
        session = h.cell(caller).session
        history = [(e.role, e.text, e.interrupted) for e in session.history]
    ack = texts.index("")
    assert not any(t.startswith("p") for t in texts[ack + 1:]), texts
    assert history[0] == ("assistant", "p0 ", True)
    assert history[1:] == [("user", "ping", False), ("assistant", "re ping", False)]


async def test_push_on_voice_waits_for_the_running_reply(autojump_clock: Any) -> None:
    """A push never preempts (so an app may push from inside its own turn), while a
    prompt still does."""
    tac = TAC(TACConfig())
    gate = Gate()

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        if message == "hello":
            await tac.send_response(session.call_sid, "Anything else?")  # from the turn
            await gate()
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        await gate.wait_reached()
        await tac.send_response(caller.call_sid, "Still looking.")
        await trio.testing.wait_all_tasks_blocked()
        assert caller.texts() == []  # both wait behind the running turn
        gate.open()
        replies = [(await caller.read_reply()).text for _ in range(3)]
        session = h.cell(caller).session
        history = [(e.role, e.text) for e in session.history]
    assert replies == ["re hello", "Anything else?", "Still looking."]
    assert history == [("user", "hello"), ("assistant", "re hello"),
                       ("assistant", "Anything else?"), ("assistant", "Still looking.")]


async def test_a_prompt_preempts_a_waiting_push(autojump_clock: Any) -> None:
    tac = TAC(TACConfig())
    gate = Gate()

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        if message == "hello":
            await gate()
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        await gate.wait_reached()
        await tac.send_response(caller.call_sid, "stale news")
        await caller.say("never mind")
        replies = [(await caller.read_reply()).text]
        await trio.sleep(5)
        texts = [t.token for t in caller.texts() if t.token]
    assert replies == ["re never mind"] and "stale news" not in texts


async def test_push_errors() -> None:
    tac = TAC(TACConfig())
    with pytest.raises(RuntimeError, match="running"):
        await tac.send_response("CA1", "hi")
    async with open_harness(tac):
        with pytest.raises(LookupError, match="no live conversation"):
            await tac.send_response("CA-nobody", "hi")
        with pytest.raises(TypeError, match="str or an async iterator"):
            await tac.send_response("CA-nobody", 42)  # type: ignore[arg-type]


async def test_push_on_text_waits_for_the_turn_and_goes_through_the_outbox(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = make_tac(emu, services_base_url="http://emulator")
    gate = Gate()

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        await gate()
        return f"re: {message}"

    async with in_process(emu, tac) as runtime:
        assert runtime.messaging is not None
        texter = SimulatedTexter(emu, runtime.messaging)
        await texter.send("where is my order?")
        await gate.wait_reached()
        conversation = texter.conversation_id
        await tac.send_response(conversation, "Your order shipped today.")
        await trio.testing.wait_all_tasks_blocked()
        assert texter.unread() == []  # queued behind the running turn (text: queue)
        gate.open()
        first = await texter.read_reply()
        second = await texter.read_reply()
        await trio.testing.wait_all_tasks_blocked()  # the turns' ends are recorded
        cell = runtime.supervisor.get(conversation)
        assert cell is not None
        history = [(e.role, e.text) for e in cell.session.history]
    assert (first.text, second.text) == ("re: where is my order?", "Your order shipped today.")
    assert history[-2:] == [("assistant", "re: where is my order?"),
                            ("assistant", "Your order shipped today.")]
    sent = emu.sent_messages()
    keys = [r for r in emu.requests(path_contains="/Actions")]
    assert len(sent) == 2 and len(keys) == 2  # one SEND_MESSAGE each, none twice


async def test_pushes_from_a_turn_never_wait_for_the_turn_itself(autojump_clock: Any) -> None:
    from tac_actors import BusyPolicy, ChannelPolicy

    tac = TAC(TACConfig(voice_policy=ChannelPolicy(busy_policy=BusyPolicy.PREEMPT,
                                                   mailbox_capacity=2)))
    errors: list[str] = []
    tac.on_error(lambda exc, context: errors.append(str(exc)))

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        for n in range(3):  # the third finds the mailbox full: an error, not a hang
            await tac.send_response(session.call_sid, f"push {n}")
        return "unreachable"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        replies = [(await caller.read_reply()).text for _ in range(3)]
    assert replies == [tac.config.voice_policy.fallback_text, "push 0", "push 1"]
    assert len(errors) == 1 and "mailbox is full" in errors[0]
