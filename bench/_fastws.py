"""A lean WebSocket client for the load generator: websockets' sans-IO ``ClientProtocol``
driven straight from a non-blocking socket under trio.

trio-websocket runs wsproto (pure Python) plus a reader task and a memory channel per
connection, and trio's ``SocketStream`` adds its own checkpoints and bookkeeping to
every ``send_all``/``receive_some``. Here the call's own task does the I/O: it waits
with ``trio.lowlevel.wait_readable`` (a checkpoint, cancellable, nothing lost), then one
``recv`` that may carry many frames, which websockets parses in one go (C speedups
for masking); text payloads are handed over as ``bytes`` (orjson and json both parse
bytes). Sends go straight to ``socket.send`` and only wait (``wait_writable``) when the
kernel buffer is full. Pings are answered by flushing what the protocol queued after
each read. About half the client CPU per turn of trio-websocket in a closed loop.

Nobody reads while a call is idle, so :meth:`FastWebSocket.hold` keeps reading (and
answering pings) while the call waits for a phase gate.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN
from websockets.uri import parse_uri

_TEXT, _BINARY, _CONT, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE
_RECV_SIZE = 65536
#: After the server's close frame, how long to wait for it to close TCP (no error if not).
_EOF_GRACE = 0.5
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable


class FastWSError(Exception):
    """Base of this module's errors."""


class HandshakeFailed(FastWSError):
    """The server did not complete a valid WebSocket upgrade."""


class Rejected(HandshakeFailed):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"upgrade rejected: HTTP {status}")
        self.status = status


class ConnectTimeout(FastWSError):
    """TCP connect plus upgrade took longer than the connect timeout."""


class Closed(FastWSError):
    """The connection is closed (close frame, EOF or a broken socket)."""


class CloseTimeout(FastWSError):
    """The server did not answer our close frame in time."""


async def _send_raw(sock: socket.socket, data: bytes) -> None:
    """Write all of ``data``; yields only when the kernel send buffer is full."""
    try:
        n = sock.send(data)
    except BlockingIOError:
        n = 0
    if n == len(data):
        return
    view = memoryview(data)[n:]
    while view:
        await _wait_writable(sock)
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            pass


async def _recv_raw(sock: socket.socket) -> bytes | None:
    """Wait until readable, then read once: data, ``b""`` at EOF, ``None`` if spurious."""
    await _wait_readable(sock)
    try:
        return sock.recv(_RECV_SIZE)
    except BlockingIOError:
        return None


class FastWebSocket:
    """One client connection. Use :func:`open_fast_websocket`; one task at a time."""

    __slots__ = ("_closed", "_fragments", "_pending", "_proto", "_sock")

    def __init__(self, sock: socket.socket, proto: ClientProtocol) -> None:
        self._sock = sock
        self._proto = proto
        self._pending: deque[bytes] = deque()
        self._fragments: list[bytes] | None = None
        self._closed = False

    async def send_message(self, message: str | bytes) -> None:
        """Send one text message."""
        if self._closed:
            raise Closed("connection closed")
        proto = self._proto
        proto.send_text(message.encode() if isinstance(message, str) else message)
        await self._send(proto.data_to_send())

    async def get_message(self) -> bytes:
        """Return the next text message's payload (UTF-8 ``bytes``)."""
        pending = self._pending
        while not pending:
            await self._fill()
        return pending.popleft()

    async def hold(self, event: trio.Event) -> None:
        """Wait for ``event`` while reading: pings get answered, messages are kept."""
        if event.is_set():
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump)
            await event.wait()
            nursery.cancel_scope.cancel()

    async def _pump(self) -> None:
        try:
            while True:
                await self._fill()
        except Closed:
            pass  # the next get_message() raises it again

    async def _send(self, chunks: Sequence[bytes]) -> None:
        if not chunks:
            return
        eof = chunks[-1] == b""  # websockets' SEND_EOF: half-close after the data
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            if data:
                await _send_raw(self._sock, data)
            if eof:
                self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._closed = True
            raise Closed(f"connection broken while sending: {exc}") from exc

    async def _fill(self) -> None:
        """Read once from the socket; queue complete text messages, answer control frames."""
        if self._closed:
            raise Closed("connection closed")
        try:
            data = await _recv_raw(self._sock)
        except OSError as exc:
            self._closed = True
            raise Closed(f"connection broken while receiving: {exc}") from exc
        if data is None:
            return
        proto = self._proto
        if data:
            proto.receive_data(data)
            self._take(proto.events_received())
        else:
            proto.receive_eof()
            self._closed = True
        out = proto.data_to_send()
        if out:
            # A pong or the echo of a close: never leave a frame half sent.
            with trio.CancelScope(shield=True):
                try:
                    await self._send(out)
                except Closed:
                    pass
        if proto.state is not OPEN:
            self._closed = True
        if self._closed and not self._pending:
            raise Closed("connection closed by the server")

    def _take(self, events: Sequence[Any]) -> None:
        pending = self._pending
        for ev in events:
            op = ev.opcode
            if op is _TEXT or op is _BINARY:
                if ev.fin:
                    pending.append(ev.data)
                else:
                    self._fragments = [ev.data]
            elif op is _CONT:
                if self._fragments is not None:
                    self._fragments.append(ev.data)
                    if ev.fin:
                        pending.append(b"".join(self._fragments))
                        self._fragments = None
            elif op is _CLOSE:
                self._closed = True
            # PING: the protocol queued the pong (flushed by _fill); PONG: nothing to do

    async def aclose(self, close_wait: float = 5.0) -> None:
        """Close with 1000 and wait up to ``close_wait`` for the server's close frame
        (else :class:`CloseTimeout`), then briefly for its EOF; close the socket."""
        proto, sock = self._proto, self._sock
        timed_out = False
        try:
            with trio.move_on_after(close_wait) as scope:
                if proto.state is OPEN:
                    proto.send_close(1000)
                    await self._send(proto.data_to_send())
                while proto.state is not CLOSED:
                    if proto.close_rcvd is not None:
                        scope.deadline = min(scope.deadline, trio.current_time() + _EOF_GRACE)
                    try:
                        data = await _recv_raw(sock)
                    except OSError:
                        break
                    if data is None:
                        continue
                    if data:
                        proto.receive_data(data)
                        proto.events_received()
                    else:
                        proto.receive_eof()
                    await self._send(proto.data_to_send())
            timed_out = scope.cancelled_caught and proto.close_rcvd is None
        except Closed:
            pass
        finally:
            self._closed = True
            trio.lowlevel.notify_closing(sock)
            sock.close()
        if timed_out:
            raise CloseTimeout("no close frame from the server")


