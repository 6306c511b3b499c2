"""Speech-to-speech calls end to end in memory: a simulated Media Streams caller, the
media channel and its actor, and a scripted fake realtime model."""

from __future__ import annotations

import json
from typing import Any

import trio
from trio.testing import wait_all_tasks_blocked

from tac_actors import TAC, TACConfig
from tac_actors.realtime import RealtimeOptions, RealtimeUnavailable
from tac_actors.session import ConversationSession
from tac_actors.testing import open_harness
from tac_actors.testing.realtime import open_fake_realtime
from tac_actors.tools import function_tool

TEXT = "one two three four five six seven eight nine ten"


def history(session: ConversationSession) -> list[tuple[str, str, bool]]:
    return [(e.role, e.text, e.interrupted) for e in session.history]


async def test_greeting_spoken_played_and_recorded(clock: object) -> None:
    ended: list[ConversationSession] = []
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(
            connect=fake.connector, greeting="Greet the caller", instructions="Be brief"))

        @tac.on_conversation_ended
        async def end(session: ConversationSession) -> None:
            ended.append(session)

        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            update = (await model.wait_for("session.update"))["session"]
            assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
            assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
            assert update["instructions"] == "Be brief"
            create = await model.wait_for("response.create")
            assert create["response"]["instructions"] == "Greet the caller"
            await model.speak("Hello, how can I help?", audio_ms=500, chunks=5)
            for _ in range(5):
                await caller.expect("mark")
            assert len(caller.heard()) == 5
            assert caller.played_bytes == 500 * 8
            await caller.speak(100)
            await wait_all_tasks_blocked()
            assert model.audio_in_bytes == 100 * 8
            session = h.cell(caller).session
            assert session.caller == "+15550001111"
            assert history(session) == [("assistant", "Hello, how can I help?", False)]
            await model.user_said("what time is it")
            await wait_all_tasks_blocked()
            assert history(session)[-1] == ("user", "what time is it", False)
            await caller.hang_up()
            await caller.drain()
        assert len(ended) == 1
        assert model.closed.is_set()


async def test_tool_call_runs_through_the_registry(clock: object) -> None:
    seen: list[tuple[str, str | None]] = []

    @function_tool
    async def lookup_order(order_id: str, session: ConversationSession) -> dict[str, Any]:
        """Look an order up.

        Args:
            order_id: the order number
        """
        seen.append((order_id, session.call_sid))
        return {"status": "shipped"}

    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector,
                                                        tools=[lookup_order]))
        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            update = (await model.wait_for("session.update"))["session"]
            assert update["tools"][0]["name"] == "lookup_order"
            assert update["tools"][0]["type"] == "function"
            assert "session" not in update["tools"][0]["parameters"]["properties"]
            call_id = await model.call_tool("lookup_order", {"order_id": "42"})
            output = await model.wait_for("conversation.item.create")
            item = output["item"]
            assert (item["type"], item["call_id"]) == ("function_call_output", call_id)
            assert json.loads(item["output"]) == {"status": "shipped"}
            await model.wait_for("response.create")
            assert seen == [("42", caller.call_sid)]
            # a call cut short (its arguments may be a fragment) is not run
            await model.send({"type": "response.output_item.done", "response_id": "rx",
                              "item": {"type": "function_call", "call_id": "cx",
                                       "name": "lookup_order", "status": "incomplete",
                                       "arguments": '{"order_'}})
            await model.send({"type": "response.done",
                              "response": {"id": "rx", "status": "completed"}})
            await wait_all_tasks_blocked()
            assert seen == [("42", caller.call_sid)]
            assert model.types()[-2:] == ["conversation.item.create", "response.create"]
            del h


