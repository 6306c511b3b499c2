"""Rebuilding a text conversation's history when its actor is (re)started.

An actor stopped by the idle timeout, or lost with a server restart, holds nothing the
services do not: before the first turn of a new actor, the turn wrapper
(:mod:`~tac_actors.channels.messaging_turn`) fills ``session.history`` from the
Orchestrator's communications with :func:`history_from`. So an app that builds its
prompt from the history sees the whole conversation, not just what this actor saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Literal

from tac_actors.services.orchestrator import Communication
from tac_actors.session import HistoryEntry

__all__ = ["history_from"]

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
