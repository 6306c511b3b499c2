"""The messaging channel in-process, under a fake clock: ordering, debounce, back-pressure,
idempotency, echoes, lifecycle and delivery failures."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from tac_actors.channels.messaging import MessagingChannel, MessagingOptions
from tac_actors.config import ChannelPolicy
from tac_actors.emulator import Emulator
from tac_actors.runtime import Runtime
from tac_actors.testing import Gate, Recorder, SimulatedTexter

from .conftest import in_process, make_tac


def _tac(emu: Any, **overrides: Any) -> Any:
    return make_tac(emu, services_base_url="http://emulator", **overrides)


def _channel(runtime: Runtime) -> MessagingChannel:
    assert runtime.messaging is not None
    return runtime.messaging


async def test_burst_is_answered_in_order_one_turn_at_a_time(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu)
    gate = Gate()
    seen: list[str] = []
    running = [0]
    overlap = [False]

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        running[0] += 1
        overlap[0] |= running[0] > 1
        seen.append(message)
        if message == "one":
            await gate()
        await trio.sleep(1)
        running[0] -= 1
        return f"re: {message}"

    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        assert (await texter.send("one")).status == 200
        await gate.wait_reached()
        for text in ("two", "three"):
            assert (await texter.send(text)).status == 200  # acknowledged mid-turn
        assert seen == ["one"]
        gate.open()
        replies = [(await texter.read_reply()).text for _ in range(3)]
    assert replies == ["re: one", "re: two", "re: three"]
    assert seen == ["one", "two", "three"] and not overlap[0]


async def test_debounce_answers_a_burst_once(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu, tac_options={"messaging": MessagingOptions(debounce=2.0)})
    seen: list[str] = []
    tac.on_message_ready(lambda m, s, mem: seen.append(m) or f"got {len(m.splitlines())}")
    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        await texter.send("hi")
        await trio.sleep(1.0)
        await texter.send("I need")
        await trio.sleep(1.5)
        await texter.send("a refund")
        reply = await texter.read_reply()
        await trio.sleep(10)  # nothing else comes
        assert texter.unread() == []
        await texter.send("thanks")
        second = await texter.read_reply()
    assert reply.text == "got 3" and second.text == "got 1"
    assert seen == ["hi\nI need\na refund", "thanks"]


async def test_full_mailbox_is_not_a_503_the_backlog_keeps_the_order(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu, messaging_policy=ChannelPolicy(mailbox_capacity=1, idle_timeout=900))
    gate = Gate()

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        if message == "first":
            await gate()
        return f"re: {message}"

    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        await texter.send("first")
        await gate.wait_reached()
        assert "accepted" in (await texter.send("second")).body  # fills the mailbox
        for text in ("third", "fourth"):
            answer = await texter.send(text)
            assert answer.status == 200 and "queued" in answer.body
        gate.open()
        replies = [(await texter.read_reply()).text for _ in range(4)]
    assert replies == ["re: first", "re: second", "re: third", "re: fourth"]


async def test_retried_webhook_is_handled_once(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu)
    seen: list[str] = []
    tac.on_message_ready(lambda m, s, mem: seen.append(m) or "ok")
    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        await texter.send("hello", idempotency_token="tok-1")
        again = await texter.redeliver()
        assert again.status == 200 and "duplicate" in again.body
        # a retry with a new token but the same communication id is a duplicate too
        body, _ = texter.last_webhook  # type: ignore[misc]
        assert "duplicate" in (await texter.post_raw(body, {
            "I-Twilio-Idempotency-Token": "other"})).body
        await texter.read_reply()
        await trio.testing.wait_all_tasks_blocked()
    assert seen == ["hello"]
    assert len(emu.sent_messages()) == 1


async def test_closed_mid_turn_cancels_the_turn_and_ends_once(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu)
    recorder = Recorder().attach(tac)
    gate = Gate()

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        await gate()
        return "too late"

    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        await texter.send("hi")
        await gate.wait_reached()
        assert (await texter.close()).status == 200
        await recorder.ended_seen.wait()
        assert runtime.supervisor.get(texter.conversation_id or "") is None
        assert (await texter.redeliver()).status == 200  # a repeated CLOSED is harmless
    assert gate.cancelled
    assert len(recorder.ended) == 1 and recorder.errors == []
    assert emu.sent_messages() == []


async def test_own_echoes_are_dropped(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu)
    seen: list[str] = []
    tac.on_message_ready(lambda m, s, mem: seen.append(m) or "ok")
    async with in_process(emu, tac) as runtime:
        channel = _channel(runtime)
        texter = SimulatedTexter(emu, channel)
        await texter.send("hi")
        await texter.read_reply()
        # our own reply, reported back by the Orchestrator: fast path on the address
        bot = SimulatedTexter(emu, channel, conversation_id=texter.conversation_id,
                              address="+15550000000", agent_address="+15551230001")
        assert "echo" in (await bot.send("ok")).body
        # an AI_AGENT participant at another address: found by the participants look-up
        other = SimulatedTexter(emu, channel)
        await other.send("first")  # creates the conversation, caches its participants
        await other.read_reply()
        helper = SimulatedTexter(emu, channel, conversation_id=other.conversation_id,
                                 address="+15550000000")
        assert "echo" in (await helper.send("note")).body
        lookups = emu.requests(path_contains="/Participants")
    assert seen == ["hi", "first"]
    assert len(lookups) == 2  # one per conversation


async def test_inactive_forgets_memory_and_idle_actor_is_respawned(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu, messaging_policy=ChannelPolicy(idle_timeout=60))
    recorder = Recorder().attach(tac)
    forgotten: list[str] = []
    sessions: list[Any] = []
    tac.on_message_ready(lambda m, s, mem: sessions.append(s) or "ok")
    async with in_process(emu, tac) as runtime:
        channel = _channel(runtime)
        channel._forget = forgotten.append
        texter = SimulatedTexter(emu, channel)
        await texter.send("hi")
        await texter.read_reply()
        assert "inactive" in (await texter.set_status("INACTIVE")).body
        assert forgotten == [texter.conversation_id]
        await recorder.ended_seen.wait()  # idle timeout
        assert runtime.supervisor.get(texter.conversation_id or "") is None
        await texter.send("back again")
        assert (await texter.read_reply()).text == "ok"
    assert sessions[0] is not sessions[1]
    assert sessions[1].conversation_id == sessions[0].conversation_id
    assert [s.author_info.participant_id is not None for s in sessions] == [True, True]


async def test_delivery_failure_is_reported_kept_and_sent_first_when_back(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu)
    recorder = Recorder().attach(tac)
    tac.on_message_ready(lambda m, s, mem: f"re: {m}")
    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        await texter.send("warm up")  # participants cached before the outage
        await texter.read_reply()
        emu.faults.down.add("conversations")
        await texter.send("kept")
        await recorder.error_seen.wait()  # after the send budget (30 s)
        emu.faults.down.clear()
        # tried again at once (reconcile), with no new text to carry it
        assert (await texter.read_reply()).text == "re: kept"
        await texter.send("again")
        assert (await texter.read_reply()).text == "re: again"
    (_exc, context), = recorder.errors
    assert context.phase == "delivery"
    assert [r.text for r in texter.replies()] == ["re: warm up", "re: kept", "re: again"]


async def test_handoff_starts_a_studio_execution_after_the_last_words(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu, studio_handoff_flow_sid="FW" + "1" * 32)
    recorder = Recorder().attach(tac)

    @tac.on_message_ready
    def reply(message: str, session: Any, memory: Any) -> str:
        session.request_handoff('{"reason": "wants a person"}')
        return "A colleague will take over."

    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        await texter.send("a human please")
        assert (await texter.read_reply()).text == "A colleague will take over."
        await recorder.ended_seen.wait()
    (execution,) = emu.studio_executions()
    assert execution["parameters"] == {"HandoffData": {"reason": "wants a person"}}
    assert execution["contact_channel_address"] == texter.address
    assert recorder.ended[0].conversation_id == texter.conversation_id


async def test_handoff_tool_on_sms_records_one_studio_execution_with_context(
        emu: Emulator, autojump_clock: Any) -> None:
    import json

    from tac_actors.tools import ToolCall, ToolRegistry
    from tac_actors.tools.builtins import create_studio_handoff_tool

    tac = _tac(emu, studio_handoff_flow_sid="FW" + "2" * 32)
    recorder = Recorder().attach(tac)
    tools = ToolRegistry([create_studio_handoff_tool(tac, attributes={"queue": "sales"})])

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        if "human" not in message:
            return "How can I help?"
        [result] = await tools.run_calls(
            [ToolCall(id="1", name="handoff", arguments={"reason": "asked for a human"})],
            session)
        assert result.ok
        return "A colleague will text you."

    async with in_process(emu, tac) as runtime:
        texter = SimulatedTexter(emu, _channel(runtime))
        await texter.send("hi")
        await texter.read_reply()
        await texter.send("a human please")
        assert (await texter.read_reply()).text == "A colleague will text you."
        await recorder.ended_seen.wait()
        await texter.send("hello? anyone?")  # the bot no longer answers this conversation
        await trio.sleep(60)
        assert texter.unread() == []
    (execution,) = emu.studio_executions()
    data = execution["parameters"]["HandoffData"]
    data = json.loads(data) if isinstance(data, str) else data
    assert data["conversationId"] == texter.conversation_id
    assert data["channel"] == "sms" and data["reason"] == "asked for a human"
    assert data["attributes"] == {"queue": "sales", "reason": "asked for a human"}
    assert "user: hi | assistant: How can I help?" in data["summary"]


async def test_respawned_actor_rebuilds_history_from_the_orchestrator(
        emu: Emulator, autojump_clock: Any) -> None:
    tac = _tac(emu, messaging_policy=ChannelPolicy(idle_timeout=60))
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
        await texter.send("second")
        await texter.read_reply()
        await recorder.ended_seen.wait()  # idle timeout: the actor is gone
        await texter.send("third")
        assert (await texter.read_reply()).text == "re: third"
    assert seen[0] == [("user", "first")]
    assert seen[2] == [("user", "first"), ("assistant", "re: first"), ("user", "second"),
                       ("assistant", "re: second"), ("user", "third")]


def test_history_from_stops_before_the_current_message() -> None:
    from tac_actors.channels.messaging_history import history_from
    from tac_actors.services.orchestrator import (
        Communication,
        CommunicationAuthor,
        CommunicationContent,
    )

    def comm(id_: str, address: str, text: str) -> Communication:
        return Communication(id=id_, author=CommunicationAuthor(address=address, channel="SMS"),
                             content=CommunicationContent(text=text),
                             created_at="2026-11-25T10:00:00Z")

    comms = [comm("1", "+1555", "hi"), comm("2", "+1999", "hello"), comm("3", "+1555", " "),
             comm("4", "+1555", "now"), comm("5", "+1555", "later")]
    entries = history_from(comms, before="4", is_ours=lambda c: c.author.address == "+1999")
    assert [(e.role, e.text) for e in entries] == [("user", "hi"), ("assistant", "hello")]
    assert entries[0].at.year == 2026
