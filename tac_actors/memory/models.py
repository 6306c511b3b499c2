"""Memory as the callback sees it: observations, summaries and communications."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["ObservationInfo", "SummaryInfo", "TACCommunication", "TACMemoryResponse"]


@attrs.frozen(kw_only=True)
class ObservationInfo:
    """A fact Conversation Memory learned about the person."""

    id: str
    content: str
    source: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    occurred_at: str | None = None
    conversation_ids: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class SummaryInfo:
    """A summary of one past conversation."""

    id: str
    content: str
    conversation_id: str | None = None
    source: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    occurred_at: str | None = None


@attrs.frozen(kw_only=True)
class TACCommunication:
    """One past message, from Memory or from the Orchestrator's communications."""

    id: str | None
    role: Literal["customer", "assistant", "human_agent", "unknown"]
    text: str
    author_address: str | None = None
    channel: str | None = None
    created_at: str | None = None


@attrs.frozen(kw_only=True)
class TACMemoryResponse:
    """What memory knows for one turn. ``source`` says which tier answered."""

    observations: tuple[ObservationInfo, ...] = ()
    summaries: tuple[SummaryInfo, ...] = ()
    communications: tuple[TACCommunication, ...] = ()
    source: Literal["memory", "orchestrator", "none"] = "none"

    @classmethod
    def empty(cls) -> TACMemoryResponse:
        return _EMPTY

    @property
    def has_memory_features(self) -> bool:
        """True when observations or summaries (Memory API features) are present."""
        return bool(self.observations or self.summaries)

    @property
    def is_empty(self) -> bool:
        return not (self.observations or self.summaries or self.communications)

    def build_memory_prompts(self) -> str:
        """Markdown sections ready to append to a system prompt ("" when empty)."""
        parts: list[str] = []
        if self.observations:
            parts.append("## What we know about the customer")
            parts.extend(f"- {o.content}" for o in self.observations)
        if self.summaries:
            parts.append("## Earlier conversations")
            parts.extend(f"- {s.content}" for s in self.summaries)
        if self.communications:
            parts.append("## Recent messages")
            parts.extend(f"- {c.role}: {c.text}" for c in self.communications)
        return "\n".join(parts)


_EMPTY = TACMemoryResponse()
