"""The tools of one agent, and how one LLM step's tool calls run.

:meth:`ToolRegistry.run_calls` is the only place tools run concurrently: every call of a
step starts at once in one nursery, each under its own deadline, and the results come
back in call order. A failure of one call (unknown tool, bad arguments, exception,
timeout) is that call's result and does not disturb the others. Cancellation from the
caller (a barge-in) is the one thing that is not turned into a result: it reaches every
running tool at once and propagates.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import attrs
import trio

from tac_actors import tracing
from tac_actors.session import ConversationSession
from tac_actors.tools.function_tool import FunctionTool
from tac_actors.tools.results import ToolCall, ToolResult

__all__ = ["DefinitionFormat", "ToolRegistry", "ToolRegistryStatistics"]

DefinitionFormat = Literal["openai", "openai_responses", "realtime", "anthropic"]


@attrs.frozen
class ToolRegistryStatistics:
    """Counters since the registry was made: ``calls`` run (or refused, for an unknown
    tool), ``errors`` among them (``ok=False`` results other than timeouts), ``timeouts``,
    and ``running``, the calls in progress right now. Calls cancelled from outside count
    in ``calls`` only."""

    calls: int
    errors: int
    timeouts: int
    running: int


def live_registries() -> list[ToolRegistry]:
    """Every registry still referenced somewhere (``GET /metrics`` sums their counters)."""
    return list(_LIVE)


class ToolRegistry:
    """A fixed set of tools, by name.

    Raises :class:`ValueError` at construction when two tools share a name.
    """

    def __init__(self, tools: Iterable[FunctionTool] = ()) -> None:
        self._tools: dict[str, FunctionTool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool
        self._calls = 0
        self._errors = 0
        self._timeouts = 0
        self._running = 0
        _LIVE.add(self)

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[FunctionTool]:
        return iter(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> FunctionTool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def definitions(self, format: DefinitionFormat = "openai") -> list[dict[str, Any]]:
        """Every tool's definition for one LLM API, in registration order:

        ``"openai"`` (Chat Completions), ``"openai_responses"`` (Responses, flat),
        ``"realtime"`` (OpenAI Realtime, the same flat shape) or ``"anthropic"``.
        Raises :class:`ValueError` for another format.
        """
        if format == "openai":
            return [tool.to_openai_format() for tool in self]
        if format == "realtime":
            return [tool.to_realtime_format() for tool in self]
        if format == "openai_responses":
            return [tool.to_openai_responses_format() for tool in self]
        if format == "anthropic":
            return [tool.to_anthropic_format() for tool in self]
        raise ValueError(f"unknown tool definition format {format!r}")

    def statistics(self) -> ToolRegistryStatistics:
        """A snapshot of the counters."""
        return ToolRegistryStatistics(
            calls=self._calls, errors=self._errors, timeouts=self._timeouts, running=self._running
        )

    async def run_calls(
        self,
        calls: Sequence[ToolCall],
        session: ConversationSession | None = None,
        *,
        default_timeout: float | None = 10.0,
    ) -> list[ToolResult]:
        """Run all tool calls of one LLM step concurrently; one result per call, in order.

        Each result carries its call's id. Each call runs under the tool's ``timeout`` or
        else ``default_timeout`` seconds (``None``: no deadline); when the deadline
        expires, the tool is cancelled and its result says it timed out. Never raises an
        :class:`Exception` for a failing call. Always checkpoints.

        Cancellation: when the caller's scope is cancelled, every running tool is
        cancelled at once (their ``finally`` blocks run), nothing is returned and
        :class:`trio.Cancelled` propagates as usual.
        """
        if not calls:
            await trio.lowlevel.checkpoint()
            return []
        results: list[ToolResult | None] = [None] * len(calls)
        async with trio.open_nursery() as nursery:
            for index, call in enumerate(calls):
                nursery.start_soon(self._run_one, results, index, call, session, default_timeout)
        done = [result for result in results if result is not None]
        assert len(done) == len(calls)
        return done

    async def _run_one(
        self,
        results: list[ToolResult | None],
        index: int,
        call: ToolCall,
        session: ConversationSession | None,
        default_timeout: float | None,
    ) -> None:
        self._calls += 1
        with tracing.tool_span(call.name, call.id) as span:
            tool = self._tools.get(call.name)
            if tool is None:
                await trio.lowlevel.checkpoint()
                known = ", ".join(self._tools) or "none"
                result = ToolResult(
                    name=call.name,
                    content=f"There is no tool named {call.name!r}. Available tools: {known}.",
                    ok=False,
                )
            else:
                result = await self._invoke(tool, call, session, default_timeout)
            if result.timed_out:
                self._timeouts += 1
                tracing.mark_error(span, "timeout", "the tool timed out")
            elif not result.ok:
                self._errors += 1
                tracing.mark_error(span, "tool_error", "the tool failed")
        results[index] = attrs.evolve(result, call_id=call.id)

    async def _invoke(
        self,
        tool: FunctionTool,
        call: ToolCall,
        session: ConversationSession | None,
        default_timeout: float | None,
    ) -> ToolResult:
        timeout = tool.timeout if tool.timeout is not None else default_timeout
        self._running += 1
        try:
            with trio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
                return await tool.invoke(call.arguments, session)
        finally:
            self._running -= 1
        assert scope.cancelled_caught
        return ToolResult(
            name=tool.name,
            content=f"Tool {tool.name} timed out after {timeout:g} s and was cancelled.",
            ok=False,
            timed_out=True,
        )

    def __repr__(self) -> str:
        return f"<ToolRegistry {list(self._tools)}>"


_LIVE: weakref.WeakSet[ToolRegistry] = weakref.WeakSet()
