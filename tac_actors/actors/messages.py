"""What can arrive in a conversation's mailbox. Channels translate their wire events
into these; the actor knows nothing else.

``URGENT`` messages jump the queue (see :class:`~tac_actors.actors.mailbox.Mailbox`):
a busy actor under the ``queue`` policy still reads them while prompts wait.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import attrs

__all__ = [
    "URGENT",
    "ChannelError",
    "Digits",
    "Drain",
    "Interruption",
    "Message",
    "PartialUtterance",
    "SessionUpdate",
    "Utterance",
]


@attrs.frozen
class Utterance:
    """Something the person said or wrote: one turn.

    ``message_id`` identifies a text message (for idempotency); ``meta`` carries
    channel-specific details (language, attachments).
    """

    text: str
    lang: str | None = None
    message_id: str | None = None
    meta: dict[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen
class PartialUtterance:
    """An unfinished utterance (voice partial prompts). Never starts a turn."""

    text: str
    lang: str | None = None


@attrs.frozen
class Digits:
    """A DTMF key press."""

    digit: str


@attrs.frozen
class Interruption:
    """The person spoke over the reply. ``heard`` is the part they heard.

    ``acknowledged`` is set by a channel that already stopped the reply the moment it
    read the interruption (:meth:`ConversationActor.interrupt_now`); ``stopped_turn`` is
    the turn it stopped. The actor then only records what was heard and calls the hook.
    """

    heard: str = ""
    duration_ms: int | None = None
    acknowledged: bool = False
    stopped_turn: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ChannelError:
    """The channel's far end reported an error about something we sent."""

    description: str


@attrs.frozen
class SessionUpdate:
    """Set session fields (e.g. the Orchestrator conversation found after ``setup``).
    Applied by the actor, so callbacks never see a session change under them mid-await."""

    changes: dict[str, Any] = attrs.field(eq=False)


@attrs.frozen
class Drain:
    """Shutdown: finish the running turn, start no new one, then stop."""


Message: TypeAlias = (
    Utterance | PartialUtterance | Digits | Interruption | ChannelError | SessionUpdate | Drain
)

URGENT: Final = (Interruption, ChannelError, SessionUpdate, Drain)


def is_urgent(message: object) -> bool:
    """True for messages that go into the urgent lane."""
    return isinstance(message, URGENT)
