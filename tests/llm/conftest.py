from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from tac_actors.llm import AnthropicChatAgent, ChatAgent, OpenAIChatAgent
from tac_actors.session import Channel, ConversationSession
from tac_actors.testing.fake_llm import FakeLLM, Scripted, open_fake_anthropic, open_fake_openai


@attrs.frozen
class Provider:
    """One adapter and its fake, so behaviour tests run against both."""

    name: str
    open_fake: Callable[[Iterable[Scripted]], AbstractAsyncContextManager[FakeLLM]]
    agent_class: type[ChatAgent]

    def agent(self, fake: FakeLLM, **options: Any) -> ChatAgent:
        options.setdefault("instructions", "You are a test agent.")
        return self.agent_class(model="fake-model", base_url=fake.url, api_key="test-key",
                                timeout=5, **options)


OPENAI = Provider("openai", open_fake_openai, OpenAIChatAgent)
ANTHROPIC = Provider("anthropic", open_fake_anthropic, AnthropicChatAgent)


@pytest.fixture(params=[OPENAI, ANTHROPIC], ids=lambda p: p.name)
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param  # type: ignore[no-any-return]


def make_session(**fields: Any) -> ConversationSession:
    return ConversationSession(conversation_id="conv-1", channel=Channel.VOICE,
                               started_at=datetime(2026, 1, 1, tzinfo=UTC), **fields)


@pytest.fixture
def session() -> ConversationSession:
    return make_session()


async def collect(tokens: AsyncIterator[str]) -> list[str]:
    return [token async for token in tokens]
