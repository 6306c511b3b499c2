"""``@function_tool`` and ``TACTool`` as in the reference: awaitable tools with
``to_openai_agents_sdk_tool()``, and ``InjectedToolArg`` parameters hidden from the model
and filled by ``configure_injection(**values)``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import Annotated, Any

from tac_actors.tools import FunctionTool
from tac_actors.tools import function_tool as native_function_tool
from tac_actors.tools.results import render_content

__all__ = ["InjectedToolArg", "TACTool", "create_tool", "function_tool"]


class InjectedToolArg:
    """Mark a parameter ``Annotated[T, InjectedToolArg]``: not in the schema; its value
    comes from :meth:`TACTool.configure_injection`."""


def _injected(fn: Callable[..., Any]) -> set[str]:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        return set()
    return {name for name, hint in hints.items()
            if typing.get_origin(hint) is Annotated
            and any(a is InjectedToolArg or isinstance(a, InjectedToolArg)
                    for a in typing.get_args(hint)[1:])}


class TACTool:
    """A tool: ``name``, ``description``, ``params_json_schema``; ``await tool(**kw)``
    calls it (sync functions in a worker thread when awaited from asyncio). ``native`` is
    the :class:`~tac_actors.tools.FunctionTool` our agents and registries take."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None,
                 description: str | None = None) -> None:
        self._fn = fn
        self._values: dict[str, Any] = {}
        hidden = _injected(fn)
        values = self._values

        if inspect.iscoroutinefunction(fn):
            async def call(*args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **{**values, **kwargs})
            proxy: Callable[..., Any] = call
        else:
            def call_sync(*args: Any, **kwargs: Any) -> Any:
                return fn(*args, **{**values, **kwargs})
            proxy = call_sync
        functools.update_wrapper(proxy, fn)
        if hidden:
            signature = inspect.signature(fn)
            proxy.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
                p for p in signature.parameters.values() if p.name not in hidden])
            proxy.__annotations__ = {k: v for k, v in fn.__annotations__.items()
                                     if k not in hidden}
        self.native: FunctionTool = native_function_tool(name=name,
                                                         description=description)(proxy)

    @property
    def name(self) -> str:
        return self.native.name

    @property
    def description(self) -> str:
        return self.native.description

    @property
    def params_json_schema(self) -> dict[str, Any]:
        return self.native.to_openai_responses_format()["parameters"]  # type: ignore[no-any-return]

    def configure_injection(self, **values: Any) -> TACTool:
        """Set values for the ``InjectedToolArg`` parameters; returns the tool."""
        self._values.update(values)
        return self

    async def __call__(self, **kwargs: Any) -> Any:
        fn = self.native.fn
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(fn, **kwargs))

    @property
    def implementation(self) -> Callable[..., Any]:
        return self.__call__

    def to_openai_format(self) -> dict[str, Any]:
        return self.native.to_openai_format()

    def to_realtime_format(self) -> dict[str, Any]:
        return self.native.to_openai_responses_format()

    def to_anthropic_format(self) -> dict[str, Any]:
        return self.native.to_anthropic_format()

    def to_json(self) -> str:
        return json.dumps(self.to_openai_format())

    def to_openai_agents_sdk_tool(self) -> Any:
        """An ``agents.FunctionTool`` (needs ``openai-agents``) calling this tool."""
        from agents import FunctionTool as AgentsTool

        async def invoke(_context: Any, arguments: str) -> str:
            return render_content(await self(**json.loads(arguments or "{}")))

        return AgentsTool(name=self.name, description=self.description,
                          params_json_schema=self.params_json_schema,
                          on_invoke_tool=invoke, strict_json_schema=False)

    def __repr__(self) -> str:
        return f"TACTool(name={self.name!r})"


def function_tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
                  description: str | None = None) -> Any:
    """``@function_tool`` or ``@function_tool(name=..., description=...)``."""
    if fn is not None:
        return TACTool(fn)
    return lambda f: TACTool(f, name, description)


def create_tool(name: str, description: str, params_json_schema: dict[str, Any],
                implementation: Callable[..., Any]) -> FunctionTool:
    """A tool from an explicit schema (our :func:`tac_actors.tools.create_tool`)."""
    from tac_actors.tools import create_tool as native_create_tool

    return native_create_tool(name, description, params_json_schema, implementation)
