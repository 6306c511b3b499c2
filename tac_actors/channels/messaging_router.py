"""Routing text conversations across processes through a shared
:class:`~tac_actors.store.ConversationStore`: one live owner per conversation, in order,
taken over when its owner dies.

Used by the messaging channel when a store is configured (``TAC_REDIS_URL``); without
one the channel keeps everything in its process, as before.

The path of a text:

1. **accept** (any process, the webhook's or a reconcile's): the store queues the text
   unless its communication id is known or the conversation was handed off, and tells
   who holds the conversation's lease (one atomic step);
2. **route**: nobody holds it: this process claims the lease (``SET NX PX`` with a new
   fencing number) and becomes the owner; another process holds it: its notice box gets
   the conversation id;
3. **pump** (the owner, one task per owned conversation, the queue's only reader): reads
   the queue in order and hands each text to the local intake (mailbox, backlog), which
   keeps today's promises (order, debounce, the door, the turn). A text answered here
   (its reply sent, or no reply needed) leaves the store's queue (**ack**, batched).

The owner renews its leases every ``ttl / 3`` seconds (compare-and-extend). A lease found
lost, or not renewed for ``ttl`` seconds because the store cannot be reached, ends the
local actor of that conversation (self-fencing: this process stops answering it before
another may start). A dead owner's leases expire after ``ttl``; every process sweeps the
conversations with queued texts every ``ttl / 2`` seconds and claims those nobody holds,
then replays their queues: what was accepted and not acknowledged as answered. A replayed
text whose reply did go out is not sent twice: every reply carries an idempotency key
derived from the text (see :mod:`~tac_actors.channels.messaging_outbox`), and the new
owner first classifies the conversation's log (:func:`pair_replies`).

What is not promised: the app callback may run a second time for a text whose reply was
sent by an owner that died before its ack (the send is deduplicated by key, the work is
not). A notice can be lost (the store down, a box capped): each owner re-reads its queues
every ``ttl / 2`` seconds.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import attrs
import trio

from tac_actors._logsafe import LogLimiter
from tac_actors.protocol.webhooks import CommunicationAuthor, CommunicationCreated
from tac_actors.store import ConversationStore, Lease, StoreError

if TYPE_CHECKING:
    from tac_actors.channels.messaging import MessagingChannel

__all__ = ["MessagingRouter", "RouterStatistics", "decode_event", "encode_event"]

log = logging.getLogger("tac_actors.messaging")

#: seconds before a pump tries again after the store failed or the node was full
RETRY = 0.5
#: seconds a shutting-down process spends giving its leases back
RELEASE_BUDGET = 1.0


def encode_event(event: CommunicationCreated) -> str:
    """A text's event as the store keeps it (JSON)."""
    author = event.author
    return json.dumps({
        "id": event.id, "c": event.conversation_id, "t": event.text,
        "a": [author.address, author.channel, author.participant_id],
        "ch": event.channel_id, "at": event.created_at}, separators=(",", ":"))


def decode_event(payload: str) -> CommunicationCreated:
    """The inverse of :func:`encode_event` (raises ``ValueError``/``KeyError`` on a
    payload it did not write)."""
    raw = json.loads(payload)
    address, channel, participant = raw["a"]
    return CommunicationCreated(
        id=raw["id"], conversation_id=raw["c"], text=raw["t"],
        author=CommunicationAuthor(address=address, channel=channel,
                                   participant_id=participant),
        channel_id=raw.get("ch"), created_at=raw.get("at"))


@attrs.define
class RouterStatistics:
    """Counters of one router (``statistics()`` returns a copy)."""

    claimed: int = 0
    taken_over: int = 0
    lost: int = 0
    released: int = 0
    notices_sent: int = 0
    store_errors: int = 0


@attrs.define(eq=False)
class _Owned:
    lease: Lease
    renewed_at: float
    wake: trio.Event = attrs.field(factory=trio.Event)
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    #: queued ids handed to the local intake (skipped on the next read)
    delivered: set[str] = attrs.field(factory=set)


