"""``with_tac_memory(client, memory, session)``: an OpenAI client (sync or async) whose
``chat.completions.create`` and ``responses.create`` carry the memory and profile in the
system prompt; everything else is the client's own."""

from __future__ import annotations

from typing import Any

from tac_actors.compat.adapters import AdapterOptions, MemoryPromptBuilder

__all__ = ["with_tac_memory"]


def with_tac_memory(openai_client: Any, memory_response: Any = None, context: Any = None,
                    options: AdapterOptions | None = None) -> Any:
    prompt = MemoryPromptBuilder.build(memory_response, context, options)
    if not prompt:
        return openai_client
    return _Client(openai_client, prompt)


class _Client:
    def __init__(self, inner: Any, prompt: str) -> None:
        self._inner = inner
        self.chat = _Chat(inner.chat, prompt)
        self.responses = _Responses(inner.responses, prompt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Chat:
    def __init__(self, inner: Any, prompt: str) -> None:
        self._inner = inner
        self.completions = _Completions(inner.completions, prompt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Completions:
    def __init__(self, inner: Any, prompt: str) -> None:
        self._inner = inner
        self._prompt = prompt

    def create(self, *, messages: list[Any], **kwargs: Any) -> Any:
        """The system message gets the memory appended (one is added if there is none)."""
        messages = list(messages)
        if messages and messages[0].get("role") in ("system", "developer"):
            first = dict(messages[0])
            first["content"] = f"{first.get('content') or ''}\n\n{self._prompt}".strip()
            messages[0] = first
        else:
            messages.insert(0, {"role": "system", "content": self._prompt})
        return self._inner.create(messages=messages, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Responses:
    def __init__(self, inner: Any, prompt: str) -> None:
        self._inner = inner
        self._prompt = prompt

    def create(self, **kwargs: Any) -> Any:
        """``instructions`` get the memory appended."""
        instructions = kwargs.get("instructions") or ""
        kwargs["instructions"] = f"{instructions}\n\n{self._prompt}".strip()
        return self._inner.create(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
