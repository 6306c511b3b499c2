"""OpenAI Chat Completions, streamed, with tools: :class:`OpenAIChatAgent`.

Speaks ``POST {base_url}/chat/completions`` with ``stream: true`` over httpx (no SDK), so
any OpenAI-compatible server works (set ``base_url``; ``OPENAI_BASE_URL`` and
``OPENAI_API_KEY`` are read when it and ``api_key`` are not given)::

    from tac_actors.llm import OpenAIChatAgent

    agent = OpenAIChatAgent(model="gpt-4o-mini", instructions="You are ...",
                            tools=[lookup_order])

    @tac.on_message_ready
    async def on_message(message, session, memory):
        return agent.stream(message, session, memory)

The system message holds the instructions, memory's sections and the profile traits;
the session history follows as user/assistant messages, then the message. Streamed
``tool_calls`` fragments are put together by index; the calls run concurrently with the
session injected, and the next request carries the assistant's ``tool_calls`` message
and one ``role: tool`` message per result. See :class:`~tac_actors.llm.base.ChatAgent`
for the options, the errors and cancellation.
"""

from __future__ import annotations

from typing import Any

import attrs

from tac_actors.llm.base import ChatAgent, Message, StepOutcome, event_object
from tac_actors.llm.errors import LLMError
from tac_actors.llm.prompt import Turn
from tac_actors.llm.sse import SSEEvent
from tac_actors.tools import ToolCall, ToolResult

__all__ = ["OpenAIChatAgent", "OpenAIStreamDecoder"]

_PROVIDER = "openai"


class OpenAIChatAgent(ChatAgent):
    """A :class:`~tac_actors.llm.base.ChatAgent` on OpenAI Chat Completions."""

    provider = _PROVIDER
    default_base_url = "https://api.openai.com/v1"
    base_url_env = "OPENAI_BASE_URL"
    api_key_env = "OPENAI_API_KEY"
    path = "/chat/completions"

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def initial_messages(self, system: str, turns: list[Turn]) -> list[Message]:
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        messages.extend({"role": role, "content": text} for role, text in turns)
        return messages

    def request_body(self, system: str, messages: list[Message]) -> Message:
        body: Message = {"model": self.model, "messages": messages, "stream": True}
        if self.registry:
            body["tools"] = self.registry.definitions("openai")
        return body

    def decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def tool_messages(self, outcome: StepOutcome, results: list[ToolResult]) -> list[Message]:
        assistant: Message = {
            "role": "assistant",
            "content": outcome.text or None,
            "tool_calls": [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments}}
                for call in outcome.tool_calls
            ],
        }
        return [assistant, *(
            {"role": "tool", "tool_call_id": result.call_id, "content": result.content}
            for result in results
        )]


@attrs.define
class _CallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = attrs.Factory(list)


class OpenAIStreamDecoder:
    """Chat Completions chunks in, text deltas and a :class:`StepOutcome` out. Sans-IO.

    Reads choice 0 only. ``data: [DONE]`` ends the stream; a stream that ends without it
    is still complete when a ``finish_reason`` arrived (some compatible servers omit
    ``[DONE]``). An ``{"error": ...}`` chunk raises :class:`LLMError`.
    """

    def __init__(self) -> None:
        self.done = False
        self._text: list[str] = []
        self._calls: dict[int, _CallParts] = {}
        self._finish: str | None = None

    def feed(self, event: SSEEvent) -> str:
        if self.done:
            return ""
        if event.data.strip() == "[DONE]":
            self.done = True
            return ""
        chunk = event_object(event, _PROVIDER)
        if "error" in chunk:
            raise LLMError.from_payload(chunk, status=200, provider=_PROVIDER)
        text: list[str] = []
        for choice in _list(chunk.get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str):
                    text.append(content)
                for fragment in _list(delta.get("tool_calls")):
                    self._add_fragment(fragment)
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
        joined = "".join(text)
        self._text.append(joined)
        return joined

    def outcome(self) -> StepOutcome:
        if not self.done and self._finish is None:
            raise LLMError("the stream ended before the reply was complete", kind="bad_stream",
                           provider=_PROVIDER)
        calls = tuple(
            ToolCall(parts.id or f"call_{index}", parts.name, "".join(parts.arguments) or "{}")
            for index, parts in sorted(self._calls.items())
            if parts.name
        )
        return StepOutcome("".join(self._text), calls, self._finish)

    def _add_fragment(self, fragment: Any) -> None:
        if not isinstance(fragment, dict):
            raise _bad("a tool call fragment is not an object")
        index = fragment.get("index", 0)
        if not isinstance(index, int):
            raise _bad("a tool call fragment has no integer index")
        parts = self._calls.setdefault(index, _CallParts())
        if isinstance(fragment.get("id"), str):
            parts.id = fragment["id"]
        function = fragment.get("function")
        if isinstance(function, dict):
            if isinstance(function.get("name"), str):
                parts.name += function["name"]
            if isinstance(function.get("arguments"), str):
                parts.arguments.append(function["arguments"])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _bad(message: str) -> LLMError:
    return LLMError(message, kind="bad_stream", provider=_PROVIDER)
