"""The per-conversation session object handed to every callback.

A :class:`ConversationSession` is created when a conversation starts (a voice ``setup``
frame, or the first message of a text conversation) and lives as long as its actor. It is
mutable on purpose: the engine appends to :attr:`history` and fills :attr:`profile` when
memory arrives, and apps may keep their own state in :attr:`metadata`.

The engine only mutates a session from inside its own actor, so callbacks never see it
change under them between two awaits of their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from tac_actors.asyncio_bridge import trio_side

if TYPE_CHECKING:
    from tac_actors.protocol.intelligence import OperatorResult

__all__ = [
    "AuthorInfo",
    "Channel",
    "ConversationSession",
    "HistoryEntry",
    "Profile",
]


class Channel(enum.StrEnum):
    """The channel a conversation happens on. Values are lower-case on purpose."""

    VOICE = "voice"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    RCS = "rcs"
    CHAT = "chat"

    @property
    def is_voice(self) -> bool:
        return self is Channel.VOICE


@attrs.frozen
class AuthorInfo:
    """Who a participant is: their address on the channel and, in Orchestrator mode,
    their participant id."""

    address: str
    participant_id: str | None = None


@attrs.frozen
class Profile:
    """A Conversation Memory profile. ``traits`` is grouped exactly as the Memory API
    returns it, e.g. ``profile.traits["Contact"]["email"]``."""

    id: str
    traits: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    created_at: str | None = None

    def trait(self, group: str, name: str, default: Any = None) -> Any:
        """One trait value, or ``default`` when the group or the trait is absent."""
        return self.traits.get(group, {}).get(name, default)


@attrs.frozen
class HistoryEntry:
    """One utterance of the conversation as the engine saw it.

    For the assistant, ``text`` is what the person actually received: on voice, when the
    caller barged in, it is the part spoken before the interruption
    (``utteranceUntilInterrupt``) and ``interrupted`` is true.
    """

    role: Literal["user", "assistant"]
    text: str
    at: datetime
    interrupted: bool = False


class Controls(Protocol):
    """What the engine offers a live conversation (``session.controls``). Implemented by
    the actor core; defined here so this data module imports nothing of the engine."""

    async def send_text(self, text: str) -> None: ...

    async def play(self, source: str, *, loop: int | None = None) -> None: ...

    async def send_digits(self, digits: str) -> None: ...

    async def set_language(self, *, tts_language: str | None = None,
                           transcription_language: str | None = None) -> None: ...

    async def end(self, handoff_data: str | None = None) -> None: ...


@attrs.define(eq=False)
class ConversationSession:
    """State of one live conversation.

    Identity: ``conversation_id`` is the Orchestrator conversation id in Orchestrator mode,
    and the CallSid for voice in ConversationRelay-only mode (until the Orchestrator
    conversation is linked). ``caller`` is the person's address (phone number, WhatsApp
    address, chat id), ``called`` the address they reached.
    """

    conversation_id: str
    channel: Channel
    started_at: datetime
    call_sid: str | None = None
    profile_id: str | None = None
    caller: str | None = None
    called: str | None = None
    profile: Profile | None = None
    author_info: AuthorInfo | None = None
    ai_agent_info: AuthorInfo | None = None
    custom_parameters: Mapping[str, str] = attrs.field(factory=dict)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    history: list[HistoryEntry] = attrs.field(factory=list)
    pending_handoff_data: str | None = None
    #: Conversation Intelligence operator results received while this conversation
    #: runs (real-time operators), oldest first, the latest 20
    intelligence: list[OperatorResult] = attrs.field(factory=list)
    _controls: Controls | None = attrs.field(default=None, repr=False, alias="controls")

    # -- what an app can do to the live conversation -------------------------------------

    @property
    def controls(self) -> Controls:
        """The live controls of this conversation (send, play, end, ...).

        Raises :class:`RuntimeError` when the session is not attached to a live actor.
        """
        if self._controls is None:
            raise RuntimeError(f"conversation {self.conversation_id} is not live")
        return self._controls

    def attach(self, controls: Controls | None) -> None:
        """Bind (or unbind, with ``None``) the live controls. Used by the engine."""
        self._controls = controls

    @trio_side
    async def send(self, text: str) -> None:
        """Send a complete message now (spoken on voice, a text on messaging)."""
        await self.controls.send_text(text)

    @trio_side
    async def play(self, source: str, *, loop: int | None = None) -> None:
        """Voice only: play an audio file (URL) to the caller."""
        await self.controls.play(source, loop=loop)

    @trio_side
    async def send_digits(self, digits: str) -> None:
        """Voice only: send DTMF tones (``0-9 * #`` and ``w`` for a half-second pause)."""
        await self.controls.send_digits(digits)

    @trio_side
    async def set_language(
        self, *, tts_language: str | None = None, transcription_language: str | None = None
    ) -> None:
        """Voice only: switch the speech and/or transcription language mid-call."""
        await self.controls.set_language(
            tts_language=tts_language, transcription_language=transcription_language
        )

    @trio_side
    async def end(self, handoff_data: str | None = None) -> None:
        """End the conversation now (voice: an ``end`` frame with ``handoff_data``)."""
        await self.controls.end(handoff_data)

    def request_handoff(self, handoff_data: str) -> None:
        """Hand the conversation over once the current reply is complete.

        On voice the reply's last words are spoken, then ``end`` carries ``handoff_data``
        and the actor stops. The request survives a barge-in of the current turn.
        """
        self.pending_handoff_data = handoff_data

    def record(self, role: Literal["user", "assistant"], text: str, at: datetime,
               *, interrupted: bool = False) -> None:
        """Append one entry to :attr:`history` (used by the engine)."""
        self.history.append(HistoryEntry(role, text, at, interrupted))

    def trim_history(self, *, entries: int, chars: int) -> int:
        """Drop the oldest history entries until at most ``entries`` are left and their
        texts hold at most ``chars`` characters in all (the newest entry is always kept).
        Returns how many were dropped. Used by the engine after each record."""
        history = self.history
        drop = max(0, len(history) - entries)
        total = sum(len(entry.text) for entry in history[drop:])
        while total > chars and drop < len(history) - 1:
            total -= len(history[drop].text)
            drop += 1
        if drop:
            del history[:drop]
        return drop
