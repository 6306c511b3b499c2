"""Enterprise Knowledge, emulated: knowledge bases whose documents are searched with
SQLite FTS5 and ranked by BM25.

A search matches any word of the query (porter-stemmed, so "returns" finds "return").
``score`` is ``b / (1 + b)`` where ``b`` is the negated BM25 rank: within 0..1, higher
is more relevant, best first. ``knowledgeIds`` restricts the search to those documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Blueprint

from tac_actors.emulator.common import json_object, required_str
from tac_actors.emulator.db import ApiError, Database, now_iso

__all__ = ["add_document", "add_knowledge_base", "blueprint", "search"]


def add_knowledge_base(db: Database, data: Mapping[str, Any]) -> dict[str, Any]:
    now = now_iso()
    base = {
        "id": data["id"],
        "displayName": data.get("displayName") or data["id"],
        "description": data.get("description") or "",
        "status": "ACTIVE",
        "createdAt": data.get("createdAt") or now,
        "updatedAt": data.get("updatedAt") or now,
        "version": 1,
    }
    db.put("knowledge_base", base)
    return base


def add_document(db: Database, knowledge_base_id: str,
                 data: Mapping[str, Any]) -> dict[str, Any]:
    document = {
        "id": data.get("id") or db.new_id("know_knowledge"),
        "title": data.get("title") or "",
        "content": data["content"],
        "createdAt": data.get("createdAt") or now_iso(),
    }
    db.put("document", document, parent=knowledge_base_id)
    db.index_text("document", document["id"], knowledge_base_id, document["title"],
                  document["content"])
    return document


def search(db: Database, knowledge_base_id: str, query: str, top: int,
           knowledge_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """The ``top`` best chunks, best first."""
    hits = db.search_text("document", knowledge_base_id, query, 100)
    chunks = []
    for doc_id, rank in hits:
        if knowledge_ids and doc_id not in knowledge_ids:
            continue
        document = db.get("document", doc_id)
        if document is None:
            continue
        relevance = max(rank, 0.0)
        chunks.append({
            "content": document["content"],
            "knowledgeId": doc_id,
            "createdAt": document["createdAt"],
            "score": round(relevance / (1.0 + relevance), 6),
        })
        if len(chunks) == top:
            break
    return chunks


def blueprint(db: Database) -> Blueprint:
    bp = Blueprint("knowledge", __name__)

    def knowledge_base(knowledge_base_id: str) -> dict[str, Any]:
        found = db.get("knowledge_base", knowledge_base_id)
        if found is None:
            raise ApiError(404, f"Knowledge base {knowledge_base_id} was not found")
        return found

    @bp.get("/v2/ControlPlane/KnowledgeBases/<knowledge_base_id>")
    async def get_knowledge_base(knowledge_base_id: str) -> Any:
        return knowledge_base(knowledge_base_id)

    @bp.post("/v2/KnowledgeBases/<knowledge_base_id>/Search")
    async def search_route(knowledge_base_id: str) -> Any:
        knowledge_base(knowledge_base_id)
        body = await json_object()
        query = required_str(body, "query")
        if len(query) > 2048:
            raise ApiError(400, "query must be at most 2048 characters long")
        top = body.get("top", 5)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 20:
            raise ApiError(400, "top must be an integer within 1..20")
        ids = body.get("knowledgeIds")
        if ids is not None and (not isinstance(ids, list)
                                or not all(isinstance(i, str) for i in ids)):
            raise ApiError(400, "knowledgeIds must be a list of strings")
        return {"chunks": search(db, knowledge_base_id, query, top, set(ids) if ids else None)}

    return bp