async def test_barge_in_clears_truncates_and_records_what_was_heard(clock: object) -> None:
    interruptions: list[Any] = []
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_interrupt
        async def interrupted(session: ConversationSession, interruption: Any) -> None:
            interruptions.append((interruption, history(session)))

        async with open_harness(tac) as h, h.media_call(auto_play=False) as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            response_id, item_id = await model.speak(TEXT, audio_ms=1000, chunks=5,
                                                     done=False)
            for _ in range(5):
                await caller.expect("mark")
            assert await caller.play(ms=400) == 400 * 8  # the phone played 2 of 5 pieces
            await wait_all_tasks_blocked()
            await model.speech_started()
            await caller.expect("clear")
            assert caller.cleared_bytes == 600 * 8
            await model.wait_for("response.cancel")
            truncate = await model.wait_for("conversation.item.truncate")
            assert (truncate["item_id"], truncate["audio_end_ms"]) == (item_id, 400)
            await wait_all_tasks_blocked()
            session = h.cell(caller).session
            assert history(session) == [("assistant", "one two three four", True)]
            assert len(interruptions) == 1
            assert interruptions[0][0].heard == "one two three four"
            assert interruptions[0][0].duration_ms == 400
            assert interruptions[0][1] == history(session)
            # the cancelled response's late audio and transcript are dropped
            media_before = len(caller.heard())
            await model.send({"type": "response.output_audio.delta", "item_id": item_id,
                              "response_id": response_id, "delta": "//8="})
            await model.finish(response_id, item_id, TEXT, status="cancelled")
            await model.speak("Sure.", audio_ms=100, chunks=1)
            await caller.expect("mark")
            assert len(caller.heard()) == media_before + 1
            await wait_all_tasks_blocked()
            assert history(session) == [("assistant", "one two three four", True),
                                        ("assistant", "Sure.", False)]
            assert h.cell(caller).statistics().interrupts == 1


async def test_barge_in_after_everything_played_cuts_nothing(clock: object) -> None:
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))
        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await model.speak("All done.", audio_ms=200, chunks=2)
            for _ in range(2):
                await caller.expect("mark")
            await wait_all_tasks_blocked()
            await model.speech_started()
            await wait_all_tasks_blocked()
            assert caller.clears == 0
            assert "conversation.item.truncate" not in model.types()
            assert history(h.cell(caller).session) == [("assistant", "All done.", False)]


async def test_handoff_from_a_tool_after_the_last_words(clock: object) -> None:
    ended: list[str | None] = []

    @function_tool
    async def transfer(reason: str, session: ConversationSession) -> str:
        """Transfer the caller to a person.

        Args:
            reason: why
        """
        session.request_handoff(json.dumps({"reason": reason}))
        return "transferring"

    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector,
                                                        tools=[transfer]))

        @tac.on_conversation_ended
        async def end(session: ConversationSession) -> None:
            ended.append(session.call_sid)

        async with open_harness(tac) as h, h.media_call(auto_play=False) as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await model.call_tool("transfer", {"reason": "billing"})
            await model.wait_for("response.create")
            await model.speak("Transferring you now.", audio_ms=200, chunks=2)
            mark = await caller.expect("mark")
            while mark["mark"]["name"] != "handoff":
                mark = await caller.expect("mark")
            await wait_all_tasks_blocked()
            assert h.supervisor.get(caller.call_sid) is not None  # the last words play
            await caller.play()
            await caller.drain()
            assert caller.close_code == 1000
            outcome = h.runtime.media.take_outcome(caller.call_sid)
            assert outcome is not None
            assert outcome.reason == "handoff"
            assert json.loads(outcome.handoff_data or "") == {"reason": "billing"}
        assert ended == [caller.call_sid]
        assert model.closed.is_set()


async def test_model_unavailable_is_reported_and_the_stream_closed(clock: object) -> None:
    errors: list[Any] = []
    ended: list[str | None] = []
    async with open_fake_realtime() as fake:
        fake.refuse = RealtimeUnavailable("OPENAI_API_KEY is not set")
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_error
        async def on_error(exc: BaseException, context: Any) -> None:
            errors.append((type(exc).__name__, context.phase))

        @tac.on_conversation_ended
        async def end(session: ConversationSession) -> None:
            ended.append(session.call_sid)

        async with open_harness(tac) as h, h.media_call() as caller:
            await caller.drain()
            assert caller.close_code == 1011
            outcome = h.runtime.media.take_outcome(caller.call_sid)
            assert outcome is not None and outcome.reason == "model_unavailable"
        assert errors == [("RealtimeUnavailable", "channel")]
        assert ended == [caller.call_sid]


async def test_model_going_away_ends_the_call(clock: object) -> None:
    errors: list[str] = []
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_error
        async def on_error(exc: BaseException, context: Any) -> None:
            errors.append(type(exc).__name__)

        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await model.close()
            await caller.drain()
            assert caller.close_code == 1011
            del h
        assert errors == ["ModelClosed"]


async def test_key_press_reply_is_spoken_by_the_model(clock: object) -> None:
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_dtmf
        async def dtmf(digit: str, session: ConversationSession) -> str:
            return f"You pressed {digit}"

        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await caller.press("7")
            create = await model.wait_for("response.create")
            assert "You pressed 7" in create["response"]["instructions"]
            del h


