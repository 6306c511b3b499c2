"""End to end over real loopback sockets: hypercorn, the quart-trio routes and the
simulated caller. Real clock here (sockets and autojump don't mix): every test is
bounded by ``fail_after`` and nothing sleeps to wait."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio

from tac_actors import TAC, TACConfig
from tac_actors.protocol import End, Text
from tac_actors.protocol.signature import compute_signature
from tac_actors.testing import CallEnded, Recorder, connect_caller, token_stream

from .conftest import ENGINE, running, ws_url

TOKEN = "test-auth-token"


def echo(config: TACConfig | None = None) -> TAC:
    tac = TAC(config or TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "stream":
            return token_stream(["one ", "two ", "three"])
        return f"echo: {message}"

    return tac


async def test_call_end_to_end_through_hypercorn() -> None:
    tac = echo()
    rec = Recorder().attach(tac)
    async with running(tac) as base:
        async with connect_caller(ws_url(base)) as caller:
            await caller.say("hello")
            assert (await caller.read_reply()).text == "echo: hello"
            await caller.say("stream")
            assert (await caller.read_reply()).tokens == ("one ", "two ", "three")
            await caller.interrupt("one")
            assert (await caller.read_reply()).tokens == ()
        with trio.fail_after(5):
            await rec.ended_seen.wait()
        async with httpx.AsyncClient() as http:
            health = (await http.get(base + "/health")).json()
    assert health["status"] == "ok" and health["conversations"] == 0
    assert len(rec.ended) == 1


async def test_many_concurrent_calls_are_isolated() -> None:
    tac = echo()
    async with running(tac) as base:
        results: dict[int, str] = {}

        async def one(n: int) -> None:
            async with connect_caller(ws_url(base)) as caller:
                for turn in range(3):
                    await caller.say(f"{n}-{turn}")
                    results[n * 10 + turn] = (await caller.read_reply()).text

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(one, n)
    assert results == {n * 10 + t: f"echo: {n}-{t}" for n in range(20) for t in range(3)}


async def test_shutdown_drains_and_closes_live_calls_1001() -> None:
    from functools import partial

    from tac_actors.server import serve

    tac = echo()
    rec = Recorder().attach(tac)
    stop = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0, engine=ENGINE[0],
                                                shutdown_trigger=stop.wait))
            async with connect_caller(ws_url(binds[0])) as caller:
                await caller.say("hi")
                await caller.read_reply()
                stop.set()
                assert await caller.wait_closed() == 1001
    assert len(rec.ended) == 1


# -- signatures -------------------------------------------------------------------------


async def test_websocket_signature_checked_on_upgrade() -> None:
    tac = echo(TACConfig(auth_token=TOKEN))
    async with running(tac) as base:
        url = ws_url(base)
        async with connect_caller(url, auth_token=TOKEN) as good:
            await good.say("signed")
            assert (await good.read_reply()).text == "echo: signed"
        for signature in (None, "d3Jvbmc=", compute_signature("other-token", url)):
            async with connect_caller(url, signature=signature, setup=False) as bad:
                assert await bad.wait_closed() == 1008


async def test_websocket_without_any_signature_header_is_refused() -> None:
    tac = echo(TACConfig(auth_token=TOKEN))
    async with running(tac) as base, connect_caller(ws_url(base), setup=False) as caller:
        assert await caller.wait_closed() == 1008


async def test_twiml_route_signed_and_unsigned() -> None:
    tac = echo(TACConfig(auth_token=TOKEN, voice_public_domain="https://agent.example.com/"))
    form = {"CallSid": "CA123", "From": "+15551230001", "To": "+15559990000"}
    async with running(tac) as base, httpx.AsyncClient() as http:
        url = "https://agent.example.com/twiml"
        signature = compute_signature(TOKEN, url, form)
        ok = await http.post(base + "/twiml", data=form,
                             headers={"X-Twilio-Signature": signature})
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("text/xml")
        assert '<ConversationRelay url="wss://agent.example.com/ws"' in ok.text
        assert 'action="https://agent.example.com/conversation-relay-callback"' in ok.text
        missing = await http.post(base + "/twiml", data=form)
        assert missing.status_code == 403
        tampered = await http.post(base + "/twiml", data={**form, "From": "+1999"},
                                   headers={"X-Twilio-Signature": signature})
        assert tampered.status_code == 403


async def test_twiml_per_call_hook_layers_options() -> None:
    from tac_actors.protocol.twiml import ConversationRelayOptions

    tac = echo()

    @tac.on_inbound_call
    def per_call(call: Any) -> ConversationRelayOptions:
        return ConversationRelayOptions(welcome_greeting=f"Hi {call.from_} <&>",
                                        parameters={"tier": "gold"}, dtmf_detection=True)

    async with running(tac) as base, httpx.AsyncClient() as http:
        xml = (await http.post(base + "/twiml", data={"CallSid": "CA1", "From": "+1555"})).text
    assert 'welcomeGreeting="Hi +1555 &lt;&amp;&gt;"' in xml
    assert 'dtmfDetection="true"' in xml
    assert '<Parameter name="tier" value="gold"/>' in xml


@pytest.mark.parametrize("trusted", [True, False])
async def test_forwarded_headers_shape_the_websocket_url_from_trusted_proxies_only(
        trusted: bool) -> None:
    from tac_actors.config import HTTPConfig

    allow = ("127.0.0.0/8",) if trusted else ()
    tac = echo(TACConfig(http=HTTPConfig(forwarded_allow_ips=allow)))
    async with running(tac) as base, httpx.AsyncClient() as http:
        xml = (await http.post(base + "/twiml", data={"CallSid": "CA1"}, headers={
            "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.org"})).text
    if trusted:
        assert 'url="wss://public.example.org/ws"' in xml
    else:
        assert f'url="{ws_url(base)}"' in xml


# -- handoff ----------------------------------------------------------------------------


async def test_handoff_end_frame_then_action_callback_parsed() -> None:
    tac = echo(TACConfig(auth_token=TOKEN, voice_public_domain="agent.example.com"))
    payload = {"reason": "billing dispute", "conversationId": "conv-1"}
    seen: list[Any] = []

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        session.request_handoff(json.dumps(payload))
        return token_stream(["Let me get ", "a human."])

    @tac.on_handoff
    def handoff(callback: Any) -> str:
        seen.append(callback)
        return "<Response><Dial>+15550009999</Dial></Response>"

    async with running(tac) as base:
        signed_url = "wss://agent.example.com/ws"
        async with connect_caller(ws_url(base), signature=compute_signature(TOKEN, signed_url)
                                  ) as caller:
            await caller.say("I want a person")
            with pytest.raises(CallEnded) as ended:
                await caller.read_reply()
                await caller.read_reply()
            assert ended.value.end == End(handoff_data=json.dumps(payload))
            assert [f for f in caller.received if isinstance(f, Text)][-1] == Text(
                token="", last=True)
            call_sid = caller.call_sid
        form = {"CallSid": call_sid, "CallStatus": "in-progress", "SessionStatus": "ended",
                "HandoffData": json.dumps(payload), "AccountSid": "AC1"}
        signature = compute_signature(TOKEN, "https://agent.example.com/conversation-relay-"
                                      "callback", form)
        async with httpx.AsyncClient() as http:
            answer = await http.post(base + "/conversation-relay-callback", data=form,
                                     headers={"X-Twilio-Signature": signature})
            forged = await http.post(base + "/conversation-relay-callback", data=form)
    assert answer.status_code == 200 and "<Dial>+15550009999</Dial>" in answer.text
    assert forged.status_code == 403
    assert seen[0].handoff == payload and seen[0].call_sid == call_sid
