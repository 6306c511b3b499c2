"""The OpenAI Chat Completions wire format, as the fake server received it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tac_actors.llm import LLMError, OpenAIChatAgent
from tac_actors.memory.models import ObservationInfo, TACMemoryResponse
from tac_actors.session import ConversationSession, Profile
from tac_actors.testing.fake_llm import RawStream, call, open_fake_openai, text, tool_calls
from tac_actors.tools import function_tool

from .conftest import OPENAI, collect, make_session

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
    session.record("assistant", "Hello! How can", AT, interrupted=True)
    session.record("user", "where is my order?", AT)
    memory = TACMemoryResponse(observations=(ObservationInfo(id="o", content="Has a dog"),))
    async with open_fake_openai([text("ok")]) as fake, OPENAI.agent(fake) as agent:
        await collect(agent.stream("where is my order?", session, memory))
    (body,) = fake.requests
    assert body["messages"] == [
        {"role": "system", "content": "You are a test agent.\n\n"
         "## What we know about the customer\n- Has a dog\n\n"
         "## Customer profile\n- Contact.first_name: Ada"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello! How can"},
        {"role": "user", "content": "where is my order?"},
    ]
    assert fake.headers[0]["authorization"] == "Bearer test-key"


async def test_tool_calls_and_results_in_the_next_request() -> None:
    script = [
        tool_calls(call("order_status", {"order_id": "A-1"}, id="call_1"),
                   call("refund", {"order_id": "A-1"}, id="call_2")),
        text("Done."),
    ]
    async with open_fake_openai(script) as fake, \
            OPENAI.agent(fake, tools=[order_status, refund], options={"temperature": 0}) as agent:
        assert await collect(agent.stream("status and refund", make_session())) == ["Done."]
    first, second = fake.requests
    assert first["temperature"] == 0
    assert [t["function"]["name"] for t in first["tools"]] == ["order_status", "refund"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["order_id"]
    assistant, status, refunded = second["messages"][-3:]
    assert assistant == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "order_status", "arguments": '{"order_id": "A-1"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "refund", "arguments": '{"order_id": "A-1"}'}},
    ]}
    assert status == {"role": "tool", "tool_call_id": "call_1",
                      "content": '{"status": "shipped", "for": "conv-1"}'}
    assert refunded["role"] == "tool" and refunded["tool_call_id"] == "call_2"
    assert "refunds are closed" in refunded["content"]


async def test_error_chunk_mid_stream_after_tokens() -> None:
    body = ('data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
            'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
    got: list[str] = []
    async with open_fake_openai([RawStream(body)]) as fake, OPENAI.agent(fake) as agent:
        with pytest.raises(LLMError) as caught:
            async for token in agent.stream("hi", make_session()):
                got.append(token)
    assert got == ["Hi"]
    assert (caught.value.kind, caught.value.message) == ("server_error", "overloaded")


async def test_stream_without_done_is_complete_after_a_finish_reason() -> None:
    body = ('data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
            'data: {"choices": [{"index": 1, "delta": {"content": "other choice"}}]}\n\n'
            'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')
    async with open_fake_openai([RawStream(body)]) as fake, OPENAI.agent(fake) as agent:
        assert await agent.reply("hi") == "Hi"


def test_environment_gives_base_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://example.test/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    agent = OpenAIChatAgent(model="m")
    assert agent.base_url == "http://example.test/v1"
    assert agent.headers("env-key") == {"authorization": "Bearer env-key"}
    with pytest.raises(ValueError, match="max_steps"):
        OpenAIChatAgent(model="m", max_steps=0)
