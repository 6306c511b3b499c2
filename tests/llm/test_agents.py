"""Behaviour both adapters share, each against its fake server: streaming, the tool loop,
errors, cancellation and statistics."""

from __future__ import annotations

import gc
import warnings
from contextlib import aclosing

import httpx
import pytest
import trio

from tac_actors.llm import STEP_LIMIT_TEXT, ChatAgentStatistics, LLMError
from tac_actors.memory.models import TACMemoryResponse
from tac_actors.session import ConversationSession
from tac_actors.testing.fake_llm import (
    Park,
    RawStream,
    call,
    failure,
    text,
    tool_calls,
)
from tac_actors.tools import function_tool

from .conftest import Provider, collect


async def test_tokens_stream_in_order_as_separate_items(
    provider: Provider, session: ConversationSession
) -> None:
    async with provider.open_fake([text("Hel", "lo", " there", "!")]) as fake, \
            provider.agent(fake) as agent:
        assert await collect(agent.stream("hi", session)) == ["Hel", "lo", " there", "!"]
        assert len(fake.requests) == 1
        assert fake.requests[0]["stream"] is True
        assert fake.requests[0]["model"] == "fake-model"
        assert "tools" not in fake.requests[0]


async def test_nothing_is_sent_before_the_first_token_is_asked_for(
    provider: Provider, session: ConversationSession
) -> None:
    async with provider.open_fake([text("o", "k"), text("whole")]) as fake, \
            provider.agent(fake) as agent:
        tokens = agent(message="hi", session=session, memory=TACMemoryResponse.empty())
        assert fake.requests == []
        assert await collect(tokens) == ["o", "k"]
        assert await agent.reply("again?", session) == "whole"


