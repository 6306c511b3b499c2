"""The reference SDK's shapes of what callbacks receive, as thin views over ours."""

from __future__ import annotations

from typing import Any

import attrs

from tac_actors.actors import ErrorContext, Interruption
from tac_actors.memory import TACMemoryResponse
from tac_actors.session import AuthorInfo, ConversationSession

__all__ = ["InterruptMessage", "MemoryView", "SessionView", "error_dict"]


class SessionView:
    """A :class:`ConversationSession` as the reference shows it: ``channel`` is
    UPPER-case (``"VOICE"``, ``"SMS"``...), and on voice ``author_info`` is the caller's
    address when no Orchestrator participant is known. Everything else is the session's
    own attribute (reads and writes)."""

    __slots__ = ("_session",)

    def __init__(self, session: ConversationSession) -> None:
        object.__setattr__(self, "_session", session)

    @property
    def native(self) -> ConversationSession:
        return self._session  # type: ignore[no-any-return]

    @property
    def channel(self) -> str:
        return str(self._session.channel).upper()

    @property
    def author_info(self) -> AuthorInfo | None:
        session = self._session
        if session.author_info is None and session.caller:
            return AuthorInfo(session.caller)
        return session.author_info  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._session, name, value)

    def __repr__(self) -> str:
        return f"SessionView({self._session!r})"


class MemoryView:
    """A :class:`TACMemoryResponse` whose ``build_memory_prompts()`` returns a list of
    sections (the reference's shape), so ``"\\n\\n".join(...)`` works."""

    __slots__ = ("_memory",)

    def __init__(self, memory: TACMemoryResponse) -> None:
        self._memory = memory

    def build_memory_prompts(self) -> list[str]:
        text = self._memory.build_memory_prompts()
        return [part if part.startswith("## ") else "## " + part
                for part in text.split("\n\n## ")] if text else []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._memory, name)


@attrs.frozen
class InterruptMessage:
    """What the reference's ``on_interrupt(session, message)`` receives."""

    conversation_id: str | None = None
    utterance_until_interrupt: str | None = None
    duration_until_interrupt_ms: int | None = None
    type: str = "interrupt"

    @classmethod
    def of(cls, session: ConversationSession, interruption: Interruption) -> InterruptMessage:
        return cls(session.conversation_id, interruption.heard, interruption.duration_ms)


def error_dict(context: ErrorContext) -> dict[str, Any]:
    """The reference's ``on_error`` context: a dict."""
    result = {"conversation_id": context.conversation_id,
              "channel": str(context.channel).upper(), "phase": context.phase,
              "turn": context.turn, "detail": context.detail}
    if context.detail.startswith("dropped_inbound"):
        result["dropped_inbound"] = True  # the reference's flag for an unanswered text
    return result
