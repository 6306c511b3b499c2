"""Messaging that loses nothing, in-process under a fake clock: quick acks, reconcile,
idempotent replies, restarts, handoff, and the debounce and timeout fixes."""

from __future__ import annotations

import json
from typing import Any

import trio
import trio.testing

from tac_actors.channels.messaging import MessagingChannel, MessagingOptions
from tac_actors.channels.messaging_outbox import MessagingOutbox
from tac_actors.config import ChannelPolicy
from tac_actors.emulator import Emulator
from tac_actors.runtime import Runtime
from tac_actors.services import TwilioServices
from tac_actors.testing import Gate, Recorder, SimulatedTexter, WebhookFaults

from .conftest import in_process, make_tac

#: trio-clock bound of every test (under autojump a hang fails at once)
LIMIT = 600


def _tac(emu: Any, **overrides: Any) -> Any:
    return make_tac(emu, services_base_url="http://emulator", **overrides)


def _channel(runtime: Runtime) -> MessagingChannel:
    assert runtime.messaging is not None
    return runtime.messaging


def _texts(texter: SimulatedTexter) -> list[str]:
    return [r.text for r in texter.replies()]


async def test_the_ack_never_waits_on_the_orchestrator(emu: Emulator, autojump_clock: Any) -> None:
    """D8: participants, history and state are read in the turn, not before the 200."""
    with trio.fail_after(LIMIT):
        tac = _tac(emu)
        tac.on_message_ready(lambda m, s, mem: f"re: {m}")
        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            emu.faults.latency["conversations"] = 8.0
            before = trio.current_time()
            answer = await texter.send("hello")
            assert answer.status == 200 and trio.current_time() == before
            assert (await texter.read_reply()).text == "re: hello"


async def test_a_replayed_turn_sends_nothing_twice(emu: Emulator, autojump_clock: Any) -> None:
    """Two outboxes (as two processes would) answering the same inbound text: one
    message, the second send is answered from the Orchestrator's idempotency record."""
    with trio.fail_after(LIMIT):
        tac = _tac(emu)
        tac.on_message_ready(lambda m, s, mem: f"re: {m}")
        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            await texter.send("hi")
            await texter.read_reply()
            cell = runtime.supervisor.get(texter.conversation_id or "")
            assert cell is not None and isinstance(cell.outbox, MessagingOutbox)
            route = cell.outbox.route
        config = tac.config
        async with TwilioServices.open(config, transport=emu.transport()) as services:
            for _ in range(2):
                outbox = MessagingOutbox(services, route)
                outbox.begin([texter.sent_ids[0]])
                await outbox.deliver(7, "re: hi (replayed)", last=True)
        assert _texts(texter) == ["re: hi"]
        assert len(emu.db.all("action_replay")) == 2


async def test_lost_answer_to_a_send_is_retried_without_a_second_message(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        tac = _tac(emu)
        tac.on_message_ready(lambda m, s, mem: f"re: {m}")
        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            emu.faults.send_lost_reply = 1.0  # recorded, then answered 500
            await texter.send("hi")
            await emu.wait_until(lambda: len(emu.db.all("action_replay")) > 0)
            emu.faults.send_lost_reply = 0.0
            await trio.sleep(60)
        assert _texts(texter) == ["re: hi"]


async def test_a_dropped_webhook_is_answered_by_the_sweep(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        tac = _tac(emu, tac_options={"messaging": MessagingOptions(reconcile_interval=5.0)})
        seen: list[str] = []
        tac.on_message_ready(lambda m, s, mem: seen.append(m) or f"re: {m}")
        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime), faults=WebhookFaults(drop=1.0))
            assert (await texter.send("never notified")).status == 0
            texter.faults = None
            assert (await texter.read_reply()).text == "re: never notified"
            await texter.send("and this one")
            assert (await texter.read_reply()).text == "re: and this one"
            await trio.sleep(30)  # more sweeps: nothing answered twice
        assert seen == ["never notified", "and this one"]
        assert _texts(texter) == ["re: never notified", "re: and this one"]


