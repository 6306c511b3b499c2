"""What the LLM is told, whatever its API: the system prompt and the prior turns.

Pure functions of the session and memory, shared by every adapter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from tac_actors.memory.models import TACMemoryResponse
from tac_actors.session import ConversationSession, HistoryEntry, Profile

__all__ = ["Turn", "conversation_turns", "profile_prompt", "system_prompt"]

Turn = tuple[Literal["user", "assistant"], str]


def system_prompt(
    instructions: str,
    session: ConversationSession | None = None,
    memory: TACMemoryResponse | None = None,
) -> str:
    """``instructions``, then memory's sections (:meth:`TACMemoryResponse.
    build_memory_prompts`), then the profile's traits, separated by blank lines; empty
    parts are left out."""
    parts = [
        instructions.strip(),
        memory.build_memory_prompts() if memory is not None else "",
        profile_prompt(session.profile if session is not None else None),
    ]
    return "\n\n".join(part for part in parts if part)


def profile_prompt(profile: Profile | None) -> str:
    """The profile's traits as a Markdown section (``- Contact.email: ...``), "" when
    there are none. Empty values are left out; lists and objects are written as JSON."""
    if profile is None:
        return ""
    lines = [
        f"- {group}.{name}: {_value(value)}"
        for group, traits in profile.traits.items()
        for name, value in traits.items()
        if value not in (None, "", [], {})
    ]
    return "\n".join(["## Customer profile", *lines]) if lines else ""


def conversation_turns(
    session: ConversationSession | None, message: str, *, limit: int | None = None
) -> list[Turn]:
    """The prior turns of ``session.history`` (the last ``limit`` of them when given),
    then ``message`` as the user's turn.

    The engine records the person's message in the history before it asks for a reply;
    when the history's last entry is that very message it is not repeated. Entries
    without text are left out. Assistant entries carry what the person heard: a reply cut
    short by a barge-in is what was spoken before it.
    """
    history: Sequence[HistoryEntry] = session.history if session is not None else ()
    if history and history[-1].role == "user" and history[-1].text == message:
        history = history[:-1]
    if limit is not None:
        history = history[-limit:] if limit > 0 else ()
    turns: list[Turn] = [(entry.role, entry.text) for entry in history if entry.text.strip()]
    turns.append(("user", message))
    return turns


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
