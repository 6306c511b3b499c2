"""The messaging channel: Orchestrator webhooks in, ``SEND_MESSAGE`` actions out.

One channel object serves SMS, WhatsApp, RCS and Chat. Every conversation is one actor
(key: the Orchestrator conversation id), spawned by its first message; the session's
channel is the author's channel.

**The delivery guarantee.** Every text the Orchestrator stored in an ACTIVE conversation
of ours is answered exactly once by the bot, unless the conversation is handed off or
closed first. The Orchestrator's log is the durable record; this process keeps only a
ledger of what it took on and answered (:mod:`~tac_actors.channels.messaging_ledger`),
and reconcile (:mod:`~tac_actors.channels.messaging_reconcile`) fills every gap from the
log: texts whose webhook never came, texts queued when a process crashed or shut down,
replies that could not be sent. Replies carry an idempotency key per inbound text, so a
replayed turn sends nothing twice (:mod:`~tac_actors.channels.messaging_outbox`).

What :meth:`MessagingChannel.receive_webhook` promises, for one POST of ``/webhook``:

* **accept, never bounce, never wait**: a text is answered 200 once it is *recorded*: in
  its actor's mailbox, in the conversation's bounded backlog, or (backlog full) left in
  the Orchestrator's log for reconcile, which then answers it. The answer never waits on
  the Orchestrator or on an actor (participants, history and the conversation's state are
  looked up inside the turn, :mod:`~tac_actors.channels.messaging_turn`);
* **503** with ``Retry-After`` only when the whole node cannot take texts: shutting down,
  or more than ``node_backlog`` texts waiting across its backlogs. The text is in the
  Orchestrator's log either way; the 503 asks Twilio to retry (see the README for the
  ``#rc``/``#rp`` retry fragment);
* **idempotency**: a text already taken (webhook or reconcile) or answered is answered 200
  ``duplicate``; webhooks are also deduplicated by ``I-Twilio-Idempotency-Token`` (a
  bounded LRU of ``dedup_capacity`` tokens);
* **echoes**: texts written by our own addresses are dropped at once; texts by an
  ``AI_AGENT``/``AGENT`` participant at another address are dropped in the turn;
* **bad input**: a body that does not parse answers 400 and touches no actor;
* **lifecycle**: ``CLOSED`` hangs the conversation's actor up (its running turn is
  cancelled, ``on_conversation_ended`` runs once); ``INACTIVE`` drops the memory cache;
  an actor stopped by the idle timeout is respawned, with a fresh session, by the next
  message; before its first turn, ``session.history`` is rebuilt from the Orchestrator;
* **handoff closes the door**: before the last bot message and the Studio execution the
  Orchestrator conversation is set INACTIVE and its status callbacks are cleared (as the
  reference does). From then on no bot actor answers it, in this process (a fast mark) or
  any later one (every new actor and every reconcile checks the conversation's state).

Busy policy and debounce: texts arriving during a turn queue behind it (policy
``queue``). With ``debounce`` set, texts wait in the conversation's backlog until none has
arrived for ``debounce`` seconds and are then answered at once (joined by newlines); the
turn and its deadline start after that (:mod:`~tac_actors.channels.messaging_intake`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import attrs
import trio

from tac_actors._logsafe import LogLimiter, excerpt
from tac_actors.actors import (
    ActorCell,
    Agent,
    AlreadyRunning,
    NotAccepting,
    Supervisor,
    Utterance,
)
from tac_actors.channels.messaging_history import history_from
from tac_actors.channels.messaging_intake import Intake, Offer
from tac_actors.channels.messaging_ledger import Ledger, pair_replies
from tac_actors.channels.messaging_outbox import MessagingOutbox, Route, studio_handoff
from tac_actors.channels.messaging_participants import (
    Reconciled,
    Refused,
    reconcile_participants,
)
from tac_actors.channels.messaging_reconcile import Reconciler
from tac_actors.channels.messaging_router import MessagingRouter
from tac_actors.channels.messaging_turn import TextTurnAgent, answered_ids
from tac_actors.config import ChannelPolicy, TACConfig
from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.webhooks import (
    CommunicationAuthor,
    CommunicationCreated,
    ConversationUpdated,
    WebhookEvent,
    parse_webhook,
)
from tac_actors.services import ServiceError, TwilioServices
from tac_actors.services.orchestrator import Communication, Participant
from tac_actors.session import AuthorInfo, Channel, ConversationSession, HistoryEntry
from tac_actors.store import ConversationStore, StoreError

__all__ = ["MessagingChannel", "MessagingOptions", "WebhookAnswer"]

log = logging.getLogger("tac_actors.messaging")

AGENT_TYPES = frozenset({"AI_AGENT", "AGENT"})
#: a conversation's state read as open less than this many seconds ago is not read again
#: (a reconcile just before an actor's first turn)
DOOR_FRESH = 5.0
TEXT_CHANNELS = {"SMS": Channel.SMS, "WHATSAPP": Channel.WHATSAPP, "RCS": Channel.RCS,
                 "CHAT": Channel.CHAT}


@attrs.frozen(kw_only=True)
class MessagingOptions:
    """Settings of the messaging channel.

    ``debounce``: seconds of quiet that close a burst of texts (``None``: every text is
    answered on its own). ``dedup_capacity``: how many webhook tokens, conversations'
    ledgers and participant lists are remembered. ``chat_agent_address``: our address on
    Chat. ``retry_after``: seconds sent with a 503 answer. ``backlog``: texts one
    conversation may have waiting beyond its mailbox (more are left to reconcile);
    ``node_backlog``: texts all backlogs together may hold before webhooks get 503.
    ``reconcile_interval``: seconds between reconcile sweeps (``None``: only at start-up
    and after overflows); ``reconcile_batch``: conversations per sweep;
    ``reconcile_pages``: pages of communications read per conversation;
    ``reconcile_concurrency``: conversations whose log or state is read at once (by
    reconcile or an actor's first turn); ``send_concurrency``: replies being sent at once
    across the node (the service client keeps 100 connections). ``send_budget``:
    seconds a reply's send is retried before it is reported (and kept for the next
    attempt); ``max_undelivered``: replies kept per conversation.
    """

    debounce: float | None = None
    dedup_capacity: int = 10_000
    chat_agent_address: str = "ai-assistant"
    retry_after: int = 1
    backlog: int = 256
    node_backlog: int = 100_000
    reconcile_interval: float | None = 30.0
    reconcile_batch: int = 50
    reconcile_pages: int = 5
    reconcile_concurrency: int = 8
    send_concurrency: int = 64
    send_budget: float = 30.0
    max_undelivered: int = 16

    def __attrs_post_init__(self) -> None:
        if self.debounce is not None and not (0 < self.debounce < math.inf):
            raise ValueError("debounce must be a positive number of seconds or None")
        if self.reconcile_interval is not None and not (
                0 < self.reconcile_interval < math.inf):
            raise ValueError("reconcile_interval must be a positive number of seconds or None")
        for name in ("dedup_capacity", "backlog", "node_backlog", "reconcile_batch",
                     "reconcile_pages", "reconcile_concurrency", "send_concurrency",
                     "max_undelivered"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.send_budget < 0:
            raise ValueError("send_budget must not be negative")


@attrs.frozen
class WebhookAnswer:
    """What to answer Twilio: a status, a small JSON body and maybe ``Retry-After``."""

    status: int
    body: dict[str, str]
    retry_after: int | None = None


def _ok(outcome: str) -> WebhookAnswer:
    return WebhookAnswer(200, {"status": "ok", "outcome": outcome})


class _Lru:
    """A bounded set that forgets the oldest entries first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def add(self, key: str) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)


