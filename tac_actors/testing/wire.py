"""The production WebSocket transport in memory: :func:`fast_transport_pair` connects a
:class:`~tac_actors.server.fastws.FastTransport` (the fast engine's transport, as the
server uses it) to a ``websockets`` client protocol over
:func:`trio.testing.memory_stream_pair`. Real WebSocket framing, no sockets: so tests of
the engine drive the production transport under ``MockClock`` and
``wait_all_tasks_blocked``, h11-style (two ends in memory)."""

from __future__ import annotations

import socket as _socket

import trio
import trio.testing
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from tac_actors.channels.transport import TransportClosed
from tac_actors.server.fastws import FastTransport

__all__ = ["WebSocketClientTransport", "fast_transport_pair"]


class WebSocketClientTransport:
    """The client end of :func:`fast_transport_pair` (a
    :class:`~tac_actors.channels.transport.Transport`)."""

    def __init__(self, stream: trio.abc.Stream, protocol: ClientProtocol) -> None:
        self._stream = stream
        self._proto = protocol
        self._messages: list[str | bytes] = []
        self._closed = False

    async def _flush(self) -> None:
        data = b"".join(self._proto.data_to_send())
        if data:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise TransportClosed(1006, "server vanished") from None

    async def receive(self) -> str | bytes:
        while not self._messages:
            rcvd = self._proto.close_rcvd
            if rcvd is not None or self._closed:
                await trio.lowlevel.checkpoint()
                raise TransportClosed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if data:
                self._proto.receive_data(data)
            else:
                self._proto.receive_eof()
                self._closed = True
            for event in self._proto.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    self._messages.append(bytes(event.data).decode())
                elif isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                    self._messages.append(bytes(event.data))
            await self._flush()  # pongs, the close echo
        return self._messages.pop(0)

    async def send(self, text: str | bytes) -> None:
        if self._closed or self._proto.close_rcvd is not None:
            await trio.lowlevel.checkpoint()
            raise TransportClosed(1006, "closed")
        if isinstance(text, bytes):
            self._proto.send_binary(text)
        else:
            self._proto.send_text(text.encode("utf-8", "surrogatepass"))
        await self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._proto.close_rcvd is None:
                self._proto.send_close(code, reason)
            await self._flush()
        except TransportClosed:
            pass
        finally:
            await self._stream.aclose()


def fast_transport_pair(*, socket: bool = False
                        ) -> tuple[FastTransport, WebSocketClientTransport]:
    """A server :class:`FastTransport` and a client transport, connected in memory, the
    upgrade already done. ``socket=True`` connects them through a real socket pair with
    small kernel buffers instead, so the transport's direct ``os.read``/``os.write``
    paths run as in production."""
    server_stream: trio.abc.Stream
    client_stream: trio.abc.Stream
    if socket:
        a, b = _socket.socketpair()
        for end in (a, b):
            end.setblocking(False)
            end.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, 4096)
        server_stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        client_stream = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    else:
        server_stream, client_stream = trio.testing.memory_stream_pair()
    client = ClientProtocol(parse_uri("ws://harness/ws"))
    client.send_request(client.connect())
    server = ServerProtocol()
    server.receive_data(b"".join(client.data_to_send()))
    request = server.events_received()[0]
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    client.receive_data(b"".join(server.data_to_send()))
    assert isinstance(client.events_received()[0], Response)
    return FastTransport(server_stream, server), WebSocketClientTransport(client_stream, client)