async def test_shutdown_drains_media_calls_with_1001(clock: object) -> None:
    ended: list[str | None] = []
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_conversation_ended
        async def end(session: ConversationSession) -> None:
            ended.append(session.call_sid)

        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await h.shutdown()
            await caller.drain()
            assert caller.close_code == 1001
        assert ended == [caller.call_sid]
        assert model.closed.is_set()


async def test_no_realtime_options_refuses_the_stream(clock: object) -> None:
    tac = TAC(TACConfig())
    async with open_harness(tac) as h, h.media_call() as caller:
        await caller.drain()
        assert caller.close_code == 1011
        assert len(h.supervisor) == 0


async def test_a_bystander_relay_call_is_unaffected(clock: object) -> None:
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_message_ready
        async def echo(message: str, session: object, memory: object) -> str:
            return f"echo: {message}"

        async with open_harness(tac) as h, h.media_call() as caller, h.call() as relay:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await relay.say("hi")
            assert (await relay.read_reply()).text == "echo: hi"
            with trio.move_on_after(1):
                await model.close()
            await caller.drain()
            await relay.say("still there")
            assert (await relay.read_reply()).text == "echo: still there"


async def test_session_end_from_a_hook_closes_the_stream(clock: object) -> None:
    ended: list[str | None] = []
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_dtmf
        async def dtmf(digit: str, session: ConversationSession) -> None:
            await session.end()

        @tac.on_conversation_ended
        async def end(session: ConversationSession) -> None:
            ended.append(session.call_sid)

        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await caller.press("0")
            await caller.drain()
            assert caller.close_code == 1000
            outcome = h.runtime.media.take_outcome(caller.call_sid)
            assert outcome is not None and outcome.reason == "ended"
            await wait_all_tasks_blocked()
            assert model.closed.is_set()
        assert ended == [caller.call_sid]


async def test_per_call_options_chosen_when_the_call_was_answered(clock: object) -> None:
    async with open_fake_realtime() as default, open_fake_realtime() as special:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=default.connector))
        async with open_harness(tac) as h:
            h.runtime.media.expect("CA" + "7" * 32, RealtimeOptions(
                connect=special.connector, instructions="Speak French"))
            async with h.media_call(call_sid="CA" + "7" * 32):
                model = await special.next_session()
                update = await model.wait_for("session.update")
                assert update["session"]["instructions"] == "Speak French"
            async with h.media_call():
                await (await default.next_session()).wait_for("session.update")
            assert len(default.sessions) == 1 and len(special.sessions) == 1


async def test_bad_input_from_either_side_is_reported_and_the_call_goes_on(
        clock: object) -> None:
    errors: list[tuple[str, str]] = []
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))

        @tac.on_error
        async def on_error(exc: BaseException, context: Any) -> None:
            errors.append((type(exc).__name__, context.phase))

        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await caller.transport.send("{not json")
            await caller.transport.send('{"event": "media", "media": {"payload": "@@"}}')
            await model.socket.send_text("[]")
            await model.send({"type": "error", "error": {"code": "bad", "message": "no"}})
            await model.send({"type": "error",
                              "error": {"code": "response_cancel_not_active"}})
            await wait_all_tasks_blocked()
            assert sorted(errors) == [("ModelError", "channel"), ("ProtocolError", "channel"),
                                      ("ProtocolError", "protocol"),
                                      ("ProtocolError", "protocol")]
            await model.speak("Still here.", audio_ms=100, chunks=1)
            await caller.expect("mark")
            assert h.supervisor.get(caller.call_sid) is not None


async def test_a_stream_without_start_is_closed_1008(clock: object) -> None:
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))
        async with open_harness(tac) as h, h.media_call(start=False) as caller:
            await caller.transport.send('{"event": "connected"}')
            await caller.drain()  # the start timeout passes on the fake clock
            assert caller.close_code == 1008
            assert fake.sessions == [] and len(h.supervisor) == 0


async def test_speech_while_the_model_is_still_thinking_cancels_the_response(
        clock: object) -> None:
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))
        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            await model.send({"type": "response.created", "response": {"id": "r9"}})
            await model.speech_started()
            await model.wait_for("response.cancel")
            await wait_all_tasks_blocked()
            assert caller.clears == 0  # nothing was playing
            assert "conversation.item.truncate" not in model.types()
            # audio of the cancelled response that was already on its way is dropped
            await model.send({"type": "response.output_audio.delta", "response_id": "r9",
                              "item_id": "i9", "delta": "//8="})
            await wait_all_tasks_blocked()
            assert caller.heard() == []
            assert h.cell(caller).statistics().interrupts == 0


