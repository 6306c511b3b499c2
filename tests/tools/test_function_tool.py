"""@function_tool and create_tool: definitions, session injection, strict arguments,
failures as results, JSON-safe rendering."""

import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import attrs
import pytest
import trio
import trio.testing

from tac_actors import tools
from tac_actors.session import Channel, ConversationSession
from tac_actors.tools import FunctionTool, ToolResult, create_tool, function_tool


def make_session() -> ConversationSession:
    return ConversationSession("conv-1", Channel.VOICE, datetime(2025, 1, 1, tzinfo=UTC))


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@attrs.frozen
class Line:
    sku: str
    qty: int = 1


@attrs.frozen
class Order:
    id: str
    lines: list[Line]
    size: Size
    placed: datetime


@function_tool
async def order_status(order_id: str, session: ConversationSession) -> str:
    """Look up the status of an order.

    Args:
        order_id: The order number.
    """
    return f"{order_id} for {session.conversation_id}: shipped"


# -- building and definitions ----------------------------------------------------------------


def test_decorator_bare_and_with_options() -> None:
    assert isinstance(order_status, FunctionTool)
    assert order_status.name == "order_status"
    assert order_status.description == "Look up the status of an order."
    assert order_status.injects_session == "session"
    assert order_status.timeout is None

    @function_tool(name="lookup", description="Find it.", timeout=2.5)
    def getOrderStatus(order_id: str) -> str:
        """Ignored summary."""
        return order_id

    assert (getOrderStatus.name, getOrderStatus.description) == ("lookup", "Find it.")
    assert getOrderStatus.timeout == 2.5
    assert getOrderStatus("x") == "x"  # the tool still calls through


def test_description_falls_back_to_name_in_words() -> None:
    @function_tool
    def get_order_status() -> None: ...

    @function_tool
    def getOrderStatus() -> None: ...

    assert get_order_status.description == "Get order status"
    assert getOrderStatus.description == "Get order status"


def test_bad_name_or_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="tool name"):
        function_tool(name="has spaces")(lambda: None)

    def fine() -> None: ...

    with pytest.raises(ValueError, match="timeout must be positive"):
        function_tool(timeout=0)(fine)


SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "description": "The order number."}},
    "required": ["order_id"],
    "additionalProperties": False,
}
DESCRIPTION = "Look up the status of an order."


def test_openai_chat_completions_format() -> None:
    assert order_status.to_openai_format() == {
        "type": "function",
        "function": {"name": "order_status", "description": DESCRIPTION, "parameters": SCHEMA},
    }


def test_openai_responses_format() -> None:
    assert order_status.to_openai_responses_format() == {
        "type": "function",
        "name": "order_status",
        "description": DESCRIPTION,
        "parameters": SCHEMA,
    }


def test_anthropic_format() -> None:
    assert order_status.to_anthropic_format() == {
        "name": "order_status",
        "description": DESCRIPTION,
        "input_schema": SCHEMA,
    }


def test_definitions_are_copies() -> None:
    order_status.to_openai_format()["function"]["parameters"]["properties"].clear()
    assert order_status.parameters == SCHEMA


def test_session_is_injected_and_absent_from_the_schema() -> None:
    assert "session" not in json.dumps(order_status.to_openai_format())


# -- invoking ----------------------------------------------------------------------------


async def test_invoke_with_json_string_or_mapping_injects_the_session() -> None:
    session = make_session()
    expected = ToolResult(name="order_status", content="A-1 for conv-1: shipped")
    assert await order_status.invoke('{"order_id": "A-1"}', session) == expected
    assert await order_status.invoke({"order_id": "A-1"}, session=session) == expected


async def test_missing_required_session_is_an_error_result() -> None:
    result = await order_status.invoke({"order_id": "A-1"})
    assert not result.ok
    assert "needs a live conversation" in result.content


async def test_optional_session_receives_none() -> None:
    @function_tool
    def who(session: ConversationSession | None = None) -> str:
        return "nobody" if session is None else session.conversation_id

    assert "session" not in who.parameters["properties"]
    assert (await who.invoke("")).content == "nobody"
    assert (await who.invoke("{}", make_session())).content == "conv-1"


