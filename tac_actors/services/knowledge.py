"""Enterprise Knowledge client (``knowledge.twilio.com``): knowledge base metadata and
search. Search is a POST that only reads, so it is retried like a GET."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from tac_actors.services.http import Product, ServiceHTTP, path_segment
from tac_actors.services.wire import decode, decode_list

__all__ = ["KnowledgeBase", "KnowledgeChunk", "KnowledgeClient"]


@attrs.frozen(kw_only=True)
class KnowledgeBase:
    """``GET /v2/ControlPlane/KnowledgeBases/{id}``."""

    id: str
    display_name: str | None = None
    description: str | None = None
    status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    version: int | None = None


@attrs.frozen(kw_only=True)
class KnowledgeChunk:
    """One search hit; a higher ``score`` is more relevant."""

    content: str
    knowledge_id: str | None = None
    created_at: str | None = None
    score: float | None = None


class KnowledgeClient:
    """Calls to Enterprise Knowledge through the shared client."""

    def __init__(self, http: ServiceHTTP) -> None:
        self._http = http

    def __repr__(self) -> str:
        return "KnowledgeClient()"

    async def get_knowledge_base(self, knowledge_base_id: str) -> KnowledgeBase:
        reply = await self._http.request(
            Product.KNOWLEDGE, "GET",
            f"/v2/ControlPlane/KnowledgeBases/{path_segment(knowledge_base_id)}"
        )
        return decode(reply, KnowledgeBase)

    async def search(
        self,
        knowledge_base_id: str,
        query: str,
        *,
        top: int = 5,
        knowledge_ids: Sequence[str] = (),
    ) -> tuple[KnowledgeChunk, ...]:
        """The ``top`` best chunks for ``query``, best first (``top`` within 1..20)."""
        if not 1 <= top <= 20:
            raise ValueError(f"top must be within 1..20, got {top}")
        body: dict[str, object] = {"query": query[:2048], "top": top}
        if knowledge_ids:
            body["knowledgeIds"] = list(knowledge_ids)
        reply = await self._http.request(
            Product.KNOWLEDGE, "POST",
            f"/v2/KnowledgeBases/{path_segment(knowledge_base_id)}/Search",
            json_body=body, idempotent=True,
        )
        return decode_list(reply, "chunks", KnowledgeChunk)
