"""Regression tests for the second review of the reply gate (each failed before its
fix): app output through ``session.controls`` after the acknowledgement, the fallback
words of a crashed turn after it, an interrupt during a drain, an interrupt behind slow
partial-prompt hooks, and turns that overlap after ``stop_timeout``."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from tac_actors import TAC, ActorCrash, TACConfig
from tac_actors.actors import Interruption
from tac_actors.protocol import Text
from tac_actors.testing import SimulatedCaller, open_harness

ACK = Text(token="", last=True)


async def texts_until(caller: SimulatedCaller, last: str) -> list[str]:
    out: list[str] = []
    while True:
        frame = await caller.next_frame()
        if isinstance(frame, Text):
            out.append(frame.token)
            if frame.token == last:
                return out


async def test_controls_send_nothing_for_a_stopped_turn(clock: object) -> None:
    tac = TAC(TACConfig())
    resume = trio.Event()

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "ping":
            return "pong"
        await resume.wait()
        await session.controls.send_text("LATE")
        await session.controls.play("https://example.com/late.mp3")
        return None

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("talk")
        await trio.testing.wait_all_tasks_blocked()
        resume.set()  # the turn is rescheduled with a value...
        h.cell(caller).send_nowait(Interruption())  # ...and barged in in the same pass
        await trio.testing.wait_all_tasks_blocked()
        await caller.say("ping")
        texts = await texts_until(caller, "pong")
    assert texts[texts.index("") + 1:] == ["pong"], texts


async def test_no_fallback_words_over_an_interrupt_during_a_restart(clock: object) -> None:
    tac = TAC(TACConfig())
    release = trio.Event()

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "ping":
            return "pong"
        raise ActorCrash("boom")

    @tac.on_error
    async def on_error(exc: BaseException, ctx: Any) -> None:
        await release.wait()  # the interrupt comes while the crash is being reported

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("talk")
        await trio.testing.wait_all_tasks_blocked()
        await caller.interrupt()
        await trio.testing.wait_all_tasks_blocked()
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        await caller.say("ping")
        texts = await texts_until(caller, "pong")
    assert texts[texts.index("") + 1:] == ["pong"], texts


async def test_an_interrupt_during_a_drain_reaches_the_hook(clock: object) -> None:
    tac = TAC(TACConfig())
    seen: list[str] = []
    go = trio.Event()

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        async def tokens() -> Any:
            yield "a "
            await go.wait()
            yield "b "
        return tokens()

    @tac.on_interrupt
    async def on_interrupt(session: Any, interruption: Any) -> None:
        seen.append(interruption.heard)

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("talk")
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.shutdown, 10.0)
            await trio.testing.wait_all_tasks_blocked()
            await caller.interrupt("a")
            await trio.testing.wait_all_tasks_blocked()
    assert seen == ["a"]


async def test_slow_partial_hooks_never_keep_an_interrupt_unread(clock: object) -> None:
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        async def tokens() -> Any:
            for i in range(200):
                yield f"t{i} "
                await trio.sleep(0.1)
        return tokens()

    @tac.on_partial_prompt
    async def partial(*args: Any) -> None:
        await trio.sleep(1.0)

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("talk")
        for _ in range(40):
            await caller.say_partial("uh")
        sent_at = trio.current_time()
        await caller.interrupt()
        while await caller.next_frame() != ACK:
            pass
        delay = trio.current_time() - sent_at
    assert delay < 0.5, f"acknowledged {delay:.1f} s after the interrupt was sent"


async def test_turns_never_overlap_even_when_the_app_shields(clock: object) -> None:
    tac = TAC(TACConfig())
    running: list[str] = []
    overlap: list[list[str]] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        running.append(message)
        if len(running) > 1:
            overlap.append(list(running))
        try:
            if message == "slow":
                with trio.CancelScope(shield=True):
                    await trio.sleep(20)
            return f"re {message}"
        finally:
            running.remove(message)

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("slow")
        await trio.sleep(1)
        await caller.say("next")
        assert (await caller.read_reply()).text == "re next"
    assert not overlap, overlap
