"""LLM adapters: one turn of an agent as a stream of text tokens, with tools.

:class:`OpenAIChatAgent` (Chat Completions) and :class:`AnthropicChatAgent` (Messages)
speak the HTTP APIs directly with httpx and share one loop (:class:`ChatAgent`): stream a
step, run its tool calls concurrently with the session injected, send the results,
repeat up to ``max_steps``. Failures are :class:`LLMError`; cancellation (a barge-in)
closes the HTTP stream at once::

    from tac_actors.llm import OpenAIChatAgent

    agent = OpenAIChatAgent(model="gpt-4o-mini", instructions="You are ...",
                            tools=[lookup_order])

    @tac.on_message_ready
    async def on_message(message, session, memory):
        return agent.stream(message, session, memory)

Test agents against :mod:`tac_actors.testing.fake_llm`.
"""

from tac_actors.llm.anthropic import AnthropicChatAgent, AnthropicStreamDecoder
from tac_actors.llm.base import (
    DEFAULT_TIMEOUT,
    STEP_LIMIT_TEXT,
    ChatAgent,
    ChatAgentStatistics,
    StepOutcome,
    StreamDecoder,
)
from tac_actors.llm.errors import LLMError
from tac_actors.llm.openai import OpenAIChatAgent, OpenAIStreamDecoder
from tac_actors.llm.prompt import conversation_turns, profile_prompt, system_prompt
from tac_actors.llm.sse import SSEEvent, SSEParser

__all__ = [
    "DEFAULT_TIMEOUT",
    "STEP_LIMIT_TEXT",
    "AnthropicChatAgent",
    "AnthropicStreamDecoder",
    "ChatAgent",
    "ChatAgentStatistics",
    "LLMError",
    "OpenAIChatAgent",
    "OpenAIStreamDecoder",
    "SSEEvent",
    "SSEParser",
    "StepOutcome",
    "StreamDecoder",
    "conversation_turns",
    "profile_prompt",
    "system_prompt",
]
