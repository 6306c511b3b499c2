"""The public names of the LLM package and of the fake servers."""

from __future__ import annotations

import tac_actors.llm
import tac_actors.testing.fake_llm


def test_public_names() -> None:
    for module in (tac_actors.llm, tac_actors.testing.fake_llm):
        assert len(set(module.__all__)) == len(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)
    assert {"OpenAIChatAgent", "AnthropicChatAgent", "ChatAgent", "LLMError", "SSEParser",
            "SSEEvent"} <= set(tac_actors.llm.__all__)
