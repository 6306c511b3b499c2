"""The messaging channel: Orchestrator webhooks in, ``SEND_MESSAGE`` actions out.

One channel object serves SMS, WhatsApp, RCS and Chat. Every conversation is one actor
(key: the Orchestrator conversation id), spawned by its first message; the session's
channel is the author's channel.

What :meth:`MessagingChannel.receive_webhook` promises, for one POST of ``/webhook``:

* **answer early**: 200 as soon as the message is in the actor's mailbox, never after
  the agent answered it;
* **back-pressure**: a full mailbox answers 503 with ``Retry-After``, and the message is
  not marked as seen, so Twilio's retry is handled;
* **idempotency**: a webhook whose ``I-Twilio-Idempotency-Token`` or communication id
  was handled before is answered 200 and dropped (a bounded LRU of ``dedup_capacity``
  ids, per process); the same webhook arriving while its first copy is still being
  handled answers 503, so it is retried once the outcome is known;
* **echoes**: messages written by our own addresses (phone number, WhatsApp number,
  RCS sender, chat agent address) or by an ``AI_AGENT``/``AGENT`` participant are
  dropped. Participants are looked up at most once per conversation (then cached);
* **bad input**: a body that does not parse answers 400 and touches no actor;
* **lifecycle**: ``CLOSED`` hangs the conversation's actor up (its running turn is
  cancelled, ``on_conversation_ended`` runs once); ``INACTIVE`` drops the memory cache;
  an actor stopped by the idle timeout is respawned, with a fresh session, by the next
  message; before its first turn, ``session.history`` is rebuilt from the
  Orchestrator's communications (:mod:`~tac_actors.channels.messaging_history`);
* **handoff**: once a conversation was handed to a human (a Studio execution), its
  later messages are acknowledged and left to the human: no actor is respawned for it
  until the Orchestrator closes it (remembered per process, like the seen ids).

Busy policy and debounce: texts arriving during a turn queue behind it (policy
``queue``). With ``debounce`` set, a turn first waits until no text has arrived for
``debounce`` seconds, then answers every queued text at once (joined by newlines).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
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
from tac_actors.channels.messaging_debounce import DebouncingAgent
from tac_actors.channels.messaging_history import HistoryRestoringAgent
from tac_actors.channels.messaging_outbox import MessagingOutbox, Route, studio_handoff
from tac_actors.config import ChannelPolicy, TACConfig
from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.webhooks import (
    CommunicationCreated,
    ConversationUpdated,
    WebhookEvent,
    parse_webhook,
)
from tac_actors.services import ServiceError, TwilioServices
from tac_actors.services.orchestrator import Communication, Participant
from tac_actors.session import AuthorInfo, Channel, ConversationSession

__all__ = ["MessagingChannel", "MessagingOptions", "WebhookAnswer"]

log = logging.getLogger("tac_actors.messaging")

AGENT_TYPES = frozenset({"AI_AGENT", "AGENT"})
TEXT_CHANNELS = {"SMS": Channel.SMS, "WHATSAPP": Channel.WHATSAPP, "RCS": Channel.RCS,
                 "CHAT": Channel.CHAT}
#: how long a message waits for a stopping actor of its conversation before respawning
RESPAWN_WAIT = 10.0


@attrs.frozen(kw_only=True)
class MessagingOptions:
    """Settings of the messaging channel.

    ``debounce``: seconds of quiet that close a burst of texts (``None``: every text is
    answered on its own). ``dedup_capacity``: how many webhook ids are remembered.
    ``chat_agent_address``: our address on Chat. ``retry_after``: seconds sent with a
    503 answer.
    """

    debounce: float | None = None
    dedup_capacity: int = 10_000
    chat_agent_address: str = "ai-assistant"
    retry_after: int = 1

    def __attrs_post_init__(self) -> None:
        if self.debounce is not None and not (0 < self.debounce < math.inf):
            raise ValueError("debounce must be a positive number of seconds or None")
        if self.dedup_capacity < 1:
            raise ValueError("dedup_capacity must be at least 1")


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
    """Serves Orchestrator webhooks with conversation actors (see the module docstring)."""

    def __init__(self, supervisor: Supervisor, agent: Agent, services: TwilioServices,
                 config: TACConfig, *, policy: ChannelPolicy,
                 options: MessagingOptions | None = None,
                 forget: Callable[[str], None] | None = None) -> None:
        self.supervisor = supervisor
        self.agent = agent
        self.services = services
        self.config = config
        self.policy = policy
        self.options = options or MessagingOptions()
        self._forget = forget
        self._seen = _Lru(self.options.dedup_capacity)
        #: conversations handed to a human: their messages are no longer the bot's
        self._handed_off = _Lru(self.options.dedup_capacity)
        self._in_flight: set[str] = set()
        self._participants: OrderedDict[str, tuple[Participant, ...]] = OrderedDict()
        self._looking: dict[str, trio.Event] = {}
        #: bad webhooks and full mailboxes: one line per kind or conversation and minute
        self._bad_input = LogLimiter(log, interval=60.0)

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

    def _is_ours(self, address: str) -> bool:
        mine = (self.config.phone_number, self.config.whatsapp_number,
                self.config.rcs_sender_id, self.options.chat_agent_address)
        return bare(address) in {bare(a) for a in mine if a}

    # -- webhooks ---------------------------------------------------------------------------

    async def receive_webhook(self, body: bytes, *, idempotency_token: str | None = None
                              ) -> WebhookAnswer:
        """Handle one webhook body (its signature already checked). Never raises for
        anything in the body; cancellable (then nothing was enqueued)."""
        try:
            event = parse_webhook(body)
        except ProtocolError as exc:
            self._bad_input.warning("400", "webhook rejected (400): %s", excerpt(exc.message))
            await trio.lowlevel.checkpoint()
            return WebhookAnswer(400, {"status": "error", "error": exc.message[:200]})
        keys = [f"token:{idempotency_token}"] if idempotency_token else []
        if isinstance(event, CommunicationCreated):
            keys.append(f"communication:{event.id}")
        if any(key in self._seen for key in keys):
            log.info("webhook %s already handled: dropped", excerpt(keys[0], 100))
            await trio.lowlevel.checkpoint()
            return _ok("duplicate")
        if any(key in self._in_flight for key in keys):
            await trio.lowlevel.checkpoint()
            return self._busy()
        self._in_flight.update(keys)
        try:
            answer = await self.handle_event(event)
        finally:
            self._in_flight.difference_update(keys)
        if answer.status < 500:
            for key in keys:
                self._seen.add(key)
        return answer

    def _busy(self) -> WebhookAnswer:
        return WebhookAnswer(503, {"status": "busy"}, retry_after=self.options.retry_after)

    async def handle_event(self, event: WebhookEvent) -> WebhookAnswer:
        """Act on one parsed event (no idempotency check)."""
        if isinstance(event, CommunicationCreated):
            return await self._communication(event)
        if isinstance(event, ConversationUpdated):
            await trio.lowlevel.checkpoint()
            return self._conversation_updated(event)
        await trio.lowlevel.checkpoint()
        return _ok("ignored")

    async def _communication(self, event: CommunicationCreated) -> WebhookAnswer:
        channel = TEXT_CHANNELS.get(event.author.channel.upper())
        if channel is None:  # e.g. a voice transcript: the voice channel has it already
            await trio.lowlevel.checkpoint()
            return _ok("ignored")
        if not event.text.strip():
            await trio.lowlevel.checkpoint()
            return _ok("empty")
        if self._is_ours(event.author.address):
            await trio.lowlevel.checkpoint()
            return _ok("echo")
        if event.conversation_id in self._handed_off:
            log.info("conversation %s: message for a human agent (handed off), not answered",
                     event.conversation_id)
            await trio.lowlevel.checkpoint()
            return _ok("handed_off")
        participants = await self.participants(event.conversation_id)
        author = event.author.participant_id
        if author and any(p.id == author and p.type in AGENT_TYPES for p in participants):
            return _ok("echo")
        message = Utterance(event.text, message_id=event.id, meta={
            "channel": str(channel), "author": event.author.address,
            "received_at": trio.current_time()})
        for _ in range(2):
            cell = await self._cell_for(event, channel, participants)
            if cell is None:
                return self._busy()
            try:
                cell.send_nowait(message)
            except trio.WouldBlock:
                self._bad_input.warning(event.conversation_id,
                                        "conversation %s: mailbox full, answering 503",
                                        event.conversation_id)
                return self._busy()
            except trio.ClosedResourceError:
                continue  # it ended meanwhile: respawn once
            return _ok("accepted")
        return self._busy()

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
            self._handed_off.discard(conversation)
        elif event.status == "INACTIVE" and self._forget is not None:
            self._forget(conversation)
        return _ok(event.status.lower())

    # -- participants and actors ------------------------------------------------------------

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
            log.warning("conversation %s: participants look-up failed (%s); replying by "
                        "address", conversation_id, exc)
            return ()
        finally:
            del self._looking[conversation_id]
            done.set()
        self.remember_participants(conversation_id, page.items)
        return page.items

    def remember_participants(self, conversation_id: str,
                              participants: tuple[Participant, ...]) -> None:
        self._participants[conversation_id] = participants
        self._participants.move_to_end(conversation_id)
        while len(self._participants) > self.options.dedup_capacity:
            self._participants.popitem(last=False)

    async def _cell_for(self, event: CommunicationCreated, channel: Channel,
                        participants: tuple[Participant, ...]) -> ActorCell | None:
        key = event.conversation_id
        cell = self.supervisor.get(key)
        if cell is not None and _stopping(cell):
            with trio.move_on_after(RESPAWN_WAIT):
                await cell.wait_stopped()
            cell = self.supervisor.get(key)
            if cell is not None and _stopping(cell):
                return None
        if cell is not None:
            await trio.lowlevel.checkpoint()
            return cell
        session, route = self.inbound_session(event, channel, participants)
        return self.spawn(session, route)

    def inbound_session(self, event: CommunicationCreated, channel: Channel,
                        participants: tuple[Participant, ...]
                        ) -> tuple[ConversationSession, Route]:
        """The session and reply route of a conversation started by ``event``."""
        author = event.author
        customer = next((p for p in participants if author.participant_id
                         and p.id == author.participant_id), None) or _holder(
            participants, author.channel, author.address, ("CUSTOMER",))
        ours = self.agent_address(channel)
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
        studio = studio_handoff(self.services, self.config, route)
        hand_off = None
        if studio is not None:
            async def hand_off(data: str) -> None:
                await studio(data)
                # from now on the conversation belongs to a human
                self._handed_off.add(session.conversation_id)

        outbox = MessagingOutbox(self.services, route, hand_off=hand_off)
        conversation = session.conversation_id

        def ours(communication: Communication) -> bool:
            author = communication.author
            known = self._participants.get(conversation, ())
            return self._is_ours(author.address) or any(
                p.id == author.participant_id and p.type in AGENT_TYPES for p in known)

        agent: Agent = HistoryRestoringAgent(self.agent, self.services, ours)
        if self.options.debounce is not None:
            agent = DebouncingAgent(agent, self.options.debounce)
        try:
            cell = self.supervisor.spawn(session.conversation_id, session=session,
                                         agent=agent, outbox=outbox, policy=self.policy)
        except AlreadyRunning:
            return self.supervisor.get(session.conversation_id)
        except NotAccepting as exc:
            log.info("conversation %s not started: %s", session.conversation_id, exc)
            return None
        outbox.cell = cell
        if isinstance(agent, DebouncingAgent):
            agent.cell = cell
        log.info("conversation %s started on %s", session.conversation_id, session.channel)
        return cell


def _stopping(cell: ActorCell) -> bool:
    return (cell.stopped.is_set() or cell.stop_requested or cell.stop_reason is not None
            or cell.mailbox.closed)


def _address_on(participant: Participant, channel: str) -> str | None:
    return next((a.address for a in participant.addresses
                 if a.channel.upper() == channel.upper()), None)


def _holder(participants: tuple[Participant, ...], channel: str, address: str,
            types: tuple[str, ...] | frozenset[str]) -> Participant | None:
    return next((p for p in participants if p.type in types and any(
        a.channel.upper() == channel.upper() and bare(a.address) == bare(address)
        for a in p.addresses)), None)
