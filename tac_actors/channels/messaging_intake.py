"""Between the webhook and a conversation's mailbox: accept now, deliver in order.

A webhook's answer must not wait for anything (Twilio gives up after 15 s and by default
retries only on connection failures), and a text must not be bounced because one
conversation is busy. So :meth:`Intake.offer` never waits:

* the fast path: no text of this conversation is waiting here, its actor is live and its
  mailbox has room: the text goes straight into the mailbox (or a new actor is spawned);
* otherwise the text joins the conversation's **backlog** (at most ``backlog`` texts), and
  one feeder task per conversation moves the backlog into the mailbox in order, waiting
  for room, for a stopping actor to end (then spawning its successor) and, with
  ``debounce``, for the burst to end (the backlog is then coalesced into one utterance,
  joined by newlines: the turn's deadline starts after that, not during the wait);
* a full backlog does not refuse the text either: it is left in the Orchestrator's log,
  and once the backlog drains the channel reconciles the conversation (its owed texts
  are found and queued, in order);
* only a whole node in trouble answers 503: more than ``node_backlog`` texts waiting here
  across conversations, or the supervisor no longer accepting (shutdown).

What a backlog holds is lost with the process, like a mailbox; every text in it is in
the Orchestrator's log, so the next reconcile (at start-up on the next process) answers
it. Cancellation: :meth:`Intake.run` cancelled stops every feeder; texts they held are
released (owed again).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import attrs
import trio

from tac_actors.actors import NotAccepting, Utterance

if TYPE_CHECKING:
    from tac_actors.actors import ActorCell, Supervisor

__all__ = ["Intake", "Offer", "coalesce"]

log = logging.getLogger("tac_actors.messaging")

Offer = Literal["accepted", "queued", "left_for_reconcile", "overloaded", "shutdown"]

#: how long a feeder waits for a stopping actor before it tries again
RESPAWN_WAIT = 10.0


@attrs.define(eq=False)
class _Backlog:
    items: deque[Utterance] = attrs.field(factory=deque)
    last_arrival: float = 0.0
    feeding: bool = False
    overflowed: bool = False


def coalesce(batch: list[Utterance]) -> Utterance:
    """One utterance answering every text of ``batch`` (oldest first)."""
    if len(batch) == 1:
        return batch[0]
    first = batch[0]
    ids = [i for m in batch for i in (m.meta.get("ids") or [m.message_id]) if i]
    return Utterance("\n".join(m.text for m in batch), first.lang, first.message_id,
                     {**first.meta, "texts": len(batch), "ids": ids})


class Intake:
    """Per-conversation backlogs feeding the actors' mailboxes (see the module docstring).

    ``cell_for(message)`` returns the live actor of the message's conversation or spawns
    one (raising :class:`~tac_actors.actors.NotAccepting` during shutdown);
    ``on_drained(conversation_id)`` is called when a backlog that overflowed is empty;
    ``on_dropped(conversation_id, message)`` when a text could not be delivered (shutdown).

    Order: until ``primed(conversation_id)``, no text of the conversation takes the fast
    path and, before the first one reaches a mailbox, ``prime(conversation_id)`` reads the
    conversation's log once (reconcile, which queues the texts owed from before, e.g. those
    a crashed node had acknowledged). A backlog is fed in log order
    (``position(conversation_id, id)``; texts the log did not show yet go last).
    """

    def __init__(self, supervisor: Supervisor, *, cell_for: Callable[[Utterance], ActorCell],
                 backlog: int, node_backlog: int, debounce: float | None,
                 on_drained: Callable[[str], None],
                 on_dropped: Callable[[str, Utterance], None],
                 primed: Callable[[str], bool] = lambda _: True,
                 prime: Callable[[str], Awaitable[object]] | None = None,
                 position: Callable[[str, str | None], int | None] = lambda _c, _i: None
                 ) -> None:
        self.supervisor = supervisor
        self.backlog = backlog
        self.node_backlog = node_backlog
        self.debounce = debounce
        self._cell_for = cell_for
        self._on_drained = on_drained
        self._on_dropped = on_dropped
        self._primed = primed
        self._prime = prime
        self._position = position
        self._backlogs: dict[str, _Backlog] = {}
        self._queued = 0
        self._nursery: trio.Nursery | None = None
        self.overflows = 0

    @property
    def queued(self) -> int:
        """Texts waiting in backlogs across the node."""
        return self._queued

    def waiting(self, conversation_id: str) -> int:
        found = self._backlogs.get(conversation_id)
        return len(found.items) if found else 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Run the feeders until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def offer(self, conversation_id: str, message: Utterance) -> Offer:
        """Take ``message`` for its conversation now (see the module docstring)."""
        if not self.supervisor.statistics().accepting or self._nursery is None:
            return "shutdown"
        backlog = self._backlogs.get(conversation_id)
        if backlog is None and self.debounce is None and self._primed(conversation_id):
            cell = self.supervisor.get(conversation_id)
            try:
                if cell is None:
                    cell = self._cell_for(message)
                if not _stopping(cell):
                    cell.send_nowait(message)
                    return "accepted"
            except NotAccepting:
                return "shutdown"
            except (trio.WouldBlock, trio.ClosedResourceError):
                pass
        if self._queued >= self.node_backlog:
            return "overloaded"
        if backlog is None:
            backlog = self._backlogs[conversation_id] = _Backlog()
        if len(backlog.items) >= self.backlog:
            if not backlog.overflowed:
                log.warning("conversation %s: backlog full (%d texts); later texts are "
                            "left to reconcile", conversation_id, self.backlog)
            backlog.overflowed = True
            self.overflows += 1
            return "left_for_reconcile"
        backlog.items.append(message)
        backlog.last_arrival = trio.current_time()
        self._queued += 1
        if not backlog.feeding:
            backlog.feeding = True
            self._nursery.start_soon(self._feed, conversation_id, backlog,
                                     name=f"intake:{conversation_id}")
        return "queued"

    async def _feed(self, conversation_id: str, backlog: _Backlog) -> None:
        try:
            while backlog.items:
                if self._prime is not None and not self._primed(conversation_id):
                    await self._prime(conversation_id)
                self._order(conversation_id, backlog)
                if self.debounce is not None:
                    await self._quiet(backlog, self.debounce)
                    batch = list(backlog.items)
                else:
                    batch = [backlog.items[0]]
                message = coalesce(batch)
                if not await self._deliver(conversation_id, message):
                    for _ in batch:
                        self._on_dropped(conversation_id, backlog.items.popleft())
                        self._queued -= 1
                    continue
                for _ in batch:
                    backlog.items.popleft()
                    self._queued -= 1
        finally:
            backlog.feeding = False
            if backlog.items:  # cancelled: nothing will deliver these
                for message in backlog.items:
                    self._on_dropped(conversation_id, message)
                self._queued -= len(backlog.items)
                backlog.items.clear()
            if self._backlogs.get(conversation_id) is backlog:
                del self._backlogs[conversation_id]
            if backlog.overflowed:
                self._on_drained(conversation_id)

    def _order(self, conversation_id: str, backlog: _Backlog) -> None:
        """Sort the backlog by log position (stable: unknown positions keep arrival
        order, after the known ones)."""
        if len(backlog.items) < 2:
            return
        last = 1 << 62

        def key(message: Utterance) -> int:
            found = self._position(conversation_id, message.message_id)
            return last if found is None else found

        backlog.items = deque(sorted(backlog.items, key=key))

    @staticmethod
    async def _quiet(backlog: _Backlog, window: float) -> None:
        """Wait until no text has arrived for ``window`` seconds (each arrival moves
        the end of the wait)."""
        quiet_at = backlog.last_arrival + window
        while True:
            await trio.sleep_until(quiet_at)
            if backlog.last_arrival + window <= quiet_at:
                return
            quiet_at = backlog.last_arrival + window

    async def _deliver(self, conversation_id: str, message: Utterance) -> bool:
        """Put ``message`` into the conversation's mailbox, waiting for room and for a
        stopping actor's successor. False when the node no longer accepts."""
        while True:
            cell = self.supervisor.get(conversation_id)
            if cell is not None and _stopping(cell):
                with trio.move_on_after(RESPAWN_WAIT):
                    await cell.wait_stopped()
                continue
            try:
                if cell is None:
                    cell = self._cell_for(message)
                await cell.send(message)
            except NotAccepting:
                return False
            except trio.ClosedResourceError:
                await trio.lowlevel.checkpoint()
                continue  # it ended meanwhile: its successor gets the text
            except Exception:
                # a bug in spawning: contained here (the text stays in the log for
                # reconcile), never the feeders' nursery
                log.exception("conversation %s: could not start its actor; the text is "
                              "left to reconcile", conversation_id)
                return False
            return True


def _stopping(cell: ActorCell) -> bool:
    return (cell.stopped.is_set() or cell.stop_requested or cell.stop_reason is not None
            or cell.mailbox.closed)
