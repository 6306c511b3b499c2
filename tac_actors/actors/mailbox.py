"""A bounded mailbox with selective receive.

The supervisor owns each conversation's mailbox, so it outlives a crashed actor
incarnation with its queued messages intact. Senders get back-pressure: :meth:`send`
waits while the mailbox is full, :meth:`send_nowait` raises :class:`trio.WouldBlock`.

Urgent messages (barge-in, hang-up, shutdown) have a small capacity of their own, so a
mailbox full of prompts never delays an interrupt.

The single receiver may take the first message matching a predicate
(:meth:`receive_nowait` with ``select``), leaving the others in order: that is how a busy
actor keeps reading interrupts while queued prompts wait their turn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import attrs
import trio

__all__ = ["Mailbox", "MailboxStatistics"]

T = TypeVar("T")

#: a sender that never has to wait passes through the scheduler every this many sends
YIELD_EVERY = 16


@attrs.frozen
class MailboxStatistics:
    queued: int
    urgent_queued: int
    capacity: int
    urgent_capacity: int
    received: int
    rejected: int
    waiting_senders: int


class Mailbox(Generic[T]):
    """Bounded FIFO with an urgent lane and selective receive. One receiver, many senders."""

    def __init__(self, capacity: int, *, urgent_capacity: int = 8) -> None:
        if capacity < 1 or urgent_capacity < 1:
            raise ValueError("mailbox capacities must be at least 1")
        self.capacity = capacity
        self.urgent_capacity = urgent_capacity
        # a list, not a deque: mailboxes are short, and an idle one costs ~500 B less
        self._items: list[tuple[bool, T]] = []
        self._normal = 0
        self._urgent = 0
        self._received = 0
        self._rejected = 0
        # the one receiver, while it waits (a parking lot costs a closure, its cells and
        # an ordered dict entry per wait; the receiver waits once per message)
        self._reader: trio.lowlevel.Task | None = None
        # senders wait only on a full mailbox: their parking lot is made when first needed
        # (thousands of idle conversations each save its few hundred bytes)
        self._writers: trio.lowlevel.ParkingLot | None = None
        self._closed = False
        self._unyielded = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def urgent_queued(self) -> int:
        """How many urgent messages are queued."""
        return self._urgent

    def _has_room(self, urgent: bool) -> bool:
        return self._urgent < self.urgent_capacity if urgent else self._normal < self.capacity

    def send_nowait(self, item: T, *, urgent: bool = False) -> None:
        """Enqueue ``item`` now, or raise :class:`trio.WouldBlock` when its lane is full
        (and :class:`trio.ClosedResourceError` after :meth:`close`)."""
        if self._closed:
            raise trio.ClosedResourceError("mailbox is closed")
        if not self._has_room(urgent):
            self._rejected += 1
            raise trio.WouldBlock
        self._items.append((urgent, item))
        if urgent:
            self._urgent += 1
        else:
            self._normal += 1
        self._wake_reader()

    def replace_last(self, item: T, match: Callable[[T], bool]) -> bool:
        """Put ``item`` in place of the newest queued message when it is a normal one
        and ``match`` accepts it (a newer version of the same advisory message).
        Returns whether it did; nothing is queued otherwise."""
        if self._items and not self._closed:
            urgent, last = self._items[-1]
            if not urgent and match(last):
                self._items[-1] = (False, item)
                return True
        return False

    async def send(self, item: T, *, urgent: bool = False) -> None:
        """Enqueue ``item``, waiting while its lane is full.

        A cancellation point. A sender with room enqueues at once; it passes through the
        scheduler at least every ``YIELD_EVERY`` sends (trio's ``send`` does on every
        one; a socket reader then pays a scheduler pass per frame on top of its wait for
        the socket), so a sender fed by a flooding peer still lets the other tasks run.
        If cancelled, the item was not enqueued.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._closed and self._has_room(urgent):
            self.send_nowait(item, urgent=urgent)
            self._unyielded += 1
            if self._unyielded >= YIELD_EVERY:
                self._unyielded = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            return
        while True:
            try:
                self.send_nowait(item, urgent=urgent)
            except trio.WouldBlock:
                self._rejected -= 1  # a wait, not a rejection
                if self._writers is None:
                    self._writers = trio.lowlevel.ParkingLot()
                await self._writers.park()
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return

    def receive_nowait(self, select: Callable[[T], bool] | None = None) -> T:
        """Remove and return the first message (matching ``select`` when given).

        Raises :class:`trio.WouldBlock` when there is none.
        """
        item = self.take(select)
        if item is None:
            raise trio.WouldBlock
        return item

    def take(self, select: Callable[[T], bool] | None = None) -> T | None:
        """Like :meth:`receive_nowait`, but ``None`` when there is no such message (an
        actor parks right after: a caught exception would stay alive with its traceback
        for as long as it waits)."""
        for index, (urgent, item) in enumerate(self._items):
            if select is None or select(item):
                del self._items[index]
                if urgent:
                    self._urgent -= 1
                else:
                    self._normal -= 1
                self._received += 1
                if self._writers:
                    self._writers.unpark_all()
                return item
        return None

    async def wait_readable(self) -> None:
        """Wait until a message is sent or :meth:`nudge` is called. Returns at once if
        the mailbox is closed."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        if self._reader is not None:
            raise RuntimeError("a mailbox has one receiver: another task is waiting on it")
        self._reader = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort_wait)

    def _abort_wait(self, _: object) -> trio.lowlevel.Abort:
        self._reader = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            trio.lowlevel.reschedule(reader)

    def nudge(self) -> None:
        """Wake the receiver so it re-evaluates what it is waiting for."""
        self._wake_reader()

    def close(self) -> None:
        """Refuse further messages; queued ones stay readable. Wakes every waiter."""
        self._closed = True
        self._wake_reader()
        if self._writers:
            self._writers.unpark_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self) -> list[T]:
        """Remove and return every queued message (used when a conversation ends)."""
        items = [item for _, item in self._items]
        self._items.clear()
        self._normal = self._urgent = 0
        if self._writers:
            self._writers.unpark_all()
        return items

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            queued=self._normal,
            urgent_queued=self._urgent,
            capacity=self.capacity,
            urgent_capacity=self.urgent_capacity,
            received=self._received,
            rejected=self._rejected,
            waiting_senders=len(self._writers) if self._writers else 0,
        )
