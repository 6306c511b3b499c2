"""Barge-in at the await points of a turn that the main barge-in test does not reach
(review §3.4): a producer parked on back-pressure, timeout words queued behind a slow
socket, a second interrupt while the interrupt hook runs, an interrupt while the handoff
``end`` is queued, and an interrupt inside a tool the callback awaits."""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.protocol import End, Text
from tac_actors.testing import Gate, GatedTransport, Recorder, SimulatedCaller, open_harness

ACK = Text(token="", last=True)


def stalled() -> tuple[list[GatedTransport], Any]:
    transports: list[GatedTransport] = []

    def wrap(inner: Any) -> GatedTransport:
        transports.append(GatedTransport(inner))
        return transports[0]

    return transports, wrap


async def texts_until(caller: SimulatedCaller, token: str) -> list[str]:
    seen: list[str] = []
    while True:
        frame = await caller.next_frame()
        if isinstance(frame, Text):
            if frame.token == token:
                return seen
            seen.append(frame.token if frame.token or not frame.last else "<end>")


async def test_producer_parked_on_back_pressure(clock: object) -> None:
    """The reply fills the outbox past its high-water mark behind a stalled socket and
    parks; the interrupt retracts the queue and unparks it into a stopped turn."""
    tac = TAC(TACConfig())
    produced: list[int] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "ping":
            return "pong"

        async def tokens() -> Any:
            for i in range(2000):
                produced.append(i)
                yield f"t{i} "

        return tokens()

    transports, wrap = stalled()
    async with open_harness(tac) as h, h.call(wrap=wrap) as caller:
        await trio.testing.wait_all_tasks_blocked()
        transports[0].stall()
        await caller.say("talk")
        await trio.testing.wait_all_tasks_blocked()
        parked_at = len(produced)
        assert 100 < parked_at < 2000, "the producer parks on the high-water mark"
        await caller.interrupt()
        transports[0].release()
        await trio.testing.wait_all_tasks_blocked()
        await caller.say("ping")
        heard = await texts_until(caller, "pong")
    assert heard[-1] == "<end>" and heard.count("<end>") == 1
    assert len(heard) - 1 <= 1, f"at most the frame already with the writer: {heard[:5]}"


async def test_timeout_words_queued_behind_a_slow_socket(clock: object) -> None:
    config = TACConfig()
    tac = TAC(attrs.evolve(config, voice_policy=attrs.evolve(config.voice_policy,
                                                             turn_timeout=5.0)))

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "ping":
            return "pong"
        await trio.sleep(10)  # past the turn deadline
        return "never"

    transports, wrap = stalled()
    async with open_harness(tac) as h, h.call(wrap=wrap) as caller:
        await trio.testing.wait_all_tasks_blocked()
        transports[0].stall()
        await caller.say("slow")
        await trio.sleep(6)  # the deadline passes: the timeout words are queued
        await trio.testing.wait_all_tasks_blocked()
        await caller.interrupt()
        transports[0].release()
        await trio.testing.wait_all_tasks_blocked()
        await caller.say("ping")
        heard = await texts_until(caller, "pong")
    timeout_text = tac.config.voice_policy.timeout_text
    assert heard in (["<end>"], [timeout_text, "<end>"]), heard
    if heard != ["<end>"]:  # only when the writer already held the words
        assert heard.index(timeout_text) < heard.index("<end>")


async def test_second_interrupt_while_the_hook_runs(clock: object) -> None:
    gate = Gate("on_interrupt")
    tac = TAC(TACConfig())
    rec = Recorder()

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "ping":
            return "pong"

        async def tokens() -> Any:
            for i in range(50):
                yield f"t{i} "
                await trio.sleep(0.02)

        return tokens()

    @tac.on_interrupt
    async def hook(session: Any, interruption: Any) -> None:
        rec.interrupts.append((session, interruption))
        if len(rec.interrupts) == 1:
            await gate()

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("talk")
        await caller.next_frame()
        await caller.interrupt("t0")
        await gate.wait_reached()
        await caller.interrupt("t0")  # again, while the first hook is parked
        await caller.say("talk")  # a new reply starts behind the parked hook...
        gate.open()
        await trio.testing.wait_all_tasks_blocked()
        await caller.interrupt()  # ...and is stopped in turn
        await trio.testing.wait_all_tasks_blocked()
        await caller.say("ping")
        heard = await texts_until(caller, "pong")
    assert heard[heard.index("<end>") + 1:].count("<end>") >= 1
    ends = [i for i, t in enumerate(heard) if t == "<end>"]
    assert all(t == "<end>" for t in heard[ends[-1]:]), heard
    assert len(rec.interrupts) == 3


async def test_interrupt_while_the_handoff_end_is_queued(clock: object) -> None:
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        session.request_handoff('{"reason": "human"}')
        return "Transferring you now."

    transports, wrap = stalled()
    async with open_harness(tac) as h, h.call(wrap=wrap) as caller:
        await trio.testing.wait_all_tasks_blocked()
        transports[0].stall()
        await caller.say("agent please")
        await trio.testing.wait_all_tasks_blocked()
        await caller.interrupt()
        transports[0].release()
        frames = []
        while not isinstance(frame := await caller.next_frame(), End):
            frames.append(frame)
    assert frame.handoff_data == '{"reason": "human"}'  # the handoff still happens
    assert frames[-1] == ACK or frames == [Text(token="Transferring you now.", last=True)]


async def test_interrupt_inside_a_tool(clock: object) -> None:
    from tac_actors.tools import function_tool

    gate = Gate("inside the tool")
    finished: list[str] = []

    @function_tool
    async def lookup(order_id: str) -> str:
        """Look up an order.

        Args:
            order_id: the order
        """
        try:
            await gate()
            return "shipped"
        finally:
            finished.append("tool")

    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "ping":
            return "pong"
        result = await lookup.invoke({"order_id": "42"})
        return f"Your order is {result.content}."

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("where is my order")
        await gate.wait_reached()
        await caller.interrupt()
        assert await caller.next_frame() == ACK
        await caller.say("ping")
        heard = await texts_until(caller, "pong")
    assert heard == [] and gate.cancelled and finished == ["tool"]


async def test_handoff_requested_from_the_interrupt_hook(clock: object) -> None:
    """Review A7: a handoff requested outside a turn waited for some later turn."""
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        return "a reply"

    @tac.on_interrupt
    async def hook(session: Any, interruption: Any) -> None:
        session.request_handoff("to a human")

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hi")
        await caller.read_reply()
        await caller.interrupt()
        while not isinstance(frame := await caller.next_frame(), End):
            pass
        assert frame.handoff_data == "to a human"
        assert await caller.wait_closed() == 1000
