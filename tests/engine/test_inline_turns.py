"""Turns run inline in the actor's task: what must reach a running turn does so when it
is handed over (preemption through the reply gate), advisory partial prompts queued
behind a turn are coalesced, and a turn slow to stop is reported once it ends."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from tac_actors import TAC, BusyPolicy, TACConfig
from tac_actors.actors import PartialUtterance, Utterance
from tac_actors.protocol import Text
from tac_actors.testing import Gate, open_harness, token_stream

VOICE = TACConfig().voice_policy


def tac_with(**policy: Any) -> TAC:
    return TAC(TACConfig(voice_policy=attrs.evolve(VOICE, **policy)))


async def test_preempt_stops_the_running_turn_when_the_prompt_is_handed_over(
        clock: object) -> None:
    gate = Gate("A")
    tac = tac_with(busy_policy=BusyPolicy.PREEMPT)

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "A":
            await gate()
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        cell = h.cell(caller)
        running = cell.gate.running
        assert running is not None
        cell.send_nowait(Utterance("B"))
        # in the same step, before the actor has read anything
        assert running.scope.cancel_called and running.cause == "preempt"
        assert (await caller.read_reply()).text == "re B"
    assert gate.cancelled


async def test_preempt_skips_a_queued_prompt_for_a_newer_one(clock: object) -> None:
    gate = Gate("A")
    tac = tac_with(busy_policy=BusyPolicy.PREEMPT)
    started: list[str] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        started.append(message)
        if message == "A":
            return token_stream(["a1 ", "a2"], gates={1: gate})
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        assert await caller.next_frame() == Text(token="a1 ", last=False)
        cell = h.cell(caller)
        cell.send_nowait(Utterance("B"))
        cell.send_nowait(Utterance("C"))
        assert await caller.next_frame() == Text(token="", last=True)  # A's reply closed
        assert (await caller.read_reply()).text == "re C"
        await trio.testing.wait_all_tasks_blocked()
        history = [(e.role, e.text, e.interrupted) for e in cell.session.history]
    assert started == ["A", "C"]
    assert history == [("user", "A", False), ("assistant", "a1 ", True),
                       ("user", "B", False), ("user", "C", False),
                       ("assistant", "re C", False)]


async def test_queue_policy_never_preempts_at_hand_over(clock: object) -> None:
    gate = Gate("A")
    tac = tac_with(busy_policy=BusyPolicy.QUEUE)

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "A":
            await gate()
        return f"re {message}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        h.cell(caller).send_nowait(Utterance("B"))
        await trio.testing.wait_all_tasks_blocked()
        assert not gate.cancelled
        gate.open()
        assert (await caller.read_reply()).text == "re A"
        assert (await caller.read_reply()).text == "re B"


async def test_partial_prompts_queued_behind_a_turn_are_coalesced(clock: object) -> None:
    gate = Gate("A")
    tac = TAC(TACConfig())
    partials: list[str] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        await gate()
        return "done"

    @tac.on_partial_prompt
    async def partial(text: str, session: Any) -> None:
        partials.append(text)

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("A")
        await gate.wait_reached()
        cell = h.cell(caller)
        for word in ("I", "I want", "I want to"):
            cell.send_nowait(PartialUtterance(word))
        assert len(cell.mailbox) == 1
        gate.open()
        assert (await caller.read_reply()).text == "done"
        await trio.testing.wait_all_tasks_blocked()
    assert partials == ["I want to"]


async def test_a_turn_slow_to_stop_is_reported_when_it_ends(
        clock: object, caplog: pytest.LogCaptureFixture) -> None:
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "slow":
            with trio.CancelScope(shield=True):
                await trio.sleep(20)
        return f"re {message}"

    caplog.set_level(logging.WARNING, "tac_actors.actor")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("slow")
        await trio.sleep(1)
        await caller.say("next")
        assert (await caller.read_reply()).text == "re next"
    slow = [r.getMessage() for r in caplog.records if "to stop after being" in r.getMessage()]
    assert len(slow) == 1 and "took 19.0 s" in slow[0], slow
