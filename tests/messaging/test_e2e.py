"""End to end over real loopback sockets: a served TAC, the emulator, signed webhooks."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.protocol.signature import body_sha256, compute_signature
from tac_actors.testing import Recorder, connect_caller, open_texter

from .conftest import AUTH_TOKEN, make_tac, served

ADA = "+15551230001"


@pytest.mark.parametrize(("channel", "sender"), [
    ("sms", "+15550000000"),
    ("whatsapp", "whatsapp:+15550000000"),
    ("rcs", "rcs:tac_agent"),
    ("chat", "ai-assistant"),
])
async def test_each_channel_end_to_end(channel: str, sender: str) -> None:
    sessions: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)

            @tac.on_message_ready
            async def reply(message: str, session: Any, memory: Any) -> Any:
                sessions.append(session)

                async def tokens() -> Any:
                    for token in ("You said: ", message, "!"):
                        yield token
                return tokens()

            async with served(tac) as url, open_texter(url, emu, auth_token=AUTH_TOKEN,
                                                       channel=channel) as texter:
                assert (await texter.send("hello")).status == 200
                first = await texter.read_reply()
                await texter.send("again")
                second = await texter.read_reply()
    assert (first.text, second.text) == ("You said: hello!", "You said: again!")
    assert first.channel == channel.upper()
    assert (first.from_address, first.to_address) == (sender, texter.address)
    assert first.from_.get("participantId") and first.to[0].get("participantId")
    if channel == "chat":
        assert first.channel_settings == {"channelId": texter.channel_id}
    session = sessions[0]
    assert sessions[1] is session
    assert str(session.channel) == channel and session.caller == texter.address
    assert session.author_info.address == texter.address


async def test_retried_webhook_over_http_is_answered_once() -> None:
    seen: list[str] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)
            tac.on_message_ready(lambda m, s, mem: seen.append(m) or "ok")
            async with served(tac) as url, open_texter(url, emu,
                                                       auth_token=AUTH_TOKEN) as texter:
                await texter.send("hi", idempotency_token="same")
                assert (await texter.redeliver()).status == 200
                await texter.read_reply()
                await texter.send("bye")
                await texter.read_reply()
    assert seen == ["hi", "bye"]


def _communication(conversation: str = "conv_x") -> dict[str, Any]:
    return {"id": "comm_1", "conversationId": conversation,
            "author": {"address": ADA, "channel": "SMS"},
            "content": {"type": "TEXT", "text": "hi"}}


BAD_BODIES = {
    "not json": b"hello",
    "not an object": b"[1, 2]",
    "no eventType": b'{"data": {}}',
    "unknown event type": b'{"eventType": "SOMETHING_ELSE", "data": {}}',
    "missing fields": b'{"eventType": "COMMUNICATION_CREATED", "data": {"id": "c"}}',
    "wrong type": b'{"eventType": "CONVERSATION_UPDATED", "data": {"id": 5, "status": "CLOSED"}}',
    "bad status": b'{"eventType": "CONVERSATION_UPDATED", "data": {"id": "c", "status": "X"}}',
}


async def test_bad_payloads_and_signatures_get_4xx_and_touch_no_actor() -> None:
    import json
    good = json.dumps({"eventType": "COMMUNICATION_CREATED", "data": _communication()}).encode()
    tac_calls: list[str] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)
            tac.on_message_ready(lambda m, s, mem: tac_calls.append(m) or "ok")
            async with served(tac) as url, open_texter(url, emu,
                                                       auth_token=AUTH_TOKEN) as texter:
                for name, body in BAD_BODIES.items():
                    result = await texter.post_raw(body)
                    assert result.status == 400, name
                # signatures: wrong, missing, and right signature over another body
                assert (await texter.post_raw(good, {"X-Twilio-Signature": "bogus"})
                        ).status == 403
                unsigned = texter.delivery
                unsigned.auth_token = None  # type: ignore[attr-defined]
                assert (await texter.post_raw(good)).status == 403
                forged_url = f"{url}/webhook?bodySHA256={body_sha256(b'{}')}"
                forged = {"X-Twilio-Signature": compute_signature(AUTH_TOKEN, forged_url)}
                response = await unsigned.client.post(  # type: ignore[attr-defined]
                    forged_url, content=good, headers=forged)
                assert response.status_code == 403
                runtime = tac.runtime
                assert runtime is not None and len(runtime.supervisor) == 0
    assert tac_calls == []
    assert emu.requests(path_contains="/Participants") == []


async def test_outbound_sms_then_the_answer_reaches_the_same_actor() -> None:
    seen: list[tuple[str, Any]] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)
            tac.on_message_ready(lambda m, s, mem: seen.append((m, s)) or "Great, see you!")
            with pytest.raises(RuntimeError, match="runtime"):
                await tac.start_conversation("sms", ADA, "Hi!")
            async with served(tac) as url:
                result = await tac.start_conversation("sms", ADA, "Your order shipped. Any "
                                                      "questions?", metadata={"order": "42"})
                assert result.conversation_id and result.session is not None
                async with open_texter(url, emu, auth_token=AUTH_TOKEN,
                                       conversation_id=result.conversation_id) as texter:
                    first = await texter.read_reply()
                    await texter.send("no thanks")
                    answer = await texter.read_reply()
                again = await tac.start_conversation("sms", ADA, "One more thing")
    assert first.text.startswith("Your order shipped")
    assert first.from_address == "+15550000000" and first.to_address == ADA
    assert answer.text == "Great, see you!"
    message, session = seen[0]
    assert message == "no thanks" and session is result.session
    assert session.metadata["direction"] == "outbound" and session.metadata["order"] == "42"
    assert [e.role for e in session.history] == ["assistant", "user", "assistant"]
    assert again.reused and again.conversation_id == result.conversation_id


async def test_outbound_call_places_a_call_connected_to_our_websocket() -> None:
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu, voice_public_domain="agent.example.com")
            tac.on_message_ready(lambda m, s, mem: "ok")
            async with served(tac):
                result = await tac.start_conversation("voice", ADA,
                                                      metadata={"campaign": "renewals"})
            calls = emu.made_calls()
    assert result.call_sid and result.call_sid.startswith("CA")
    (call,) = calls
    assert (call["to"], call["from"]) == (ADA, "+15550000000")
    assert 'url="wss://agent.example.com/ws"' in call["twiml"]
    assert 'name="campaign" value="renewals"' in call["twiml"]


async def test_voice_and_sms_of_the_same_person_are_separate_actors() -> None:
    sessions: dict[str, Any] = {}
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)
            recorder = Recorder().attach(tac)

            @tac.on_message_ready
            async def reply(message: str, session: Any, memory: Any) -> str:
                sessions[str(session.channel)] = session
                return f"{session.channel}: {message}"

            async with served(tac) as url, open_texter(url, emu,
                                                       auth_token=AUTH_TOKEN) as texter:
                ws = url.replace("http://", "ws://") + "/ws"
                async with connect_caller(ws, auth_token=AUTH_TOKEN, from_=ADA) as caller:
                    await caller.say("hello by voice")
                    await texter.send("hello by text")
                    assert (await caller.read_reply()).text == "voice: hello by voice"
                    assert (await texter.read_reply()).text == "sms: hello by text"
                    runtime = tac.runtime
                    assert runtime is not None and len(runtime.supervisor) == 2
                    await texter.close()
                    await recorder.ended_seen.wait()
                    await caller.say("still here?")
                    assert (await caller.read_reply()).text == "voice: still here?"
    assert sessions["voice"] is not sessions["sms"]
    assert sessions["voice"].caller == sessions["sms"].caller == ADA
    assert [str(s.channel) for s in recorder.ended] == ["sms", "voice"]
