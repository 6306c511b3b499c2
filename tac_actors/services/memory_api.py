"""Conversation Memory client (``memory.twilio.com``, paths under ``/v1/Stores/{store}``).

Profiles (lookup by identifier, fetch with trait groups, create), Recall (observations,
summaries and past communications, optionally ranked by a query), and the writes the
engine makes: observations and conversation summaries.

Lookup and Recall are POSTs that only read, so they are retried like GETs. Creating a
profile, an observation or a summary is retried only with an ``idempotency_key``.

A Recall answer is parsed item by item: one malformed observation is dropped (and
logged), not the whole answer. Everything else is parsed strictly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs

from tac_actors._logsafe import excerpt
from tac_actors.memory.models import ObservationInfo, SummaryInfo
from tac_actors.services.http import Product, ServiceHTTP, path_segment
from tac_actors.services.wire import camel, decode

T = TypeVar("T")
logger = logging.getLogger("tac_actors.services")

__all__ = [
    "MemoryClient",
    "MemoryCommunication",
    "MemoryContent",
    "MemoryParticipant",
    "MemoryProfile",
    "Observation",
    "ProfileLookup",
    "Recall",
    "Summary",
    "parse_recall",
]


@attrs.frozen(kw_only=True)
class ProfileLookup:
    """Profiles holding an identifier; ``profiles`` is empty when none matched."""

    normalized_value: str | None = None
    profiles: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class MemoryProfile:
    """A profile; ``traits`` is grouped: ``traits["Contact"]["firstName"]``."""

    id: str
    created_at: str | None = None
    traits: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


# Observations and summaries are read straight into the types handed to callbacks: the
# wire shape and the public shape are the same fields.
Observation = ObservationInfo
Summary = SummaryInfo


@attrs.frozen(kw_only=True)
class MemoryParticipant:
    """Author or recipient of a remembered message; ``type`` is CUSTOMER, AI_AGENT,
    AGENT, HUMAN_AGENT or UNKNOWN."""

    id: str | None = None
    name: str | None = None
    address: str | None = None
    channel: str | None = None
    type: str | None = None
    profile_id: str | None = None


@attrs.frozen(kw_only=True)
class MemoryContent:
    text: str | None = None


@attrs.frozen(kw_only=True)
class MemoryCommunication:
    id: str
    author: MemoryParticipant
    content: MemoryContent = MemoryContent()
    recipients: tuple[MemoryParticipant, ...] = ()
    channel_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def text(self) -> str:
        return self.content.text or ""


@attrs.frozen(kw_only=True)
class Recall:
    """The answer of ``/Recall``; ``query_time_ms`` is the service's own timing."""

    observations: tuple[Observation, ...] = ()
    summaries: tuple[Summary, ...] = ()
    communications: tuple[MemoryCommunication, ...] = ()
    query_time_ms: int | None = None


def parse_recall(body: Mapping[str, Any], *, where: str = "recall") -> Recall:
    """A Recall JSON object as a :class:`Recall`, item by item: malformed items are
    dropped and logged. Raises :class:`ValueError` when a list field is not a list."""
    meta = body.get("meta")
    query_time = meta.get("queryTime") if isinstance(meta, Mapping) else None
    return Recall(
        observations=_items(body, "observations", Observation, where),
        summaries=_items(body, "summaries", Summary, where),
        communications=_items(body, "communications", MemoryCommunication, where),
        query_time_ms=query_time
        if isinstance(query_time, int) and not isinstance(query_time, bool) else None,
    )


def _items(body: Mapping[str, Any], key: str, cls: type[T], where: str) -> tuple[T, ...]:
    raw = body.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"field {key!r} should be a list, got {type(raw).__name__}")
    items: list[T] = []
    for index, item in enumerate(raw):
        try:
            items.append(camel.structure(item, cls))
        except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
            logger.warning("%s: dropping malformed %s[%d]: %s", where, key, index,
                           excerpt(exc))
    return tuple(items)


