"""ToolRegistry: definitions, concurrent calls in order, deadlines on the mock clock,
cancellation of running tools, statistics."""

from datetime import UTC, datetime

import pytest
import trio
import trio.testing

from tac_actors.session import Channel, ConversationSession
from tac_actors.tools import (
    ToolCall,
    ToolRegistry,
    ToolRegistryStatistics,
    ToolResult,
    function_tool,
)


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@function_tool(timeout=2)
async def stuck() -> str:
    await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


@function_tool
async def nap(seconds: float) -> str:
    await trio.sleep(seconds)
    return f"slept {seconds}"


@function_tool
async def where(session: ConversationSession) -> str:
    await trio.lowlevel.checkpoint()
    return session.conversation_id


def test_definitions_in_each_format() -> None:
    registry = ToolRegistry([add, nap])
    assert registry.definitions() == [add.to_openai_format(), nap.to_openai_format()]
    assert registry.definitions("openai_responses")[0] == {
        "type": "function",
        "name": "add",
        "description": "Add two numbers.",
        "parameters": add.parameters,
    }
    assert registry.definitions("realtime")[0] == add.to_realtime_format() == {
        "type": "function", "name": "add", "description": "Add two numbers.",
        "parameters": add.parameters}
    assert registry.definitions("anthropic") == [
        add.to_anthropic_format(),
        nap.to_anthropic_format(),
    ]
    with pytest.raises(ValueError, match="unknown tool definition format"):
        registry.definitions("gemini")  # type: ignore[arg-type]


def test_lookup_and_duplicate_names() -> None:
    registry = ToolRegistry([add])
    assert "add" in registry and "nap" not in registry
    assert registry.get("add") is add and registry.get("nap") is None
    assert list(registry) == [add] and len(registry) == 1
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        ToolRegistry([add, add])


async def test_results_in_call_order_with_ids_and_failures_isolated(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = ToolRegistry([add, nap, where])
    session = ConversationSession("conv-9", Channel.SMS, datetime(2025, 1, 1, tzinfo=UTC))
    calls = [
        ToolCall("c1", "nap", '{"seconds": 3}'),
        ToolCall("c2", "add", {"a": 1, "b": 2}),
        ToolCall("c3", "missing", "{}"),
        ToolCall("c4", "add", '{"a": "1"}'),
        ToolCall("c5", "where", ""),
    ]
    with trio.fail_after(60):
        results = await registry.run_calls(calls, session)
    assert [r.call_id for r in results] == ["c1", "c2", "c3", "c4", "c5"]
    assert results[0] == ToolResult("nap", "slept 3.0", call_id="c1")
    assert results[1] == ToolResult("add", "3", call_id="c2")
    assert results[2] == ToolResult(
        "missing",
        "There is no tool named 'missing'. Available tools: add, nap, where.",
        ok=False,
        call_id="c3",
    )
    assert not results[3].ok and "a: expected an integer" in results[3].content
    assert results[4] == ToolResult("where", "conv-9", call_id="c5")
    # The 3 s nap overlapped everything else: the whole step took 3 s.
    assert trio.current_time() == 3
    assert registry.statistics() == ToolRegistryStatistics(calls=5, errors=2, timeouts=0, running=0)


async def test_calls_run_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    # Each tool waits for an event only the other one sets: run one after the other,
    # they would deadlock and fail_after would fire.
    ping_ready, pong_ready = trio.Event(), trio.Event()

    @function_tool
    async def ping() -> str:
        ping_ready.set()
        await pong_ready.wait()
        return "ping"

    @function_tool
    async def pong() -> str:
        pong_ready.set()
        await ping_ready.wait()
        return "pong"

    registry = ToolRegistry([ping, pong])
    with trio.fail_after(5):
        results = await registry.run_calls([ToolCall("1", "ping"), ToolCall("2", "pong")])
    assert [r.content for r in results] == ["ping", "pong"]


async def test_tool_deadline_on_the_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    registry = ToolRegistry([stuck, nap])
    with trio.fail_after(60):
        results = await registry.run_calls(
            [ToolCall("a", "stuck"), ToolCall("b", "nap", {"seconds": 1.5})],
            default_timeout=1,
        )
    # stuck has its own 2 s deadline; nap (no own timeout) gets the 1 s default.
    assert results == [
        ToolResult(
            "stuck",
            "Tool stuck timed out after 2 s and was cancelled.",
            ok=False,
            call_id="a",
            timed_out=True,
        ),
        ToolResult(
            "nap",
            "Tool nap timed out after 1 s and was cancelled.",
            ok=False,
            call_id="b",
            timed_out=True,
        ),
    ]
    assert trio.current_time() == 2
    assert registry.statistics() == ToolRegistryStatistics(calls=2, errors=0, timeouts=2, running=0)


async def test_no_default_deadline(autojump_clock: trio.testing.MockClock) -> None:
    registry = ToolRegistry([nap])
    with trio.fail_after(10_000):
        [result] = await registry.run_calls(
            [ToolCall("a", "nap", {"seconds": 3600})], default_timeout=None
        )
    assert result.ok and trio.current_time() == 3600


async def test_outer_cancellation_cancels_every_running_tool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[str] = []
    cleaned_up: list[str] = []

    @function_tool
    async def hold(label: str) -> str:
        started.append(label)
        try:
            await trio.sleep_forever()
        finally:
            cleaned_up.append(label)
        raise AssertionError("unreachable")  # pragma: no cover

    registry = ToolRegistry([hold])
    returned = []
    calls = [ToolCall(str(i), "hold", {"label": f"t{i}"}) for i in range(3)]

    async def barge_in_when_all_started() -> None:
        await trio.testing.wait_all_tasks_blocked()
        assert registry.statistics().running == 3
        scope.cancel()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:
                nursery.start_soon(barge_in_when_all_started)
                returned.append(await registry.run_calls(calls))
    assert scope.cancelled_caught
    assert returned == []
    assert sorted(started) == sorted(cleaned_up) == ["t0", "t1", "t2"]
    assert trio.current_time() == 0  # cancelled at once, no deadline involved
    assert registry.statistics() == ToolRegistryStatistics(calls=3, errors=0, timeouts=0, running=0)


async def test_empty_step_checkpoints() -> None:
    registry = ToolRegistry([add])
    assert await registry.run_calls([]) == []
    with trio.CancelScope() as scope:
        scope.cancel()
        await registry.run_calls([])
    assert scope.cancelled_caught
