"""JSON Schema for a tool's parameters, derived from a function signature and type hints.

The schema describes exactly what :mod:`tac_actors.tools.arguments` accepts, so the LLM is
told the truth. Supported annotations, nested freely:

=========================================  ===============================================
``str`` / ``int`` / ``float`` / ``bool``   ``string`` / ``integer`` / ``number`` /
                                           ``boolean``
``datetime`` / ``date``                    ``string`` with ``format`` ``date-time`` / ``date``
``Literal[...]``, ``Enum`` subclasses      ``enum`` of the (JSON scalar) values
``X | None``, ``Optional[X]``              ``anyOf`` X and ``null``
``list[T]``, ``Sequence[T]``               ``array`` of T
``set[T]``, ``frozenset[T]``               ``array`` of T with ``uniqueItems``
``tuple[T, ...]`` / ``tuple[A, B]``        ``array`` of T / ``prefixItems`` A, B
``dict[str, T]``, ``Mapping[str, T]``      ``object`` with ``additionalProperties`` T
attrs classes                              ``object`` with the init fields (by alias)
``Any``                                    ``{}``: any JSON value, passed through
``Annotated[T, "text"]``                   T, described by ``text``
=========================================  ===============================================

Objects never allow undeclared keys (``additionalProperties: false``). Anything else, and
any other union, is refused with a :class:`TypeError` when the tool is defined, naming
the function, the parameter and, for attrs classes, the field.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

import attrs

from tac_actors.tools.docstrings import parse_docstring
from tac_actors.tools.results import to_json_value

__all__ = [
    "ParameterSpec",
    "function_parameters",
    "parameters_schema",
    "resolve_type_hints",
    "split_annotated",
    "type_schema",
]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
    type(None): {"type": "null"},
}
_LISTS = (list, collections.abc.Sequence, collections.abc.MutableSequence)
_SETS = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_EMPTY = inspect.Parameter.empty


class _Unsupported(TypeError):
    """An annotation the schema (and the argument converter) cannot handle."""


@attrs.frozen
class ParameterSpec:
    """One parameter the LLM fills in: its resolved type (``Annotated`` stripped), its
    default (``inspect.Parameter.empty`` when required) and its description."""

    name: str
    annotation: Any
    default: Any = _EMPTY
    kind: inspect._ParameterKind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    description: str | None = None

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


def resolve_type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The evaluated annotations of ``fn`` (``Annotated`` kept).

    Raises :class:`TypeError` when an annotation cannot be evaluated, e.g. a name imported
    only under ``TYPE_CHECKING``.
    """
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise TypeError(
            f"cannot evaluate the type hints of {_qualname(fn)}: {exc} (names used in "
            "tool annotations must be importable at runtime)"
        ) from exc


def split_annotated(tp: Any) -> tuple[Any, str | None]:
    """``Annotated[T, "text", ...]`` → ``(T, "text")``; anything else → ``(tp, None)``."""
    if typing.get_origin(tp) is Annotated:
        base, *extras = typing.get_args(tp)
        text = next((extra for extra in extras if isinstance(extra, str)), None)
        return base, text
    return tp, None


def function_parameters(
    fn: Callable[..., Any],
    hints: Mapping[str, Any],
    *,
    descriptions: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
) -> list[ParameterSpec]:
    """The LLM-facing parameters of ``fn``, in signature order, checked for support.

    ``exclude`` names parameters filled in by the engine (the injected session).
    Raises :class:`TypeError` naming the function and the parameter for ``*args`` /
    ``**kwargs``, a missing annotation or an unsupported type.
    """
    descriptions = descriptions or {}
    specs: list[ParameterSpec] = []
    for param in inspect.signature(fn).parameters.values():
        if param.name in exclude:
            continue
        where = f"parameter {param.name!r} of tool function {_qualname(fn)}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{where}: *args and **kwargs cannot be described to an LLM")
        if param.name not in hints:
            raise TypeError(f"{where} has no type annotation")
        annotation, annotated_text = split_annotated(hints[param.name])
        try:
            type_schema(annotation)
        except _Unsupported as exc:
            raise TypeError(f"{where}: {exc}") from None
        specs.append(
            ParameterSpec(
                name=param.name,
                annotation=annotation,
                default=param.default,
                kind=param.kind,
                description=annotated_text or descriptions.get(param.name),
            )
        )
    return specs


