"""An LLM agent on OpenAI's Chat Completions API, with tools and memory.

    export OPENAI_API_KEY=sk-...            # required; OPENAI_MODEL optional
    tac-actors dev examples/openai_agent.py:tac

The reply streams token by token (a barge-in closes the HTTP stream at once); the
system prompt carries what memory knows and the caller's profile; the model may search
the knowledge base, recall memory, look up an order, or hand over to a human.
Without ``OPENAI_API_KEY`` the server still starts, and every caller is told what is
missing (and the log says it once at start-up).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

from tac_actors import TAC, ConversationSession, TACMemoryResponse
from tac_actors.llm import OpenAIChatAgent
from tac_actors.tools import ToolRegistry, function_tool
from tac_actors.tools.builtins import (
    create_knowledge_tool,
    create_memory_tool,
    create_studio_handoff_tool,
)

log = logging.getLogger("examples.openai_agent")

tac = TAC()


@function_tool
async def order_status(order_id: str) -> dict[str, str]:
    """Look up where an order is.

    Args:
        order_id: The order number the customer gave, e.g. "A-1042".
    """
    return {"order_id": order_id, "status": "shipped", "eta": "in two days"}


tools = ToolRegistry([
    order_status,
    create_knowledge_tool(tac),
    create_memory_tool(tac),
    create_studio_handoff_tool(tac),
])

MISSING = ("This demo agent has no OpenAI key. Set the OPENAI_API_KEY environment variable "
           "and restart the server to talk to the model.")

if os.environ.get("OPENAI_API_KEY"):
    agent: OpenAIChatAgent | None = OpenAIChatAgent(
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        instructions="You are a friendly phone concierge for a small store. Keep answers to "
                     "one or two short sentences: they are spoken aloud.",
        tools=tools,
    )
else:
    agent = None
    log.warning("OPENAI_API_KEY is not set: callers will be told the agent is not configured")


@tac.on_message_ready
async def on_message(message: str, session: ConversationSession,
                     memory: TACMemoryResponse) -> str | AsyncIterator[str]:
    if agent is None:
        return MISSING
    return agent.stream(message, session, memory)
