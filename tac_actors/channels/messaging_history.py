"""Rebuilding a text conversation's history when its actor is (re)started.

An actor stopped by the idle timeout, or lost with a server restart, holds nothing the
services do not: :class:`HistoryRestoringAgent` wraps the app's agent and, before the
first turn of a new actor, fills ``session.history`` from the Orchestrator's
communications for the conversation. So an app that builds its prompt from the history
sees the whole conversation, not just what this actor saw.

Best effort and bounded: one look-up per actor (not per message), inside the turn (a
barge-in, deadline or close cancels it like any turn), and a failure is logged and the
turn goes on with what the session has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from tac_actors.actors import (
    Agent,
    AgentWrapper,
    Reply,
    Utterance,
)
from tac_actors.services import ServiceError
from tac_actors.services.orchestrator import Communication
from tac_actors.session import HistoryEntry

if TYPE_CHECKING:
    from tac_actors.services import TwilioServices
    from tac_actors.session import ConversationSession

__all__ = ["HistoryRestoringAgent", "history_from"]

log = logging.getLogger("tac_actors.messaging")

#: at most this many earlier messages are restored (the most recent ones)
HISTORY_LIMIT = 50


def _when(stamp: str | None) -> datetime:
    if stamp:
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)


def history_from(communications: Iterable[Communication], *, before: str | None,
                 is_ours: Callable[[Communication], bool],
                 limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """History entries for ``communications`` (oldest first), up to the one whose id is
    ``before`` (excluded), keeping the last ``limit``. Empty texts are skipped."""
    entries: list[HistoryEntry] = []
    for communication in communications:
        if before is not None and communication.id == before:
            break
        text = communication.content.text
        if text.strip():
            role: Literal["user", "assistant"] = (
                "assistant" if is_ours(communication) else "user")
            entries.append(HistoryEntry(role, text, _when(communication.created_at)))
    return entries[-limit:]


class HistoryRestoringAgent(AgentWrapper):
    """An :class:`~tac_actors.actors.Agent` that restores the history once, then
    delegates everything to ``inner``."""

    def __init__(self, inner: Agent, services: TwilioServices,
                 is_ours: Callable[[Communication], bool]) -> None:
        super().__init__(inner)
        self._services = services
        self._is_ours = is_ours
        self._restored = False

    async def _restore(self, message: Utterance, session: ConversationSession) -> None:
        self._restored = True
        try:
            communications = await self._services.orchestrator.list_all_communications(
                session.conversation_id, max_pages=3)
        except ServiceError as exc:
            log.warning("conversation %s: history not restored (%s)",
                        session.conversation_id, exc)
            return
        earlier = history_from(communications, before=message.message_id,
                               is_ours=self._is_ours)
        # the engine already recorded the message being answered: keep it last
        session.history[:0] = earlier

    async def reply(self, message: Utterance, session: ConversationSession) -> Reply:
        if not self._restored:
            if len(session.history) > 1:
                # a session that already has its past (an outbound conversation we
                # started) needs nothing restored
                self._restored = True
            else:
                await self._restore(message, session)
        return await self.inner.reply(message, session)