async def test_sync_tool_and_nested_attrs_arguments() -> None:
    @function_tool
    def place(order: Order, note: str | None = None) -> Order:
        return order

    arguments = {
        "order": {
            "id": "A-1",
            "lines": [{"sku": "tea"}, {"sku": "cup", "qty": 2.0}],
            "size": "l",
            "placed": "2025-01-02T03:04:05+00:00",
        }
    }
    result = await place.invoke(json.dumps(arguments))
    assert result.ok
    assert json.loads(result.content) == {
        "id": "A-1",
        "lines": [{"sku": "tea", "qty": 1}, {"sku": "cup", "qty": 2}],
        "size": "l",
        "placed": "2025-01-02T03:04:05+00:00",
    }


async def invalid(tool: FunctionTool, arguments: Any) -> str:
    result = await tool.invoke(arguments)
    assert not result.ok
    assert result.content.startswith(f"Invalid arguments for tool {tool.name}:")
    assert result.content.endswith("Call the tool again with corrected arguments.")
    return result.content


@function_tool
def typed(
    count: int,
    ratio: float = 1.0,
    flag: bool = False,
    mode: Literal["fast", "slow"] = "fast",
    size: Size = Size.SMALL,
    tags: list[str] | None = None,
    when: date | None = None,
) -> dict[str, Any]:
    return {"count": count, "ratio": ratio, "flag": flag, "mode": mode, "size": size}


async def test_strict_scalars() -> None:
    ok = await typed.invoke({"count": 3.0, "ratio": 2, "flag": True, "mode": "slow", "size": "l"})
    assert json.loads(ok.content) == {
        "count": 3,
        "ratio": 2.0,
        "flag": True,
        "mode": "slow",
        "size": "l",
    }
    assert 'count: expected an integer, got a string ("5")' in await invalid(typed, {"count": "5"})
    assert "count: expected an integer, got a boolean (true)" in await invalid(
        typed, {"count": True}
    )
    assert "count: expected an integer, got a number (2.5)" in await invalid(typed, {"count": 2.5})
    assert "ratio: expected a number" in await invalid(typed, {"count": 1, "ratio": "1"})
    assert "flag: expected a boolean" in await invalid(typed, {"count": 1, "flag": 1})
    assert 'mode: expected one of "fast", "slow"' in await invalid(
        typed, {"count": 1, "mode": "medium"}
    )
    assert 'size: expected one of "s", "l"' in await invalid(typed, {"count": 1, "size": "SMALL"})
    assert "tags: expected an array, got a string" in await invalid(
        typed, {"count": 1, "tags": "abc"}
    )
    assert "tags[1]: expected a string, got null" in await invalid(
        typed, {"count": 1, "tags": ["a", None]}
    )
    assert "when: expected an ISO 8601 date string" in await invalid(
        typed, {"count": 1, "when": "tomorrow"}
    )


async def test_each_kind_of_bad_arguments() -> None:
    assert "not valid JSON" in await invalid(typed, '{"count": ')
    assert "must be a JSON object, got an array" in await invalid(typed, "[1, 2]")
    assert "count: missing required argument" in await invalid(typed, {})
    assert "speed: unexpected argument" in await invalid(typed, {"count": 1, "speed": 3})
    every = await invalid(typed, {"count": "x", "flag": "no", "extra": 1})
    assert every.count("\n- ") == 3  # all problems at once, one line each


async def test_nested_problems_have_paths() -> None:
    @function_tool
    def place(order: Order) -> None: ...

    content = await invalid(
        place,
        {"order": {"id": 1, "lines": [{"qty": 1, "color": "red"}], "size": "s", "placed": "x"}},
    )
    assert "order.id: expected a string, got a number (1)" in content
    assert "order.lines[0].sku: missing required field" in content
    assert "order.lines[0]: unexpected field(s) 'color'" in content
    assert "order.placed: expected an ISO 8601 date-time string" in content


async def test_raising_tool_is_an_error_result() -> None:
    @function_tool
    async def broken(x: int) -> None:
        await trio.lowlevel.checkpoint()
        raise LookupError(f"no record {x}")

    result = await broken.invoke({"x": 7})
    assert result == ToolResult(
        name="broken", content="Tool broken failed: LookupError: no record 7", ok=False
    )


async def test_cancellation_propagates_out_of_invoke() -> None:
    finished = []

    @function_tool
    async def slow() -> str:
        try:
            await trio.sleep_forever()
        finally:
            finished.append(True)

    with trio.CancelScope() as scope:
        scope.cancel()
        await slow.invoke("{}")
        pytest.fail("invoke returned under cancellation")  # pragma: no cover
    assert scope.cancelled_caught
    assert finished == []  # invoke checkpoints first: the tool never started

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await slow.invoke("{}")

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert finished[-1] is True


