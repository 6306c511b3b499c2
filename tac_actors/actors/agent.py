"""What an actor calls: the application side of a conversation, as one interface.

The public API (:class:`tac_actors.TAC`) adapts the user's decorated callbacks to this;
the test kit's scripted agents implement it directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

import attrs

from tac_actors.actors.messages import Digits, Interruption, PartialUtterance, Utterance

if TYPE_CHECKING:
    from tac_actors.session import ConversationSession

__all__ = [
    "ActorCrash",
    "Agent",
    "AgentWrapper",
    "ErrorContext",
    "Phase",
    "Reply",
    "TurnTimeout",
]

#: a callback's answer: words to say at once, tokens to stream, or nothing
Reply: TypeAlias = "str | AsyncIterator[str] | None"

Phase: TypeAlias = Literal[
    "turn", "timeout", "hook", "crash", "gave_up", "channel", "protocol", "delivery", "memory"
]


class TurnTimeout(Exception):
    """A turn ran past its deadline; the caller heard the timeout words."""


class ActorCrash(Exception):
    """Raise from a callback to make the supervisor restart the conversation's actor.

    The incarnation's state is dropped, the mailbox (queued messages) is kept, and the
    message being handled is not replayed. Any other exception from a callback only fails
    the turn.
    """


@attrs.frozen
class ErrorContext:
    """Where an error happened, for ``on_error``."""

    conversation_id: str
    channel: str
    phase: Phase
    turn: int | None = None
    detail: str = ""


class Agent(Protocol):
    """The application behind a conversation. Every method may be cancelled at any await
    (barge-in, deadline, hang-up); exceptions are contained by the actor as documented on
    :class:`~tac_actors.actors.conversation.ConversationActor`."""

    async def reply(self, message: Utterance, session: ConversationSession) -> Reply: ...

    async def reply_digits(self, digits: Digits, session: ConversationSession) -> Reply: ...

    async def partial(self, partial: PartialUtterance, session: ConversationSession) -> None: ...

    async def interrupted(self, session: ConversationSession, interruption: Interruption) -> None:
        ...

    async def error(self, exc: BaseException, context: ErrorContext) -> None: ...

    async def ended(self, session: ConversationSession) -> None: ...


class AgentWrapper:
    """An :class:`Agent` that hands everything to ``inner``: subclass it and override
    what the wrapper changes (e.g. ``reply``)."""

    def __init__(self, inner: Agent) -> None:
        self.inner = inner

    async def reply(self, message: Utterance, session: ConversationSession) -> Reply:
        return await self.inner.reply(message, session)

    async def reply_digits(self, digits: Digits, session: ConversationSession) -> Reply:
        return await self.inner.reply_digits(digits, session)

    async def partial(self, partial: PartialUtterance, session: ConversationSession) -> None:
        await self.inner.partial(partial, session)

    async def interrupted(self, session: ConversationSession, interruption: Interruption
                          ) -> None:
        await self.inner.interrupted(session, interruption)

    async def error(self, exc: BaseException, context: ErrorContext) -> None:
        await self.inner.error(exc, context)

    async def ended(self, session: ConversationSession) -> None:
        await self.inner.ended(session)
