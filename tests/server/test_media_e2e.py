"""Speech-to-speech calls over real loopback sockets, on both engines: TwiML, the signed
media-stream upgrade, the OpenAI Realtime client against the fake model's WebSocket
server, barge-in, handoff and the action callback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from tac_actors import TAC, TACConfig
from tac_actors.protocol.signature import compute_signature
from tac_actors.realtime import MediaStreamOptions, OpenAIRealtime, RealtimeOptions
from tac_actors.session import ConversationSession
from tac_actors.testing.media_caller import connect_media_caller
from tac_actors.testing.realtime import open_fake_realtime
from tac_actors.tools import function_tool

from .conftest import running, ws_url

TOKEN = "test-token"


@function_tool
async def transfer(reason: str, session: ConversationSession) -> str:
    """Transfer the caller to a person.

    Args:
        reason: why
    """
    session.request_handoff(json.dumps({"reason": reason}))
    return "ok"


def signed(url: str, form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": compute_signature(TOKEN, url, form)}


async def test_media_call_end_to_end() -> None:
    ended: list[str | None] = []
    ended_seen = trio.Event()
    handoffs: list[Any] = []
    async with open_fake_realtime() as fake:
        model_url = await fake.serve()
        tac = TAC(TACConfig(auth_token=TOKEN), realtime=RealtimeOptions(
            connect=OpenAIRealtime(url=model_url, api_key="sk-test"), greeting="Greet",
            tools=[transfer]))

        @tac.on_inbound_call
        def choose(call: Any) -> Any:
            return MediaStreamOptions(parameters={"tier": "gold"}) if call.to == "+1555" else None

        @tac.on_conversation_ended
        async def end(session: ConversationSession) -> None:
            ended.append(session.call_sid)
            ended_seen.set()

        @tac.on_handoff
        async def handoff(callback: Any) -> str:
            handoffs.append(callback.handoff)
            return "<Response><Dial>+15559999</Dial></Response>"

        async with running(tac) as base, httpx.AsyncClient() as http:
            form = {"CallSid": "CA" + "1" * 32, "From": "+1444", "To": "+1555"}
            twiml = await http.post(base + "/twiml", data=form,
                                    headers=signed(base + "/twiml", form))
            assert twiml.status_code == 200
            assert "<Connect action=" in twiml.text and "/media-stream-callback" in twiml.text
            assert '<Stream url="ws' in twiml.text and "/media-stream" in twiml.text
            assert '<Parameter name="tier" value="gold"/>' in twiml.text
            relay = await http.post(base + "/twiml", data={**form, "To": "+1666"},
                                    headers=signed(base + "/twiml", {**form, "To": "+1666"}))
            assert "<ConversationRelay" in relay.text

            url = ws_url(base, "/media-stream")
            async with connect_media_caller(url, auth_token=TOKEN, call_sid=form["CallSid"],
                                            auto_play=False) as caller:
                model = await fake.next_session()
                assert (await model.wait_for("response.create"))["response"] == {
                    "instructions": "Greet"}
                _, item_id = await model.speak("one two three four", audio_ms=400, chunks=4,
                                               done=False)
                for _ in range(4):
                    await caller.expect("mark")
                await caller.play(ms=200)
                await caller.speak(60)
                # the marks reach the bridge before the model's speech_started does:
                # the bridge answers the caller's audio only after reading the marks
                await model.wait_audio(60 * 8)
                await model.speech_started()
                await caller.expect("clear")
                truncate = await model.wait_for("conversation.item.truncate")
                assert (truncate["item_id"], truncate["audio_end_ms"]) == (item_id, 200)
                await model.call_tool("transfer", {"reason": "billing"})
                await model.wait_for("response.create")
                await model.speak("Transferring.", audio_ms=100, chunks=1)
                caller.auto_play = True  # the last words play: the handoff follows
                await caller.play()
                await caller.drain()
                assert caller.close_code == 1000
            with trio.fail_after(5):
                await ended_seen.wait()
            action_url = base + "/media-stream-callback"
            action_form = {"CallSid": form["CallSid"], "CallStatus": "in-progress"}
            answer = await http.post(action_url, data=action_form,
                                     headers=signed(action_url, action_form))
            assert "<Dial>+15559999</Dial>" in answer.text
    assert ended == [form["CallSid"]]
    assert handoffs == [{"reason": "billing"}]


async def test_unsigned_media_upgrade_is_refused() -> None:
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(auth_token=TOKEN), realtime=RealtimeOptions(
            connect=fake.connector))
        async with running(tac) as base:
            async with connect_media_caller(ws_url(base, "/media-stream"),
                                            start=False) as caller:
                await caller.drain()
                assert caller.close_code == 1008
            assert fake.sessions == []


async def test_answer_inbound_by_number() -> None:
    async with open_fake_realtime() as fake:
        tac = TAC(TACConfig(auth_token=TOKEN), realtime=RealtimeOptions(
            connect=fake.connector, answer_inbound={"+1555"}))
        async with running(tac) as base, httpx.AsyncClient() as http:
            for to, kind in (("+1555", "<Stream"), ("+1666", "<ConversationRelay")):
                form = {"CallSid": "CA" + "2" * 32, "From": "+1444", "To": to}
                answer = await http.post(base + "/twiml", data=form,
                                         headers=signed(base + "/twiml", form))
                assert kind in answer.text
