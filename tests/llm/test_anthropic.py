"""The Anthropic Messages wire format, as the fake server received it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tac_actors.llm import AnthropicChatAgent, LLMError
from tac_actors.memory.models import ObservationInfo, TACMemoryResponse
from tac_actors.session import ConversationSession, Profile
from tac_actors.testing.fake_llm import RawStream, call, open_fake_anthropic, text, tool_calls
from tac_actors.tools import function_tool

from .conftest import ANTHROPIC, collect, make_session

AT = datetime(2026, 1, 1, tzinfo=UTC)


@function_tool
def order_status(order_id: str, session: ConversationSession) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return {"status": "shipped", "for": session.conversation_id}


@function_tool
def refund(order_id: str) -> str:
    """Refund an order."""
    raise RuntimeError("refunds are closed")


async def test_system_prompt_history_and_message() -> None:
    session = make_session(profile=Profile("p1", {"Contact": {"first_name": "Ada"}}))
    session.record("user", "hi", AT)
    session.record("user", "anyone there?", AT)
    session.record("assistant", "Hello! How can", AT, interrupted=True)
    session.record("user", "where is my order?", AT)
    memory = TACMemoryResponse(observations=(ObservationInfo(id="o", content="Has a dog"),))
    async with open_fake_anthropic([text("ok")]) as fake, \
            ANTHROPIC.agent(fake, max_tokens=300) as agent:
        await collect(agent.stream("where is my order?", session, memory))
    (body,) = fake.requests
    assert body["system"] == ("You are a test agent.\n\n"
                              "## What we know about the customer\n- Has a dog\n\n"
                              "## Customer profile\n- Contact.first_name: Ada")
    assert body["max_tokens"] == 300
    assert body["messages"] == [
        {"role": "user", "content": "hi\n\nanyone there?"},
        {"role": "assistant", "content": "Hello! How can"},
        {"role": "user", "content": "where is my order?"},
    ]
    headers = fake.headers[0]
    assert (headers["x-api-key"], headers["anthropic-version"]) == ("test-key", "2023-06-01")


async def test_tool_use_and_tool_results_in_the_next_request() -> None:
    script = [
        tool_calls(call("order_status", {"order_id": "A-1"}, id="toolu_1"),
                   call("refund", {"order_id": "A-1"}, id="toolu_2"), text=["Checking."]),
        text("Done."),
    ]
    async with open_fake_anthropic(script) as fake, \
            ANTHROPIC.agent(fake, tools=[order_status, refund]) as agent:
        tokens = await collect(agent.stream("status and refund", make_session()))
    assert tokens == ["Checking.", " Done."]
    first, second = fake.requests
    assert [t["name"] for t in first["tools"]] == ["order_status", "refund"]
    assert first["tools"][0]["input_schema"]["required"] == ["order_id"]
    assistant, results = second["messages"][-2:]
    assert assistant == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "order_status",
         "input": {"order_id": "A-1"}},
        {"type": "tool_use", "id": "toolu_2", "name": "refund", "input": {"order_id": "A-1"}},
    ]}
    assert results["role"] == "user"
    ok, failed = results["content"]
    assert ok == {"type": "tool_result", "tool_use_id": "toolu_1",
                  "content": '{"status": "shipped", "for": "conv-1"}'}
    assert failed["tool_use_id"] == "toolu_2" and failed["is_error"] is True
    assert "refunds are closed" in failed["content"]


async def test_unparsable_tool_input_is_reported_to_the_model() -> None:
    script = [tool_calls(call("order_status", '{"order_id": ', id="toolu_1")), text("Sorry.")]
    async with open_fake_anthropic(script) as fake, \
            ANTHROPIC.agent(fake, tools=[order_status]) as agent:
        assert await agent.reply("status") == "Sorry."
    assistant, results = fake.requests[1]["messages"][-2:]
    assert assistant["content"][0]["input"] == {}
    assert results["content"][0]["is_error"] is True


async def test_error_event_mid_stream_after_tokens() -> None:
    body = (
        'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n'
        'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, '
        '"content_block": {"type": "text", "text": ""}}\n\n'
        'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
        '"delta": {"type": "text_delta", "text": "Hi"}}\n\n'
        'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
        '"message": "Overloaded"}}\n\n'
    )
    got: list[str] = []
    async with open_fake_anthropic([RawStream(body)]) as fake, ANTHROPIC.agent(fake) as agent:
        with pytest.raises(LLMError) as caught:
            async for token in agent.stream("hi", make_session()):
                got.append(token)
    assert got == ["Hi"]
    assert (caught.value.kind, caught.value.message) == ("overloaded_error", "Overloaded")
    assert caught.value.retryable


async def test_delta_for_an_unknown_block_is_a_bad_stream() -> None:
    body = ('event: content_block_delta\ndata: {"type": "content_block_delta", "index": 3, '
            '"delta": {"type": "text_delta", "text": "x"}}\n\n')
    async with open_fake_anthropic([RawStream(body)]) as fake, ANTHROPIC.agent(fake) as agent:
        with pytest.raises(LLMError, match="not started"):
            await agent.reply("hi")


def test_environment_gives_base_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://example.test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    agent = AnthropicChatAgent(model="m")
    assert agent.base_url + agent.path == "http://example.test/v1/messages"
    assert agent._api_key == "env-key"
