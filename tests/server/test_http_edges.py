"""The HTTP side under hostile input (review D5, D10, D11, D12, D14), over real loopback
sockets on both engines. Real clock: each test is bounded by ``fail_after``; the two
timeout tests use timeouts of a second."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from tac_actors import TAC, TACConfig
from tac_actors.config import HTTPConfig
from tac_actors.protocol.signature import compute_signature

from .conftest import running, ws_url

TOKEN = "test-auth-token"
FORM = {"CallSid": "CA123", "From": "+15551230001", "To": "+15559990000"}
#: what another app on the same Twilio account was sent, signed for its own host
OTHER_HOST = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "other-app.example"}
FORGED_LINE = "\n2026-01-01 00:00:00,000 CRITICAL tac_actors.server: FORGED"


def echo(**config: Any) -> TAC:
    tac = TAC(TACConfig(**config))
    tac.on_message_ready(lambda message, session, memory: f"echo: {message}")
    return tac


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


async def refused_upgrade(url: str, headers: list[tuple[bytes, bytes]]) -> int:
    """Open a WebSocket the server refuses after accepting it; its close code."""
    async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
        try:
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
        finally:  # trio-websocket leaks its socket when the server closes first
            with trio.CancelScope(shield=True):
                await ws._stream.aclose()
    return int(closed.value.reason.code)


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


# -- D10: forwarded headers are believed from trusted proxies only --------------------------


async def test_a_signature_made_for_another_host_is_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    signature = compute_signature(TOKEN, "https://other-app.example/twiml", FORM)
    headers = {"X-Twilio-Signature": signature, **OTHER_HOST}
    async with running(echo(auth_token=TOKEN)) as base, httpx.AsyncClient() as http:
        replayed = await http.post(base + "/twiml", data=FORM, headers=headers)
    assert replayed.status_code == 403
    # the log says why, for the operator whose real proxy is not listed yet
    assert any("TAC_FORWARDED_ALLOW_IPS" in r.getMessage() for r in caplog.records)


async def test_forwarded_headers_count_when_the_proxy_is_trusted() -> None:
    signature = compute_signature(TOKEN, "https://other-app.example/twiml", FORM)
    headers = {"X-Twilio-Signature": signature, **OTHER_HOST}
    tac = echo(auth_token=TOKEN, http=HTTPConfig(forwarded_allow_ips=("127.0.0.1",)))
    async with running(tac) as base, httpx.AsyncClient() as http:
        through_proxy = await http.post(base + "/twiml", data=FORM, headers=headers)
    assert through_proxy.status_code == 200


async def test_a_websocket_signed_for_another_host_is_closed_1008() -> None:
    signature = compute_signature(TOKEN, "wss://other-app.example/ws")
    headers = [(b"X-Twilio-Signature", signature.encode()),
               *((name.encode(), value.encode()) for name, value in OTHER_HOST.items())]
    async with running(echo(auth_token=TOKEN)) as base:
        with trio.fail_after(10):
            assert await refused_upgrade(ws_url(base), headers) == 1008


# -- D11 / D12: peer values cannot forge log lines; rejections are logged once ---------------


async def test_a_forged_call_sid_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    caplog.set_level(logging.INFO, logger="tac_actors")
    forged = {**FORM, "CallSid": "CA1" + FORGED_LINE}
    callback = {**forged, "SessionStatus": "ended" + FORGED_LINE, "CallStatus": "completed"}
    async with running(echo(auth_token=TOKEN)) as base, httpx.AsyncClient() as http:
        assert (await http.post(base + "/twiml", data=forged)).status_code == 403
    async with running(echo()) as base, httpx.AsyncClient() as http:
        answer = await http.post(base + "/conversation-relay-callback", data=callback)
        assert answer.status_code == 200
    lines = [record.getMessage() for record in caplog.records]
    assert any("CA1\\n2026-01-01" in line for line in lines)  # logged, escaped
    assert not any("\n" in line for line in lines)


async def test_rejected_requests_are_logged_once_per_peer(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.WARNING, logger="tac_actors.server")
    async with running(echo(auth_token=TOKEN)) as base, httpx.AsyncClient() as http:
        for _ in range(20):
            assert (await http.post(base + "/twiml", data=FORM)).status_code == 403
    rejected = [r for r in caplog.records if "X-Twilio-Signature" in r.getMessage()]
    assert len(rejected) == 1


async def test_rejected_websocket_upgrades_are_logged_once_per_peer(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tac_actors.server")
    async with running(echo(auth_token=TOKEN)) as base:
        with trio.fail_after(10):
            for _ in range(10):
                assert await refused_upgrade(ws_url(base), []) == 1008
    rejected = [r for r in caplog.records if "WebSocket upgrade" in r.getMessage()]
    assert len(rejected) == 1


# -- D14 / D5: refused or slow bodies end the connection with an answer ----------------------


async def test_after_a_413_the_connection_is_closed_not_left_hanging() -> None:
    tac = echo(http=HTTPConfig(max_body_bytes=1000))
    body = b"a=" + b"x" * 50_000
    head = (b"POST /twiml HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body))
    following = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
    async with running(tac) as base:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("127.0.0.1", port_of(base))
            async with stream, trio.open_nursery() as nursery:

                async def send() -> None:
                    try:
                        await stream.send_all(head + body + following)
                    except trio.BrokenResourceError:
                        pass  # closed before the rest of the body was read: fine

                nursery.start_soon(send)
                answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in answer.lower()


async def test_a_trickled_body_is_answered_408_and_closed() -> None:
    tac = echo(http=HTTPConfig(body_timeout=1.0))
    head = (b"POST /twiml HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nContent-Length: 100\r\n\r\nCallSid=CA")
    async with running(tac) as base:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("127.0.0.1", port_of(base))
            async with stream:
                await stream.send_all(head)  # and never the other 90 bytes
                answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 408")


# only the fast engine's internal HTTP server has a read timeout
@pytest.mark.parametrize("engine", ["fast"], indirect=True)
async def test_a_client_silent_mid_request_is_dropped_at_the_read_timeout() -> None:
    tac = echo(http=HTTPConfig(read_timeout=1.0, body_timeout=60.0))
    never = trio.Event()

    @tac.on_inbound_call
    async def slow(call: Any) -> None:
        await never.wait()  # a hook that hangs: the client hears nothing, says nothing

    async with running(tac) as base:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("127.0.0.1", port_of(base))
            async with stream:
                await stream.send_all(b"POST /twiml HTTP/1.1\r\nHost: t\r\nContent-Length: 0"
                                      b"\r\n\r\n")
                assert await read_until_closed(stream) == b""


def test_voice_sockets_on_hypercorn_get_no_read_timeout() -> None:
    from tac_actors.server.runner import hypercorn_config

    tac = echo(http=HTTPConfig(read_timeout=7.0, keep_alive_timeout=3.0))
    with_voice = hypercorn_config(tac, "127.0.0.1", 0)
    http_only = hypercorn_config(tac, "127.0.0.1", 0, websockets=False)
    assert with_voice.read_timeout is None  # a quiet caller sends nothing for minutes
    assert http_only.read_timeout == 7.0
    assert with_voice.keep_alive_timeout == http_only.keep_alive_timeout == 3.0
