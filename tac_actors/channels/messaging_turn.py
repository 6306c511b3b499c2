"""What runs around the app's callback in a text conversation's turn.

:class:`TextTurnAgent` wraps the app's agent for one conversation actor. The webhook only
queues a text (it never waits on the Orchestrator, so its 200 is quick); everything that
needs the Orchestrator happens here, inside the turn, where a deadline, a close or a
shutdown cancels it like any turn:

1. **the door** (each turn until it could be checked once): the Orchestrator
   conversation's state is the source of truth for "is this conversation still the
   bot's?". CLOSED, or status callbacks cleared by our handoff, means a human has it:
   the texts are not answered and the actor stops. A failed look-up is logged and the
   turn goes on (the in-process handoff mark still applies);
2. **participants and history** (once per actor): the participants fix the reply route
   (participant ids) and tell our own agent's echoes apart; before the first turn
   ``session.history`` is rebuilt from the Orchestrator's communications, except for a
   conversation we started (``metadata["direction"] == "outbound"``), which already has
   its past. The same list classifies the texts from before this process for the ledger;
3. **echoes**: a text written by an ``AI_AGENT``/``AGENT`` participant is not answered;
4. **the answer**: the outbox is told which inbound texts this turn answers (the
   idempotency key and the ledger follow from that); a streamed reply that fails or times
   out drops its partial text so the fallback words go out alone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tac_actors.actors import Agent, AgentWrapper, ErrorContext, Reply, Utterance
from tac_actors.channels.messaging_participants import InboundDropped, Refused
from tac_actors.services import ServiceError

if TYPE_CHECKING:
    from tac_actors.actors import ActorCell
    from tac_actors.channels.messaging import MessagingChannel
    from tac_actors.channels.messaging_outbox import MessagingOutbox
    from tac_actors.session import ConversationSession

__all__ = ["TextTurnAgent", "answered_ids"]

log = logging.getLogger("tac_actors.messaging")


def answered_ids(message: Utterance) -> tuple[str, ...]:
    """The inbound communication ids one (possibly coalesced) utterance answers."""
    ids = message.meta.get("ids")
    if ids:
        return tuple(ids)
    return (message.message_id,) if message.message_id else ()


class TextTurnAgent(AgentWrapper):
    """An :class:`~tac_actors.actors.Agent` for one text conversation (see the module
    docstring)."""

    def __init__(self, inner: Agent, channel: MessagingChannel, outbox: MessagingOutbox,
                 *, restore_history: bool) -> None:
        super().__init__(inner)
        self._channel = channel
        self._outbox = outbox
        self._door_checked = False
        self._prepared = False
        self._restore = restore_history
        #: set by the channel after spawning
        self.cell: ActorCell | None = None

    async def reply(self, message: Utterance, session: ConversationSession) -> Reply:
        channel = self._channel
        conversation = session.conversation_id
        ids = answered_ids(message)
        refused: Refused | None = None
        if not (self._door_checked and self._prepared):
            async with channel.read_limit:
                if not self._door_checked:
                    self._door_checked = await channel.door_open(conversation) is not None
                if not self._prepared:
                    self._prepared = True
                    refused = await self._prepare(message, session)
        ledger = channel.ledger.of(conversation)
        if refused is not None:
            await self._drop(refused, ids, session)
            return None
        if ledger.handed_off:
            # the human's now: not ours to answer, and nothing more is owed by the bot
            ledger.mark_answered(ids)
            channel.count("not_answered_handed_off", conversation)
            if self.cell is not None:
                self.cell.request_stop("handoff")
            return None
        if channel.is_agent_participant(conversation, message.meta.get("participant_id")):
            ledger.mark_answered(ids)
            return None
        self._outbox.begin(ids)
        reply = await self.inner.reply(message, session)
        if reply is None:
            self._outbox.answered_silently()
            return None
        if hasattr(reply, "__aiter__") and not isinstance(reply, str):
            return self._guarded(reply)
        return reply

    async def _drop(self, refused: Refused, ids: tuple[str, ...],
                    session: ConversationSession) -> None:
        """Leave the text unanswered (marked so that reconcile does not queue it again)
        and report it to ``on_error``. A conversation a person holds is theirs from now
        on (the actor stops, later texts are not answered); otherwise the next text
        tries reconciling again."""
        channel = self._channel
        conversation = session.conversation_id
        ledger = channel.ledger.of(conversation)
        ledger.mark_answered(ids)
        channel.count("dropped_inbound", conversation)
        if refused.reason == "held":
            ledger.handed_off = True
        else:
            self._prepared = False
        log.warning("conversation %s: inbound text dropped (%s: %s)", conversation,
                    refused.reason, refused.detail)
        try:
            await self.inner.error(
                InboundDropped("Participant reconciliation failed; inbound message dropped"),
                ErrorContext(conversation, str(session.channel), "channel", None,
                             f"dropped_inbound: {refused.reason}: {refused.detail}"))
        except Exception:
            log.exception("on_error failed")
        if refused.reason == "held" and self.cell is not None:
            self.cell.request_stop("handoff")  # after the report: stopping cancels us

    async def _prepare(self, message: Utterance, session: ConversationSession
                       ) -> Refused | None:
        """Participants (reconciled), route and history; a :class:`Refused` means the
        text must not be answered."""
        channel = self._channel
        conversation = session.conversation_id
        participants = await channel.participants(conversation)
        if participants:  # read (a failed look-up degrades to replies by address)
            outcome = await channel.reconcile(session, self._outbox.route, participants)
            if isinstance(outcome, Refused):
                return outcome
            participants = outcome.participants
        channel.refresh_route(session, self._outbox, participants)
        outbound = session.metadata.get("direction") == "outbound"
        if outbound or (not self._restore and channel.ledger.of(conversation).baseline):
            return None
        ledger = channel.ledger.of(conversation)
        communications = ledger.fresh_log
        ledger.fresh_log = None
        if communications is None or not any(
                c.id == message.message_id for c in communications):
            try:
                communications = await channel.services.orchestrator.list_all_communications(
                    conversation, max_pages=channel.options.reconcile_pages)
            except ServiceError as exc:
                channel.count("history_not_restored", conversation)
                log.debug("conversation %s: history not read (%s)", conversation, exc)
                return None
        channel.classify(conversation, communications)
        if self._restore:
            earlier = channel.history(conversation, communications, before=message.message_id)
            # the engine already recorded the message being answered: keep it last
            session.history[:0] = earlier
        return None

    async def _guarded(self, reply: Any) -> AsyncIterator[str]:
        iterator = reply.__aiter__()
        try:
            async for token in iterator:
                yield token
        except BaseException:
            # failed or timed out mid-stream: the fallback words go out on their own
            self._outbox.discard_open()
            raise
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()
