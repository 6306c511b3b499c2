"""The fast path for voice: ConversationRelay sockets served by our own trio code.

wsproto (under hypercorn and trio-websocket) costs two to three times the reference's
per-frame CPU before any of our logic runs (shared/PERFORMANCE.md). The ``websockets``
package's sans-IO ``ServerProtocol`` (C speedups for masking and UTF-8) driven straight
from a trio stream beats it, so the public port is owned by a small front door:

* a WebSocket upgrade to the voice path is served here, in-process, through
  :class:`FastTransport`;
* any other request (TwiML, webhooks, callbacks, health, a user's own routes) is spliced
  byte for byte to the quart-trio app, which hypercorn serves on a private loopback port.

So one port serves everything, the quart app stays the single place where HTTP routes
live, and the actors and protocol code do not know which engine carries a call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol

from tac_actors.channels.transport import TransportClosed

__all__ = ["FastTransport", "FrontDoor"]

log = logging.getLogger("tac_actors.server")

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 10.0
RECEIVE_SIZE = 65536


class FastTransport:
    """A server-side WebSocket over a trio stream, via ``websockets``' sans-IO protocol.

    One task may send while another receives: writes (ours, and the protocol's own pongs
    and close echoes) go through one lock, so frames never interleave.
    """

    def __init__(self, stream: trio.abc.Stream, protocol: ServerProtocol) -> None:
        self._stream = stream
        self._proto = protocol
        self._messages: list[str | bytes] = []  # lists are ~500 B lighter than deques
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self._drained = True  # nothing known to be waiting in the kernel
        self._backlog = b""  # accepted, not yet in the kernel: goes out before anything else
        self._close_after = False
        self._writing = False
        self._write_lot: trio.lowlevel.ParkingLot | None = None  # made when writers queue
        self._eof = False
        self._closed = False
        self._stream_closed = False

    def _closed_error(self) -> TransportClosed:
        rcvd = self._proto.close_rcvd
        return TransportClosed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")

    async def receive(self) -> str | bytes:
        while not self._messages:
            if self._eof or self._proto.state is State.CLOSED or self._proto.close_rcvd:
                await trio.lowlevel.checkpoint()
                raise self._closed_error()
            try:
                data = await self._receive_bytes()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if data:
                self._proto.receive_data(data)
            else:
                self._eof = True
                self._proto.receive_eof()
            self._collect()
            await self._flush()
        return self._messages.pop(0)

    async def _receive_bytes(self) -> bytes:
        """The next bytes from the peer (``b""`` at the end). Reads the socket directly:
        after a read that did not fill the buffer the kernel has nothing more, so it waits
        for readiness first instead of paying a read that fails (one syscall per frame)."""
        if self._fd < 0:
            return bytes(await self._stream.receive_some(RECEIVE_SIZE))
        if self._stream_closed or self._eof:  # never touch a descriptor number that may be reused
            await trio.lowlevel.checkpoint()
            return b""
        if not self._drained:
            await trio.lowlevel.checkpoint_if_cancelled()
            data = self._read_nowait()
            if data is not None:
                return data
        while True:
            await trio.lowlevel.wait_readable(self._fd)
            data = self._read_nowait()
            if data is not None:
                return data

    def _read_nowait(self) -> bytes | None:
        try:
            data = os.read(self._fd, RECEIVE_SIZE)
        except BlockingIOError:
            self._drained = True
            return None
        except OSError:  # reset by the peer: the same as its end
            return b""
        self._drained = len(data) < RECEIVE_SIZE
        return data

    def _collect(self, events: list[object] | None = None) -> None:
        for event in self._proto.events_received() if events is None else events:
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                self._fragment_text = opcode is Opcode.TEXT
                self._fragments = [bytes(event.data)]
            elif opcode is Opcode.CONT:
                self._fragments.append(bytes(event.data))
            else:
                continue
            if event.fin:
                data = b"".join(self._fragments)
                self._fragments = []
                if self._fragment_text:
                    try:
                        self._messages.append(data.decode())
                    except UnicodeDecodeError:
                        self._proto.fail(1007, "invalid UTF-8")
                else:
                    self._messages.append(data)
        if self._proto.parser_exc is not None and not self._messages:
            self._eof = True

    def _take_output(self) -> None:
        chunks = self._proto.data_to_send()
        if chunks:
            if chunks[-1] == b"":  # the protocol asks for the TCP connection to end
                self._close_after = True
            self._backlog += b"".join(chunks)

    async def _flush(self) -> None:
        """Write everything the protocol produced, in order. One writer at a time:
        ownership passes from one waiting writer to the next, so bytes never reorder."""
        self._take_output()
        if not self._backlog and not self._close_after:
            await trio.lowlevel.checkpoint_if_cancelled()
            return
        if self._writing:
            if self._write_lot is None:
                self._write_lot = trio.lowlevel.ParkingLot()
            await self._write_lot.park()  # woken as the owner
        else:
            self._writing = True
        try:
            while self._backlog:
                data, self._backlog = self._backlog, b""
                await self._stream.send_all(data)
            if self._close_after:
                self._close_after = False
                self._stream_closed = True
                await self._stream.aclose()
                self._eof = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._eof = True
            self._backlog = b""
            raise TransportClosed(1006, "peer vanished") from None
        finally:
            if self._write_lot:
                self._write_lot.unpark()
            else:
                self._writing = False

    def send_nowait(self, text: str) -> bool:
        """Accept one text frame without waiting, writing it straight to the socket when
        nothing else is being written. Returns True when the frame is entirely in the
        kernel; False when bytes are left in the backlog, for :meth:`flush`. Raises
        :class:`TransportClosed` when the connection is no longer open."""
        if self._proto.state is not State.OPEN or self._eof or self._stream_closed:
            raise self._closed_error()
        self._proto.send_text(text.encode())
        self._take_output()
        if self._writing or self._fd < 0:
            return False
        data = self._backlog
        try:
            written = os.write(self._fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            return False  # the flush that follows meets the error and reports it
        self._backlog = data[written:]
        return not self._backlog

    async def flush(self) -> None:
        """Write what :meth:`send_nowait` left in the backlog."""
        await self._flush()

    async def send(self, text: str) -> None:
        if self._proto.state is not State.OPEN:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        self._proto.send_text(text.encode())
        await self._flush()

    async def send_many(self, texts: list[str]) -> None:
        """Send several text frames with one write (the outbox drains in batches)."""
        if self._proto.state is not State.OPEN:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        for text in texts:
            self._proto.send_text(text.encode())
        await self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._proto.state is State.OPEN:
                self._proto.send_close(code, reason)
                await self._flush()
                # give the peer a moment to answer the close, then drop the connection
                with trio.move_on_after(1.0):
                    while not self._eof:
                        await self.receive()
        except TransportClosed:
            pass
        finally:
            self._stream_closed = True
            await self._stream.aclose()


def _forget_handshake(protocol: ServerProtocol) -> None:
    """Let the upgrade request go. ``ServerProtocol`` parses frames inside the generator
    that parsed the request, which keeps the request (headers and all, ~1.7 KB) alive for
    the life of the connection. Right after the handshake, with no frame bytes buffered,
    a fresh frame parser is the same parser without it. Skipped (harmlessly) if the
    library's internals are not as expected."""
    try:
        if protocol.reader.buffer:
            return
        parser = Protocol.parse(protocol)
        next(parser)
        protocol.parser = parser
    except Exception:  # a websockets version with other internals: keep its parser
        log.debug("websockets internals changed: the upgrade request stays referenced")


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    try:
        text = head.decode("latin-1")
        request_line, *lines = text.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
    except ValueError:
        return None
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


