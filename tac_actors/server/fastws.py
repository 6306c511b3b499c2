"""The fast WebSocket transport: ``websockets``' sans-IO protocol on a trio stream.

wsproto (under hypercorn and trio-websocket) costs two to three times the reference's
per-frame CPU before any of our logic runs (shared/PERFORMANCE.md). The ``websockets``
package's sans-IO ``ServerProtocol`` (C speedups for masking and UTF-8) driven straight
from a trio stream beats it. :class:`FastTransport` is the voice channel's
:class:`~tac_actors.channels.transport.Transport` on that path; the front door
(:mod:`tac_actors.server.frontdoor`) accepts the connections and hands them over.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import trio
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure-Python build of websockets
    from websockets.utils import apply_mask

from tac_actors.channels.transport import TransportClosed

__all__ = ["FastTransport"]

log = logging.getLogger("tac_actors.server")

RECEIVE_SIZE = 65536
#: protocol output (pongs, close echoes) the reader leaves for the writer before it waits
MAX_BACKLOG = 256 * 1024
#: frames a reader may take from a full socket before it passes through the scheduler
YIELD_EVERY = 16
#: ... where a frame counts once more for every this many bytes it holds
YIELD_BYTES = 1024
#: fragments one message may come in
MAX_FRAGMENTS = 1024
#: how much of a read is parsed between two schedule points under a flood
PARSE_SLICE = 1024


class FastTransport:
    """A server-side WebSocket over a trio stream, via ``websockets``' sans-IO protocol.

    Tasks: one reader (:meth:`receive`) and one writer (the voice outbox's, through
    :meth:`send_nowait`, :meth:`send_many`, :meth:`flush`). **The reader never waits on a
    write**: what the protocol answers by itself (pongs, the close echo) is written
    without waiting when the socket takes it, and otherwise left in the backlog for the
    writer (``on_backlog`` is called to wake it); only past ``MAX_BACKLOG`` bytes does the
    reader wait (a peer that floods pings and never reads is pushed back by TCP).

    Fairness: the reader passes through the scheduler at least every ``YIELD_EVERY``
    frames even when the peer keeps the socket full.

    Keepalive: :meth:`keepalive` is called by the front door's sweeper; a peer that sent
    nothing since the last sweep is pinged, and one that still sent nothing (not even the
    pong) by the next sweep is closed with 1011.
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
        self._unyielded = 0
        self._heard = True  # the peer sent something since the last keepalive sweep
        self._waiting = False  # the reader is waiting for the socket (not busy elsewhere)
        self._pinged = False
        #: called when the reader leaves bytes in the backlog (the writer should flush)
        self.on_backlog: Callable[[], None] | None = None

    def _closed_error(self) -> TransportClosed:
        rcvd = self._proto.close_rcvd
        return TransportClosed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")

    async def receive(self) -> str | bytes:
        while not self._messages:
            if self._eof or self._proto.state is State.CLOSED or self._proto.close_rcvd:
                await trio.lowlevel.checkpoint()
                self._write_protocol_output()
                raise self._closed_error()
            try:
                data = await self._receive_bytes()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if data:
                self._heard = True
                if self._plain_frames_ok():
                    used = self._take_text_frames(data)
                    data = data[used:] if used else data
                # a big read is parsed a slice at a time, with a schedule point between
                # slices once enough frames were seen: a flood of tiny frames (pings,
                # empty continuations) cannot hold the loop for a whole read
                for start in range(0, len(data), PARSE_SLICE):
                    self._proto.receive_data(data[start:start + PARSE_SLICE]
                                             if len(data) > PARSE_SLICE else data)
                    self._collect()
                    if self._unyielded >= YIELD_EVERY:  # control frames count too
                        self._unyielded = 0
                        await trio.lowlevel.cancel_shielded_checkpoint()
            else:
                self._eof = True
                self._proto.receive_eof()
                self._collect()
            if self._write_protocol_output():
                await self._flush()  # past MAX_BACKLOG: the peer is not reading
        message = self._messages.pop(0)
        # weighted by size: a big frame is a lot of work for the caller to parse (a
        # peer sending 64 KB frames to reject gets a schedule point per frame)
        self._unyielded += 1 + len(message) // YIELD_BYTES
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.cancel_shielded_checkpoint()
        return message

    def _plain_frames_ok(self) -> bool:
        """Whether the next bytes may be parsed here rather than by the protocol object:
        it is open, holds no partial frame, no fragmented message is pending and no
        extension is active."""
        proto = self._proto
        return (proto.state is State.OPEN and not proto.reader.buffer
                and proto.current_size is None and not self._fragments
                and not proto.extensions)

    def _take_text_frames(self, data: bytes) -> int:
        """Take the complete, final, masked text frames at the start of ``data`` (the
        common case: one prompt per read) and return how many bytes they held; the
        rest, from the first frame of any other kind (control, fragment, partial, too
        big, bad), goes to the protocol object, which starts at that frame boundary.
        The same checks as the protocol's: RSV bits clear, a mask, ``max_size``; text
        that is not UTF-8 fails the connection with 1007."""
        offset = 0
        end = len(data)
        max_size = self._proto.max_message_size
        if self._proto.max_fragment_size is not None:
            max_size = min(max_size or self._proto.max_fragment_size,
                           self._proto.max_fragment_size)
        while end - offset >= 6:
            if data[offset] != 0x81:  # FIN, no RSV bit, text
                break
            size = data[offset + 1]
            if not size & 0x80:  # not masked: a protocol error, which the protocol reports
                break
            size &= 0x7F
            head = offset + 2
            if size == 126:
                if end - head < 2:
                    break
                size = int.from_bytes(data[head:head + 2], "big")
                head += 2
            elif size == 127:
                break  # 64-bit lengths are far past any prompt: the protocol's path
            if max_size is not None and size > max_size:
                break
            start = head + 4
            if end - start < size:
                break
            payload = apply_mask(data[start:start + size], data[head:start])
            try:
                self._messages.append(payload.decode())
            except UnicodeDecodeError:
                self._proto.fail(1007, "invalid UTF-8")
                if not self._messages:
                    self._eof = True  # as after a parser error: nothing more is read
                return end  # the connection is failing: the rest is not read
            offset = start + size
        return offset

    def _write_protocol_output(self) -> bool:
        """Hand what the protocol produced to the socket without waiting; what the socket
        does not take waits in the backlog for the writer. True when the backlog is past
        ``MAX_BACKLOG`` (the reader must wait)."""
        self._take_output()
        if not self._backlog or self._writing or self._stream_closed:
            return len(self._backlog) > MAX_BACKLOG
        if self._fd >= 0 and not self._close_after:
            self._write_backlog_nowait()
        if self._backlog or self._close_after:
            if self.on_backlog is None:
                return True
            self.on_backlog()
        return len(self._backlog) > MAX_BACKLOG

    def _write_backlog_nowait(self) -> None:
        try:
            written = os.write(self._fd, self._backlog)
        except BlockingIOError:
            return
        except OSError:  # the flush that follows meets the error and reports it
            return
        self._backlog = self._backlog[written:]

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
            self._unyielded = 0
            self._waiting = True
            try:
                await trio.lowlevel.wait_readable(self._fd)
            finally:
                self._waiting = False
            if self._stream_closed or self._eof:
                return b""
            data = self._read_nowait()
            if data is not None:
                return data

    def _read_nowait(self) -> bytes | None:
        try:
            data = os.read(self._fd, RECEIVE_SIZE)
        except BlockingIOError:
            self._drained = True
            return None
        except ConnectionError:  # reset by the peer: the same as its end
            return b""
        except OSError as exc:
            log.warning("voice socket read failed (%s): treating it as closed", exc)
            return b""
        self._drained = len(data) < RECEIVE_SIZE
        return data

    def _collect(self, events: list[object] | None = None) -> None:
        for event in self._proto.events_received() if events is None else events:
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is not Opcode.TEXT and opcode is not Opcode.BINARY:
                self._unyielded += 1  # data frames are counted as they are returned
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                self._fragment_text = opcode is Opcode.TEXT
                self._fragments = [bytes(event.data)]
            elif opcode is Opcode.CONT:
                if len(self._fragments) >= MAX_FRAGMENTS:
                    # empty continuation frames never reach the size limit
                    self._fragments = []
                    self._proto.fail(1009, "too many fragments")
                    break
                self._fragments.append(bytes(event.data))
            else:
                if opcode is Opcode.PONG:
                    self._pinged = False
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
        self._queue_text(text)
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
        """Write what :meth:`send_nowait` or the reader left in the backlog."""
        await self._flush()

    async def send(self, text: str) -> None:
        if self._proto.state is not State.OPEN:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        self._queue_text(text)
        await self._flush()

    async def send_many(self, texts: list[str]) -> None:
        """Send several text frames with one write (the outbox drains in batches)."""
        if self._proto.state is not State.OPEN:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        for text in texts:
            self._queue_text(text)
        await self._flush()

    def _queue_text(self, text: str) -> None:
        """Append one text frame to the backlog, after what the protocol produced. With
        no extension negotiated (we offer none) a server's text frame is a header and
        the UTF-8 bytes: built here, a quarter of the cost of the protocol object's
        path, which is still used when an extension is active."""
        self._take_output()
        if self._proto.extensions:
            self._proto.send_text(_encode(text))
            self._take_output()
        else:
            self._backlog += text_frame(_encode(text))

    def keepalive(self) -> bool:
        """One keepalive sweep (see the class docstring). Returns False when the peer
        failed it and the connection was aborted."""
        if self._closed or self._eof or self._proto.state is not State.OPEN:
            return True
        if self._heard or (self._fd >= 0 and not self._waiting):
            # a reader busy elsewhere (a full mailbox) is not reading: that is no sign
            # of a vanished peer
            self._heard = False
            self._pinged = False
            return True
        if not self._pinged:
            self._pinged = True
            self._proto.send_ping(b"tac")
            self._write_protocol_output()
            return True
        self.abort("keepalive ping timeout")
        return False

    def abort(self, reason: str) -> None:
        """Give up on the peer now (it stopped answering): queue a 1011 close if the
        socket takes it, and wake the reader and the writer, which see the end."""
        if self._eof or self._stream_closed:
            return
        log.warning("voice socket: %s: closing it (1011)", reason)
        if self._proto.state is State.OPEN:
            self._proto.fail(1011, reason)
            self._take_output()
            if self._fd >= 0 and not self._writing:
                self._write_backlog_nowait()
        self._eof = True
        self._backlog = b""
        self._close_after = False
        if isinstance(self._stream, trio.SocketStream):
            # wakes a task blocked on this socket; it is closed by the handler afterwards
            trio.lowlevel.notify_closing(self._stream.socket)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._proto.state is State.OPEN:
                self._proto.send_close(code, reason)
            await self._flush()  # whatever is left, the close frame or its echo last
            if not self._eof:
                # give the peer a moment to answer the close, then drop the connection
                with trio.move_on_after(1.0):
                    while not self._eof:
                        await self.receive()
        except TransportClosed:
            pass
        finally:
            self._stream_closed = True
            await self._stream.aclose()


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame holding ``payload`` (RFC 6455 5.2: a server never
    masks; lengths past 125 take 2 or 8 more bytes)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


def _encode(text: str) -> bytes:
    """UTF-8 for a frame. Our frames are JSON: a lone surrogate (half of an emoji split
    across two tokens) cannot be encoded, and is sent as its JSON escape instead of
    failing the call (``backslashreplace`` writes exactly ``\\udXXX``)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


