"""Seed fixtures: the JSON that fills an emulator at start.

Shape (every key optional; objects are written as the API would answer them)::

    {
      "accountSid": "AC...",
      "configurations": [{"id": "conv_configuration_x", "memoryStoreId": "mem_store_x", ...}],
      "memoryStores": [{
        "id": "mem_store_x",
        "profiles": [{
          "id": "mem_profile_x", "traits": {"Contact": {"phone": "+1555..."}},
          "identifiers": {"phone": ["+1555..."]},
          "observations": [{"content": "...", "occurredAt": "..."}],
          "summaries": [{"content": "...", "conversationId": "..."}]
        }]
      }],
      "conversations": [{
        "id": "...", "configurationId": "...", "status": "ACTIVE",
        "participants": [{"id": "...", "type": "CUSTOMER", "addresses": [...]}],
        "communications": [{"author": {"participantId": "..."}, "text": "...",
                            "createdAt": "..."}]
      }],
      "knowledgeBases": [{"id": "...", "displayName": "...",
                          "documents": [{"id": "...", "title": "...", "content": "..."}]}]
    }

Phone and email traits are identifiers automatically. A malformed seed raises
:class:`SeedError` naming the offending place; nothing is half-loaded from a seed that
fails validation of its top level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tac_actors.emulator import knowledge, memory, orchestrator
from tac_actors.emulator.db import Database

__all__ = ["EXAMPLE_SEED", "SeedError", "load_seed", "read_seed"]

#: the seed shipped with the package (caller +15551230001, Ada Lovelace)
EXAMPLE_SEED = Path(__file__).with_name("seed_example.json")

_TOP_LEVEL = {"accountSid", "configurations", "memoryStores", "conversations",
              "knowledgeBases", "description"}


class SeedError(ValueError):
    """The seed fixture is not valid."""


def read_seed(seed: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The seed as a dict: a mapping as is, else the JSON file at that path."""
    if isinstance(seed, Mapping):
        data: Any = dict(seed)
    else:
        try:
            data = json.loads(Path(seed).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SeedError(f"cannot read seed {seed}: {exc}") from exc
    if not isinstance(data, dict):
        raise SeedError("a seed must be a JSON object")
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise SeedError(f"unknown seed keys: {sorted(unknown)}")
    for key in _TOP_LEVEL - {"accountSid", "description"}:
        _list(data, key, "$")
    return data


def _list(data: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SeedError(f"{where}.{key} must be a list of objects")
    return items


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise SeedError(f"{where}.{key} must be a non-empty string")
    return value


def load_seed(db: Database, seed: str | Path | Mapping[str, Any]) -> str:
    """Load ``seed`` into ``db``; returns the account SID it names (or the default)."""
    data = read_seed(seed)
    account_sid = data.get("accountSid") or "AC" + "0" * 32
    for i, configuration in enumerate(_list(data, "configurations", "$")):
        _text(configuration, "id", f"$.configurations[{i}]")
        db.put("configuration", {"statusCallbacks": [], **configuration})
        if configuration.get("memoryStoreId"):
            memory.ensure_store(db, configuration["memoryStoreId"])
    for i, store in enumerate(_list(data, "memoryStores", "$")):
        _load_store(db, store, f"$.memoryStores[{i}]")
    for i, conversation in enumerate(_list(data, "conversations", "$")):
        _load_conversation(db, account_sid, conversation, f"$.conversations[{i}]")
    for i, base in enumerate(_list(data, "knowledgeBases", "$")):
        where = f"$.knowledgeBases[{i}]"
        _text(base, "id", where)
        knowledge.add_knowledge_base(db, base)
        for j, document in enumerate(_list(base, "documents", where)):
            _text(document, "content", f"{where}.documents[{j}]")
            knowledge.add_document(db, base["id"], document)
    return str(account_sid)


def _load_store(db: Database, store: Mapping[str, Any], where: str) -> None:
    store_id = _text(store, "id", where)
    memory.ensure_store(db, store_id)
    for i, profile in enumerate(_list(store, "profiles", where)):
        at = f"{where}.profiles[{i}]"
        traits = profile.get("traits", {})
        if not isinstance(traits, dict) or not all(isinstance(g, dict) for g in traits.values()):
            raise SeedError(f"{at}.traits must map trait groups to objects")
        identifiers = profile.get("identifiers", {})
        if not isinstance(identifiers, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v)
            for v in identifiers.values()
        ):
            raise SeedError(f"{at}.identifiers must map id types to lists of strings")
        created = memory.add_profile(
            db, store_id, traits, profile_id=profile.get("id"),
            created_at=profile.get("createdAt"), identifiers=identifiers,
        )
        for j, observation in enumerate(_list(profile, "observations", at)):
            _text(observation, "content", f"{at}.observations[{j}]")
            memory.add_observation(db, created["id"], observation)
        for j, summary in enumerate(_list(profile, "summaries", at)):
            _text(summary, "content", f"{at}.summaries[{j}]")
            memory.add_summary(db, created["id"], summary)


def _load_conversation(db: Database, account_sid: str, data: Mapping[str, Any],
                       where: str) -> None:
    conversation = orchestrator.create_conversation(
        db, account_sid, _text(data, "configurationId", where),
        name=data.get("name"), status=data.get("status", "ACTIVE"),
        conversation_id=data.get("id"),
        participants=_list(data, "participants", where),
    )
    participants = {p["id"]: p for p in db.all("participant", parent=conversation["id"])}
    for i, item in enumerate(_list(data, "communications", where)):
        at = f"{where}.communications[{i}]"
        author = item.get("author")
        if not isinstance(author, dict):
            raise SeedError(f"{at}.author must be an object")
        if "participantId" in author:
            participant = participants.get(author["participantId"])
            if participant is None:
                raise SeedError(f"{at}.author names an unknown participant")
            first = participant["addresses"][0] if participant["addresses"] else {}
            author = {"participantId": participant["id"],
                      "address": first.get("address", ""), "channel": first.get("channel", "SMS")}
        orchestrator.add_communication(
            db, conversation, author=author, text=_text(item, "text", at),
            created_at=item.get("createdAt"), communication_id=item.get("id"),
            channel_id=item.get("channelId"),
        )
