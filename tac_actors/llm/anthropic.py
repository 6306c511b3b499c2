"""Anthropic Messages, streamed, with tools: :class:`AnthropicChatAgent`.

Speaks ``POST {base_url}/v1/messages`` with ``stream: true`` and
``anthropic-version: 2023-06-01`` over httpx (no SDK). ``ANTHROPIC_BASE_URL`` and
``ANTHROPIC_API_KEY`` are read when ``base_url`` and ``api_key`` are not given::

    from tac_actors.llm import AnthropicChatAgent

    agent = AnthropicChatAgent(model="claude-sonnet-4-5", instructions="You are ...",
                               tools=[lookup_order])

    @tac.on_message_ready
    async def on_message(message, session, memory):
        return agent.stream(message, session, memory)

The top-level ``system`` holds the instructions, memory's sections and the profile
traits; the session history follows as user/assistant messages (consecutive entries of
one role joined into one message), then the message. ``tool_use`` blocks are put
together from ``input_json_delta`` fragments; the calls run concurrently with the session
injected, and the next request carries the assistant's content blocks and a user message
of ``tool_result`` blocks (``is_error`` for failed calls). Extended-thinking blocks are
not supported. See :class:`~tac_actors.llm.base.ChatAgent` for the other options, the
errors and cancellation.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from tac_actors.llm.base import ChatAgent, Message, StepOutcome, event_object
from tac_actors.llm.errors import LLMError
from tac_actors.llm.prompt import Turn
from tac_actors.llm.sse import SSEEvent
from tac_actors.tools import ToolCall, ToolResult

__all__ = ["ANTHROPIC_VERSION", "AnthropicChatAgent", "AnthropicStreamDecoder"]

ANTHROPIC_VERSION = "2023-06-01"

_PROVIDER = "anthropic"


class AnthropicChatAgent(ChatAgent):
    """A :class:`~tac_actors.llm.base.ChatAgent` on the Anthropic Messages API.

    ``max_tokens`` (required by the API) bounds each step's output.
    """

    provider = _PROVIDER
    default_base_url = "https://api.anthropic.com"
    base_url_env = "ANTHROPIC_BASE_URL"
    api_key_env = "ANTHROPIC_API_KEY"
    path = "/v1/messages"

    def __init__(self, *, model: str, max_tokens: int = 1024, **options: Any) -> None:
        super().__init__(model=model, **options)
        self.max_tokens = max_tokens

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def initial_messages(self, system: str, turns: list[Turn]) -> list[Message]:
        messages: list[Message] = []
        for role, text in turns:
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"] += "\n\n" + text
            else:
                messages.append({"role": role, "content": text})
        return messages

    def request_body(self, system: str, messages: list[Message]) -> Message:
        body: Message = {"model": self.model, "max_tokens": self.max_tokens,
                         "messages": messages, "stream": True}
        if system:
            body["system"] = system
        if self.registry:
            body["tools"] = self.registry.definitions("anthropic")
        return body

    def decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def tool_messages(self, outcome: StepOutcome, results: list[ToolResult]) -> list[Message]:
        return [
            {"role": "assistant", "content": [dict(block) for block in outcome.content]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": result.call_id,
                 "content": result.content, **({} if result.ok else {"is_error": True})}
                for result in results
            ]},
        ]


@attrs.define
class _Block:
    type: str
    id: str = ""
    name: str = ""
    parts: list[str] = attrs.Factory(list)
    input: Any = None


class AnthropicStreamDecoder:
    """Messages stream events in, text deltas and a :class:`StepOutcome` out. Sans-IO.

    ``message_stop`` ends the stream; an ``error`` event raises :class:`LLMError` with
    the API's error type (``overloaded_error``...). Unknown events and block types
    (``ping``, thinking) are ignored.
    """

    def __init__(self) -> None:
        self.done = False
        self._blocks: dict[int, _Block] = {}
        self._stop: str | None = None

    def feed(self, event: SSEEvent) -> str:
        if self.done or event.event == "ping":
            return ""
        payload = event_object(event, _PROVIDER)
        kind = payload.get("type", event.event)
        if kind == "error":
            raise LLMError.from_payload(payload, status=200, provider=_PROVIDER)
        if kind == "content_block_start":
            start = payload.get("content_block")
            if not isinstance(start, dict):
                raise _bad("content_block_start without a content_block")
            block = _Block(str(start.get("type")), str(start.get("id", "")),
                           str(start.get("name", "")), input=start.get("input"))
            self._blocks[self._index(payload)] = block
            if block.type == "text" and isinstance(start.get("text"), str) and start["text"]:
                block.parts.append(start["text"])
                return str(start["text"])
        elif kind == "content_block_delta":
            return self._delta(payload)
        elif kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop = str(delta["stop_reason"])
        elif kind == "message_stop":
            self.done = True
        return ""

    def outcome(self) -> StepOutcome:
        if not self.done:
            raise _bad("the stream ended before message_stop")
        content: list[dict[str, Any]] = []
        calls: list[ToolCall] = []
        for _, block in sorted(self._blocks.items()):
            if block.type == "text" and block.parts:
                content.append({"type": "text", "text": "".join(block.parts)})
            elif block.type == "tool_use":
                arguments = "".join(block.parts)
                decoded = _decode_input(arguments, block.input)
                content.append({"type": "tool_use", "id": block.id, "name": block.name,
                                "input": decoded if isinstance(decoded, dict) else {}})
                calls.append(ToolCall(block.id, block.name,
                                      decoded if isinstance(decoded, dict) else arguments))
        text = "".join(block["text"] for block in content if block["type"] == "text")
        return StepOutcome(text, tuple(calls), self._stop, tuple(content))

    def _delta(self, payload: dict[str, Any]) -> str:
        block = self._blocks.get(self._index(payload))
        delta = payload.get("delta")
        if block is None or not isinstance(delta, dict):
            raise _bad("content_block_delta for a block that was not started")
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            block.parts.append(delta["text"])
            return str(delta["text"])
        if delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            block.parts.append(delta["partial_json"])
        return ""

    @staticmethod
    def _index(payload: dict[str, Any]) -> int:
        index = payload.get("index")
        if not isinstance(index, int):
            raise _bad(f"a {payload.get('type')} event has no integer index")
        return index


def _decode_input(arguments: str, start: Any) -> Any:
    """The tool input: the streamed JSON, else the block's initial ``input``; the raw
    text when it does not parse (the tool then reports bad arguments)."""
    if not arguments.strip():
        return start if isinstance(start, dict) else {}
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _bad(message: str) -> LLMError:
    return LLMError(message, kind="bad_stream", provider=_PROVIDER)
