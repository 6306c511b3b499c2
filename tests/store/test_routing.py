"""Routing text conversations across processes, in one process under a fake clock: two
runtimes ("processes") share one in-memory store and the emulator; a texter's webhooks
go to one runtime or the other (a load balancer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from tac_actors import TAC
from tac_actors.channels.messaging import MessagingChannel, MessagingOptions
from tac_actors.emulator import Emulator
from tac_actors.runtime import Runtime
from tac_actors.store import LocalStore
from tac_actors.testing import Gate, SimulatedTexter

from ..messaging.conftest import emu, make_tac

__all__ = ["emu"]  # the fixture, re-exported for these tests

LIMIT = 600
TTL = 10.0


def _tac(emu: Emulator) -> TAC:
    return make_tac(emu, services_base_url="http://emulator", lease_ttl=TTL,
                    tac_options={"messaging": MessagingOptions(reconcile_interval=None)})


@asynccontextmanager
async def _process(emu: Emulator, store: LocalStore, tac: TAC
                   ) -> AsyncIterator[tuple[Runtime, trio.CancelScope]]:
    """A runtime over ``store``; the scope cancels it (a graceful stop)."""
    with trio.CancelScope() as scope:
        async with Runtime.open(tac, transport=emu.transport(), store=store) as runtime:
            yield runtime, scope
            await runtime.shutdown()


def _channel(runtime: Runtime) -> MessagingChannel:
    assert runtime.messaging is not None
    return runtime.messaging


def _texts(texter: SimulatedTexter) -> list[str]:
    return [r.text for r in texter.replies()]


async def test_a_text_landing_anywhere_reaches_the_one_owner_in_order(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        shared = LocalStore(node="a")
        tac_a, tac_b = _tac(emu), _tac(emu)
        seen: list[tuple[str, str]] = []
        for name, tac in (("a", tac_a), ("b", tac_b)):
            async def reply(m: str, s: Any, mem: Any, name: str = name) -> str:
                seen.append((name, m))
                await trio.sleep(1.0)  # a slow model: texts queue up behind the turn
                return f"re: {m}"
            tac.on_message_ready(reply)
        async with _process(emu, shared, tac_a) as (a, _), \
                _process(emu, shared.peer("b"), tac_b) as (b, _):
            texter_a = SimulatedTexter(emu, _channel(a))
            assert (await texter_a.send("one")).status == 200  # lands on a: a owns it
            texter_b = SimulatedTexter(emu, _channel(b),
                                       conversation_id=texter_a.conversation_id)
            for text in ("two", "three", "four"):  # land on b: routed to a
                assert (await texter_b.send(text)).status == 200
            await emu.wait_until(lambda: len(texter_a.replies()) == 4)
            await trio.testing.wait_all_tasks_blocked()
            assert _texts(texter_a) == ["re: one", "re: two", "re: three", "re: four"]
            assert {n for n, _ in seen} == {"a"}
            assert _channel(b).supervisor.get(texter_a.conversation_id or "") is None
            assert _channel(a).router is not None and _channel(a).router.owns(
                texter_a.conversation_id or "")


async def test_a_stopped_owner_hands_over_and_nothing_is_answered_twice(
        emu: Emulator, autojump_clock: Any) -> None:
    """The owner stops while texts wait in its queue (one mid-turn): the other process
    takes the conversation over and answers each text once, in order."""
    with trio.fail_after(LIMIT):
        shared = LocalStore(node="a")
        tac_a, tac_b = _tac(emu), _tac(emu)
        gate = Gate()

        async def parked(m: str, s: Any, mem: Any) -> str:
            await gate()  # a never answers: it is stopped in this turn
            return f"re: {m}"

        tac_a.on_message_ready(parked)
        tac_b.on_message_ready(lambda m, s, mem: f"re: {m}")
        async with _process(emu, shared.peer("b"), tac_b) as (b, _):
            async with _process(emu, shared, tac_a) as (a, stop_a):
                texter = SimulatedTexter(emu, _channel(a))
                for text in ("one", "two", "three"):
                    assert (await texter.send(text)).status == 200
                await gate.wait_reached()  # a is in the turn of "one", the rest queued
                stop_a.cancel()
            assert texter.conversation_id is not None
            router_b = _channel(b).router
            assert router_b is not None
            await trio.sleep(TTL)  # a sweep of b runs (the lease was given back)
            await emu.wait_until(lambda: len(texter.replies()) == 3)
            await trio.sleep(TTL * 2)
            assert _texts(texter) == ["re: one", "re: two", "re: three"]
            assert router_b.owns(texter.conversation_id)
            assert (await shared.pending(texter.conversation_id)).items == ()


async def test_closed_landing_on_another_process_ends_the_owners_actor(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        shared = LocalStore(node="a")
        tac_a, tac_b = _tac(emu), _tac(emu)
        for tac in (tac_a, tac_b):
            tac.on_message_ready(lambda m, s, mem: f"re: {m}")
        async with _process(emu, shared, tac_a) as (a, _), \
                _process(emu, shared.peer("b"), tac_b) as (b, _):
            texter = SimulatedTexter(emu, _channel(a))
            await texter.send("hello")
            await texter.read_reply()
            conversation = texter.conversation_id or ""
            cell = _channel(a).supervisor.get(conversation)
            assert cell is not None
            closer = SimulatedTexter(emu, _channel(b), conversation_id=conversation)
            assert (await closer.set_status("CLOSED")).status == 200
            with trio.fail_after(1.0):  # the notice, not the owner's periodic read
                await cell.wait_stopped()
            assert (await closer.send("too late")).body.find("handed_off") >= 0
