"""Conversation Memory, emulated: stores, profiles, identifiers, Recall and the writes.

Identity resolution is simple and predictable: a profile is found by every ``phone``
and ``email`` trait it has (in any trait group) plus any identifiers the seed lists.
Phones are normalised to ``+digits`` and emails to lower case. A ``/Recall`` with a
query ranks observations by BM25 (best first, then the rest by recency); without one,
most recent first. Summaries come most recent first; communications are those of the
conversations where the profile is a participant, latest last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from quart import Blueprint, request

from tac_actors.emulator.common import json_object, optional_str, required_str
from tac_actors.emulator.db import ApiError, Database, now_iso

__all__ = [
    "add_observation",
    "add_profile",
    "add_summary",
    "blueprint",
    "lookup",
    "normalize",
    "resolve_address",
]

_PREFIX = re.compile(r"^(whatsapp|rcs|sms|mms|tel|voice):", re.IGNORECASE)
_IDENTIFIER_TRAITS = {"phone": "phone", "email": "email"}


def normalize(id_type: str, value: str) -> str:
    """The value Memory matches on: ``+digits`` for phones, lower case for emails."""
    value = _PREFIX.sub("", value.strip())
    if id_type == "phone":
        digits = re.sub(r"[^0-9]", "", value)
        return "+" + digits if digits else value
    if id_type == "email":
        return value.lower()
    return value


def _identifier_key(store_id: str, id_type: str, value: str) -> str:
    return f"{store_id}|{id_type}|{normalize(id_type, value)}"


def _link(db: Database, store_id: str, id_type: str, value: str, profile_id: str) -> None:
    key = _identifier_key(store_id, id_type, value)
    doc = db.get("identifier", key) or {"profiles": []}
    if profile_id not in doc["profiles"]:
        doc["profiles"].append(profile_id)
    db.put("identifier", doc, parent=store_id, doc_id=key)


def _traits_identifiers(traits: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for group in traits.values():
        if isinstance(group, Mapping):
            for name, value in group.items():
                id_type = _IDENTIFIER_TRAITS.get(name.lower())
                if id_type and isinstance(value, str) and value:
                    yield id_type, value


def ensure_store(db: Database, store_id: str) -> None:
    if db.get("store", store_id) is None:
        db.put("store", {"id": store_id})


def add_profile(
    db: Database,
    store_id: str,
    traits: Mapping[str, Any],
    *,
    profile_id: str | None = None,
    created_at: str | None = None,
    identifiers: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """Create a profile and index its identifiers (from traits and ``identifiers``)."""
    ensure_store(db, store_id)
    profile: dict[str, Any] = {
        "id": profile_id or db.new_id("mem_profile"),
        "createdAt": created_at or now_iso(),
        "traits": {k: dict(v) for k, v in traits.items()},
    }
    db.put("profile", profile, parent=store_id)
    pairs: list[tuple[str, str]] = list(_traits_identifiers(traits))
    for id_type, values in (identifiers or {}).items():
        pairs.extend((id_type, v) for v in values)
    for id_type, value in pairs:
        _link(db, store_id, id_type, value, profile["id"])
    return profile


def lookup(db: Database, store_id: str, id_type: str, value: str) -> dict[str, Any]:
    doc = db.get("identifier", _identifier_key(store_id, id_type, value))
    return {
        "normalizedValue": normalize(id_type, value),
        "profiles": list(doc["profiles"]) if doc else [],
    }


def resolve_address(db: Database, store_id: str, address: str) -> str | None:
    """The profile of an address (email if it has an ``@``, else phone), if any."""
    id_type = "email" if "@" in address else "phone"
    found = lookup(db, store_id, id_type, address)["profiles"]
    return found[0] if found else None


def add_observation(db: Database, profile_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    now = data.get("occurredAt") or now_iso()
    observation = {
        "id": data.get("id") or db.new_id("mem_observation"),
        "content": data["content"],
        "source": data.get("source") or "emulator",
        "createdAt": data.get("createdAt") or now,
        "updatedAt": data.get("updatedAt") or now,
        "occurredAt": now,
        "conversationIds": list(data.get("conversationIds") or []),
    }
    db.put("observation", observation, parent=profile_id)
    db.index_text("observation", observation["id"], profile_id, "", observation["content"])
    return observation


def add_summary(db: Database, profile_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    now = data.get("occurredAt") or now_iso()
    summary = {
        "id": data.get("id") or db.new_id("mem_summary"),
        "content": data["content"],
        "conversationId": data.get("conversationId"),
        "source": data.get("source") or "emulator",
        "createdAt": data.get("createdAt") or now,
        "updatedAt": data.get("updatedAt") or now,
        "occurredAt": now,
    }
    db.put("summary", summary, parent=profile_id)
    return summary


def _profile_in(db: Database, store_id: str, profile_id: str) -> dict[str, Any]:
    if db.get("store", store_id) is None:
        raise ApiError(404, f"Memory store {store_id} was not found")
    profile = db.get("profile", profile_id)
    if profile is None or db.parent_of("profile", profile_id) != store_id:
        raise ApiError(404, f"Profile {profile_id} was not found")
    return profile


def _limit(body: Mapping[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ApiError(400, f"{key} must be an integer within 0..100")
    return value


def recall(db: Database, profile_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    query = optional_str(body, "query")
    if query is not None and not 1 <= len(query) <= 1024:
        raise ApiError(400, "query must be 1 to 1024 characters long")
    observations = sorted(db.all("observation", parent=profile_id),
                          key=lambda o: o["occurredAt"], reverse=True)
    if query:
        ranked = [doc_id for doc_id, _ in db.search_text("observation", profile_id, query, 100)]
        order = {doc_id: i for i, doc_id in enumerate(ranked)}
        observations.sort(key=lambda o: order.get(o["id"], len(order)))
    summaries = sorted(db.all("summary", parent=profile_id),
                       key=lambda s: s["occurredAt"], reverse=True)
    limit = _limit(body, "communicationsLimit", 0)
    communications = _communications_of(db, profile_id)[-limit:] if limit else []
    return {
        "observations": observations[: _limit(body, "observationsLimit", 20)],
        "summaries": summaries[: _limit(body, "summariesLimit", 5)],
        "communications": communications,
        "meta": {"queryTime": 3 if query else 1},
    }


def _communications_of(db: Database, profile_id: str) -> list[dict[str, Any]]:
    participants = {p["id"]: p for p in db.all("participant")}
    conversations = {p["conversationId"] for p in participants.values()
                     if p.get("profileId") == profile_id}

    def person(ref: Mapping[str, Any]) -> dict[str, Any]:
        found = participants.get(ref.get("participantId") or "", {})
        return {
            "id": ref.get("participantId") or "",
            "name": found.get("name") or ref.get("address", ""),
            "address": ref.get("address", ""),
            "channel": ref.get("channel", "SMS"),
            "type": found.get("type"),
            "profileId": found.get("profileId"),
        }

    result = []
    for conversation_id in sorted(conversations):
        for c in db.all("communication", parent=conversation_id):
            result.append({
                "id": c["id"],
                "author": person(c["author"]),
                "content": {"text": c["content"].get("text")},
                "recipients": [person(r) for r in c.get("recipients", [])],
                "channelId": c.get("channelId"),
                "createdAt": c["createdAt"],
            })
    result.sort(key=lambda c: c["createdAt"])
    return result


def blueprint(db: Database) -> Blueprint:
    bp = Blueprint("memory", __name__)
    base = "/v1/Stores/<store_id>/Profiles"

    @bp.post(f"{base}/Lookup")
    async def lookup_route(store_id: str) -> Any:
        body = await json_object()
        id_type, value = required_str(body, "idType"), required_str(body, "value")
        if db.get("store", store_id) is None:
            raise ApiError(404, f"Memory store {store_id} was not found")
        return lookup(db, store_id, id_type, value)

    @bp.post(base)
    async def create_profile(store_id: str) -> Any:
        body = await json_object()
        traits = body.get("traits")
        if db.get("store", store_id) is None:
            raise ApiError(404, f"Memory store {store_id} was not found")
        if not isinstance(traits, dict) or not all(isinstance(g, dict) for g in traits.values()):
            raise ApiError(400, "traits must map trait groups to objects")
        pairs = list(_traits_identifiers(traits))
        if not pairs:
            raise ApiError(400, "Identity resolution failed: no identifier trait")
        existing = lookup(db, store_id, *pairs[0])["profiles"]
        profile_id = existing[0] if existing else add_profile(db, store_id, traits)["id"]
        db.put("api_profile", {"id": db.new_id("rec"), "storeId": store_id,
                               "profileId": profile_id, "traits": traits})
        return {"id": profile_id}, 202

    @bp.get(f"{base}/<profile_id>")
    async def get_profile(store_id: str, profile_id: str) -> Any:
        profile = _profile_in(db, store_id, profile_id)
        groups = request.args.get("traitGroups")
        if groups:
            wanted = {g.strip() for g in groups.split(",") if g.strip()}
            profile["traits"] = {k: v for k, v in profile["traits"].items() if k in wanted}
        return profile

    @bp.post(f"{base}/<profile_id>/Recall")
    async def recall_route(store_id: str, profile_id: str) -> Any:
        body = await json_object()
        _profile_in(db, store_id, profile_id)
        return recall(db, profile_id, body)

    @bp.post(f"{base}/<profile_id>/Observations")
    async def create_observations(store_id: str, profile_id: str) -> Any:
        body = await json_object()
        _profile_in(db, store_id, profile_id)
        items = _items(body, "observations")
        created = []
        for item in items:
            required_str(item, "content", where="observations[].")
            created.append(add_observation(db, profile_id, item))
        for observation in created:
            db.put("api_observation", {"id": observation["id"], "storeId": store_id,
                                       "profileId": profile_id, **observation})
        return {"observations": created}, 201

    @bp.post(f"{base}/<profile_id>/ConversationSummaries")
    async def create_summaries(store_id: str, profile_id: str) -> Any:
        body = await json_object()
        _profile_in(db, store_id, profile_id)
        items = _items(body, "summaries")
        for item in items:
            required_str(item, "content", where="summaries[].")
            required_str(item, "conversationId", where="summaries[].")
        for item in items:
            summary = add_summary(db, profile_id, item)
            db.put("api_summary", {"storeId": store_id, "profileId": profile_id, **summary})
        return {"message": "Summaries creation accepted"}, 202

    return bp


def _items(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ApiError(400, f"{key} must be a non-empty list of objects")
    return items