async def test_tool_loop_runs_the_tool_with_the_session(
    provider: Provider, session: ConversationSession
) -> None:
    seen: list[tuple[str, str]] = []

    @function_tool
    async def order_status(order_id: str, session: ConversationSession) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: The order number.
        """
        seen.append((order_id, session.conversation_id))
        await trio.lowlevel.checkpoint()
        return {"status": "shipped"}

    script = [tool_calls(call("order_status", {"order_id": "A-1"}), text=["Let me check."]),
              text("It has ", "shipped.")]
    async with provider.open_fake(script) as fake, \
            provider.agent(fake, tools=[order_status]) as agent:
        tokens = await collect(agent.stream("where is A-1?", session))
        assert tokens == ["Let me check.", " It has ", "shipped."]
        assert seen == [("A-1", "conv-1")]
        assert len(fake.requests) == 2
        assert [t["name"] for t in [_tool_name(d) for d in fake.requests[0]["tools"]]] \
            == ["order_status"]
        assert agent.statistics() == ChatAgentStatistics(
            requests=2, errors=0, tool_rounds=1, step_limits=0, streaming=0)


def _tool_name(definition: dict[str, object]) -> dict[str, object]:
    function = definition.get("function", definition)
    assert isinstance(function, dict)
    return function


async def test_parallel_tool_calls_run_concurrently(
    provider: Provider, session: ConversationSession
) -> None:
    a_started, b_started = trio.Event(), trio.Event()

    @function_tool
    async def tool_a() -> str:
        """A."""
        a_started.set()
        await b_started.wait()
        return "a done"

    @function_tool
    async def tool_b() -> str:
        """B."""
        b_started.set()
        await a_started.wait()
        return "b done"

    script = [tool_calls(call("tool_a", id="id_a"), call("tool_b", id="id_b")), text("both")]
    async with provider.open_fake(script) as fake, \
            provider.agent(fake, tools=[tool_a, tool_b]) as agent:
        with trio.fail_after(5):
            assert await collect(agent.stream("go", session)) == ["both"]
        assert len(fake.requests) == 2


async def test_step_limit_is_said_politely(
    provider: Provider, session: ConversationSession
) -> None:
    @function_tool
    def again() -> str:
        """Again."""
        return "once more"

    script = [tool_calls(call("again")), tool_calls(call("again"))]
    async with provider.open_fake(script) as fake, \
            provider.agent(fake, tools=[again], max_steps=2) as agent:
        assert await collect(agent.stream("loop", session)) == [STEP_LIMIT_TEXT]
        assert fake.pending == 0
        stats = agent.statistics()
        assert (stats.requests, stats.tool_rounds, stats.step_limits) == (2, 1, 1)


@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (500, "api_error", True), (401, "authentication_error", False),
    (429, "rate_limit_error", True),
])
async def test_api_errors_raise_llm_error(
    provider: Provider, session: ConversationSession, status: int, kind: str, retryable: bool
) -> None:
    async with provider.open_fake([failure(status, "nope", kind)]) as fake, \
            provider.agent(fake) as agent:
        with pytest.raises(LLMError) as caught:
            await collect(agent.stream("hi", session))
        error = caught.value
        assert (error.status, error.message, error.kind, error.provider) == (
            status, "nope", kind, provider.name)
        assert error.retryable is retryable
        assert agent.statistics().errors == 1


@pytest.mark.parametrize("body", [
    "data: not json\n\n",
    "data: [1, 2]\n\n",
    "data: {\"choices\": []}\n\n",
    "",
])
async def test_malformed_or_truncated_streams_raise_llm_error(
    provider: Provider, session: ConversationSession, body: str
) -> None:
    async with provider.open_fake([RawStream(body)]) as fake, provider.agent(fake) as agent:
        with pytest.raises(LLMError) as caught:
            await collect(agent.stream("hi", session))
        assert (caught.value.kind, caught.value.status) == ("bad_stream", 200)


async def test_no_server_is_a_transport_error(
    provider: Provider, session: ConversationSession
) -> None:
    async with provider.open_fake([]) as fake:
        pass
    async with provider.agent(fake) as agent:
        with pytest.raises(LLMError) as caught:
            await collect(agent.stream("hi", session))
        assert (caught.value.kind, caught.value.status) == ("transport", None)
        assert caught.value.retryable
        assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_missing_api_key_for_the_public_endpoint(
    provider: Provider, session: ConversationSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(provider.agent_class.api_key_env, raising=False)
    monkeypatch.delenv(provider.agent_class.base_url_env, raising=False)
    async with provider.agent_class(model="m") as agent:
        with pytest.raises(LLMError, match=provider.agent_class.api_key_env):
            await collect(agent.stream("hi", session))


async def test_cancelling_the_consumer_closes_the_stream_at_once(
    provider: Provider, session: ConversationSession
) -> None:
    park = Park(after=2)
    script = [text("one", " two", " three", park=park)]
    got: list[str] = []
    two = trio.Event()
    async with provider.open_fake(script) as fake, provider.agent(fake) as agent:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                tokens = agent.stream("hi", session)

                async def consume() -> None:
                    async with aclosing(tokens):  # type: ignore[type-var]
                        async for token in tokens:
                            got.append(token)
                            if len(got) == 2:
                                two.set()

                nursery.start_soon(consume)
                await two.wait()
                await park.reached.wait()
                nursery.cancel_scope.cancel()
            assert got == ["one", " two"]
            assert not park.release.is_set()  # the consumer did not wait for the fake
            await park.abandoned.wait()  # the fake saw the client go away
            with pytest.raises(StopAsyncIteration):
                await tokens.__anext__()
        assert agent.statistics().streaming == 0


async def test_closing_the_iterator_mid_stream_leaves_nothing_behind(
    provider: Provider, session: ConversationSession
) -> None:
    park = Park(after=1)
    async with provider.open_fake([text("a", "b", park=park)]) as fake, \
            provider.agent(fake) as agent:
        with warnings.catch_warnings(record=True) as caught, trio.fail_after(5):
            warnings.simplefilter("always")
            tokens = agent.stream("hi", session)
            assert await tokens.__anext__() == "a"
            await park.reached.wait()
            await tokens.aclose()  # type: ignore[attr-defined]
            await park.abandoned.wait()
            gc.collect()
        assert [str(w.message) for w in caught] == []


async def test_shared_client_is_left_open(
    provider: Provider, session: ConversationSession
) -> None:
    async with provider.open_fake([text("x"), text("y")]) as fake, \
            httpx.AsyncClient(base_url=fake.url) as client:
        agent = provider.agent_class(model="m", client=client, api_key="k")
        assert agent.base_url == fake.url
        assert await agent.reply("1", session) == "x"
        await agent.aclose()
        assert await agent.reply("2", session) == "y"
        assert not client.is_closed