async def test_a_full_backlog_is_left_to_reconcile_and_answered_in_order(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        tac = _tac(emu, messaging_policy=ChannelPolicy(mailbox_capacity=1, idle_timeout=900),
                   tac_options={"messaging": MessagingOptions(backlog=1,
                                                              reconcile_interval=None)})
        gate = Gate()

        @tac.on_message_ready
        async def reply(message: str, session: Any, memory: Any) -> str:
            if message == "t0":
                await gate()
            return f"re: {message}"

        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            await texter.send("t0")
            await gate.wait_reached()
            outcomes = [json.loads((await texter.send(f"t{i}")).body)["outcome"]
                        for i in range(1, 6)]
            assert outcomes == ["accepted", "queued", "left_for_reconcile",
                                "left_for_reconcile", "left_for_reconcile"]
            gate.open()
            await emu.wait_until(lambda: len(texter.replies()) >= 6)
            await trio.sleep(30)
        assert _texts(texter) == [f"re: t{i}" for i in range(6)]


async def test_restart_answers_acknowledged_texts_exactly_once(
        emu: Emulator, autojump_clock: Any) -> None:
    """A node stopped abruptly (no grace) with a turn running and texts queued: the next
    node answers every one of them once, in order, and nothing answered before again."""
    with trio.fail_after(LIMIT):
        tac = _tac(emu, shutdown_grace=0.0)
        gate = Gate()
        seen: list[str] = []

        @tac.on_message_ready
        async def reply(message: str, session: Any, memory: Any) -> str:
            seen.append(message)
            if message == "two" and not gate.reached:
                await gate()
            return f"re: {message}"

        async with Runtime.open(tac, transport=emu.transport()) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            await texter.send("one")
            await texter.read_reply()
            for text in ("two", "three", "four"):
                assert (await texter.send(text)).status == 200
            await gate.wait_reached()
            # leaving the block without a drain: the grace is 0, the turn is cancelled
        assert gate.cancelled and _texts(texter) == ["re: one"]
        async with in_process(emu, tac) as runtime:
            await emu.wait_until(lambda: len(texter.replies()) >= 4)
            await trio.sleep(60)
        assert _texts(texter) == ["re: one", "re: two", "re: three", "re: four"]
        assert seen == ["one", "two", "two", "three", "four"]


async def test_graceful_shutdown_leaves_queued_texts_to_the_next_node(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        tac = _tac(emu, shutdown_grace=5.0)
        slow = Gate()

        @tac.on_message_ready
        async def reply(message: str, session: Any, memory: Any) -> str:
            await trio.sleep(2)
            if message == "a" and not slow.reached:
                await slow()
            return f"re: {message}"

        async with Runtime.open(tac, transport=emu.transport()) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            for text in ("a", "b", "c"):
                await texter.send(text)
            await slow.wait_reached()
            slow.open()
            await runtime.shutdown()  # "a" finishes in the grace; "b", "c" are dropped
        assert _texts(texter) == ["re: a"]
        async with in_process(emu, tac):
            await emu.wait_until(lambda: len(texter.replies()) >= 3)
            await trio.sleep(30)
        assert _texts(texter) == ["re: a", "re: b", "re: c"]


async def _handoff_app(tac: Any) -> None:
    from tac_actors.tools import ToolCall, ToolRegistry
    from tac_actors.tools.builtins import create_studio_handoff_tool

    tools = ToolRegistry([create_studio_handoff_tool(tac)])

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        if "human" not in message:
            return f"re: {message}"
        [result] = await tools.run_calls(
            [ToolCall(id="1", name="handoff", arguments={"reason": "asked"})], session)
        status = json.loads(result.content)["status"] if isinstance(
            result.content, str) else result.content["status"]
        return f"handoff: {status}"


async def test_handoff_closes_the_door_for_this_node_and_the_next(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        tac = _tac(emu, studio_handoff_flow_sid="FW" + "3" * 32)
        await _handoff_app(tac)
        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            await texter.send("a human please")
            assert (await texter.read_reply()).text == "handoff: handoff_requested"
            await texter.send("hello?")  # 0 ms after the handoff reply
            await trio.sleep(60)
        conversation = emu.db.get("conversation", texter.conversation_id or "")
        assert conversation is not None and conversation["status"] == "INACTIVE"
        assert conversation["configuration"] == {"statusCallbacks": []}
        assert len(emu.studio_executions()) == 1
        async with in_process(emu, tac) as runtime:  # a restarted node
            texter.delivery = SimulatedTexter(emu, _channel(runtime)).delivery
            assert "handed_off" not in (await texter.send("anyone?")).body  # not known here
            await trio.sleep(60)
        assert _texts(texter) == ["handoff: handoff_requested"]


async def test_a_failed_studio_handoff_is_reported_and_the_bot_keeps_the_conversation(
        emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        tac = _tac(emu, studio_handoff_flow_sid="FW" + "4" * 32)
        await _handoff_app(tac)
        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            emu.faults.down.add("studio")
            await texter.send("a human please")
            assert (await texter.read_reply()).text == "handoff: handoff_failed"
            emu.faults.down.clear()
            await texter.send("still there?")
            assert (await texter.read_reply()).text == "re: still there?"
        conversation = emu.db.get("conversation", texter.conversation_id or "")
        assert conversation is not None and conversation["status"] == "ACTIVE"
        assert emu.studio_executions() == []


async def test_a_stream_that_times_out_sends_only_the_timeout_words(
        emu: Emulator, autojump_clock: Any) -> None:
    """C9: the partial reply is dropped, not glued to the timeout words."""
    with trio.fail_after(LIMIT):
        policy = ChannelPolicy(turn_timeout=5.0, idle_timeout=900)
        tac = _tac(emu, messaging_policy=policy)

        @tac.on_message_ready
        async def reply(message: str, session: Any, memory: Any) -> Any:
            async def tokens() -> Any:
                yield "Let me check"
                await trio.sleep(60)
                yield " never"
            return tokens()

        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            await texter.send("slow one")
            assert (await texter.read_reply()).text == policy.timeout_text
            await trio.sleep(60)
        assert _texts(texter) == [policy.timeout_text]


async def test_debounce_waits_outside_the_turn_deadline(
        emu: Emulator, autojump_clock: Any) -> None:
    """C13: someone typing for longer than turn_timeout gets one answer to all of it."""
    with trio.fail_after(LIMIT):
        tac = _tac(emu, messaging_policy=ChannelPolicy(turn_timeout=5.0, idle_timeout=900),
                   tac_options={"messaging": MessagingOptions(debounce=2.0)})
        seen: list[str] = []
        tac.on_message_ready(lambda m, s, mem: seen.append(m) or f"got {len(m.splitlines())}")
        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            for i in range(8):  # 12 s of typing, never 2 s of quiet
                await texter.send(f"part {i}")
                await trio.sleep(1.5)
            assert (await texter.read_reply()).text == "got 8"
            await trio.sleep(30)
        assert seen == ["\n".join(f"part {i}" for i in range(8))]
        assert _texts(texter) == ["got 8"]


async def test_debounced_burst_of_a_respawned_actor_sees_the_restored_history(
        emu: Emulator, autojump_clock: Any) -> None:
    """C8: history is restored before the burst is coalesced."""
    with trio.fail_after(LIMIT):
        tac = _tac(emu, messaging_policy=ChannelPolicy(idle_timeout=60),
                   tac_options={"messaging": MessagingOptions(debounce=2.0)})
        recorder = Recorder().attach(tac)
        seen: list[list[tuple[str, str]]] = []

        @tac.on_message_ready
        def reply(message: str, session: Any, memory: Any) -> str:
            seen.append([(e.role, e.text) for e in session.history])
            return f"re: {message}"

        async with in_process(emu, tac) as runtime:
            texter = SimulatedTexter(emu, _channel(runtime))
            await texter.send("first")
            await texter.read_reply()
            await recorder.ended_seen.wait()  # idle timeout: the actor is gone
            for text in ("second", "third"):
                await texter.send(text)
            assert (await texter.read_reply()).text == "re: second\nthird"
        assert seen[1] == [("user", "first"), ("assistant", "re: first"),
                           ("user", "second\nthird")]


async def test_node_shutting_down_answers_503(emu: Emulator, autojump_clock: Any) -> None:
    with trio.fail_after(LIMIT):
        tac = _tac(emu)
        tac.on_message_ready(lambda m, s, mem: "ok")
        async with in_process(emu, tac) as runtime:
            channel = _channel(runtime)
            texter = SimulatedTexter(emu, channel)
            await texter.send("hi")
            await texter.read_reply()
            await runtime.shutdown()
            refused = await texter.send("during the drain")
            assert (refused.status, refused.retry_after) == (503, "1")
            await trio.testing.wait_all_tasks_blocked()
        assert channel.counters["shutdown"] == 1


async def test_a_bug_in_spawning_is_contained_and_the_text_left_to_reconcile(
        emu: Emulator, autojump_clock: Any, monkeypatch: Any) -> None:
    with trio.fail_after(LIMIT):
        # debounce sends every text through the backlog, whose feeder spawns the actor
        tac = _tac(emu, tac_options={"messaging": MessagingOptions(
            debounce=1.0, reconcile_interval=None)})
        tac.on_message_ready(lambda m, s, mem: f"re: {m}")
        async with in_process(emu, tac) as runtime:
            channel = _channel(runtime)
            texter = SimulatedTexter(emu, channel)
            spawn = runtime.supervisor.spawn

            def bug(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("a bug in spawn")

            monkeypatch.setattr(runtime.supervisor, "spawn", bug)
            assert (await texter.send("hi")).status == 200
            await trio.sleep(5)  # the feeder hit the bug; the runtime is still up
            assert texter.replies() == []
            monkeypatch.setattr(runtime.supervisor, "spawn", spawn)
            assert await channel.reconciler.sweep(everything=True) == 1
            assert (await texter.read_reply()).text == "re: hi"