class MemoryClient:
    """Calls to Conversation Memory. Every method takes the store id first, since the
    store is learned from the Orchestrator configuration at start-up."""

    def __init__(self, http: ServiceHTTP) -> None:
        self._http = http

    def __repr__(self) -> str:
        return "MemoryClient()"

    async def lookup_profile(self, store_id: str, *, id_type: str, value: str) -> ProfileLookup:
        """Profiles whose identifier ``id_type`` (``"phone"``, ``"email"``) is ``value``."""
        reply = await self._http.request(
            Product.MEMORY, "POST", f"/v1/Stores/{path_segment(store_id)}/Profiles/Lookup",
            json_body={"idType": id_type, "value": value}, idempotent=True,
        )
        return decode(reply, ProfileLookup)

    async def get_profile(
        self, store_id: str, profile_id: str, *, trait_groups: Sequence[str] = ()
    ) -> MemoryProfile:
        """One profile; only the named trait groups when ``trait_groups`` is not empty.

        Raises :class:`~tac_actors.services.errors.NotFound` for an unknown profile.
        """
        params = {"traitGroups": ",".join(trait_groups) if trait_groups else None}
        reply = await self._http.request(
            Product.MEMORY, "GET",
            f"/v1/Stores/{path_segment(store_id)}/Profiles/{path_segment(profile_id)}",
            params=params,
        )
        return decode(reply, MemoryProfile)

    async def recall(
        self,
        store_id: str,
        profile_id: str,
        *,
        conversation_id: str | None = None,
        query: str | None = None,
        observations_limit: int | None = None,
        summaries_limit: int | None = None,
        communications_limit: int | None = None,
        relevance_threshold: float | None = None,
        begin_date: str | None = None,
        end_date: str | None = None,
    ) -> Recall:
        """What Memory recalls for a profile. An empty ``query`` is sent as none; a
        longer one is cut to the API's 1,024 characters."""
        body: dict[str, Any] = {
            "conversationId": conversation_id,
            "query": query[:1024] if query else None,
            "observationsLimit": observations_limit,
            "summariesLimit": summaries_limit,
            "communicationsLimit": communications_limit,
            "relevanceThreshold": relevance_threshold,
            "beginDate": begin_date,
            "endDate": end_date,
        }
        reply = await self._http.request(
            Product.MEMORY, "POST",
            f"/v1/Stores/{path_segment(store_id)}/Profiles/{path_segment(profile_id)}/Recall",
            json_body={k: v for k, v in body.items() if v is not None}, idempotent=True,
        )
        try:
            return parse_recall(reply.object(), where=f"memory {reply.url_path}")
        except ValueError as exc:
            raise reply.bad(str(exc)) from None

    async def create_profile(
        self, store_id: str, *, traits: Mapping[str, Mapping[str, Any]],
        idempotency_key: str | None = None,
    ) -> str:
        """Create (or resolve to an existing) profile from traits; returns its id."""
        reply = await self._http.request(
            Product.MEMORY, "POST", f"/v1/Stores/{path_segment(store_id)}/Profiles",
            json_body={"traits": {k: dict(v) for k, v in traits.items()}},
            idempotency_key=idempotency_key,
        )
        profile_id = reply.object().get("id")
        if not isinstance(profile_id, str) or not profile_id:
            raise reply.bad("missing field 'id'")
        return profile_id

    async def create_observation(
        self,
        store_id: str,
        profile_id: str,
        *,
        content: str,
        source: str = "tac-actors",
        conversation_ids: Sequence[str] = (),
        occurred_at: str | None = None,
        idempotency_key: str | None = None,
    ) -> Mapping[str, Any]:
        """Record one observation (``occurred_at`` defaults to now, UTC ISO 8601);
        returns the service's JSON answer."""
        observation: dict[str, Any] = {
            "content": content,
            "source": source,
            "occurredAt": occurred_at or datetime.now(UTC).isoformat(),
        }
        if conversation_ids:
            observation["conversationIds"] = list(conversation_ids)
        reply = await self._http.request(
            Product.MEMORY, "POST",
            f"/v1/Stores/{path_segment(store_id)}/Profiles/{path_segment(profile_id)}/Observations",
            json_body={"observations": [observation]}, idempotency_key=idempotency_key,
        )
        return reply.object() if reply.body is not None else {}

    async def create_summary(
        self,
        store_id: str,
        profile_id: str,
        *,
        content: str,
        conversation_id: str,
        occurred_at: str | None = None,
        source: str = "tac-actors",
        idempotency_key: str | None = None,
    ) -> Mapping[str, Any]:
        """Record a summary of one conversation; returns the service's JSON answer."""
        summary = {
            "content": content,
            "conversationId": conversation_id,
            "occurredAt": occurred_at or datetime.now(UTC).isoformat(),
            "source": source,
        }
        reply = await self._http.request(
            Product.MEMORY, "POST",
            f"/v1/Stores/{path_segment(store_id)}/Profiles/{path_segment(profile_id)}/ConversationSummaries",
            json_body={"summaries": [summary]}, idempotency_key=idempotency_key,
        )
        return reply.object() if reply.body is not None else {}