def bare(address: str) -> str:
    """An address without its ``whatsapp:``/``rcs:`` prefix, for comparisons."""
    head, sep, rest = address.partition(":")
    return (rest if sep and head.lower() in ("whatsapp", "rcs", "sms") else address).lower()


class MessagingChannel:
    """Serves Orchestrator webhooks with conversation actors (see the module docstring).

    :meth:`run` must run (the runtime starts it) for backlogs and reconcile to work;
    without it every text takes the fast path or gets 503.
    """

    def __init__(self, supervisor: Supervisor, agent: Agent, services: TwilioServices,
                 config: TACConfig, *, policy: ChannelPolicy,
                 options: MessagingOptions | None = None,
                 forget: Callable[[str], None] | None = None,
                 store: ConversationStore | None = None, lease_ttl: float = 10.0) -> None:
        self.supervisor = supervisor
        self.agent = agent
        self.services = services
        self.config = config
        self.policy = policy
        self.options = options = options or MessagingOptions()
        self._forget = forget
        self._seen = _Lru(options.dedup_capacity)
        #: routes texts to their owner across processes (a shared store configured)
        self.router = (MessagingRouter(self, store, lease_ttl=lease_ttl)
                       if store is not None else None)
        #: what this process took on and answered, per conversation
        self.ledger = Ledger(options.dedup_capacity, on_answered=(
            self.router.note_answered if self.router is not None else None))
        #: conversations whose Studio execution already ran (the handoff tool)
        self._studio_done = _Lru(options.dedup_capacity)
        self._participants: OrderedDict[str, tuple[Participant, ...]] = OrderedDict()
        self._looking: dict[str, trio.Event] = {}
        self.counters: Counter[str] = Counter()
        self._logged: _Lru = _Lru(options.dedup_capacity)
        #: bad webhooks and a full node: one line per kind and minute
        self._bad_input = LogLimiter(log, interval=60.0)
        self.intake = Intake(supervisor, cell_for=self._cell_for, backlog=options.backlog,
                             node_backlog=options.node_backlog, debounce=options.debounce,
                             on_drained=self._drained, on_dropped=self._dropped,
                             primed=self._primed, prime=self._prime,
                             position=self._position)
        #: bounds the sends in flight (the node's replies wait their turn here, inside
        #: no budget, rather than time out waiting for a pooled connection)
        self.send_limit = trio.Semaphore(options.send_concurrency)
        #: bounds the log and state reads in flight (reconcile and first turns)
        self.read_limit = trio.Semaphore(options.reconcile_concurrency)
        self.reconciler = Reconciler(self, interval=options.reconcile_interval,
                                     batch=options.reconcile_batch,
                                     pages=options.reconcile_pages, limit=self.read_limit)
        #: the Memory store first contacts get a profile in (set by the runtime)
        self.memory_store_id: str | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Run the backlog feeders and the reconciler until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.intake.run)
            if self.router is not None:
                await nursery.start(self.router.run)
            await nursery.start(self.reconciler.run)
            task_status.started()

    # -- outcomes, logged once per conversation ------------------------------------------------

    def count(self, outcome: str, conversation_id: str, n: int = 1) -> None:
        """Count an outcome; log it the first time it happens to a conversation."""
        self.counters[outcome] += n
        key = f"{outcome}:{conversation_id}"
        if key not in self._logged:
            self._logged.add(key)
            log.info("conversation %s: %s (%d so far on this node)", conversation_id,
                     outcome.replace("_", " "), self.counters[outcome])

    # -- addresses ------------------------------------------------------------------------

    def agent_address(self, channel: Channel) -> str | None:
        """Our default address on ``channel`` (from the config)."""
        config = self.config
        if channel is Channel.SMS:
            return config.phone_number
        if channel is Channel.WHATSAPP:
            number = config.whatsapp_number or config.phone_number
            return None if number is None else (
                number if number.startswith("whatsapp:") else f"whatsapp:{number}")
        if channel is Channel.RCS:
            return config.rcs_sender_id
        if channel is Channel.CHAT:
            return self.options.chat_agent_address
        return None

    def sender_address(self, channel: Channel, from_: str | None) -> str | None:
        """The address an outbound text on ``channel`` goes from: ``from_`` when given (a
        bare number is prefixed with ``whatsapp:`` on WhatsApp), else
        :meth:`agent_address`."""
        if not from_:
            return self.agent_address(channel)
        if channel is Channel.WHATSAPP and not from_.startswith("whatsapp:"):
            return f"whatsapp:{from_}"
        return from_

    def _is_ours(self, address: str) -> bool:
        mine = (*self.config.phone_numbers, self.config.whatsapp_number,
                self.config.rcs_sender_id, self.options.chat_agent_address)
        return bare(address) in {bare(a) for a in mine if a}

    def is_agent_participant(self, conversation_id: str, participant_id: str | None) -> bool:
        """Whether ``participant_id`` is an AI_AGENT/AGENT of the conversation (as far as
        the cached participants tell)."""
        if not participant_id:
            return False
        return any(p.id == participant_id and p.type in AGENT_TYPES
                   for p in self._participants.get(conversation_id, ()))

    def is_ours_communication(self, conversation_id: str, communication: Communication
                              ) -> bool:
        author = communication.author
        return self._is_ours(author.address) or self.is_agent_participant(
            conversation_id, author.participant_id)

    def is_customer_text(self, conversation_id: str, communication: Communication) -> bool:
        """A text the bot owes a reply: on a text channel, not blank, not ours."""
        content = communication.content
        return (communication.author.channel.upper() in TEXT_CHANNELS
                and (content.type or "TEXT").upper() == "TEXT"
                and bool(content.text.strip())
                and not self.is_ours_communication(conversation_id, communication))

    # -- webhooks ---------------------------------------------------------------------------

    async def receive_webhook(self, body: bytes, *, idempotency_token: str | None = None
                              ) -> WebhookAnswer:
        """Handle one webhook body (its signature already checked). Never raises for
        anything in the body, never waits on a service; cancellable (then nothing was
        recorded)."""
        await trio.lowlevel.checkpoint()
        try:
            event = parse_webhook(body)
        except ProtocolError as exc:
            self._bad_input.warning("400", "webhook rejected (400): %s", excerpt(exc.message))
            return WebhookAnswer(400, {"status": "error", "error": exc.message[:200]})
        token = f"token:{idempotency_token}" if idempotency_token else None
        if self.router is not None:
            return await self._receive_routed(event, token)
        if token is not None and token in self._seen:
            log.info("webhook %s already handled: dropped", excerpt(token, 100))
            return _ok("duplicate")
        answer = self.handle_event(event)
        if token is not None and answer.status < 500:
            self._seen.add(token)
        return answer

    async def _receive_routed(self, event: WebhookEvent, token: str | None
                              ) -> WebhookAnswer:
        """:meth:`receive_webhook` with a shared store: tokens are deduplicated in the
        store, texts are queued there and reach their conversation's owner, CLOSED
        reaches the owner too. The store unreachable: 503 (the text stays in the
        Orchestrator's log; reconcile answers it once the store is back)."""
        router = self.router
        assert router is not None
        store = router.store
        if isinstance(event, CommunicationCreated):
            # a text is deduplicated by its communication id, atomically with its queuing;
            # a token recorded first would turn the retry of a request that died between
            # the two (its process killed) into a "duplicate" whose text was never queued
            token = None
        if token is not None:
            try:
                first = await store.seen(token, router.dedupe_ttl)
            except StoreError:
                first = True  # the text's id still dedupes it below
            if not first:
                log.info("webhook %s already handled: dropped", excerpt(token, 100))
                return _ok("duplicate")
        if isinstance(event, CommunicationCreated):
            answer = await self._communication_routed(event)
        elif isinstance(event, ConversationUpdated) and event.status == "CLOSED":
            answer = self._conversation_updated(event)
            if answer.body.get("outcome") == "closed" and not await router.closed(
                    event.conversation_id):
                answer = self._busy("unavailable")
        else:
            answer = self.handle_event(event)
        if token is not None and answer.status >= 500:
            with trio.CancelScope(shield=True):
                try:
                    await store.forget(token)
                except StoreError:
                    pass
        return answer

    async def _communication_routed(self, event: CommunicationCreated) -> WebhookAnswer:
        assert self.router is not None
        channel = TEXT_CHANNELS.get(event.author.channel.upper())
        if channel is None:
            return _ok("ignored")
        if not event.text.strip():
            return _ok("empty")
        if self._is_ours(event.author.address):
            return _ok("echo")
        if not self.supervisor.statistics().accepting:
            return self._busy("shutdown")
        outcome = await self.router.accept(event)
        if outcome == "unavailable":
            self.count("store_unavailable", event.conversation_id)
            return self._busy(outcome)
        if outcome == "handed_off":
            self.count("not_answered_handed_off", event.conversation_id)
        return _ok(outcome)

    def _busy(self, outcome: str) -> WebhookAnswer:
        return WebhookAnswer(503, {"status": "busy", "outcome": outcome},
                             retry_after=self.options.retry_after)

    def handle_event(self, event: WebhookEvent) -> WebhookAnswer:
        """Act on one parsed event (no token check). Synchronous: it never waits."""
        if isinstance(event, CommunicationCreated):
            return self._communication(event)
        if isinstance(event, ConversationUpdated):
            return self._conversation_updated(event)
        return _ok("ignored")

    def _communication(self, event: CommunicationCreated) -> WebhookAnswer:
        channel = TEXT_CHANNELS.get(event.author.channel.upper())
        if channel is None:  # e.g. a voice transcript: the voice channel has it already
            return _ok("ignored")
        if not event.text.strip():
            return _ok("empty")
        if self._is_ours(event.author.address):
            return _ok("echo")
        outcome = self.accept(event, source="webhook")
        if outcome in ("overloaded", "shutdown"):
            return self._busy(outcome)
        return _ok(outcome)

    def accept_communication(self, communication: Communication, *, source: str) -> str:
        """Take a text found in the log (reconcile) like a webhook's."""
        return self.accept(_event_of(communication), source=source)

    async def take_found(self, communication: Communication) -> str:
        """Take a text reconcile found in the log through the shared store (queued there,
        routed to the conversation's owner; ``unavailable`` when the store failed).
        Without a store reconcile accepts owed texts itself, in one synchronous step."""
        assert self.router is not None
        event = _event_of(communication)
        outcome = await self.router.accept(event)
        if outcome == "queued":
            self.count("answered_late_by_reconcile", event.conversation_id)
        return outcome

    def accept(self, event: CommunicationCreated, *, source: str) -> str:
        """Record a text for its conversation's actor (see the module docstring).
        Returns the outcome: ``accepted``/``queued``/``left_for_reconcile`` (recorded),
        ``duplicate``, ``handed_off``, or ``overloaded``/``shutdown`` (not recorded)."""
        conversation = event.conversation_id
        ledger = self.ledger.get(conversation)
        if ledger is not None and ledger.handed_off:
            self.count("not_answered_handed_off", conversation)
            return "handed_off"
        if not self.ledger.take(conversation, event.id):
            return "duplicate"
        message = Utterance(event.text, message_id=event.id, meta={
            "channel": event.author.channel.upper(), "author": event.author.address,
            "participant_id": event.author.participant_id, "event": event,
            "source": source, "received_at": trio.current_time()})
        outcome: Offer = self.intake.offer(conversation, message)
        if outcome in ("overloaded", "shutdown", "left_for_reconcile"):
            self.ledger.release(conversation, (event.id,))
            self.count(outcome, conversation)
            if outcome == "overloaded":
                self._bad_input.warning("overloaded", "node backlog full (%d texts): "
                                        "answering 503", self.intake.queued)
        elif source == "reconcile":
            self.count("answered_late_by_reconcile", conversation)
        return outcome

    def _conversation_updated(self, event: ConversationUpdated) -> WebhookAnswer:
        ours = self.config.conversation_configuration_id
        if event.configuration_id and ours and event.configuration_id != ours:
            return _ok("ignored")
        conversation = event.conversation_id
        if event.status == "CLOSED":
            cell = self.supervisor.get(conversation)
            if cell is not None and not cell.session.channel.is_voice:
                log.info("conversation %s closed by the Orchestrator", conversation)
                cell.hang_up("closed")
            self._participants.pop(conversation, None)
            self.ledger.of(conversation).handed_off = True
        elif event.status == "INACTIVE" and self._forget is not None:
            self._forget(conversation)
        return _ok(event.status.lower())

    # -- backlog callbacks ----------------------------------------------------------------------

    def _primed(self, conversation_id: str) -> bool:
        """Whether a text of the conversation may reach an actor without a log read
        first: once its log was read here, or once the start-up pass is over and read it
        (what existed then was reconciled; what began since has had its texts' webhooks
        here, or a sweep)."""
        return self.ledger.of(conversation_id).primed or self.reconciler.primes(conversation_id)

    async def _prime(self, conversation_id: str) -> None:
        """Read the conversation's log once before its first text reaches an actor here
        (queues what is owed from before, and orders the backlog). Tried once; a failure
        leaves the conversation to the sweeps."""
        self.ledger.of(conversation_id).primed = True
        await self.reconciler.reconcile(conversation_id, keep_log=True)

    def _position(self, conversation_id: str, communication_id: str | None) -> int | None:
        ledger = self.ledger.get(conversation_id)
        if ledger is None or communication_id is None:
            return None
        return ledger.positions.get(communication_id)

    def _drained(self, conversation_id: str) -> None:
        self.reconciler.flag(conversation_id)

    def _dropped(self, conversation_id: str, message: Utterance) -> None:
        self.ledger.release(conversation_id, answered_ids(message))
        self.count("left_for_reconcile", conversation_id)

    def _actor_ended(self, conversation_id: str) -> None:
        if self.router is not None:
            self.router.actor_ended(conversation_id)
        owed = self.ledger.release_all(conversation_id)
        if owed:
            self.count("left_for_reconcile", conversation_id, owed)
            if self.supervisor.statistics().accepting:
                self.reconciler.flag(conversation_id)

    # -- the door (is the conversation still the bot's?) ----------------------------------------

    async def door_open(self, conversation_id: str) -> bool | None:
        """True when the bot may answer the conversation, False when its door is closed
        (CLOSED, or handed off: status callbacks cleared), ``None`` when the
        Orchestrator could not tell (logged)."""
        ledger = self.ledger.of(conversation_id)
        if ledger.handed_off:
            await trio.lowlevel.checkpoint()
            return False
        seen = ledger.door_seen_open
        if seen is not None and trio.current_time() - seen < DOOR_FRESH:
            await trio.lowlevel.checkpoint()
            return True
        try:
            conversation = await self.services.orchestrator.get_conversation(conversation_id)
        except ServiceError as exc:
            self.count("door_not_checked", conversation_id)
            log.debug("conversation %s: state not read (%s)", conversation_id, exc)
            return None
        if conversation.status == "CLOSED" or conversation.callbacks_cleared:
            ledger.handed_off = True
            return False
        ledger.door_seen_open = trio.current_time()
        return True

    async def close_door(self, conversation_id: str) -> None:
        """Set the conversation INACTIVE and clear its status callbacks (the reference's
        order), and mark it handed off here. Raises :class:`ServiceError`; the local
        mark is set first, so this process stops answering even if the calls fail."""
        self.ledger.of(conversation_id).handed_off = True
        if self.router is not None:
            await self.router.set_handed_off(conversation_id, True)
        orchestrator = self.services.orchestrator
        await orchestrator.update_conversation(conversation_id, status="INACTIVE")
        await orchestrator.clear_status_callbacks(conversation_id)

    async def hand_off_now(self, session: ConversationSession, handoff_data: str) -> None:
        """The handoff tool on a text channel: close the door, then start the Studio
        execution now, so a failure reaches the model. Raises :class:`ServiceError` (or
        :class:`LookupError` without a configured flow)."""
        conversation = session.conversation_id
        cell = self.supervisor.get(conversation)
        outbox = cell.outbox if cell is not None else None
        route = outbox.route if isinstance(outbox, MessagingOutbox) else None
        if route is None:
            raise LookupError(f"conversation {conversation} has no live text actor")
        studio = studio_handoff(self.services, self.config, route)
        if studio is None:
            raise LookupError("no Studio flow is configured (TWILIO_STUDIO_HANDOFF_FLOW_SID)")
        await self.close_door(conversation)
        try:
            await studio(handoff_data)
        except ServiceError:
            await self._reopen_door(conversation)
            raise
        self._studio_done.add(conversation)

    async def _reopen_door(self, conversation_id: str) -> None:
        """Undo :meth:`close_door` after a failed Studio execution (best effort): the
        bot keeps the conversation, since no human got it."""
        self.ledger.of(conversation_id).handed_off = False
        if self.router is not None:
            await self.router.set_handed_off(conversation_id, False)
        orchestrator = self.services.orchestrator
        try:
            await orchestrator.update_conversation(conversation_id, status="ACTIVE")
            await orchestrator.restore_status_callbacks(conversation_id)
        except ServiceError as exc:
            log.warning("conversation %s: could not reopen the conversation after a failed "
                        "handoff (%s)", conversation_id, exc)

    # -- participants, routes and history ---------------------------------------------------------

    async def participants(self, conversation_id: str) -> tuple[Participant, ...]:
        """The conversation's participants: fetched once, then cached. A failed look-up
        yields ``()`` (replies then go by address) and is tried again next time."""
        while conversation_id in self._looking:
            await self._looking[conversation_id].wait()
        cached = self._participants.get(conversation_id)
        if cached is not None:
            await trio.lowlevel.checkpoint()
            return cached
        done = self._looking[conversation_id] = trio.Event()
        try:
            page = await self.services.orchestrator.list_participants(conversation_id)
        except ServiceError as exc:
            self.count("participants_not_read", conversation_id)
            log.debug("conversation %s: participants look-up failed (%s)", conversation_id,
                      exc)
            return ()
        finally:
            del self._looking[conversation_id]
            done.set()
        self.remember_participants(conversation_id, page.items)
        return page.items

    async def reconcile(self, session: ConversationSession, route: Route,
                        participants: tuple[Participant, ...]) -> Reconciled | Refused:
        """Reconcile the participants of ``session``'s conversation (see
        :mod:`~tac_actors.channels.messaging_participants`) and cache the result."""
        conversation = session.conversation_id
        result = await reconcile_participants(
            self.services, conversation, participants, channel=route.channel,
            agent_address=route.from_address
            or self.agent_address(session.channel) or "",
            channel_id=route.channel_id, memory_store_id=self.memory_store_id,
            memory=self.config.memory, reconcile_customer=session.channel is not Channel.CHAT)
        if isinstance(result, Reconciled) and result.changed:
            self.count("participants_reconciled", conversation)
            self.remember_participants(conversation, result.participants)
        return result

    def remember_participants(self, conversation_id: str,
                              participants: tuple[Participant, ...]) -> None:
        self._participants[conversation_id] = participants
        self._participants.move_to_end(conversation_id)
        while len(self._participants) > self.options.dedup_capacity:
            self._participants.popitem(last=False)

    def refresh_route(self, session: ConversationSession, outbox: MessagingOutbox,
                      participants: tuple[Participant, ...]) -> None:
        """Fill in participant ids (route, session) once the participants are known."""
        if not participants:
            return
        route = outbox.route
        customer = next((p for p in participants if route.to_participant_id
                         and p.id == route.to_participant_id), None) or _holder(
            participants, route.channel, route.to_address, ("CUSTOMER",))
        agent = _holder(participants, route.channel, route.from_address, AGENT_TYPES) or next(
            (p for p in participants if p.type in AGENT_TYPES
             and _address_on(p, route.channel)), None)
        from_address = (_address_on(agent, route.channel) if agent else None
                        ) or route.from_address
        outbox.route = attrs.evolve(
            route, from_address=from_address,
            from_participant_id=agent.id if agent else route.from_participant_id,
            to_participant_id=route.to_participant_id or (customer.id if customer else None))
        if customer is not None:
            session.profile_id = session.profile_id or customer.profile_id
            session.author_info = AuthorInfo(route.to_address, outbox.route.to_participant_id)
        session.ai_agent_info = AuthorInfo(from_address, outbox.route.from_participant_id)
        session.called = from_address or session.called

    def classify(self, conversation_id: str, communications: Sequence[Communication], *,
                 baseline: bool | None = None) -> None:
        """Note the log's order; once per conversation and process, mark the texts the
        log shows as answered (:func:`~tac_actors.channels.messaging_ledger.pair_replies`).
        With a shared store the store's record decides instead (:meth:`owed_texts`);
        ``baseline=True`` forces the log's classification (the store has no record)."""
        ledger = self.ledger.of(conversation_id)
        ledger.positions = {c.id: n for n, c in enumerate(communications)}
        if baseline is None:
            baseline = self.router is None and not ledger.baseline
        if not baseline:
            return
        ledger.baseline = True
        answered, _ = pair_replies(
            communications,
            is_ours=lambda c: self.is_ours_communication(conversation_id, c),
            is_text=lambda c: self.is_customer_text(conversation_id, c))
        ledger.mark_answered(a for a in answered if a not in ledger.pending)

    def owed_here(self, conversation_id: str,
                  communications: Sequence[Communication]) -> list[Communication]:
        """The customer texts of the log this process owes (per its ledger, after
        :meth:`classify`), oldest first. Synchronous: without a shared store, reconcile
        queues them in the same step as it computes them."""
        ledger = self.ledger.of(conversation_id)
        return [c for c in communications
                if self.is_customer_text(conversation_id, c) and ledger.owes(c.id)]

    async def owed_texts(self, conversation_id: str,
                         communications: Sequence[Communication]) -> list[Communication]:
        """With a shared store: the customer texts of the log that nobody answered or is
        answering, oldest first, per the store's record (answered anywhere, or queued for the
        owner); only a conversation the store has no record of is classified from the
        log (``pair_replies``). A store failure yields ``[]`` (counted; the next sweep
        tries again)."""
        assert self.router is not None  # without a store: owed_here, synchronously
        ledger = self.ledger.of(conversation_id)
        texts = [c for c in communications if self.is_customer_text(conversation_id, c)]
        try:
            states = await self.router.store.states(conversation_id, [c.id for c in texts])
        except StoreError:
            self.count("reconcile_failed", conversation_id)
            return []
        if states is None:
            self.classify(conversation_id, communications, baseline=True)
            return [c for c in texts if ledger.owes(c.id)]
        for key, state in states.items():
            if state == "a" and key not in ledger.answered:
                ledger.answered[key] = None  # known everywhere already: no ack
        return [c for c in texts if c.id not in states and ledger.owes(c.id)]

    def history(self, conversation_id: str, communications: Sequence[Communication], *,
                before: str | None) -> list[HistoryEntry]:
        return history_from(communications, before=before,
                            is_ours=lambda c: self.is_ours_communication(conversation_id, c))

    # -- actors ---------------------------------------------------------------------------

    def _cell_for(self, message: Utterance) -> ActorCell:
        """The live actor of the message's conversation, or a new one (raises
        :class:`NotAccepting` during shutdown)."""
        event: CommunicationCreated = message.meta["event"]
        cell = self.supervisor.get(event.conversation_id)
        if cell is not None:
            return cell
        channel = TEXT_CHANNELS[event.author.channel.upper()]
        session, route = self.inbound_session(
            event, channel, self._participants.get(event.conversation_id, ()))
        return self.spawn_cell(session, route)

    def inbound_session(self, event: CommunicationCreated, channel: Channel,
                        participants: tuple[Participant, ...]
                        ) -> tuple[ConversationSession, Route]:
        """The session and reply route of a conversation started by ``event``
        (participants may be empty: the turn fills the ids in)."""
        author = event.author
        customer = next((p for p in participants if author.participant_id
                         and p.id == author.participant_id), None) or _holder(
            participants, author.channel, author.address, ("CUSTOMER",))
        # several numbers: the one the text was sent to, when it is one of ours
        ours = next((r.address for r in event.recipients if self._is_ours(r.address)),
                    None) or self.agent_address(channel)
        agent = _holder(participants, author.channel, ours, AGENT_TYPES) if ours else None
        agent = agent or next((p for p in participants if p.type in AGENT_TYPES
                               and _address_on(p, author.channel)), None)
        our_address = (_address_on(agent, author.channel) if agent else None) or ours or ""
        customer_id = author.participant_id or (customer.id if customer else None)
        session = ConversationSession(
            conversation_id=event.conversation_id, channel=channel,
            started_at=datetime.now(UTC), caller=author.address, called=our_address or None,
            profile_id=customer.profile_id if customer else None,
            author_info=AuthorInfo(author.address, customer_id),
            ai_agent_info=AuthorInfo(our_address, agent.id if agent else None),
            metadata={"direction": "inbound",
                      **({"channel_id": event.channel_id} if event.channel_id else {})},
        )
        route = Route(conversation_id=event.conversation_id, channel=author.channel.upper(),
                      from_address=our_address, to_address=author.address,
                      from_participant_id=agent.id if agent else None,
                      to_participant_id=customer_id,
                      channel_id=event.channel_id if channel is Channel.CHAT else None)
        return session, route

    def spawn(self, session: ConversationSession, route: Route) -> ActorCell | None:
        """Start the actor of ``session`` (or return the live one); ``None`` while the
        server shuts down."""
        try:
            return self.spawn_cell(session, route)
        except NotAccepting as exc:
            log.info("conversation %s not started: %s", session.conversation_id, exc)
            return None

    def spawn_cell(self, session: ConversationSession, route: Route) -> ActorCell:
        conversation = session.conversation_id
        if self.router is not None and not self.router.owns(conversation):
            # a backlog left behind by a lost lease: the texts are in the store, for the
            # owner (raising here drops them from this process, and they stay owed)
            raise NotAccepting(f"conversation {conversation} is owned by another process")
        studio = studio_handoff(self.services, self.config, route)
        hand_off = None
        if studio is not None:
            async def hand_off(data: str) -> None:
                if conversation in self._studio_done:
                    await trio.lowlevel.checkpoint()
                    return  # the handoff tool already started it
                await studio(data)
                self._studio_done.add(conversation)

        ledger = self.ledger

        async def before_last() -> None:
            if session.pending_handoff_data is None or ledger.of(conversation).handed_off:
                await trio.lowlevel.checkpoint()
                return
            try:
                await self.close_door(conversation)
            except ServiceError as exc:
                log.warning("conversation %s: could not close the conversation before "
                            "the handoff (%s)", conversation, exc)

        outbox = MessagingOutbox(
            self.services, route, hand_off=hand_off,
            answered=lambda ids: ledger.answered(conversation, ids),
            released=lambda ids: ledger.release(conversation, ids),
            kept=lambda: self.reconciler.flag(conversation), send_limit=self.send_limit,
            before_last=before_last, send_budget=self.options.send_budget,
            max_undelivered=self.options.max_undelivered)
        agent = TextTurnAgent(self.agent, self, outbox, restore_history=True)
        try:
            cell = self.supervisor.spawn(conversation, session=session, agent=agent,
                                         outbox=outbox, policy=self.policy)
        except AlreadyRunning:
            found = self.supervisor.get(conversation)
            assert found is not None
            return found
        outbox.cell = cell
        agent.cell = cell
        cell.call_when_stopped(lambda: self._actor_ended(conversation))
        log.info("conversation %s started on %s", conversation, session.channel)
        return cell


def _event_of(communication: Communication) -> CommunicationCreated:
    author = communication.author
    return CommunicationCreated(
        id=communication.id, conversation_id=communication.conversation_id or "",
        author=CommunicationAuthor(address=author.address, channel=author.channel,
                                   participant_id=author.participant_id),
        text=communication.content.text, channel_id=communication.channel_id,
        created_at=communication.created_at)


def _address_on(participant: Participant, channel: str) -> str | None:
    return next((a.address for a in participant.addresses
                 if a.channel.upper() == channel.upper()), None)


def _holder(participants: tuple[Participant, ...], channel: str, address: str,
            types: tuple[str, ...] | frozenset[str]) -> Participant | None:
    return next((p for p in participants if p.type in types and any(
        a.channel.upper() == channel.upper() and bare(a.address) == bare(address)
        for a in p.addresses)), None)
