"""Debounce for text conversations: a burst of texts is answered once.

:class:`DebouncingAgent` wraps the app's agent. When a turn starts, it waits until no
text has arrived for ``window`` seconds, takes every text still queued in the mailbox
(they arrived during the wait, or while an earlier turn ran) and hands the app one
utterance with the texts joined by newlines. The webhooks were all acknowledged when
their texts reached the mailbox, so back-pressure and idempotency are unchanged.

The wait is part of the turn: a conversation closed meanwhile cancels it like any turn.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import trio

from tac_actors.actors import (
    Agent,
    AgentWrapper,
    Message,
    Reply,
    Utterance,
)

if TYPE_CHECKING:
    from tac_actors.actors import ActorCell
    from tac_actors.session import ConversationSession

__all__ = ["DebouncingAgent"]


def _is_text(message: Message) -> bool:
    return isinstance(message, Utterance)


class DebouncingAgent(AgentWrapper):
    """An :class:`~tac_actors.actors.Agent` answering bursts of texts once."""

    def __init__(self, inner: Agent, window: float) -> None:
        super().__init__(inner)
        self.window = window
        #: the conversation's cell, whose mailbox holds the rest of a burst
        self.cell: ActorCell | None = None

    async def gather(self, first: Utterance, session: ConversationSession) -> Utterance:
        """Wait for the burst to end; return ``first`` merged with the texts queued."""
        texts = [first.text]
        last = float(first.meta.get("received_at", trio.current_time()))
        while True:
            await trio.sleep_until(last + self.window)
            took = False
            while self.cell is not None:
                try:
                    message = self.cell.mailbox.receive_nowait(_is_text)
                except trio.WouldBlock:
                    break
                assert isinstance(message, Utterance)
                took = True
                texts.append(message.text)
                session.record("user", message.text, datetime.now(UTC))
                last = max(last, float(message.meta.get("received_at", last)))
            if not took:
                break
        if len(texts) == 1:
            return first
        return Utterance("\n".join(texts), first.lang, first.message_id,
                         {**first.meta, "texts": len(texts)})

    async def reply(self, message: Utterance, session: ConversationSession) -> Reply:
        return await self.inner.reply(await self.gather(message, session), session)