async def test_other_base_exceptions_propagate() -> None:
    @function_tool
    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await stop.invoke("{}")


async def test_positional_only_parameters() -> None:
    @function_tool
    def divide(a: int, b: int = 2, /, *, round_up: bool = False) -> float:
        return a / b

    assert (await divide.invoke({"a": 9})).content == "4.5"
    assert (await divide.invoke({"a": 9, "b": 3})).content == "3.0"


# -- results -------------------------------------------------------------------------


class Tone(enum.IntEnum):
    LOW = 1


@pytest.mark.parametrize(
    ("value", "content"),
    [
        ("plain text, not JSON", "plain text, not JSON"),
        (None, "null"),
        (3, "3"),
        ({"when": datetime(2025, 1, 2, 3, 4, tzinfo=UTC)}, '{"when": "2025-01-02T03:04:00+00:00"}'),
        ([Size.LARGE, Tone.LOW, date(2025, 1, 2)], '["l", 1, "2025-01-02"]'),
        (Line("tea"), '{"sku": "tea", "qty": 1}'),
        ({"id": uuid.UUID(int=1)}, '{"id": "00000000-0000-0000-0000-000000000001"}'),
        ({"café"}, '["café"]'),
    ],
)
async def test_results_are_json_safe(value: Any, content: str) -> None:
    @function_tool
    async def give() -> Any:
        return value

    assert await give.invoke({}) == ToolResult(name="give", content=content)


# -- create_tool ---------------------------------------------------------------------


async def test_create_tool_with_a_hand_written_schema() -> None:
    required = ["city"]
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": required,
    }
    seen: list[Any] = []

    async def forecast(session: ConversationSession, city: str, days: int = 1) -> str:
        seen.append(session.conversation_id)
        return f"{city}: sunny for {days} day(s)"

    tool = create_tool("forecast", "The weather.", schema, forecast, timeout=3)
    required.append("days")  # the tool keeps its own copy
    assert tool.to_anthropic_format() == {
        "name": "forecast",
        "description": "The weather.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    }
    assert tool.injects_session == "session"
    assert tool.timeout == 3
    result = await tool.invoke('{"city": "Paris", "days": 2}', make_session())
    assert result.content == "Paris: sunny for 2 day(s)"
    assert seen == ["conv-1"]
    assert "city: missing required argument" in (await tool.invoke("{}", make_session())).content
    unknown = await tool.invoke({"city": "Oslo", "wind": 1}, make_session())
    assert "wind: unexpected argument" in unknown.content


async def test_create_tool_open_schema_passes_extras_and_refuses_non_objects() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": True}
    tool = create_tool("echo", "Echo.", schema, lambda **kw: kw)
    assert json.loads((await tool.invoke({"a": [1]})).content) == {"a": [1]}
    with pytest.raises(ValueError, match="object schema"):
        create_tool("bad", "Bad.", {"type": "string"}, lambda: None)


@attrs.frozen
class Point:
    x: Annotated[int, "Horizontal"]
    ys: Annotated[list[int] | None, "Heights"] = None


async def test_containers_are_checked_as_json_arrays_and_objects() -> None:
    @function_tool
    def take(
        seq: Sequence[int] = (),
        tup: tuple[int, ...] = (),
        labels: set[str] = frozenset(),  # type: ignore[assignment]
        by_name: Mapping[str, Point] | None = None,
        anything: Any = None,
    ) -> str:
        return repr((seq, tup, labels, by_name, anything))

    good = await take.invoke(
        {
            "seq": [1, 2],
            "tup": [3],
            "labels": ["a", "a"],
            "by_name": {"k": {"x": 1, "ys": [2]}},
            "anything": {"free": ["form"]},
        }
    )
    assert good.content == repr(([1, 2], (3,), {"a"}, {"k": Point(1, [2])}, {"free": ["form"]}))
    content = await invalid(
        take,
        {"seq": "12", "tup": {"a": 1}, "labels": "ab", "by_name": {"k": {"x": "1", "ys": "2"}}},
    )
    assert "seq: expected an array, got a string" in content
    assert "tup: expected an array, got an object" in content
    assert "labels: expected an array, got a string" in content
    assert "by_name['k'].x: expected an integer, got a string" in content
    assert "by_name['k'].ys: expected an array, got a string" in content


def test_public_names() -> None:
    assert sorted(tools.__all__) == [
        "FunctionTool",
        "ToolCall",
        "ToolRegistry",
        "ToolRegistryStatistics",
        "ToolResult",
        "create_tool",
        "function_tool",
    ]
