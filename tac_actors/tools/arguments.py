"""From the arguments an LLM sent to the arguments a tool function is called with.

The edge between the model and our code, so it is strict: a cattrs converter whose hooks
check the JSON shape before building anything, and never coerce silently.

* ``str`` accepts strings only, ``bool`` booleans only.
* ``int`` accepts integers, and floats with an integral value (``5.0``: JSON Schema calls
  that an integer too), never booleans or numeric strings: ``"5"`` is refused, so the
  model learns to send ``5``. ``float`` accepts any number, never a boolean or a string.
* ``datetime`` / ``date`` accept ISO 8601 strings.
* ``Literal`` and ``Enum`` accept exactly one of their values, compared with their JSON
  type (``true`` is not ``1``); ``X | None`` accepts ``null`` or an X.
* Lists, sets and tuples accept JSON arrays only (a string is not a list of characters),
  fixed-size tuples exactly that many items; mappings and attrs classes accept JSON
  objects only, attrs classes keyed by field alias, with no unknown keys.

A problem never escapes as an exception other than :class:`ArgumentError`, whose message
lists every problem with its path (``order.items[0].sku: expected a string, got null``).
"""

from __future__ import annotations

import collections.abc
import enum
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, list_structure_factory
from cattrs.errors import (
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn
from cattrs.v import transform_error

from tac_actors.tools.schema import ParameterSpec, split_annotated

__all__ = ["ArgumentError", "CallPlan", "decode_arguments", "make_strict_converter"]

_Hook = Callable[[Any, Any], Any]


class ArgumentError(Exception):
    """The LLM's arguments do not fit the tool; ``problems`` says why, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class _ShapeError(ValueError):
    """A JSON value of the wrong kind; the message is meant for the LLM."""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    kinds = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    kind = next((text for tp, text in kinds.items() if isinstance(value, tp)), "a value")
    shown = json.dumps(value, default=str)
    return f"{kind} ({shown})" if len(shown) <= 40 else kind


def _expect(ok: bool, what: str, value: Any) -> None:
    if not ok:
        raise _ShapeError(f"expected {what}, got {_describe(value)}")


def _structure_str(value: Any, _: Any) -> str:
    _expect(isinstance(value, str), "a string", value)
    return str(value)


def _structure_bool(value: Any, _: Any) -> bool:
    _expect(isinstance(value, bool), "a boolean", value)
    return bool(value)


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    _expect(isinstance(value, int) and not isinstance(value, bool), "an integer", value)
    return int(value)


def _structure_float(value: Any, _: Any) -> float:
    _expect(isinstance(value, int | float) and not isinstance(value, bool), "a number", value)
    return float(value)


def _iso_parser(kind: type[date], what: str) -> _Hook:
    def structure(value: Any, _: Any) -> Any:
        _expect(isinstance(value, str), what, value)
        try:
            return kind.fromisoformat(value)
        except ValueError:
            raise _ShapeError(f"expected {what}, got {_describe(value)}") from None

    return structure


def _same_json_value(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON kind: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _choice_hook(choices: Sequence[tuple[Any, Any]]) -> _Hook:
    """``choices`` pairs each accepted JSON value with what it structures into."""
    shown = ", ".join(json.dumps(value) for value, _ in choices)

    def structure(value: Any, _: Any) -> Any:
        for json_value, result in choices:
            if _same_json_value(value, json_value):
                return result
        raise _ShapeError(f"expected one of {shown}, got {_describe(value)}")

    return structure


def _enum_factory(tp: type[enum.Enum]) -> _Hook:
    return _choice_hook([(member.value, member) for member in tp])


def _literal_factory(tp: Any) -> _Hook:
    return _choice_hook(
        [(arg.value if isinstance(arg, enum.Enum) else arg, arg) for arg in typing.get_args(tp)]
    )


def _origin_in(*origins: Any) -> Callable[[Any], bool]:
    return lambda tp: typing.get_origin(tp) in origins and bool(typing.get_args(tp))


def _guarded(kind: type, what: str, hook: _Hook) -> _Hook:
    def structure(value: Any, tp: Any) -> Any:
        _expect(isinstance(value, kind), what, value)
        return hook(value, tp)

    return structure


def _list_factory(tp: Any, converter: cattrs.Converter) -> _Hook:
    return _guarded(list, "an array", list_structure_factory(tp, converter))


def _set_factory(tp: Any, converter: cattrs.Converter) -> _Hook:
    item_type: Any = typing.get_args(tp)[0]
    as_list = list_structure_factory(list[item_type], converter)
    build = frozenset if typing.get_origin(tp) in (frozenset, collections.abc.Set) else set
    return _guarded(list, "an array", lambda value, t: build(as_list(value, t)))


def _tuple_factory(tp: Any, converter: cattrs.Converter) -> _Hook:
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        return _guarded(list, "an array", homogenous_tuple_structure_factory(tp, converter))
    hooks = [converter.get_structure_hook(arg) for arg in args]

    def structure(value: Any, _: Any) -> tuple[Any, ...]:
        _expect(
            isinstance(value, list) and len(value) == len(args),
            f"an array of {len(args)} items",
            value,
        )
        errors: list[Exception] = []
        items: list[Any] = []
        for index, (item, hook, arg) in enumerate(zip(value, hooks, args, strict=True)):
            try:
                items.append(hook(item, arg))
            except Exception as exc:
                note = IterableValidationNote(f"index {index}", index, arg)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return tuple(items)

    return structure


def _mapping_factory(tp: Any, converter: cattrs.Converter) -> _Hook:
    return _guarded(dict, "an object", make_mapping_structure_fn(tp, converter))


def _attrs_factory(tp: Any, converter: cattrs.Converter) -> _Hook:
    return _guarded(dict, "an object", make_dict_structure_fn(tp, converter))


def make_strict_converter() -> cattrs.Converter:
    """A new converter with the strict hooks described in the module docstring."""
    converter = cattrs.Converter(forbid_extra_keys=True, use_alias=True, detailed_validation=True)
    for tp, hook in (
        (str, _structure_str),
        (bool, _structure_bool),
        (int, _structure_int),
        (float, _structure_float),
        (datetime, _iso_parser(datetime, "an ISO 8601 date-time string")),
        (date, _iso_parser(date, "an ISO 8601 date string")),
    ):
        converter.register_structure_hook(tp, hook)
    list_origins = (list, collections.abc.Sequence, collections.abc.MutableSequence)
    set_origins = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)
    map_origins = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
    factories: list[tuple[Callable[[Any], bool], Callable[..., _Hook]]] = [
        (lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum), _enum_factory),
        (lambda tp: typing.get_origin(tp) is Literal, _literal_factory),
        (_origin_in(*list_origins), _list_factory),
        (_origin_in(*set_origins), _set_factory),
        (_origin_in(tuple), _tuple_factory),
        (_origin_in(*map_origins), _mapping_factory),
        (lambda tp: isinstance(tp, type) and attrs.has(tp), _attrs_factory),
    ]
    for predicate, factory in factories:
        converter.register_structure_hook_factory(predicate, factory)
    return converter


_CONVERTER = make_strict_converter()


def _format_exception(exc: BaseException, _: Any) -> str:
    if isinstance(exc, _ShapeError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "missing required field"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unexpected field(s) {', '.join(sorted(map(repr, exc.extra_fields)))}"
    return f"invalid value ({exc})"


def _problems(exc: Exception, path: str) -> list[str]:
    lines = transform_error(exc, path="$", format_exception=_format_exception)
    problems = []
    for line in lines:
        text, _, where = line.rpartition(" @ ")
        problems.append(f"{path}{where.removeprefix('$')}: {text}")
    return problems


def decode_arguments(raw: str | Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as a dict: a JSON object string is decoded (an empty string counts
    as ``{}``), a mapping copied. Raises :class:`ArgumentError` for anything else."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        raise ArgumentError([f"arguments must be a JSON object, got {type(raw).__name__}"])
    if not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise ArgumentError([f"the arguments are not valid JSON ({exc})"]) from None
    if not isinstance(decoded, dict):
        raise ArgumentError([f"the arguments must be a JSON object, got {_describe(decoded)}"])
    return decoded


@attrs.frozen
class CallPlan:
    """How to turn decoded arguments into a call of the tool function.

    With ``params`` (a function tool), every argument is structured into its annotated
    type and unknown ones are refused. Without (a hand-written schema), arguments are
    passed as decoded JSON; only ``required`` and, unless ``open_ended``, ``allowed`` are
    checked. ``session_param`` names the parameter the session is injected into,
    ``session_required`` says it does not accept ``None``. ``positional`` lists the
    positional-only parameters, in order, with their defaults.
    """

    params: tuple[ParameterSpec, ...] | None = None
    required: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    open_ended: bool = False
    session_param: str | None = None
    session_required: bool = False
    positional: tuple[tuple[str, Any], ...] = ()

    def bind(self, raw: str | Mapping[str, Any], session: Any) -> tuple[list[Any], dict[str, Any]]:
        """``(args, kwargs)`` for the tool function; raises :class:`ArgumentError`."""
        data = decode_arguments(raw)
        problems: list[str] = []
        if self.params is None:
            values = data
            missing = sorted(self.required - data.keys())
            extra = [] if self.open_ended else sorted(data.keys() - self.allowed)
        else:
            values, missing, extra = {}, [], sorted(data.keys() - {p.name for p in self.params})
            for spec in self.params:
                if spec.name not in data:
                    if spec.required:
                        missing.append(spec.name)
                    continue
                try:
                    values[spec.name] = _CONVERTER.structure(
                        data[spec.name], split_annotated(spec.annotation)[0]
                    )
                except Exception as exc:
                    problems.extend(_problems(exc, spec.name))
        problems[:0] = [f"{name}: missing required argument" for name in missing]
        problems += [f"{name}: unexpected argument (not in the schema)" for name in extra]
        if problems:
            raise ArgumentError(problems)
        if self.session_param is not None:
            values[self.session_param] = session
        args = [values.pop(name, default) for name, default in self.positional]
        return args, values
