"""The fast front door at the WebSocket level: fragments, pings, bad UTF-8, bad upgrades."""

from __future__ import annotations

import json
from typing import Any

import trio
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tac_actors import TAC, TACConfig

from .conftest import running, ws_url


class RawClient:
    """A WebSocket client that can send what well-behaved libraries never do."""

    def __init__(self, stream: trio.SocketStream, protocol: ClientProtocol) -> None:
        self.stream = stream
        self.proto = protocol
        self.eof = False

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        uri = parse_uri(url)
        stream = await trio.open_tcp_stream(uri.host, uri.port)
        proto = ClientProtocol(uri)
        proto.send_request(proto.connect())
        client = cls(stream, proto)
        await client.flush()
        while True:
            events = await client.events()
            if events:
                assert isinstance(events[0], Response) and events[0].status_code == 101
                return client

    async def flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if chunk:
                await self.stream.send_all(chunk)

    async def events(self) -> list[Any]:
        data = await self.stream.receive_some(65536)
        if data:
            self.proto.receive_data(data)
        else:
            self.eof = True
            self.proto.receive_eof()
        await self.flush()
        return self.proto.events_received()

    async def frames_until(self, predicate: Any) -> list[Frame]:
        seen: list[Frame] = []
        while True:
            for event in await self.events():
                if isinstance(event, Frame):
                    seen.append(event)
                    if predicate(event):
                        return seen
            if self.proto.close_rcvd is not None or self.eof:
                return seen

    async def send_json(self, value: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(value).encode())
        await self.flush()


def is_last_text(frame: Frame) -> bool:
    return frame.opcode is Opcode.TEXT and json.loads(frame.data).get("last") is True


def echo_tac() -> TAC:
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda m, s, mem: f"echo: {m}")
    return tac


SETUP = {"type": "setup", "callSid": "CA" + "1" * 32, "from": "+1555"}


async def test_fragmented_messages_and_pings(engine: str) -> None:
    async with running(echo_tac()) as base:
        client = await RawClient.connect(ws_url(base))
        await client.send_json(SETUP)
        prompt = json.dumps({"type": "prompt", "voicePrompt": "in pieces", "last": True})
        half = len(prompt) // 2
        client.proto.send_text(prompt[:half].encode(), fin=False)
        client.proto.send_ping(b"are you there")
        client.proto.send_continuation(prompt[half:].encode(), fin=True)
        await client.flush()
        frames = await client.frames_until(is_last_text)
        assert any(f.opcode is Opcode.PONG and f.data == b"are you there" for f in frames)
        assert json.loads(frames[-1].data)["token"] == "echo: in pieces"
        client.proto.send_close(1000)
        await client.flush()
        await client.stream.aclose()


async def test_invalid_utf8_closes_1007(engine: str) -> None:
    async with running(echo_tac()) as base:
        client = await RawClient.connect(ws_url(base))
        await client.send_json(SETUP)
        client.proto.send_frame(Frame(Opcode.TEXT, b'{"type":"prompt","voicePrompt":"\xff"}'))
        await client.flush()
        await client.frames_until(lambda f: f.opcode is Opcode.CLOSE)
        if engine == "fast":
            assert client.proto.close_rcvd is not None and client.proto.close_rcvd.code == 1007
        else:  # hypercorn (wsproto) drops the connection without a close frame
            assert client.eof or client.proto.close_rcvd is not None
        await client.stream.aclose()


async def test_bad_upgrade_is_refused_and_http_still_served(engine: str) -> None:
    async with running(echo_tac()) as base:
        host, port = base.split("://")[1].split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = await stream.receive_some(4096)
            if not data:
                break
            answer += data
        assert answer.split(b" ")[1] in (b"400", b"426")
        await stream.aclose()
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = b""
        while b'"status":"ok"' not in body:  # hypercorn keeps the socket open after it
            data = await stream.receive_some(4096)
            assert data, f"connection closed early: {body!r}"
            body += data
        assert body.startswith(b"HTTP/1.1 200")
        await stream.aclose()
