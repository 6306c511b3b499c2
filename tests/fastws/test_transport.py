"""The fast transport on a real socket pair: fairness, a reader that never waits on a
write, keepalive, surrogates. The peer is a ``websockets`` client protocol driven by
hand, so the tests control exactly what is in the kernel's buffers."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import hypothesis
import hypothesis.strategies
import pytest
import trio
import trio.testing
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from tac_actors.channels.transport import TransportClosed
from tac_actors.server.fastws import PARSE_SLICE, YIELD_EVERY, FastTransport, text_frame
from tac_actors.testing.fairness import schedule_passes


class Peer:
    """The client end: a blocking-free socket and a client protocol."""

    def __init__(self, sock: socket.socket, proto: ClientProtocol) -> None:
        self.sock = sock
        self.proto = proto

    def send_frames(self, *bodies: dict[str, object], ping: bool = False) -> None:
        if ping:
            self.proto.send_ping(b"hb")
        for body in bodies:
            self.proto.send_text(json.dumps(body).encode())
        self.sock.sendall(b"".join(self.proto.data_to_send()))

    def read_frames(self) -> list[Frame]:
        frames: list[Frame] = []
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data = self.sock.recv(1 << 20)
                except BlockingIOError:
                    break
                if not data:
                    break
                self.proto.receive_data(data)
        finally:
            self.sock.setblocking(True)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                frames.append(event)
        return frames


@asynccontextmanager
async def connected(max_size: int | None = 2**20) -> AsyncIterator[tuple[FastTransport, Peer]]:
    server_sock, client_sock = socket.socketpair()
    for sock in (server_sock, client_sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server_sock.setblocking(False)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(server_sock))
    client = ClientProtocol(parse_uri("ws://test/ws"))
    client.send_request(client.connect())
    server = ServerProtocol(max_size=max_size)
    server.receive_data(b"".join(client.data_to_send()))
    request = server.events_received()[0]
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    client.receive_data(b"".join(server.data_to_send()))
    assert isinstance(client.events_received()[0], Response)
    transport = FastTransport(stream, server)
    try:
        yield transport, Peer(client_sock, client)
    finally:
        client_sock.close()
        await stream.aclose()


async def test_a_flooding_peer_lets_other_tasks_run() -> None:
    """Frames already in the buffer are served with a pass through the scheduler at
    least every YIELD_EVERY frames (review C4: a peer at line rate froze every call)."""
    count = 400
    async with connected() as (transport, peer):
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        frames = [{"type": "info", "n": i} for i in range(count)]
        peer.send_frames(*frames)
        with trio.fail_after(10):
            async with schedule_passes() as passes:
                for _ in range(count):
                    await transport.receive()
    assert passes.count >= count // YIELD_EVERY - 2, f"{passes.count} passes, {count} frames"


async def test_the_reader_never_waits_on_a_congested_write() -> None:
    """A ping arrives while our writes are stuck behind a peer that does not read, then
    an interrupt: the reader returns the interrupt at once; the pong waits for the
    writer (review C3: the reader parked behind the write until the peer drained)."""
    async with connected() as (transport, peer):
        flushed: list[bool] = []
        transport.on_backlog = lambda: flushed.append(True)
        while transport.send_nowait(json.dumps({"type": "text", "token": "x" * 500})):
            pass  # fill the kernel's buffers: the peer reads nothing
        peer.send_frames({"type": "interrupt", "utteranceUntilInterrupt": "x"}, ping=True)
        with trio.fail_after(5):
            frame = await transport.receive()
        assert json.loads(frame)["type"] == "interrupt"
        assert flushed, "the writer was asked to send the pong"


async def test_a_silent_peer_is_pinged_then_closed() -> None:
    async with connected() as (transport, peer):
        ended: list[BaseException] = []

        async def reader() -> None:
            try:
                await transport.receive()
            except TransportClosed as exc:
                ended.append(exc)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()  # the reader waits for data
                assert transport.keepalive()  # heard at the start
                assert transport.keepalive()  # silent: pinged
                pings = [f for f in peer.read_frames() if f.opcode is Opcode.PING]
                assert len(pings) == 1
                assert not transport.keepalive()  # no pong by the next sweep: closed
        assert ended, "the reader saw the end"
        closes = [f for f in peer.read_frames() if f.opcode is Opcode.CLOSE]
        assert closes and closes[0].data[:2] == (1011).to_bytes(2, "big")


async def test_a_reader_busy_elsewhere_is_not_taken_for_a_vanished_peer() -> None:
    """Review: a reader parked on a full mailbox reads nothing, so the peer's pongs go
    unseen; that must not close a live call."""
    async with connected() as (transport, peer):
        for _ in range(5):
            assert transport.keepalive()
        assert not [f for f in peer.read_frames() if f.opcode is Opcode.PING]


async def test_a_peer_that_answers_pings_stays() -> None:
    async with connected() as (transport, peer):

        async def reader() -> None:
            await transport.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            transport.keepalive()
            transport.keepalive()  # ping
            peer.read_frames()  # the client protocol answers with a pong
            peer.sock.sendall(b"".join(peer.proto.data_to_send()))
            # the reader takes the pong (no message for the caller) and waits again
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            assert transport._heard
            assert transport.keepalive(), "a pong counts as life"
            nursery.cancel_scope.cancel()


async def test_a_ping_flood_lets_other_tasks_run() -> None:
    """Review: control frames did not count toward the reader's schedule points."""
    async with connected() as (transport, peer):
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        transport.on_backlog = lambda: None  # a writer would send the pongs; none here
        for _ in range(4000):
            peer.proto.send_ping(b"x")
        peer.send_frames({"type": "info"})
        with trio.fail_after(10):
            async with schedule_passes() as passes:
                await transport.receive()
    flood = 4000 * 7  # bytes: a masked empty ping is 7
    assert passes.count >= flood // PARSE_SLICE - 2, f"{passes.count} passes for 4000 pings"


