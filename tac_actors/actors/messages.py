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
    "Fault",
    "Interruption",
    "Message",
    "PartialUtterance",
    "Push",
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
    #: the turn id the conversation issued when the message arrived (0: not yet)
    turn: int = attrs.field(default=0, eq=False)


@attrs.frozen
class Push:
    """A reply the app sends from outside any turn (``TAC.send_response``): a ``str`` or
    an async iterator of ``str``. It runs as a turn of its own, in mailbox order, without
    calling the agent. It never preempts: it starts once the running turn has ended
    (whatever the busy policy), so it is safe to push from inside a turn too. A barge-in
    stops it like any reply (also while it waits), a prompt read after it preempts it,
    and what was sent is recorded in ``session.history``."""

    reply: Any = attrs.field(eq=False)
    #: the turn id the conversation issued when the message arrived (0: not yet)
    turn: int = attrs.field(default=0, eq=False)


@attrs.frozen
class PartialUtterance:
    """An unfinished utterance (voice partial prompts). Never starts a turn."""

    text: str
    lang: str | None = None


@attrs.frozen
class Digits:
    """A DTMF key press."""

    digit: str
    #: the turn id the conversation issued when the message arrived (0: not yet)
    turn: int = attrs.field(default=0, eq=False)


@attrs.frozen
class Interruption:
    """The person spoke over the reply. ``heard`` is the part they heard.

    The conversation stops the replies the moment the message is handed to it
    (:meth:`~tac_actors.actors.ActorCell.send`, through its
    :class:`~tac_actors.actors.gate.ReplyGate`): ``through`` is then the gate's barrier
    (every turn up to it was stopped) and ``acknowledged`` whether the acknowledgement was
    queued at that moment. The actor handles it in arrival order: it records what was
    heard and calls the hook.
    """

    heard: str = ""
    duration_ms: int | None = None
    through: int | None = attrs.field(default=None, eq=False)
    acknowledged: bool = attrs.field(default=False, eq=False)


@attrs.frozen
class ChannelError:
    """The channel's far end reported an error about something we sent."""

    description: str


@attrs.frozen
class Fault:
    """An error found outside the actor (a bad frame, a failed delivery) for the actor
    to report to ``on_error``: hooks run from the actor only, so no reader or writer ever
    waits for one."""

    exc: BaseException = attrs.field(eq=False)
    phase: str = "channel"
    turn: int | None = None


@attrs.frozen
class SessionUpdate:
    """Set session fields (e.g. the Orchestrator conversation found after ``setup``).
    Applied by the actor, so callbacks never see a session change under them mid-await."""

    changes: dict[str, Any] = attrs.field(eq=False)


@attrs.frozen
class Drain:
    """Shutdown: finish the running turn, start no new one, then stop."""


Message: TypeAlias = (
    Utterance | PartialUtterance | Digits | Interruption | ChannelError | Fault | SessionUpdate
    | Drain | Push
)

#: an interruption is not urgent: it takes effect when it is handed over (the reply gate)
#: and is then handled in order, after the prompts read before it
URGENT: Final = (ChannelError, Fault, SessionUpdate, Drain)


def is_urgent(message: object) -> bool:
    """True for messages that go into the urgent lane."""
    return isinstance(message, URGENT)