async def test_history_stays_within_the_policy_bounds(clock: object) -> None:
    import attrs

    async with open_fake_realtime() as fake:
        config = TACConfig()
        policy = attrs.evolve(config.voice_policy, history_limit=8, history_chars=10_000)
        tac = TAC(attrs.evolve(config, voice_policy=policy),
                  realtime=RealtimeOptions(connect=fake.connector))
        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            for n in range(40):
                await model.user_said(f"question {n}")
            await wait_all_tasks_blocked()
            session = h.cell(caller).session
            assert 0 < len(session.history) <= 8
            assert session.history[-1].text == "question 39"


async def test_the_voice_idle_timeout_does_not_end_a_talking_media_call(clock: object) -> None:
    import attrs

    async with open_fake_realtime() as fake:
        config = TACConfig()
        tac = TAC(attrs.evolve(config, voice_policy=attrs.evolve(config.voice_policy,
                                                                 idle_timeout=30.0)),
                  realtime=RealtimeOptions(connect=fake.connector))
        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            for _ in range(6):  # a minute of talk, none of it through the mailbox
                await caller.speak(200)
                await trio.sleep(10)
            assert h.supervisor.get(caller.call_sid) is not None


async def test_a_stalled_twilio_socket_does_not_delay_a_barge_in(clock: object) -> None:
    from tac_actors.testing import GatedTransport

    gates: list[GatedTransport] = []

    def stalled(transport: Any) -> GatedTransport:
        gate = GatedTransport(transport)
        gates.append(gate)
        return gate

    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))
        async with open_harness(tac) as h, h.media_call(wrap=stalled) as caller:
            model = await fake.next_session()
            await model.wait_for("session.update")
            gates[0].stall()  # the caller's network stops taking anything
            _, item_id = await model.speak(TEXT, audio_ms=1000, chunks=5, done=False)
            await wait_all_tasks_blocked()
            await model.speech_started()
            # the model hears about the barge-in while Twilio's socket is still stalled
            await model.wait_for("response.cancel")
            truncate = await model.wait_for("conversation.item.truncate")
            assert (truncate["item_id"], truncate["audio_end_ms"]) == (item_id, 0)
            await wait_all_tasks_blocked()
            assert history(h.cell(caller).session) == [("assistant", "", True)]
            gates[0].release()
            await caller.expect("clear")
            # only the piece already on the wire went out: the rest was dropped unsent
            assert len(caller.heard()) == 1
            assert [m["event"] for m in caller.received] == ["media", "clear"]


async def test_a_stream_in_another_format_is_refused_and_counted(clock: object) -> None:
    import json as _json

    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector))
        async with open_harness(tac) as h, h.media_call(start=False) as caller:
            await caller.transport.send(_json.dumps({
                "event": "start", "start": {
                    "streamSid": "MZ1", "callSid": caller.call_sid,
                    "mediaFormat": {"encoding": "audio/l16", "sampleRate": 16000}}}))
            await caller.drain()
            assert caller.close_code == 1003
            assert fake.sessions == []
        stats = h.runtime.media.statistics()
        assert (stats.started, stats.refused) == (0, 1)


async def test_statistics_count_barge_ins_handoffs_and_model_failures(clock: object) -> None:
    @function_tool
    async def transfer(session: ConversationSession) -> str:
        """Transfer the caller."""
        session.request_handoff("{}")
        return "ok"

    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(), realtime=RealtimeOptions(connect=fake.connector,
                                                        tools=[transfer]))
        async with open_harness(tac) as h:
            async with h.media_call(auto_play=False) as caller:
                model = await fake.next_session()
                await model.wait_for("session.update")
                await model.speak(TEXT, audio_ms=200, chunks=2, done=False)
                await caller.expect("mark")
                await caller.expect("mark")
                await model.speech_started()
                await caller.expect("clear")
                await model.call_tool("transfer", {})
                await model.wait_for("response.create")
                await model.speak("Bye.", audio_ms=100, chunks=1)
                caller.auto_play = True
                await caller.play()
                await caller.drain()
            fake.refuse = RuntimeError("down")
            async with h.media_call() as caller:
                await caller.drain()
            stats = h.runtime.media.statistics()
        assert (stats.started, stats.refused, stats.model_failures, stats.barge_ins,
                stats.handoffs) == (2, 0, 1, 1, 1)