class FrontDoor:
    """Accepts connections on the public port and routes each one (see the module doc).

    ``voice_path`` is the WebSocket path served fast; ``serve_socket`` handles one
    accepted WebSocket (``request`` is the upgrade, for signature checks) and returns
    when the call is over; ``internal`` is the (host, port) of hypercorn.
    """

    def __init__(self, *, voice_path: str, internal: tuple[str, int], max_frame_bytes: int,
                 serve_socket: Callable[[FastTransport, Request], object]) -> None:
        self.voice_path = voice_path
        self.internal = internal
        self.max_frame_bytes = max_frame_bytes
        self.serve_socket = serve_socket
        self.connections = 0
        self.calls = 0
        self._no_calls = trio.Event()
        self._no_calls.set()

    async def wait_no_calls(self) -> None:
        """Wait until no voice socket is being served (used to finish a drain)."""
        await self._no_calls.wait()

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one accepted TCP connection until it closes."""
        self.connections += 1
        try:
            buffer = b""
            with trio.move_on_after(HEAD_TIMEOUT):
                while b"\r\n\r\n" not in buffer and len(buffer) < MAX_HEAD:
                    data = await stream.receive_some(RECEIVE_SIZE)
                    if not data:
                        return
                    buffer += data
            if b"\r\n\r\n" not in buffer:
                return
            parsed = _parse_head(buffer.split(b"\r\n\r\n", 1)[0])
            voice = parsed is not None and self._is_voice_upgrade(*parsed)
            del parsed  # nothing of the request head outlives the hand-over
            if voice:
                await self._serve_websocket(stream, buffer)
            else:
                await self._splice(stream, buffer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.connections -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def _is_voice_upgrade(self, method: str, target: str, headers: dict[str, str]) -> bool:
        return (method == "GET" and target.split("?", 1)[0] == self.voice_path
                and headers.get("upgrade", "").lower() == "websocket")

    async def _serve_websocket(self, stream: trio.SocketStream, buffer: bytes) -> None:
        protocol = ServerProtocol(max_size=self.max_frame_bytes * 4)
        protocol.receive_data(buffer)
        del buffer
        events = protocol.events_received()
        first = events.pop(0) if events else None
        if not isinstance(first, Request):
            protocol.send_response(protocol.reject(400, "bad WebSocket upgrade\n"))
            await stream.send_all(b"".join(protocol.data_to_send()))
            return
        pending: list[Request] = [first]
        del first
        response = protocol.accept(pending[0])
        protocol.send_response(response)
        accepted = response.status_code == 101
        del response
        transport = FastTransport(stream, protocol)
        if events:  # frames sent right behind the upgrade (clients should wait; some don't)
            transport._collect(list(events))
        del events
        _forget_handshake(protocol)
        await transport._flush()
        if not accepted:
            return
        self.calls += 1
        self._no_calls = trio.Event() if self._no_calls.is_set() else self._no_calls
        try:
            # handed over without a local name: the handler may drop it after its checks
            result = self.serve_socket(transport, pending.pop())
            if hasattr(result, "__await__"):
                await result
        finally:
            self.calls -= 1
            if not self.calls:
                self._no_calls.set()

    async def _splice(self, client: trio.SocketStream, buffer: bytes) -> None:
        """Pass the connection to hypercorn untouched, in both directions."""
        upstream = await trio.open_tcp_stream(*self.internal)
        async with upstream:
            await upstream.send_all(buffer)
            async with trio.open_nursery() as nursery:

                async def up() -> None:
                    try:
                        while data := await client.receive_some(RECEIVE_SIZE):
                            await upstream.send_all(data)
                        await upstream.send_eof()
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        nursery.cancel_scope.cancel()

                nursery.start_soon(up)
                try:
                    while data := await upstream.receive_some(RECEIVE_SIZE):
                        await client.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                nursery.cancel_scope.cancel()