def parameters_schema(params: Sequence[ParameterSpec]) -> dict[str, Any]:
    """The ``object`` schema of a tool's parameters: ``properties`` (with ``description``
    and ``default`` where known), ``required`` (always present, possibly empty) and
    ``additionalProperties: false``."""
    properties: dict[str, Any] = {}
    for spec in params:
        properties[spec.name] = _with_details(
            type_schema(spec.annotation), spec.description, spec.default
        )
    return {
        "type": "object",
        "properties": properties,
        "required": [spec.name for spec in params if spec.required],
        "additionalProperties": False,
    }


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of one annotation; a fresh dict on every call.

    Raises :class:`TypeError` (with the offending annotation in the message) for
    anything outside the table in the module docstring.
    """
    return _schema(tp, ())


def _schema(tp: Any, stack: tuple[type, ...]) -> dict[str, Any]:
    tp, _ = split_annotated(tp)
    if tp is Any:
        return {}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_schema([member.value for member in tp], tp)
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if isinstance(tp, type) and attrs.has(tp):
        return _attrs_schema(tp, stack)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        values = [arg.value if isinstance(arg, enum.Enum) else arg for arg in args]
        return _enum_schema(values, tp)
    if origin in (Union, types.UnionType):
        others = [arg for arg in args if arg is not type(None)]
        if len(others) != 1 or len(args) != 2:
            raise _Unsupported(f"unsupported union {_show(tp)}: only `X | None` is supported")
        return {"anyOf": [_schema(others[0], stack), {"type": "null"}]}
    if origin is None or not args:
        if tp in (*_LISTS, *_SETS, *_MAPPINGS, tuple):
            raise _Unsupported(f"{_show(tp)} needs its item types, e.g. list[str]")
        raise _Unsupported(f"unsupported type annotation {_show(tp)}")
    if origin in _LISTS:
        return {"type": "array", "items": _schema(args[0], stack)}
    if origin in _SETS:
        return {"type": "array", "items": _schema(args[0], stack), "uniqueItems": True}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], stack)}
        return {
            "type": "array",
            "prefixItems": [_schema(arg, stack) for arg in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in _MAPPINGS:
        if split_annotated(args[0])[0] is not str:
            raise _Unsupported(f"{_show(tp)}: JSON object keys are strings, use dict[str, T]")
        return {"type": "object", "additionalProperties": _schema(args[1], stack)}
    raise _Unsupported(f"unsupported type annotation {_show(tp)}")


def _enum_schema(values: list[Any], tp: Any) -> dict[str, Any]:
    kinds: set[str] = set()
    for value in values:
        kind = _json_scalar_kind(value)
        if kind is None:
            raise _Unsupported(f"{_show(tp)}: value {value!r} is not a JSON string or number")
        kinds.add(kind)
    schema: dict[str, Any] = {"enum": list(values)}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    return schema


def _json_scalar_kind(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _attrs_schema(cls: type, stack: tuple[type, ...]) -> dict[str, Any]:
    if cls in stack:
        raise _Unsupported(f"attrs class {cls.__qualname__} is recursive")
    try:
        attrs.resolve_types(cls, include_extras=True)
    except Exception as exc:
        raise _Unsupported(
            f"cannot evaluate the field types of {cls.__qualname__}: {exc}"
        ) from None
    doc = parse_docstring(cls.__doc__)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        key = field.alias or field.name
        if field.type is None:
            raise _Unsupported(f"field {field.name!r} of {cls.__qualname__} has no type")
        base, annotated_text = split_annotated(field.type)
        try:
            schema = _schema(base, (*stack, cls))
        except _Unsupported as exc:
            raise _Unsupported(f"{exc} (field {field.name!r} of {cls.__qualname__})") from None
        default = _attrs_default(field)
        if field.default is attrs.NOTHING:
            required.append(key)
        description = annotated_text or doc.params.get(field.name) or doc.params.get(key)
        properties[key] = _with_details(schema, description, default)
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if doc.description:
        result["description"] = doc.description
    return result


def _attrs_default(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return _EMPTY
        default = default.factory()
    return _EMPTY if default is attrs.NOTHING else default


def _with_details(schema: dict[str, Any], description: str | None, default: Any) -> dict[str, Any]:
    if description:
        schema["description"] = description
    if default is not _EMPTY:
        schema["default"] = to_json_value(default)
    return schema


def _show(tp: Any) -> str:
    if isinstance(tp, type):
        return (
            tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
        )
    return repr(tp).replace("typing.", "")


def _qualname(fn: Callable[..., Any]) -> str:
    return repr(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or fn)
