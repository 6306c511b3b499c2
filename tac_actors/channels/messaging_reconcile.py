"""Reconcile: answer every text the Orchestrator holds that we owe a reply.

The Orchestrator's communications are the durable log; a webhook is only a hint that
something was added. :class:`Reconciler` reads the log and queues, in log order, every
customer text that the ledger (:mod:`~tac_actors.channels.messaging_ledger`) shows as
neither answered nor being answered. It runs:

* **at start-up**: one pass over every ACTIVE conversation of our configuration (this is
  what answers the texts a crash or a shutdown left behind);
* **after an overflow**: a conversation whose backlog was full is reconciled when its
  backlog drains; one with replies kept undelivered gets them sent again;
* **periodically**: every ``interval`` seconds, the next ``batch`` ACTIVE conversations
  (a cursor walks the list across sweeps, so the work per sweep is bounded: one list
  page, then per conversation a status look-up and at most ``pages`` pages of
  communications). This is what finds texts whose webhook never came.

Conversations whose door is closed (CLOSED, or handed off) are skipped. INACTIVE ones
are not swept (only their webhooks wake them). A failed look-up skips that conversation
until the next sweep, logged once per sweep.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio

from tac_actors.channels.messaging_outbox import MessagingOutbox
from tac_actors.services import ServiceError

if TYPE_CHECKING:
    from tac_actors.channels.messaging import MessagingChannel

__all__ = ["Reconciler", "SweepStatistics"]

log = logging.getLogger("tac_actors.messaging")


@attrs.define
class SweepStatistics:
    """Counters of the reconciler (``statistics()`` returns a copy)."""

    sweeps: int = 0
    conversations: int = 0
    requests: int = 0
    queued: int = 0
    failures: int = 0


class Reconciler:
    """Finds and queues owed texts (see the module docstring)."""

    def __init__(self, channel: MessagingChannel, *, interval: float | None, batch: int,
                 pages: int, limit: trio.Semaphore | None = None) -> None:
        self.channel = channel
        #: conversations read at once (shared with the actors' first-turn reads: a herd
        #: of new conversations must not starve the connection pool replies need too)
        self._limit = limit or trio.Semaphore(8)
        self.interval = interval
        self.batch = batch
        self.pages = pages
        self.stats = SweepStatistics()
        self._flagged: dict[str, None] = {}
        self._wake = trio.Event()
        self._cursor: str | None = None
        self._starting = False
        self._queued = 0
        self.started_up = trio.Event()
        #: the start-up pass listed every ACTIVE conversation (set before started_up)
        self.listed_at_start_up = False
        #: conversations the start-up pass could not read: not primed by it
        self.unread_at_start_up: set[str] = set()

    def statistics(self) -> SweepStatistics:
        return attrs.evolve(self.stats)

    def flag(self, conversation_id: str) -> None:
        """Reconcile this conversation soon (its backlog overflowed, a send failed)."""
        self._flagged[conversation_id] = None
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Start-up pass, then flagged conversations and periodic sweeps, until
        cancelled."""
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve_flags)
            self.listed_at_start_up = await self._start_up()
            self.started_up.set()
            if self.interval is None:
                return
            while True:
                await trio.sleep(self.interval)
                await self.sweep()

    async def _serve_flags(self) -> None:
        """Reconcile flagged conversations as they come, each in its own task (a flush of
        kept replies may take a send budget), one task per conversation at a time."""
        running: set[str] = set()

        async def one(conversation_id: str) -> None:
            try:
                await self.reconcile(conversation_id)
            finally:
                running.discard(conversation_id)
                if conversation_id in self._flagged:
                    self._wake.set()

        async with trio.open_nursery() as nursery:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                for conversation_id in list(self._flagged):
                    if conversation_id not in running:
                        del self._flagged[conversation_id]
                        running.add(conversation_id)
                        nursery.start_soon(one, conversation_id)

    async def _start_up(self) -> bool:
        """The start-up pass: every ACTIVE conversation. True when all were listed (the
        ones whose log could not be read are in ``unread_at_start_up``)."""
        self._starting = True
        try:
            listed = await self._sweep(everything=True)
        finally:
            self._starting = False
        return listed

    async def sweep(self, *, everything: bool = False) -> int:
        """Reconcile the next ``batch`` ACTIVE conversations (all of them with
        ``everything``). Returns how many texts were queued."""
        queued = self._queued = 0
        await self._sweep(everything=everything)
        queued, self._queued = self._queued, 0
        return queued

    async def _sweep(self, *, everything: bool) -> bool:
        channel = self.channel
        ours = channel.config.conversation_configuration_id
        self.stats.sweeps += 1
        while True:
            try:
                self.stats.requests += 1
                page = await channel.services.orchestrator.list_conversations(
                    status=["ACTIVE"], page_size=self.batch, page_token=self._cursor)
            except ServiceError as exc:
                self.stats.failures += 1
                log.warning("reconcile: conversations not listed (%s); next sweep tries "
                            "again", exc)
                return False
            self._cursor = page.next_token
            for conversation in page.items:
                if ours and conversation.configuration_id not in (None, ours):
                    continue
                self._queued += await self.reconcile(conversation.id)
            if not everything or self._cursor is None:
                return True

    def _unread(self, conversation_id: str) -> None:
        if self._starting:
            self.unread_at_start_up.add(conversation_id)

    def primes(self, conversation_id: str) -> bool:
        """Whether the start-up pass read this conversation's log (or it began after
        that pass, which listed every conversation): its texts may then reach an actor
        without a read of their own. A conversation the pass could not read (or every
        one, if it could not list them) is read before its first text here, so what it
        owes from before is answered first."""
        return (self.started_up.is_set() and self.listed_at_start_up
                and conversation_id not in self.unread_at_start_up)

    async def reconcile(self, conversation_id: str, *, keep_log: bool = False) -> int:
        """Queue the owed texts of one conversation; returns how many. Never raises a
        service error (counted, logged once per conversation, and the conversation is
        left for the next sweep). ``keep_log``: keep what was read for the actor about
        to start (its history). At most ``limit`` run at once."""
        channel = self.channel
        cell = channel.supervisor.get(conversation_id)
        outbox = cell.outbox if cell is not None else None
        if isinstance(outbox, MessagingOutbox) and outbox.undelivered:
            with trio.move_on_after(channel.options.send_budget):
                await outbox.flush()
        async with self._limit:
            return await self._reconcile(conversation_id, keep_log)

    async def _reconcile(self, conversation_id: str, keep_log: bool) -> int:
        channel = self.channel
        self.stats.conversations += 1
        ledger = channel.ledger.of(conversation_id)
        if ledger.handed_off:
            await trio.lowlevel.checkpoint()
            return 0
        self.stats.requests += 1
        door = await channel.door_open(conversation_id)
        if door is None:
            self.stats.failures += 1
            self._unread(conversation_id)
            return 0
        if not door or ledger.handed_off:
            return 0
        try:
            self.stats.requests += 1
            communications = await channel.services.orchestrator.list_all_communications(
                conversation_id, max_pages=self.pages)
            participants = await channel.participants(conversation_id)
        except ServiceError as exc:
            self.stats.failures += 1
            channel.count("reconcile_failed", conversation_id)
            log.debug("reconcile: conversation %s skipped (%s)", conversation_id, exc)
            self._unread(conversation_id)
            return 0
        del participants  # fetched so that echoes of our agent are recognised
        ledger.primed = True
        self.unread_at_start_up.discard(conversation_id)
        channel.classify(conversation_id, communications)
        queued = 0
        if channel.router is None:
            # in this process alone: what is owed is queued in one synchronous step after
            # the read, so no webhook can slip a later text of the conversation in
            # between (the replies keep the log's order)
            for communication in channel.owed_here(conversation_id, communications):
                outcome = channel.accept_communication(communication, source="reconcile")
                if outcome in ("accepted", "queued"):
                    queued += 1
                elif outcome in ("shutdown", "overloaded", "left_for_reconcile"):
                    break
        else:
            for communication in await channel.owed_texts(conversation_id, communications):
                outcome = await channel.take_found(communication)
                if outcome in ("accepted", "queued"):
                    queued += 1
                elif outcome in ("shutdown", "overloaded", "left_for_reconcile",
                                 "unavailable"):
                    break
        if queued or keep_log:  # an actor is about to start: its history needs the log
            ledger.fresh_log = communications
        if queued:
            channel.count("reconciled", conversation_id, queued)
        self.stats.queued += queued
        return queued
