"""The barge-in race: an interrupt right behind its prompt.

The rule (see :mod:`tac_actors.actors.gate`): an interrupt applies to the reply of every
prompt read before it on the socket, whether its turn is queued, being dispatched,
fetching memory, in the callback or streaming. After the acknowledgement no token of
that reply is sent, and a prompt read after the interrupt is answered as usual.

The interrupt is sent after ``steps`` passes of the scheduler behind the prompt, for
every ``steps`` from 0 up to past the first token: that walks it through each await point
between the prompt being read and its first token being written (mailbox, dispatch,
turn start, memory fetch, callback start, first token queued, mid-stream).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from tac_actors import TAC, TACConfig, TACMemoryResponse
from tac_actors.protocol import Text
from tac_actors.testing import Recorder, SimulatedCaller, open_harness

TOKENS = [f"w{i} " for i in range(6)]


class SlowMemory:
    """Memory that takes a few scheduler passes to answer (an await point of its own)."""

    async def retrieve(self, session: Any, query: str | None) -> TACMemoryResponse:
        for _ in range(3):
            await trio.lowlevel.checkpoint()
        return TACMemoryResponse.empty()


def streaming_tac(*, memory: bool) -> TAC:
    tac = TAC(TACConfig())
    if memory:
        tac.memory_provider = SlowMemory()

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "ping":
            return "pong"
        await trio.lowlevel.checkpoint()  # the callback's own first await

        async def tokens() -> Any:
            for token in TOKENS:
                yield token
                await trio.lowlevel.checkpoint()

        return tokens()

    return tac


async def passes(n: int) -> None:
    for _ in range(n):
        await trio.lowlevel.cancel_shielded_checkpoint()


async def frames_until_pong(caller: SimulatedCaller) -> list[Text]:
    frames: list[Text] = []
    while True:
        frame = await caller.next_frame()
        if isinstance(frame, Text):
            frames.append(frame)
            if frame.token == "pong":
                return frames


ACK = Text(token="", last=True)


def assert_stopped_then_acknowledged(frames: list[Text]) -> None:
    """What the caller may hear before the next reply: a prefix of the reply then the
    acknowledgement, or the whole reply, its end, then the acknowledgement. Never a
    token after the acknowledgement, never a reply that plays on after it."""
    tokens = [Text(token=t, last=False) for t in TOKENS]
    assert frames, "no acknowledgement"
    assert frames[-1] == ACK, f"the acknowledgement is not last: {frames}"
    heard = frames[:-1]
    stopped = heard == tokens[:len(heard)]
    completed = heard == [*tokens, ACK]
    assert stopped or completed, f"sent after the acknowledgement: {frames}"


@pytest.mark.parametrize("via", ["cell", "caller", "websocket", "socket"])
@pytest.mark.parametrize("memory", [False, True], ids=["relay-only", "memory"])
@pytest.mark.parametrize("steps", range(0, 40, 1))
async def test_no_token_after_the_acknowledgement(clock: object, steps: int, memory: bool,
                                                  via: str) -> None:
    """``via="cell"`` hands the messages to the conversation as a channel's reader does
    when both frames came in one read (no scheduler pass between them unless ``steps``
    says so); ``via="caller"`` sends frames through the in-memory socket;
    ``via="websocket"`` through the fast engine's own transport, real framing in
    memory; ``via="socket"`` the same over a real socket pair."""
    from tac_actors.actors import Interruption, Utterance

    tac = streaming_tac(memory=memory)
    rec = Recorder().attach(tac)
    with trio.fail_after(60):
        wire = via if via in ("websocket", "socket") else "memory"
        async with open_harness(tac) as h, h.call(wire=wire) as caller:
            if via == "cell":
                await trio.testing.wait_all_tasks_blocked()
                cell = h.cell(caller)
                cell.send_nowait(Utterance("talk"))
                await passes(steps)
                cell.send_nowait(Interruption())
            else:
                await caller.say("talk")
                await passes(steps)
                await caller.interrupt()
            # the next prompt comes once the server has nothing left to do: a reply that
            # plays on after the acknowledgement has played by then
            await trio.testing.wait_all_tasks_blocked()
            await caller.say("ping")
            frames = await frames_until_pong(caller)
            assert_stopped_then_acknowledged(frames[:-1])
            await trio.testing.wait_all_tasks_blocked()
            history = [(e.role, e.text) for e in h.cell(caller).session.history]
    assert len(rec.interrupts) == 1
    assert history[0] == ("user", "talk") and history[-2:] == [("user", "ping"),
                                                               ("assistant", "pong")]


async def test_interrupt_before_the_turn_starts_skips_the_callback(clock: object) -> None:
    """Prompt and interrupt handed over with no scheduler pass between them: the turn
    never starts (the callback is not called), the prompt is in the history."""
    calls: list[str] = []
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        calls.append(message)
        return f"re {message}"

    from tac_actors.actors import Interruption, Utterance

    async with open_harness(tac) as h, h.call() as caller:
        await trio.testing.wait_all_tasks_blocked()
        cell = h.cell(caller)
        cell.send_nowait(Utterance("first"))
        cell.send_nowait(Interruption())
        cell.send_nowait(Utterance("second"))
        assert (await caller.read_reply()).tokens == ()
        assert (await caller.read_reply()).text == "re second"
        history = [(e.role, e.text) for e in cell.session.history]
    assert calls == ["second"]
    assert history == [("user", "first"), ("user", "second"), ("assistant", "re second")]


async def test_interrupt_during_a_restart_retracts_the_crashed_turns_frames(
        clock: object) -> None:
    """The gate belongs to the cell, not to an actor incarnation (review C20)."""
    from tac_actors import ActorCrash
    from tac_actors.testing import GatedTransport

    transports: list[GatedTransport] = []
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "crash":
            async def tokens() -> Any:
                for i in range(5):
                    yield f"c{i} "
                raise ActorCrash("boom")
            return tokens()
        return f"re {message}"

    def wrap(inner: Any) -> GatedTransport:
        transports.append(GatedTransport(inner))
        return transports[0]

    async with open_harness(tac) as h, h.call(wrap=wrap) as caller:
        await trio.testing.wait_all_tasks_blocked()
        transports[0].stall()
        await caller.say("crash")
        await trio.testing.wait_all_tasks_blocked()
        await caller.interrupt()
        transports[0].release()
        await caller.say("ping")
        texts: list[str] = []
        while True:
            frame = await caller.next_frame()
            if isinstance(frame, Text):
                texts.append(frame.token)
                if frame.token == "re ping":
                    break
    ack = texts.index("")
    assert not any(t.startswith("c") for t in texts[ack + 1:]), texts