class MessagingRouter:
    """One process's side of the routing (see the module docstring). :meth:`run` must
    run for pumps, renewals, notices, sweeps and acks to work."""

    def __init__(self, channel: MessagingChannel, store: ConversationStore, *,
                 lease_ttl: float = 10.0, dedupe_ttl: float = 24 * 3600.0) -> None:
        if not lease_ttl > 0:
            raise ValueError("lease_ttl must be a positive number of seconds")
        self.channel = channel
        self.store = store
        self.ttl = lease_ttl
        self.dedupe_ttl = dedupe_ttl
        self.stats = RouterStatistics()
        self._owned: dict[str, _Owned] = {}
        self._acks: dict[str, list[str]] = {}
        self._ack_wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._errors = LogLimiter(log, interval=30.0)

    @property
    def node(self) -> str:
        return self.store.node

    def owns(self, conversation_id: str) -> bool:
        return conversation_id in self._owned

    def statistics(self) -> RouterStatistics:
        return attrs.evolve(self.stats)

    def _store_failed(self, what: str, exc: StoreError) -> None:
        self.stats.store_errors += 1
        self._errors.warning(what, "conversation store: %s failed (%s)", what, exc)

    # -- running --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Run until cancelled; on the way out the leases are given back (within
        ``RELEASE_BUDGET`` seconds) so that other processes take over at once, and the
        acks not written yet are written."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._renew_loop)
                nursery.start_soon(self._notice_loop)
                nursery.start_soon(self._sweep_loop)
                nursery.start_soon(self._ack_loop)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            owned, self._owned = self._owned, {}
            with trio.CancelScope(shield=True), trio.move_on_after(RELEASE_BUDGET):
                await self._write_acks()
                for entry in owned.values():
                    try:
                        await self.store.release(entry.lease)
                        self.stats.released += 1
                    except StoreError:
                        break

    # -- accepting and routing ------------------------------------------------------------

    async def accept(self, event: CommunicationCreated) -> str:
        """Queue a text in the store and route it to its owner. Returns ``queued``,
        ``duplicate``, ``handed_off``, or ``unavailable`` (the store failed: nothing
        recorded, the caller answers 503 and the text stays in the Orchestrator's log).
        Cancellation: the text may have been queued; a retry is deduplicated."""
        conversation = event.conversation_id
        try:
            accepted = await self.store.accept(conversation, event.id, encode_event(event))
        except StoreError as exc:
            self._store_failed("accept", exc)
            return "unavailable"
        if accepted.outcome == "handed_off":
            self.channel.ledger.of(conversation).handed_off = True
        if accepted.outcome != "queued":
            return accepted.outcome
        await self._route(conversation, accepted.owner)
        return "queued"

    async def _route(self, conversation_id: str, owner: str | None) -> None:
        """Make the conversation's owner read its queue (claiming it when nobody holds
        it). A store failure is logged: the text is queued, and the sweeps route it."""
        owned = self._owned.get(conversation_id)
        if owned is not None:
            owned.wake.set()
            await trio.lowlevel.checkpoint()
            return
        try:
            if owner is None:
                lease = await self._claim(conversation_id)
                if lease is not None:
                    return
                owner = await self.store.owner(conversation_id)
            if owner is not None and owner != self.node:
                await self.store.notify(owner, conversation_id)
                self.stats.notices_sent += 1
            # owner None: it expired just now; owner == us without a pump: a lease this
            # process gave up on (self-fenced). Either way the next sweep claims it.
        except StoreError as exc:
            self._store_failed("route", exc)

    async def _claim(self, conversation_id: str) -> Lease | None:
        asked = trio.current_time()
        lease = await self.store.claim(conversation_id, self.ttl)
        if lease is not None:
            self._own(lease, asked)
        return lease

    def _own(self, lease: Lease, asked: float) -> None:
        conversation = lease.conversation_id
        if self._nursery is None or conversation in self._owned:
            return  # shutting down (the lease expires) or already ours
        owned = _Owned(lease, renewed_at=asked)
        self._owned[conversation] = owned
        self.stats.claimed += 1
        self._nursery.start_soon(self._pump, owned, name=f"pump:{conversation}")

    async def claim_for_outbound(self, conversation_id: str) -> bool:
        """Before an outbound conversation's actor starts here: True when this process
        owns (or now claimed) the conversation, False when another live process does
        (the caller then only sends the first message; that owner answers the replies)
        or the store failed (logged: the first message still goes out)."""
        if conversation_id in self._owned:
            await trio.lowlevel.checkpoint()
            return True
        try:
            return await self._claim(conversation_id) is not None
        except StoreError as exc:
            self._store_failed("claim", exc)
            return False

    async def closed(self, conversation_id: str) -> bool:
        """The conversation was CLOSED (a webhook here): mark it in the store and tell its
        owner, which ends its actor. Returns False when the store failed."""
        try:
            await self.store.set_handed_off(conversation_id, True)
            owner = await self.store.owner(conversation_id)
            if owner is not None and owner != self.node:
                await self.store.notify(owner, conversation_id)
        except StoreError as exc:
            self._store_failed("close", exc)
            return False
        return True

    async def set_handed_off(self, conversation_id: str, value: bool) -> None:
        """Share a handoff (or its undoing) with the other processes (best effort,
        logged: every process also reads the Orchestrator's state before a turn)."""
        try:
            await self.store.set_handed_off(conversation_id, value)
        except StoreError as exc:
            self._store_failed("handoff", exc)

    # -- the owner's side -------------------------------------------------------------------

    async def _pump(self, owned: _Owned) -> None:
        """Feed the conversation's queue to the local intake, in order, until the lease
        is lost or given up."""
        conversation = owned.lease.conversation_id
        channel = self.channel
        with owned.scope:
            while True:
                owned.wake = trio.Event()  # a notice during the read wakes the next one
                try:
                    pending = await self.store.pending(conversation)
                except StoreError as exc:
                    self._store_failed("read queue", exc)
                    await trio.sleep(RETRY)
                    continue
                if pending.handed_off:
                    self._handed_off(conversation)
                present = {item.communication_id for item in pending.items}
                owned.delivered &= present
                wait = self.ttl / 2
                for item in pending.items:
                    key = item.communication_id
                    if key in owned.delivered:
                        continue
                    try:
                        event = decode_event(item.payload)
                    except (ValueError, KeyError, TypeError):
                        log.error("conversation %s: a queued text is unreadable; dropped "
                                  "(reconcile answers it from the log)", conversation)
                        self.note_answered(conversation, [key])
                        continue
                    outcome = channel.accept(event, source="store")
                    if outcome in ("accepted", "queued"):
                        owned.delivered.add(key)
                    elif outcome in ("duplicate", "handed_off"):
                        owned.delivered.add(key)
                        ledger = channel.ledger.get(conversation)
                        if outcome == "handed_off" or (
                                ledger is not None and key in ledger.answered):
                            self.note_answered(conversation, [key])
                    elif outcome == "shutdown":
                        return
                    else:  # the backlog or the node is full: try again soon
                        wait = RETRY
                        break
                with trio.move_on_after(wait):
                    await owned.wake.wait()

    def _handed_off(self, conversation_id: str) -> None:
        ledger = self.channel.ledger.of(conversation_id)
        if ledger.handed_off:
            return
        ledger.handed_off = True
        cell = self.channel.supervisor.get(conversation_id)
        if cell is not None and not cell.session.channel.is_voice:
            log.info("conversation %s closed or handed off (seen by another process)",
                     conversation_id)
            cell.hang_up("closed")

    def note_answered(self, conversation_id: str, ids: list[str]) -> None:
        """Texts answered here (or needing no answer): acknowledged to the store soon.
        Synchronous (the ledger calls it)."""
        if not ids:
            return
        self._acks.setdefault(conversation_id, []).extend(ids)
        self._ack_wake.set()

    async def _ack_loop(self) -> None:
        while True:
            await self._ack_wake.wait()
            self._ack_wake = trio.Event()
            if not await self._write_acks():
                await trio.sleep(RETRY)
                self._ack_wake.set()

    async def _write_acks(self) -> bool:
        """Write the acks gathered so far; False when the store failed (they are kept,
        at most one ledger's worth per conversation)."""
        batch, self._acks = self._acks, {}
        for conversation, ids in batch.items():
            try:
                await self.store.answered(conversation, ids)
            except StoreError as exc:
                self._store_failed("ack", exc)
                for key, later in batch.items():
                    if key not in self._acks:  # keep the newest
                        self._acks[key] = later[-2_000:]
                return False
        return True

    def actor_ended(self, conversation_id: str) -> None:
        """The conversation's local actor ended: give the lease back once its queue is
        empty (a later text claims it anew, here or elsewhere)."""
        if conversation_id in self._owned and self._nursery is not None:
            self._nursery.start_soon(self._maybe_release, conversation_id)

    async def _maybe_release(self, conversation_id: str) -> None:
        owned = self._owned.get(conversation_id)
        if owned is None:
            return
        try:
            await self._write_acks()
            pending = await self.store.pending(conversation_id, limit=1)
            if pending.items or self.channel.supervisor.get(conversation_id) is not None:
                owned.wake.set()
                return
            if self._owned.get(conversation_id) is owned:
                del self._owned[conversation_id]
                owned.scope.cancel()
                await self.store.release(owned.lease)
                self.stats.released += 1
                # a text queued while the lease was being given back was routed to us
                if (await self.store.pending(conversation_id, limit=1)).items:
                    await self._route(conversation_id, None)
        except StoreError as exc:
            self._store_failed("release", exc)

    def _lose(self, conversation_id: str, why: str) -> None:
        """Stop answering a conversation whose lease is gone (self-fencing)."""
        owned = self._owned.pop(conversation_id, None)
        if owned is None:
            return
        owned.scope.cancel()
        self.stats.lost += 1
        log.warning("conversation %s: %s; this process stops answering it",
                    conversation_id, why)
        cell = self.channel.supervisor.get(conversation_id)
        if cell is not None and not cell.session.channel.is_voice:
            cell.hang_up("lease lost")

    async def _renew_loop(self) -> None:
        """Every ``ttl / 3`` seconds, renew every lease, all at once (the requests share
        the store's connection: one pass costs about one round trip, not one per lease)."""
        while True:
            await trio.sleep(self.ttl / 3)
            async with trio.open_nursery() as nursery:
                for conversation, owned in list(self._owned.items()):
                    nursery.start_soon(self._renew, conversation, owned)

    async def _renew(self, conversation_id: str, owned: _Owned) -> None:
        asked = trio.current_time()
        try:
            kept = await self.store.renew(owned.lease, self.ttl)
        except StoreError as exc:
            self._store_failed("renew", exc)
            if trio.current_time() - owned.renewed_at >= self.ttl * 0.8:
                self._lose(conversation_id, "lease not renewed (store unreachable)")
            return
        if self._owned.get(conversation_id) is not owned:
            return  # given up meanwhile
        if kept:
            owned.renewed_at = asked
        else:
            self._lose(conversation_id, "lease lost")

    async def _notice_loop(self) -> None:
        while True:
            try:
                conversations = await self.store.notices(wait=1.0)
            except StoreError as exc:
                self._store_failed("read notices", exc)
                await trio.sleep(RETRY)
                continue
            for conversation in dict.fromkeys(conversations):
                owned = self._owned.get(conversation)
                if owned is not None:
                    owned.wake.set()
                elif self._nursery is not None:  # we lost it meanwhile: find its owner
                    self._nursery.start_soon(self._reroute, conversation)

    async def _reroute(self, conversation_id: str) -> None:
        try:
            owner = await self.store.owner(conversation_id)
        except StoreError as exc:
            self._store_failed("route", exc)
            return
        if owner != self.node:
            await self._route(conversation_id, owner)

    async def _sweep_loop(self) -> None:
        """Claim the conversations with queued texts that nobody holds (a dead owner's,
        or ones whose routing failed)."""
        while True:
            await trio.sleep(self.ttl / 2)
            await self.sweep()

    async def sweep(self) -> int:
        """One takeover sweep; returns how many conversations were claimed."""
        try:
            conversations = await self.store.queued_conversations()
        except StoreError as exc:
            self._store_failed("sweep", exc)
            return 0
        claimed = 0
        for conversation in conversations:
            if conversation in self._owned:
                continue
            try:
                lease = await self._claim(conversation)
            except StoreError as exc:
                self._store_failed("sweep", exc)
                return claimed
            if lease is not None:
                claimed += 1
                self.stats.taken_over += 1
                log.info("conversation %s taken over (fence %d)", conversation, lease.fence)
        return claimed
