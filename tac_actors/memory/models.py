"""Memory as the callback sees it: observations, summaries and communications.

These are the engine's own models, decoupled from the wire: :meth:`TACMemoryResponse.
from_recall` turns a Memory ``/Recall`` answer into one, and
:meth:`TACMemoryResponse.from_communications` an Orchestrator communications list, giving
each message a role (customer, assistant, human agent) when it can be known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from tac_actors.services.memory_api import Recall
    from tac_actors.services.orchestrator import Communication

__all__ = [
    "ObservationInfo",
    "Role",
    "SummaryInfo",
    "TACCommunication",
    "TACMemoryResponse",
    "role_for_participant_type",
]

Role = Literal["customer", "assistant", "human_agent", "unknown"]

_ROLES: Mapping[str, Role] = {
    "CUSTOMER": "customer",
    "AI_AGENT": "assistant",
    "AGENT": "assistant",
    "HUMAN_AGENT": "human_agent",
}


def role_for_participant_type(participant_type: str | None) -> Role:
    """The role of a Twilio participant type (``CUSTOMER``, ``AI_AGENT``...)."""
    return _ROLES.get((participant_type or "").upper(), "unknown")


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
    role: Role
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
    #: False when the per-turn memory budget expired before every answer arrived
    complete: bool = True
    #: Memory's own query time in milliseconds, when it reported one
    query_time_ms: int | None = None

    @classmethod
    def empty(cls) -> TACMemoryResponse:
        return _EMPTY

    @classmethod
    def from_recall(cls, recall: Recall | Mapping[str, Any]) -> TACMemoryResponse:
        """Memory's ``/Recall`` answer, typed or as the raw JSON object (malformed items
        of a raw object are dropped and logged)."""
        if isinstance(recall, Mapping):
            from tac_actors.services.memory_api import parse_recall

            recall = parse_recall(recall)
        return cls(
            observations=tuple(recall.observations),  # the wire types are these types
            summaries=tuple(recall.summaries),
            communications=tuple(
                TACCommunication(
                    id=c.id, role=role_for_participant_type(c.author.type), text=c.text,
                    author_address=c.author.address, channel=c.author.channel,
                    created_at=c.created_at,
                )
                for c in recall.communications
            ),
            source="memory",
            query_time_ms=recall.query_time_ms,
        )

    @classmethod
    def from_communications(
        cls,
        communications: Iterable[Communication],
        *,
        participant_types: Mapping[str, str] | None = None,
        customer_addresses: Iterable[str] = (),
        assistant_addresses: Iterable[str] = (),
    ) -> TACMemoryResponse:
        """The Orchestrator's communications of a conversation, oldest first.

        Orchestrator authors carry a participant id but no type, so the role comes from
        ``participant_types`` (participant id -> ``CUSTOMER``, ``AI_AGENT``...), else
        from the author's address being one of ``customer_addresses`` or
        ``assistant_addresses``, else it is ``"unknown"``.
        """
        types = participant_types or {}
        customers = set(customer_addresses)
        assistants = set(assistant_addresses)

        def role(author_id: str | None, address: str) -> Role:
            if author_id and author_id in types:
                found = role_for_participant_type(types[author_id])
                if found != "unknown":
                    return found
            if address in customers:
                return "customer"
            if address in assistants:
                return "assistant"
            return "unknown"

        return cls(
            communications=tuple(
                TACCommunication(
                    id=c.id, role=role(c.author.participant_id, c.author.address),
                    text=c.content.text, author_address=c.author.address,
                    channel=c.author.channel, created_at=c.created_at,
                )
                for c in communications
            ),
            source="orchestrator",
        )

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