async def _connect_tcp(host: str, port: int) -> socket.socket:
    """Open a non-blocking TCP connection (TCP_NODELAY) to the first address that answers."""
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {host}:{port}")
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await trio.socket.from_stdlib_socket(sock).connect(addr)  # also non-blocking
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error


async def _handshake(
    url: str, headers: Sequence[tuple[str, str]]
) -> tuple[socket.socket, ClientProtocol, list[Any]]:
    uri = parse_uri(url)
    sock = await _connect_tcp(uri.host, uri.port)
    try:
        proto = ClientProtocol(uri)
        request = proto.connect()
        for name, value in headers:
            request.headers[name] = value
        proto.send_request(request)
        await _send_raw(sock, b"".join(proto.data_to_send()))
        while True:
            data = await _recv_raw(sock)
            if data is None:
                continue
            if data:
                proto.receive_data(data)
            else:
                proto.receive_eof()
            events = proto.events_received()
            exc = proto.handshake_exc
            if exc is not None:
                if isinstance(exc, InvalidStatus):
                    raise Rejected(exc.response.status_code)
                raise HandshakeFailed(str(exc)) from exc
            if events:
                if not isinstance(events[0], Response) or proto.state is not OPEN:
                    raise HandshakeFailed("unexpected handshake event")
                return sock, proto, events[1:]
            if not data:
                raise HandshakeFailed("connection closed during the upgrade")
    except BaseException:
        trio.lowlevel.notify_closing(sock)
        sock.close()
        raise


@asynccontextmanager
async def open_fast_websocket(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    connect_timeout: float = 10.0,
    disconnect_timeout: float = 5.0,
) -> AsyncIterator[FastWebSocket]:
    """Connect (TCP + upgrade within ``connect_timeout``), yield the connection, close it.

    Raises :class:`Rejected`, :class:`HandshakeFailed`, :class:`ConnectTimeout` or
    ``OSError`` while connecting; :class:`Closed` while in use; :class:`CloseTimeout`.
    """
    try:
        with trio.fail_after(connect_timeout):
            sock, proto, early = await _handshake(url, headers)
    except trio.TooSlowError as exc:
        raise ConnectTimeout(f"no upgrade within {connect_timeout} s") from exc
    ws = FastWebSocket(sock, proto)
    try:
        ws._take(early)  # frames that came with the upgrade response
        await ws._send(proto.data_to_send())  # e.g. the pong for such a ping
        yield ws
    finally:
        await ws.aclose(disconnect_timeout)
