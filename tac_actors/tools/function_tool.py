"""Tools the LLM can call: ``@function_tool`` and ``create_tool``.

A :class:`FunctionTool` is a frozen value: a name, a description, a JSON schema of its
parameters and the function that does the work. The schema comes from the function's
signature and type hints (:mod:`tac_actors.tools.schema`); the descriptions from its
docstring (:mod:`tac_actors.tools.docstrings`); arguments are checked on the way in
(:mod:`tac_actors.tools.arguments`) and results rendered on the way out
(:mod:`tac_actors.tools.results`).

A parameter annotated :class:`~tac_actors.session.ConversationSession` (or
``ConversationSession | None``) is not shown to the LLM: the session given to
:meth:`FunctionTool.invoke` is passed in its place.
"""

from __future__ import annotations

import copy
import inspect
import logging
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, overload

import attrs
import trio

from tac_actors.session import ConversationSession
from tac_actors.tools.arguments import ArgumentError, CallPlan
from tac_actors.tools.docstrings import parse_docstring
from tac_actors.tools.results import ToolResult, render_content
from tac_actors.tools.schema import (
    function_parameters,
    parameters_schema,
    resolve_type_hints,
    split_annotated,
)
from tac_actors.usercode import call_tool

__all__ = ["FunctionTool", "create_tool", "function_tool"]

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _check_name(_: object, __: attrs.Attribute[str], name: str) -> None:
    if not _NAME_RE.match(name):
        raise ValueError(f"tool name {name!r} must match ^[A-Za-z0-9_-]{{1,64}}$")


def _check_timeout(_: object, __: attrs.Attribute[float | None], timeout: float | None) -> None:
    if timeout is not None and not timeout > 0:
        raise ValueError(f"tool timeout must be positive, got {timeout!r}")


@attrs.frozen(eq=False)
class FunctionTool:
    """A tool the LLM can call.

    ``parameters`` is the JSON schema of the arguments, ``fn`` the function (sync or
    async) called with them, ``injects_session`` the name of the parameter that receives
    the :class:`ConversationSession` (``None`` if none does), ``timeout`` the tool's own
    deadline in seconds, applied by :class:`~tac_actors.tools.ToolRegistry` (``None``:
    the registry's default). Tools compare by identity. Calling the tool object calls
    ``fn`` directly, unchecked.
    """

    name: str = attrs.field(validator=_check_name)
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] = attrs.field(repr=False)
    injects_session: str | None = None
    timeout: float | None = attrs.field(default=None, validator=_check_timeout)
    _plan: CallPlan = attrs.field(
        default=attrs.Factory(
            lambda self: _schema_plan(self.parameters, self.injects_session), takes_self=True
        ),
        kw_only=True,
        repr=False,
        alias="plan",
    )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    # -- definitions for the LLM APIs (fresh copies: mutate them freely) ----------------

    def to_openai_format(self) -> dict[str, Any]:
        """Chat Completions: ``{"type": "function", "function": {name, description,
        parameters}}``."""
        return {"type": "function", "function": self._definition("parameters")}

    def to_openai_responses_format(self) -> dict[str, Any]:
        """Responses API and Realtime: ``{"type": "function", name, description,
        parameters}``."""
        return {"type": "function", **self._definition("parameters")}

    def to_realtime_format(self) -> dict[str, Any]:
        """OpenAI Realtime ``session.tools``: the same flat shape as the Responses API."""
        return self.to_openai_responses_format()

    def to_anthropic_format(self) -> dict[str, Any]:
        """Anthropic Messages: ``{name, description, input_schema}``."""
        return self._definition("input_schema")

    def _definition(self, schema_key: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            schema_key: copy.deepcopy(self.parameters),
        }

    # -- calling ------------------------------------------------------------------------

    async def invoke(
        self, arguments: str | Mapping[str, Any], session: ConversationSession | None = None
    ) -> ToolResult:
        """Call the tool with ``arguments`` as the LLM sent them (JSON text or a mapping).

        Never raises an :class:`Exception`: bad JSON, a missing, unknown or ill-typed
        argument, a missing session and an exception raised by the tool all come back as
        ``ToolResult(ok=False)`` whose ``content`` tells the LLM what went wrong. Always
        checkpoints. Cancellation (and any other :class:`BaseException`) propagates from
        wherever the tool is, unchanged. A sync tool runs in a worker thread (it may
        block; once cancelled, its result is discarded when it returns); an async tool
        runs on asyncio in asyncio mode (see :mod:`tac_actors.usercode`). The deadline
        ``timeout`` is not applied here.
        """
        await trio.lowlevel.checkpoint()
        if session is None and self._plan.session_required:
            return self._failure(f"Tool {self.name} needs a live conversation; none was given.")
        try:
            args, kwargs = self._plan.bind(arguments, session)
        except ArgumentError as exc:
            listed = "\n".join(f"- {problem}" for problem in exc.problems)
            return self._failure(
                f"Invalid arguments for tool {self.name}:\n{listed}\n"
                "Call the tool again with corrected arguments."
            )
        try:
            value = await call_tool(self.fn, self.name, args, kwargs)
        except Exception as exc:
            logger.warning("tool %s raised", self.name, exc_info=True)
            return self._failure(f"Tool {self.name} failed: {type(exc).__name__}: {exc}")
        return ToolResult(name=self.name, content=render_content(value))

    def _failure(self, content: str) -> ToolResult:
        return ToolResult(name=self.name, content=content, ok=False)