async def test_empty_continuation_frames_cannot_grow_memory() -> None:
    """Review: zero-byte continuation frames never reached the size limit."""
    from websockets.frames import Frame as WsFrame

    async with connected() as (transport, peer):
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        peer.proto.send_frame(WsFrame(Opcode.TEXT, b"{", fin=False))
        for _ in range(5000):
            peer.proto.send_frame(WsFrame(Opcode.CONT, b"", fin=False))
        peer.sock.sendall(b"".join(peer.proto.data_to_send()))
        with trio.fail_after(10):
            try:
                await transport.receive()
            except TransportClosed:
                pass
        assert len(transport._fragments) <= 1024
        closes = [f for f in peer.read_frames() if f.opcode is Opcode.CLOSE]
        assert closes and closes[0].data[:2] == (1009).to_bytes(2, "big")


async def test_a_lone_surrogate_is_sent_escaped_not_a_crash() -> None:
    """Review D1: encoding a reply with half an emoji killed the whole server."""
    async with connected() as (transport, peer):
        assert transport.send_nowait('{"type":"text","token":"\ud83d","last":true}')
        await transport.send_many(['{"type":"text","token":"a\ud800","last":true}'])
        texts = [json.loads(f.data) for f in peer.read_frames() if f.opcode is Opcode.TEXT]
    assert [t["token"] for t in texts] == ["\ud83d", "a\ud800"]


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(text=hypothesis.strategies.text(max_size=300),
                  pad=hypothesis.strategies.sampled_from([0, 125, 126, 65535, 65536, 70000]))
def test_our_text_frames_are_what_the_protocol_object_writes(text: str, pad: int) -> None:
    payload = (text + "x" * max(0, pad - len(text.encode()))).encode()
    server = ServerProtocol()
    server.state = State.OPEN
    server.send_text(payload)
    assert text_frame(payload) == b"".join(server.data_to_send())


_FRAMES = hypothesis.strategies.lists(
    hypothesis.strategies.one_of(
        hypothesis.strategies.tuples(
            hypothesis.strategies.just("text"),
            hypothesis.strategies.text(max_size=40),
            hypothesis.strategies.sampled_from([0, 0, 0, 125, 126, 65535, 65536]),
            hypothesis.strategies.booleans()),  # fragmented
        hypothesis.strategies.tuples(hypothesis.strategies.just("ping")),
    ), min_size=1, max_size=8)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(frames=_FRAMES, cuts=hypothesis.strategies.lists(
    hypothesis.strategies.integers(min_value=1, max_value=70000), max_size=6))
def test_any_mix_of_frames_and_read_boundaries_gives_the_same_messages(
        frames: list[tuple[object, ...]], cuts: list[int]) -> None:
    """Complete text frames are parsed by the transport itself, everything else by the
    protocol object from the first other frame on: whatever the mix and wherever the
    reads split the stream, the messages come out whole and in order."""
    async def main() -> None:
        async with connected() as (transport, peer):
            expected: list[str] = []
            for frame in frames:
                if frame[0] == "ping":
                    peer.proto.send_ping(b"p")
                    continue
                _, text, pad, fragmented = frame
                body = str(text) + "x" * int(pad)  # type: ignore[call-overload]
                expected.append(body)
                data = body.encode()
                if fragmented and len(data) > 1:
                    half = len(data) // 2
                    peer.proto.send_text(data[:half], fin=False)
                    peer.proto.send_continuation(data[half:], fin=True)
                else:
                    peer.proto.send_text(data)
            wire = b"".join(peer.proto.data_to_send())
            points = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
            chunks = [wire[a:b] for a, b in itertools.pairwise(points)]

            async def send() -> None:
                for chunk in chunks:
                    await trio.to_thread.run_sync(peer.sock.sendall, chunk)

            got: list[str] = []
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send)
                    while len(got) < len(expected):
                        message = await transport.receive()
                        assert isinstance(message, str)
                        got.append(message)
            assert got == expected

    trio.run(main)


async def test_a_text_frame_past_max_size_closes_1009() -> None:
    async with connected(max_size=1000) as (transport, peer):
        peer.proto.send_text(b"x" * 900)
        peer.proto.send_text(b"y" * 1001)
        peer.sock.sendall(b"".join(peer.proto.data_to_send()))
        with trio.fail_after(5):
            assert await transport.receive() == "x" * 900
            with pytest.raises(TransportClosed):
                await transport.receive()
        closes = [f for f in peer.read_frames() if f.opcode is Opcode.CLOSE]
        assert closes and int.from_bytes(closes[0].data[:2], "big") == 1009
