"""The bench's fast WebSocket client against a scripted websockets sans-IO server:
handshake with extra headers, rejection, fragments, pings (also while holding), closes."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

# appended, not prepended: bench/agents.py must not hide the OpenAI Agents SDK (`agents`)
sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

import _fastws


class Peer:
    """The server side of one connection, driven by the test."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.proto = ServerProtocol()
        self.request: Request | None = None
        self.frames: list[Any] = []

    async def flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if chunk:
                await self.stream.send_all(chunk)
            else:
                await self.stream.send_eof()

    async def read(self) -> None:
        data = await self.stream.receive_some(65536)
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        for ev in self.proto.events_received():
            if isinstance(ev, Request):
                self.request = ev
            else:
                self.frames.append(ev)
        await self.flush()

    async def accept(self, status: int = 101) -> None:
        while self.request is None:
            await self.read()
        if status == 101:
            self.proto.send_response(self.proto.accept(self.request))
        else:
            self.proto.send_response(self.proto.reject(status, "nope"))
        await self.flush()

    async def next_frame(self, opcode: Opcode) -> Any:
        while True:
            for i, frame in enumerate(self.frames):
                if frame.opcode is opcode:
                    return self.frames.pop(i)
            await self.read()


async def _serve_once(script: Callable[[Peer], Awaitable[None]], task_status: Any) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    task_status.started(f"ws://127.0.0.1:{port}/ws")
    stream = await listeners[0].accept()
    await listeners[0].aclose()
    async with stream:
        await script(Peer(stream))


async def _drain_until_closed(peer: Peer) -> None:
    """Answer the client's close, then close TCP."""
    await peer.next_frame(Opcode.CLOSE)
    await peer.flush()


def test_messages_fragments_pings_and_clean_close() -> None:
    pongs: list[bytes] = []

    async def script(peer: Peer) -> None:
        await peer.accept()
        assert peer.request is not None
        assert peer.request.headers["X-Twilio-Signature"] == "sig"
        peer.proto.send_ping(b"p1")
        peer.proto.send_text(b'{"a":', fin=False)
        peer.proto.send_continuation(b"1}", fin=True)
        peer.proto.send_text(b"x")
        await peer.flush()
        pongs.append((await peer.next_frame(Opcode.PONG)).data)
        hi = await peer.next_frame(Opcode.TEXT)
        peer.proto.send_text(hi.data)
        await peer.flush()
        await _drain_until_closed(peer)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(_serve_once, script)
            async with _fastws.open_fast_websocket(url, [("X-Twilio-Signature", "sig")]) as ws:
                assert await ws.get_message() == b'{"a":1}'
                assert await ws.get_message() == b"x"
                await ws.send_message("hi")
                assert await ws.get_message() == b"hi"
            assert ws._proto.close_rcvd is not None
            assert ws._proto.close_rcvd.code == 1000

    trio.run(main)
    assert pongs == [b"p1"]


def test_hold_answers_pings() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        peer.proto.send_ping(b"while idle")
        await peer.flush()
        assert (await peer.next_frame(Opcode.PONG)).data == b"while idle"
        peer.proto.send_text(b"kept")
        await peer.flush()
        gate.set()
        await _drain_until_closed(peer)

    gate = trio.Event()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(_serve_once, script)
            async with _fastws.open_fast_websocket(url) as ws:
                with trio.fail_after(5):
                    await ws.hold(gate)
                assert await ws.get_message() == b"kept"

    trio.run(main)


def test_rejected_upgrade() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept(status=403)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(_serve_once, script)
            with pytest.raises(_fastws.Rejected) as info:
                async with _fastws.open_fast_websocket(url):
                    pass  # pragma: no cover
            assert info.value.status == 403

    trio.run(main)


def test_server_close_raises_closed_after_pending_messages() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        peer.proto.send_text(b"last words")
        peer.proto.send_close(1001, "going away")
        await peer.flush()
        while peer.proto.state is OPEN or peer.proto.close_rcvd is None:
            await peer.read()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(_serve_once, script)
            async with _fastws.open_fast_websocket(url) as ws:
                assert await ws.get_message() == b"last words"
                with pytest.raises(_fastws.Closed):
                    await ws.get_message()
                with pytest.raises(_fastws.Closed):
                    await ws.send_message("too late")

    trio.run(main)


def test_connect_refused_is_oserror() -> None:
    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        await listeners[0].aclose()
        with pytest.raises(OSError):
            async with _fastws.open_fast_websocket(f"ws://127.0.0.1:{port}/ws"):
                pass  # pragma: no cover

    trio.run(main)


def test_connect_timeout() -> None:
    async def script(peer: Peer) -> None:
        await trio.sleep_forever()  # never answers the upgrade

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(_serve_once, script)
            with pytest.raises(_fastws.ConnectTimeout):
                async with _fastws.open_fast_websocket(url, connect_timeout=0.1):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()

    trio.run(main)
