"""The voice outbox: one writer per socket, frames tagged by turn, retractable.

Actors hand frames over without waiting for the socket (a cheap append); one writer task
per call moves them to the transport in order. Frames still queued when their turn is
barged in are retracted (:meth:`VoiceOutbox.retract_through`), so after the
acknowledgement nothing of that turn goes out; the writer hands the transport at most
``BATCH_FRAMES`` frames / ``BATCH_BYTES`` bytes at a time, which bounds what a barge-in
can no longer reach behind a slow socket.

Bounds: producers wait while more than ``high_water`` frames or ``high_water_bytes``
bytes are queued (a slow socket); an acknowledgement (sent from the socket reader, which
never waits) is not queued twice in a row, so a peer that interrupts without reading
cannot grow the queue. After ``end`` is queued, or once the socket is gone, the outbox
drops what it is given and counts it (``dropped_after_end``).

Fairness: a frame written straight to the socket does not go through the scheduler, so
every ``YIELD_EVERY``-th such frame yields: a reply whose iterator never awaits cannot
hold the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from tac_actors.actors.gate import NO_TURN
from tac_actors.channels.transport import Transport, TransportClosed
from tac_actors.protocol.connection import RelayConnection
from tac_actors.protocol.errors import LocalProtocolError
from tac_actors.protocol.relay import End, OutboundFrame, Text, text_frame

__all__ = ["VoiceOutbox"]

log = logging.getLogger("tac_actors.voice")

#: a producer queueing or writing tokens without waiting yields every this many
YIELD_EVERY = 16
#: what the writer hands the transport at once, at most (frames, bytes)
BATCH_FRAMES = 16
BATCH_BYTES = 16 * 1024
_ACK = text_frame("", True)


class VoiceOutbox:
    """Outbox of one ConversationRelay socket (see :class:`~tac_actors.actors.Outbox`)."""

    streaming = True

    def __init__(self, connection: RelayConnection, *, call_sid: str = "",
                 high_water: int = 256, high_water_bytes: int = 256 * 1024) -> None:
        self._conn = connection
        self._call_sid = call_sid
        self._queue: list[tuple[int, str]] = []  # lighter than a deque; drained in batches
        self._bytes = 0  # characters queued, a close bound of the bytes
        self._high = high_water
        self._low = high_water // 2
        self._high_bytes = high_water_bytes
        self._low_bytes = high_water_bytes // 2
        self._unyielded = 0
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
        #: frames of stopped replies dropped before they were sent
        self.retracted = 0

    @property
    def ended(self) -> bool:
        """True once ``end`` was queued."""
        return self._ended

    def _put(self, turn: int, text: str) -> None:
        self._queue.append((turn, text))
        self._bytes += len(text)
        self._wake_writer()

    def _full(self) -> bool:
        return len(self._queue) >= self._high or self._bytes >= self._high_bytes

    def _has_room(self) -> bool:
        return len(self._queue) < self._low and self._bytes < self._low_bytes

    def _wake_writer(self) -> None:
        if not self._writer_busy and self._nursery is not None and not self._stopping:
            self._writer_busy = True
            self._nursery.start_soon(self._write_all)

    async def _pace(self) -> None:
        if self._full():
            self._unyielded = 0
            while not self._has_room() and not self._stopping:
                if self._space_lot is None:
                    self._space_lot = trio.lowlevel.ParkingLot()
                await self._space_lot.park()
        else:
            await self._yield_now_and_then()

    async def _yield_now_and_then(self) -> None:
        # a cancellation point without a trip through the scheduler: tokens pile up for
        # the writer to send in one batch (or go straight out); every YIELD_EVERY-th one
        # yields, so a producer that never awaits still lets the other tasks run
        self._unyielded += 1
        if self._unyielded < YIELD_EVERY:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()

    def _closed_for(self) -> bool:
        if self._ended or self._stopping:
            self.dropped_after_end += 1
            return True
        return False

    async def deliver(self, turn: int, token: str, *, last: bool) -> None:
        if self._closed_for():
            await trio.lowlevel.checkpoint()
            return
        self._conn.count_sent()
        text = text_frame(token, last)
        if self._nowait is not None and not self._queue and not self._writer_busy:
            self._write_now(text)
            await self._yield_now_and_then()
            return
        self._put(turn, text)
        await self._pace()

    def deliver_nowait(self, turn: int, token: str, *, last: bool) -> None:
        """:meth:`deliver` without waiting (for a barge-in acknowledgement sent from the
        socket reader): straight to the socket when possible, else queued. An
        acknowledgement right behind another queued one is not queued again."""
        if self._closed_for():
            return
        text = text_frame(token, last)
        if self._queue and self._queue[-1][1] == text == _ACK:
            return
        self._conn.count_sent()
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
            self._nowait = None
            return
        self.sent += 1
        if not complete:  # the rest waits for the socket: the writer finishes it
            self._needs_flush = True
            self._wake_writer()

    async def send_frame(self, turn: int | None, frame: OutboundFrame) -> None:
        if self._ended:
            raise LocalProtocolError(f"call {self._call_sid} has ended: cannot send {frame!r}")
        text = self._conn.send(frame)
        if self._stopping:
            self.dropped_after_end += 1
            await trio.lowlevel.checkpoint()
            return
        self._put(turn or NO_TURN, text)
        if isinstance(frame, End):
            self._ended = True
        await self._pace()

    def retract_through(self, barrier: int) -> int:
        """Drop every queued frame of a turn with an id in ``1..barrier`` (frames of no
        turn stay); return how many."""
        if not self._queue or barrier <= NO_TURN:
            return 0
        kept = [item for item in self._queue if not NO_TURN < item[0] <= barrier]
        removed = len(self._queue) - len(kept)
        if removed:
            if not self.retracted:  # once per call; the count is in ``retracted``
                log.info("call %s: %d unsent frame(s) of stopped replies dropped (the "
                         "caller barged in or spoke again before they were sent)",
                         self._call_sid, removed)
            self.retracted += removed
            self._queue = kept
            self._bytes = sum(len(text) for _, text in kept)
            self._note_if_drained()
            self._unpark_space()
        return removed

    async def hand_off(self, handoff_data: str) -> None:
        await self._end(End(handoff_data=handoff_data))

    async def finish(self, *, goodbye: str | None = None) -> None:
        if goodbye and not self._ended:
            await self.send_frame(NO_TURN, Text(token=goodbye, last=True))
        await self._end(End())

    async def _end(self, frame: End) -> None:
        if self._ended:
            await trio.lowlevel.checkpoint()
            return
        await self.send_frame(NO_TURN, frame)

    # -- the writer side -------------------------------------------------------------

    def start(self, nursery: trio.Nursery, transport: Transport) -> None:
        """Write to ``transport`` from now on. A writer task runs in ``nursery`` only
        while frames wait (an idle call costs no task); when the transport can write
        without waiting, frames skip even that. Cancelling the nursery drops what is
        still queued."""
        self._nursery = nursery
        self._transport = transport
        self._nowait = getattr(transport, "send_nowait", None)
        if hasattr(transport, "on_backlog"):
            # the socket reader never writes and waits: what it leaves, the writer sends
            transport.on_backlog = self._flush_requested
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
                    batch = self._take_batch()
                    self._needs_flush = False
                    await send_many(batch)
                    self.sent += len(batch)
                else:
                    _, text = self._queue.pop(0)
                    self._bytes -= len(text)
                    self._needs_flush = False
                    await transport.send(text)
                    self.sent += 1
                if self._has_room():
                    self._unpark_space()
        except TransportClosed:
            self._stopping = True
            self._nowait = None
            self._queue.clear()
            self._bytes = 0
        finally:
            self._writer_busy = False
            self._note_if_drained()
            self._unpark_space()

    def _take_batch(self) -> list[str]:
        """Up to BATCH_FRAMES frames / BATCH_BYTES bytes off the front of the queue
        (at least one): what the transport gets is out of a barge-in's reach."""
        size = 0
        count = 0
        for _, text in self._queue:
            if count == BATCH_FRAMES or (count and size + len(text) > BATCH_BYTES):
                break
            size += len(text)
            count += 1
        batch = [text for _, text in self._queue[:count]]
        del self._queue[:count]
        self._bytes -= size
        return batch

    def _flush_requested(self) -> None:
        self._needs_flush = True
        self._wake_writer()

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