# -- building tools -------------------------------------------------------------------------


@overload
def function_tool(fn: Callable[..., Any], /) -> FunctionTool: ...


@overload
def function_tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a tool of a sync or async function: ``@function_tool`` or
    ``@function_tool(name=..., description=..., timeout=...)``.

    The name defaults to the function's name; the description to the prose of its
    docstring, or, without one, to the name in words. Parameter descriptions come from
    the docstring (Google or reST style) or ``Annotated[T, "description"]``.
    Raises :class:`TypeError` at decoration time, naming the function and the parameter,
    for a parameter the schema cannot describe; :class:`ValueError` for a bad name or
    timeout.
    """

    def decorate(fn: Callable[..., Any]) -> FunctionTool:
        return _build(fn, name=name, description=description, timeout=timeout)

    return decorate if fn is None else decorate(fn)


def create_tool(
    name: str,
    description: str,
    parameters_schema: Mapping[str, Any],
    fn: Callable[..., Any],
    *,
    timeout: float | None = None,
) -> FunctionTool:
    """A tool with a hand-written JSON schema; ``fn`` is called with keyword arguments.

    The arguments are passed as decoded JSON, unconverted; :meth:`FunctionTool.invoke`
    checks only that every ``required`` property is present and, unless the schema sets
    ``additionalProperties``, that no unknown one is. A parameter of ``fn`` annotated
    ``ConversationSession`` still receives the session. Raises :class:`ValueError` when
    the schema is not an ``object`` schema.
    """
    schema = copy.deepcopy(dict(parameters_schema))
    if schema.get("type", "object") != "object":
        raise ValueError(f"the parameters schema of tool {name!r} must be an object schema")
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    session_param, session_required = _session_parameter(fn, _hints_or_empty(fn))
    return FunctionTool(
        name=name,
        description=description,
        parameters=schema,
        fn=fn,
        injects_session=session_param,
        timeout=timeout,
        plan=_schema_plan(schema, session_param, session_required=session_required),
    )


def _build(
    fn: Callable[..., Any], *, name: str | None, description: str | None, timeout: float | None
) -> FunctionTool:
    hints = resolve_type_hints(fn)
    session_param, session_required = _session_parameter(fn, hints)
    doc = parse_docstring(inspect.getdoc(fn))
    specs = function_parameters(
        fn,
        hints,
        descriptions=doc.params,
        exclude=() if session_param is None else (session_param,),
    )
    signature = inspect.signature(fn)
    positional = tuple(
        (param.name, param.default)
        for param in signature.parameters.values()
        if param.kind is param.POSITIONAL_ONLY
    )
    tool_name = name or str(getattr(fn, "__name__", ""))
    return FunctionTool(
        name=tool_name,
        description=description or doc.description or _words(tool_name),
        parameters=parameters_schema(specs),
        fn=fn,
        injects_session=session_param,
        timeout=timeout,
        plan=CallPlan(
            params=tuple(specs),
            session_param=session_param,
            session_required=session_required,
            positional=positional,
        ),
    )


def _schema_plan(
    schema: Mapping[str, Any], session_param: str | None, *, session_required: bool = False
) -> CallPlan:
    properties = schema.get("properties") or {}
    return CallPlan(
        required=frozenset(schema.get("required") or ()),
        allowed=frozenset(properties),
        open_ended=schema.get("additionalProperties", False) is not False,
        session_param=session_param,
        session_required=session_required,
    )


def _hints_or_empty(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return resolve_type_hints(fn)
    except TypeError:
        return {}


def _session_parameter(fn: Callable[..., Any], hints: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The one parameter annotated ``ConversationSession`` (or ``ConversationSession |
    None``), and whether it requires a session (is not optional)."""
    found: list[tuple[str, bool]] = []
    for param_name, hint in hints.items():
        base = split_annotated(hint)[0]
        if base is ConversationSession:
            found.append((param_name, True))
        elif typing.get_args(base) and set(typing.get_args(base)) == {
            ConversationSession,
            type(None),
        }:
            found.append((param_name, False))
    if len(found) > 1:
        names = [param_name for param_name, _ in found]
        raise TypeError(
            f"tool function {_qualname(fn)} takes several ConversationSessions: {names}"
        )
    return found[0] if found else (None, False)


def _qualname(fn: Callable[..., Any]) -> str:
    return repr(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or fn)


def _words(name: str) -> str:
    """``get_order_status`` / ``getOrderStatus`` → ``Get order status``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    text = " ".join(spaced.split()).lower()
    return text[:1].upper() + text[1:]
