"""The voice outbox: one writer per socket, frames tagged by turn, retractable.

Actors hand frames over without waiting for the socket (a cheap append); one writer task
per call moves them to the transport in order. Frames still queued when their turn is
barged in are retracted, so after the acknowledgement nothing of that turn goes out.
Producers wait only when more than ``high_water`` frames are queued (a slow socket).
After ``end`` is queued, the outbox accepts nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from tac_actors.channels.transport import Transport, TransportClosed
from tac_actors.protocol.connection import RelayConnection
from tac_actors.protocol.errors import LocalProtocolError
from tac_actors.protocol.relay import End, OutboundFrame, Text, text_frame

__all__ = ["VoiceOutbox"]

log = logging.getLogger("tac_actors.voice")

#: a producer queueing tokens faster than they are written yields every this many
YIELD_EVERY = 16


class VoiceOutbox:
    """Outbox of one ConversationRelay socket (see :class:`~tac_actors.actors.Outbox`)."""

    streaming = True

    def __init__(self, connection: RelayConnection, *, call_sid: str = "",
                 high_water: int = 256) -> None:
        self._conn = connection
        self._call_sid = call_sid
        self._queue: list[tuple[int, str]] = []  # lighter than a deque; drained in batches
        self._high = high_water
        self._low = high_water // 2
        # made when first needed: an idle call holds neither (see _unpark_space, wait_empty)
        self._space_lot: trio.lowlevel.ParkingLot | None = None
        self._drained: trio.Event | None = None
        self._ended = False
        self._stopping = False
        # the writer side: a transport that can write without waiting lets a frame skip
        # the queue (and a task switch) whenever nothing is queued or being written
        self._nowait: Callable[[str], bool] | None = None
        self._nursery: trio.Nursery | None = None
        self._transport: Transport | None = None
        self._writer_busy = False  # a writer task exists (it lives only while there is work)
        self._needs_flush = False
        self.sent = 0
        self.dropped_after_end = 0

    @property
    def ended(self) -> bool:
        """True once ``end`` was queued."""
        return self._ended

    def _put(self, turn: int, text: str) -> None:
        self._queue.append((turn, text))
        self._wake_writer()

    def _wake_writer(self) -> None:
        if not self._writer_busy and self._nursery is not None and not self._stopping:
            self._writer_busy = True
            self._nursery.start_soon(self._write_all)

    async def _pace(self) -> None:
        if len(self._queue) >= self._high:
            while len(self._queue) >= self._low and not self._stopping:
                if self._space_lot is None:
                    self._space_lot = trio.lowlevel.ParkingLot()
                await self._space_lot.park()
        elif self._queue and len(self._queue) % YIELD_EVERY:
            # a cancellation point without a trip through the scheduler: tokens pile up
            # for the writer to send in one batch; every YIELD_EVERY-th token yields, so a
            # producer that never awaits still lets the other tasks run
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            await trio.lowlevel.checkpoint()

    async def deliver(self, turn: int, token: str, *, last: bool) -> None:
        if self._ended:
            self.dropped_after_end += 1
            await trio.lowlevel.checkpoint()
            return
        self._conn.count_sent()
        text = text_frame(token, last)
        if self._nowait is not None and not self._queue and not self._writer_busy:
            self._write_now(text)
            await trio.lowlevel.checkpoint_if_cancelled()
            return
        self._put(turn, text)
        await self._pace()

    def deliver_nowait(self, turn: int, token: str, *, last: bool) -> None:
        """:meth:`deliver` without waiting (for a barge-in acknowledgement sent from the
        socket reader): straight to the socket when possible, else queued."""
        if self._ended:
            self.dropped_after_end += 1
            return
        self._conn.count_sent()
        text = text_frame(token, last)
        if self._nowait is not None and not self._queue and not self._writer_busy:
            self._write_now(text)
        else:
            self._put(turn, text)

    def _write_now(self, text: str) -> None:
        assert self._nowait is not None
        try:
            complete = self._nowait(text)
        except TransportClosed:
            self._stopping = True
            return
        self.sent += 1
        if not complete:  # the rest waits for the socket: the writer finishes it
            self._needs_flush = True
            self._wake_writer()

    async def send_frame(self, turn: int | None, frame: OutboundFrame) -> None:
        if self._ended:
            raise LocalProtocolError(f"call {self._call_sid} has ended: cannot send {frame!r}")
        self._put(turn or 0, self._conn.send(frame))
        if isinstance(frame, End):
            self._ended = True
        await self._pace()

    def retract(self, turn: int) -> int:
        if not self._queue or not turn:
            return 0
        before = len(self._queue)
        self._queue = [item for item in self._queue if item[0] != turn]
        removed = before - len(self._queue)
        self._note_if_drained()
        if removed:
            self._unpark_space()
        return removed

    async def hand_off(self, handoff_data: str) -> None:
        await self._end(End(handoff_data=handoff_data))

    async def finish(self, *, goodbye: str | None = None) -> None:
        if goodbye and not self._ended:
            await self.send_frame(0, Text(token=goodbye, last=True))
        await self._end(End())

    async def _end(self, frame: End) -> None:
        if self._ended:
            await trio.lowlevel.checkpoint()
            return
        await self.send_frame(0, frame)

    # -- the writer side -------------------------------------------------------------

    def start(self, nursery: trio.Nursery, transport: Transport) -> None:
        """Write to ``transport`` from now on. A writer task runs in ``nursery`` only
        while frames wait (an idle call costs no task); when the transport can write
        without waiting, frames skip even that. Cancelling the nursery drops what is
        still queued."""
        self._nursery = nursery
        self._transport = transport
        self._nowait = getattr(transport, "send_nowait", None)
        if self._queue or self._needs_flush:
            self._wake_writer()

    async def _write_all(self) -> None:
        transport = self._transport
        assert transport is not None
        send_many = getattr(transport, "send_many", None)
        flush = getattr(transport, "flush", None)
        try:
            while self._queue or self._needs_flush:
                if not self._queue:
                    self._needs_flush = False
                    if flush is not None:
                        await flush()
                elif send_many is not None and len(self._queue) > 1:
                    batch = [text for _, text in self._queue]
                    self._queue.clear()
                    self._needs_flush = False
                    await send_many(batch)
                    self.sent += len(batch)
                else:
                    _, text = self._queue.pop(0)
                    self._needs_flush = False
                    await transport.send(text)
                    self.sent += 1
                if len(self._queue) < self._low:
                    self._unpark_space()
        except TransportClosed:
            self._stopping = True
            self._nowait = None
            self._queue.clear()
        finally:
            self._writer_busy = False
            self._note_if_drained()
            self._unpark_space()

    def stop(self) -> None:
        """Accept no more writes once the queue is empty (the call is ending)."""
        self._stopping = True
        self._unpark_space()
        self._note_if_drained()

    def _unpark_space(self) -> None:
        if self._space_lot:
            self._space_lot.unpark_all()

    def _drained_now(self) -> bool:
        return not self._queue and not self._needs_flush and not self._writer_busy

    def _note_if_drained(self) -> None:
        if self._drained is not None and self._drained_now():
            self._drained.set()
            self._drained = None

    async def wait_empty(self) -> None:
        """Wait until nothing is queued or being written."""
        if self._drained_now():
            await trio.lowlevel.checkpoint()
            return
        if self._drained is None:
            self._drained = trio.Event()
        await self._drained.wait()

    def queued(self) -> int:
        return len(self._queue)
