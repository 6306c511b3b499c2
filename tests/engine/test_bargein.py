"""Barge-in at each await point of a turn: after the acknowledgement, no token of the
interrupted turn reaches the caller."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from tac_actors import TAC, TACConfig, TACMemoryResponse
from tac_actors.protocol import Text
from tac_actors.testing import (
    Gate,
    GatedTransport,
    Recorder,
    SimulatedCaller,
    open_harness,
    token_stream,
)


class GatedMemory:
    """A memory provider that parks at a gate before answering."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def retrieve(self, session: Any, query: str | None) -> TACMemoryResponse:
        await self.gate()
        return TACMemoryResponse.empty()


async def frames_after_ack(caller: SimulatedCaller) -> list[Text]:
    """Read up to the acknowledgement (empty final token) and return every text frame
    received after it, once the server has nothing more to do."""
    while True:
        frame = await caller.next_frame()
        if isinstance(frame, Text) and frame.token == "" and frame.last:
            break
    index = len(caller.received)
    await trio.testing.wait_all_tasks_blocked()
    # drain whatever the server queued after the ack
    with trio.move_on_after(0):
        while True:
            await caller.next_frame()
    return [f for f in caller.received[index:] if isinstance(f, Text)]


@pytest.mark.parametrize("wire", ["memory", "websocket"])
@pytest.mark.parametrize("where", ["memory", "callback", "stream"])
async def test_barge_in_at_each_await_point(clock: object, where: str, wire: str) -> None:
    gate = Gate(where)
    finished: list[bool] = []
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)
    if where == "memory":
        tac.memory_provider = GatedMemory(gate)

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message != "first":
            return "second answer"
        if where == "callback":
            await gate()
        gates = {2: gate} if where == "stream" else {}
        return token_stream(["one ", "two ", "three ", "four"], gates=gates, finished=finished)

    async with open_harness(tac) as h, h.call(wire=wire) as caller:  # type: ignore[arg-type]
        await caller.say("first")
        await gate.wait_reached()
        await trio.testing.wait_all_tasks_blocked()
        if where == "stream":
            # the caller hears the two tokens sent before the gate
            sent = [await caller.next_frame(), await caller.next_frame()]
            assert sent == [Text(token="one ", last=False), Text(token="two ", last=False)]
        await caller.interrupt(heard="one" if where == "stream" else "")
        late = await frames_after_ack(caller)
        assert late == [], f"tokens after the acknowledgement: {late}"
        assert gate.cancelled
        if where == "stream":
            assert finished == [True], "the reply generator was closed"
        # the conversation goes on
        gate.open()
        await caller.say("next")
        assert (await caller.read_reply()).text == "second answer"
        session = h.cell(caller).session
    assert len(rec.interrupts) == 1
    interruption = rec.interrupts[0][1]
    assert interruption.heard == ("one" if where == "stream" else "")
    if where == "stream":
        assistant = [e for e in session.history if e.role == "assistant"]
        assert assistant[0].text == "one" and assistant[0].interrupted


async def test_interrupt_ack_even_when_reply_already_complete(clock: object) -> None:
    tac = TAC(TACConfig())
    sessions: list[Any] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        sessions.append(session)
        return "a long sentence the caller did not hear to the end"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hi")
        await caller.read_reply()
        await caller.interrupt(heard="a long sentence")
        ack = await caller.read_reply()
        assert ack.tokens == ()
        await trio.testing.wait_all_tasks_blocked()
    entry = sessions[0].history[-1]
    assert (entry.role, entry.text, entry.interrupted) == ("assistant", "a long sentence", True)


async def test_interrupt_hook_failure_is_contained(clock: object) -> None:
    tac = TAC(TACConfig())
    errors: list[Any] = []
    tac.on_message_ready(lambda m, s, mem: token_stream(["x"] * 3))

    @tac.on_interrupt
    async def boom(session: Any, interruption: Any) -> None:
        raise ValueError("hook bug")

    tac.on_error(lambda exc, ctx: errors.append((type(exc), ctx.phase)))
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hi")
        await caller.read_reply()
        await caller.interrupt()
        await caller.read_reply()
        await caller.say("again")
        assert (await caller.read_reply()).text == "xxx"
    assert errors == [(ValueError, "hook")]


@pytest.mark.parametrize("turn_running", [True, False])
async def test_queued_frames_of_the_turn_are_retracted(clock: object, turn_running: bool) -> None:
    """Behind a stalled socket, frames of the interrupted reply wait in the outbox: they
    are dropped, and the acknowledgement is the next thing the caller gets."""
    gate = Gate("mid-reply")
    transports: list[GatedTransport] = []
    tac = TAC(TACConfig())
    gates = {6: gate} if turn_running else {}
    tac.on_message_ready(lambda m, s, mem: token_stream([f"t{i} " for i in range(8)],
                                                        gates=gates))

    def wrap(inner: Any) -> GatedTransport:
        transports.append(GatedTransport(inner))
        return transports[0]

    async with open_harness(tac) as h, h.call(wrap=wrap) as caller:
        transports[0].stall()
        await caller.say("talk")
        if turn_running:
            await gate.wait_reached()
        await trio.testing.wait_all_tasks_blocked()
        assert h.cell(caller).outbox.queued() >= 5  # type: ignore[attr-defined]
        await caller.interrupt(heard="t0")
        await trio.testing.wait_all_tasks_blocked()
        transports[0].release()
        first = await caller.next_frame()
        # the writer had already taken t0 off the queue when the socket stalled
        assert first == Text(token="t0 ", last=False)
        assert await caller.next_frame() == Text(token="", last=True)
        await trio.testing.wait_all_tasks_blocked()
        assert h.cell(caller).outbox.queued() == 0  # type: ignore[attr-defined]


async def test_interruption_posted_to_the_mailbox_stops_the_turn_too(clock: object) -> None:
    """The actor's own path (an Interruption not stopped by the reader first, as after a
    restart or from another channel) gives the same guarantees."""
    from tac_actors.actors import Interruption

    gate = Gate("mid-stream")
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)
    tac.on_message_ready(lambda m, s, mem: token_stream(["a ", "b ", "c"], gates={1: gate}))
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        await gate.wait_reached()
        assert await caller.next_frame() == Text(token="a ", last=False)
        await h.cell(caller).send(Interruption("a"))
        assert await caller.next_frame() == Text(token="", last=True)
        assert await frames_after_ack_or_none(caller) == []
        assert gate.cancelled
    assert [i.heard for _, i in rec.interrupts] == ["a"]


async def frames_after_ack_or_none(caller: SimulatedCaller) -> list[Text]:
    await trio.testing.wait_all_tasks_blocked()
    index = len(caller.received)
    with trio.move_on_after(0):
        while True:
            await caller.next_frame()
    return [f for f in caller.received[index:] if isinstance(f, Text)]
