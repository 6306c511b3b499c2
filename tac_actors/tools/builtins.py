"""Built-in tools for the Twilio services: knowledge search, memory retrieval, handoff.

Each factory returns a :class:`FunctionTool` to put in a :class:`ToolRegistry` with your
own tools. They reach the services through the :class:`~tac_actors.TAC` at call time, so
they can be created at import, before the server runs. A tool that cannot work (no
Orchestrator mode, no knowledge base configured) raises, which the registry hands to the
LLM as an error result it can explain, never a failed turn.

The session is injected by the registry (``registry.run_calls(calls, session)``), or
bound at creation for the reference SDK's ``create_*_tool(tac, session)`` call shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tac_actors.services.errors import ServiceError
from tac_actors.session import ConversationSession
from tac_actors.tools.function_tool import FunctionTool, create_tool
from tac_actors.usercode import trio_native

if TYPE_CHECKING:
    from tac_actors.tac import TAC

__all__ = [
    "create_knowledge_tool",
    "create_memory_tool",
    "create_studio_handoff_tool",
    "handoff_payload",
]

HISTORY_IN_HANDOFF = 10


def _session_of(bound: ConversationSession | None, given: ConversationSession | None
                ) -> ConversationSession:
    session = bound or given
    if session is None:
        raise RuntimeError("this tool needs the conversation's session: pass it to "
                           "run_calls(calls, session)")
    return session


def create_knowledge_tool(tac: TAC, knowledge_base_id: str | None = None, *,
                          name: str = "search_knowledge",
                          description: str | None = None, top_k: int = 5) -> FunctionTool:
    """Search an Enterprise Knowledge base (default: ``TWILIO_KNOWLEDGE_BASE_ID``).

    The tool answers ``{"results": [{"content", "score"}...]}``, best first.
    """
    if not 1 <= top_k <= 20:
        raise ValueError(f"top_k must be within 1..20, got {top_k}")

    @trio_native
    async def search(query: str) -> dict[str, Any]:
        kb = knowledge_base_id or tac.config.knowledge_base_id
        if not kb:
            raise RuntimeError("no knowledge base is configured (TWILIO_KNOWLEDGE_BASE_ID)")
        if tac.services is None:
            raise RuntimeError("knowledge search needs Orchestrator mode and a running server")
        chunks = await tac.services.knowledge.search(kb, query, top=top_k)
        return {"results": [{"content": c.content, "score": c.score} for c in chunks]}

    return create_tool(
        name,
        description or "Search the company knowledge base (policies, hours, products) and "
                       "return the most relevant passages. Use it before answering factual "
                       "questions about the business.",
        {"type": "object", "properties": {"query": {
            "type": "string", "description": "What to look for, in a few words."}},
         "required": ["query"]},
        search,
    )


def create_memory_tool(tac: TAC, session: ConversationSession | None = None, *,
                       name: str = "retrieve_profile_memory") -> FunctionTool:
    """Recall what memory knows about the person for a query (observations, summaries)."""

    @trio_native
    async def recall(query: str, session: ConversationSession | None = None
                     ) -> dict[str, Any]:
        memory = await tac.retrieve_memory(_session_of(bound, session), query)
        return {
            "observations": [o.content for o in memory.observations],
            "summaries": [s.content for s in memory.summaries],
            "recent_messages": [f"{c.role}: {c.text}" for c in memory.communications],
        }

    bound = session
    return create_tool(
        name,
        "Recall what we know about this customer that is relevant to a question: facts "
        "learned in earlier conversations and their summaries.",
        {"type": "object", "properties": {"query": {
            "type": "string", "description": "The topic to recall, e.g. 'past orders'."}},
         "required": ["query"]},
        recall,
    )


def handoff_payload(tac: TAC, session: ConversationSession, reason: str,
                    attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The context a human agent receives: who, where, why, and what was said."""
    store = getattr(tac.memory_provider, "memory_store_id", None)
    said = [f"{e.role}: {e.text}" for e in session.history[-HISTORY_IN_HANDOFF:]]
    return {
        "conversationId": session.conversation_id,
        "callSid": session.call_sid,
        "profileId": session.profile_id,
        "storeId": store,
        "channel": str(session.channel),
        "customer": session.caller,
        "reason": reason,
        "summary": " | ".join(said),
        "attributes": {**(attributes or {}), "reason": reason},
    }


def create_studio_handoff_tool(tac: TAC, session: ConversationSession | None = None, *,
                               attributes: Mapping[str, Any] | None = None,
                               name: str = "handoff",
                               description: str | None = None) -> FunctionTool:
    """Hand the conversation to a human through the Studio Flow
    (``TWILIO_STUDIO_HANDOFF_FLOW_SID``).

    On voice the reply's last words are spoken, then ``end`` carries the payload (the
    ``<Connect action>`` goes to the flow) and the actor stops. On text channels the tool
    itself sets the Orchestrator conversation INACTIVE, clears its status callbacks and
    starts the Studio execution (any failure is returned as ``handoff_failed`` with the
    error, and nothing is handed off); the reply's words are the bot's last. The payload
    (:func:`handoff_payload`) carries the ids, the reason and the recent history.
    """

    @trio_native
    async def handoff(reason: str, session: ConversationSession | None = None
                      ) -> dict[str, str]:
        target = _session_of(bound, session)
        payload = handoff_payload(tac, target, reason, attributes)
        data = json.dumps(payload, separators=(",", ":"))
        runtime = tac.runtime
        messaging = runtime.messaging if runtime is not None else None
        if not target.channel.is_voice and messaging is not None:
            # text: close the Orchestrator conversation's door and start the Studio
            # execution now, so that a failure reaches the model
            try:
                await messaging.hand_off_now(target, data)
            except (ServiceError, LookupError) as exc:
                return {"status": "handoff_failed", "error": str(exc)[:300],
                        "instructions": "Tell the customer that no person can take over "
                                        "right now, and keep helping them yourself."}
        target.request_handoff(data)
        return {"status": "handoff_requested",
                "instructions": "Tell the customer, in one short sentence, that a person "
                                "will take over now. Do not ask anything else."}

    bound = session
    return create_tool(
        name,
        description or "Transfer the customer to a human agent. Use it when they ask for a "
                       "person, or when you cannot help.",
        {"type": "object", "properties": {"reason": {
            "type": "string", "description": "Why a human is needed, in one sentence."}},
         "required": ["reason"]},
        handoff,
    )
