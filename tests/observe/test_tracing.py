"""OpenTelemetry spans (tac_actors.tracing), read back from the SDK's in-memory exporter.

The package's tracer is swapped for one of a test-local SDK provider (monkeypatched), so
no global tracer provider is set for the rest of the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tac_actors import TAC, TACConfig, tracing
from tac_actors.llm import LLMError
from tac_actors.memory import TACMemoryResponse
from tac_actors.services.http import RetryPolicy, ServiceHosts, ServiceHTTP
from tac_actors.session import ConversationSession
from tac_actors.testing import open_harness
from tac_actors.testing.fake_llm import call, failure, open_fake_openai, text, tool_calls
from tac_actors.tools import function_tool

from ..llm.conftest import OPENAI


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("tac_actors"))
    yield exporter
    provider.shutdown()


class ServiceMemory:
    """A memory provider that asks a (mocked) Twilio service, so its span has a child."""

    def __init__(self) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"profile": "gold"})

        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        self.http = ServiceHTTP(client, hosts=ServiceHosts(base_url="http://memory.test"),
                                retry=RetryPolicy(max_attempts=1))

    async def retrieve(self, session: ConversationSession, query: str | None
                       ) -> TACMemoryResponse:
        await self.http.request("memory", "GET", "/v1/Profiles/ME1")
        return TACMemoryResponse.empty()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


async def test_a_call_with_memory_a_tool_and_the_model_makes_one_tree(
        exporter: InMemorySpanExporter) -> None:
    looked_up: list[str] = []

    @function_tool
    async def lookup_order(order_id: str) -> str:
        """Look an order up."""
        looked_up.append(order_id)
        await trio.lowlevel.checkpoint()
        return "shipped"

    script = [tool_calls(call("lookup_order", {"order_id": "A-1"}, id="call-1")),
              text("It has ", "shipped.")]
    tac = TAC(TACConfig())
    tac.memory_provider = ServiceMemory()
    with trio.fail_after(10):
        async with open_fake_openai(script) as fake, \
                OPENAI.agent(fake, tools=[lookup_order]) as agent:
            tac.on_message_ready(agent)
            async with open_harness(tac) as harness:
                async with harness.call() as caller:
                    await caller.say("where is my order?")
                    assert (await caller.read_reply()).text == "It has shipped."
                    conversation_id = caller.call_sid
                    cell = harness.supervisor.get(conversation_id)
                    assert cell is not None
                    await caller.hang_up()
                # the conversation's span ends when its actor is buried
                await cell.stopped.wait()
    assert looked_up == ["A-1"]

    finished = exporter.get_finished_spans()
    spans = by_name(finished)
    assert {name: len(group) for name, group in spans.items()} == {
        "conversation voice": 1, "turn": 1, "retrieve memory": 1, "GET memory": 1,
        "execute_tool lookup_order": 1, "chat fake-model": 2}  # a tool step, a text step
    (conversation,), (turn,) = spans["conversation voice"], spans["turn"]
    (memory,), (service,) = spans["retrieve memory"], spans["GET memory"]
    (tool,), chats = spans["execute_tool lookup_order"], spans["chat fake-model"]

    # one trace; the parent links
    assert len({span.context.trace_id for span in finished}) == 1  # type: ignore[union-attr]
    assert conversation.parent is None
    assert parent_of(turn) == span_id(conversation)
    assert parent_of(memory) == span_id(turn)
    assert parent_of(service) == span_id(memory)
    assert parent_of(tool) == span_id(turn)
    assert [parent_of(chat) for chat in chats] == [span_id(turn)] * 2
    # in order: the first request, then the tool, then the second request
    assert chats[0].end_time <= tool.start_time  # type: ignore[operator]
    assert tool.end_time <= chats[1].start_time  # type: ignore[operator]
    chat = chats[1]

    # attributes (GenAI semantic conventions where they exist)
    assert conversation.attributes is not None and turn.attributes is not None
    assert conversation.attributes["gen_ai.conversation.id"] == conversation_id
    assert conversation.attributes["tac.channel"] == "voice"
    assert conversation.attributes["tac.turns"] == 1
    assert turn.attributes["gen_ai.conversation.id"] == conversation_id
    assert turn.attributes["tac.outcome"] == "ok"
    assert dict(tool.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
        "gen_ai.tool.call.id": "call-1"}
    assert chat.kind is SpanKind.CLIENT
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.request.model"] == "fake-model"
    assert chat.attributes["gen_ai.conversation.id"] == conversation_id
    assert service.kind is SpanKind.CLIENT
    assert service.attributes is not None
    assert service.attributes["http.response.status_code"] == 200
    assert service.attributes["url.path"] == "/v1/Profiles/ME1"
    assert [c.attributes["gen_ai.response.finish_reasons"]  # type: ignore[index]
            for c in chats] == [("tool_calls",), ("stop",)]


async def test_two_model_requests_are_two_chat_spans_and_a_failed_tool_is_an_error(
        exporter: InMemorySpanExporter) -> None:
    @function_tool
    async def broken() -> str:
        """Always fails."""
        raise RuntimeError("no")

    script = [tool_calls(call("broken"), call("missing")), text("Sorry.")]
    async with open_fake_openai(script) as fake, \
            OPENAI.agent(fake, tools=[broken]) as agent:
        with trio.fail_after(5):
            assert await agent.reply("hi") == "Sorry."
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans].count("chat fake-model") == 2
    tools = {span.name: span for span in spans if span.name.startswith("execute_tool")}
    assert set(tools) == {"execute_tool broken", "execute_tool missing"}
    for span in tools.values():
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes is not None and "error.type" in span.attributes
    finish = [span.attributes["gen_ai.response.finish_reasons"]  # type: ignore[index]
              for span in spans if span.name == "chat fake-model"]
    assert finish == [("tool_calls",), ("stop",)]


async def test_a_failed_model_request_ends_its_span_as_an_error(
        exporter: InMemorySpanExporter) -> None:
    async with open_fake_openai([failure(400, "bad request", "invalid_request_error")]
                                ) as fake, OPENAI.agent(fake) as agent:
        with trio.fail_after(5), pytest.raises(LLMError):
            await agent.reply("hi")
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat fake-model"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "invalid_request_error"


async def test_without_an_sdk_nothing_is_traced() -> None:
    """The API alone (no SDK configured): the conversation's span is invalid, so the cell
    keeps no trace context and its turns skip tracing."""
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def echo(message: str, session: ConversationSession, memory: Any) -> str:
        await trio.lowlevel.checkpoint()
        return message

    with trio.fail_after(5):
        async with open_harness(tac) as harness, harness.call() as caller:
            await caller.say("hi")
            assert (await caller.read_reply()).text == "hi"
            (cell,) = list(harness.supervisor)
            assert cell.trace is None


async def test_a_turn_span_is_current_during_its_turn_only(
        exporter: InMemorySpanExporter) -> None:
    """Turns run in the actor's own task: the turn's span is made current for the turn
    and the context before it is restored when it ends (a hook that runs between turns
    is not inside the last turn's span)."""
    from opentelemetry import trace

    tac = TAC(TACConfig())
    seen: dict[str, int] = {}

    @tac.on_message_ready
    async def echo(message: str, session: ConversationSession, memory: Any) -> str:
        seen[message] = trace.get_current_span().get_span_context().span_id
        await trio.lowlevel.checkpoint()
        return message

    @tac.on_interrupt
    async def interrupted(session: ConversationSession, interruption: Any) -> None:
        seen["hook"] = trace.get_current_span().get_span_context().span_id

    with trio.fail_after(5):
        async with open_harness(tac) as harness, harness.call() as caller:
            await caller.say("one")
            await caller.read_reply()
            await caller.interrupt()
            await caller.say("two")
            await caller.read_reply()
    turns = by_name(exporter.get_finished_spans())["turn"]
    assert [span_id(t) for t in turns] == [seen["one"], seen["two"]]
    assert seen["hook"] not in (seen["one"], seen["two"])
