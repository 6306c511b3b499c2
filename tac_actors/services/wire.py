"""Wire formats: one cattrs converter per format, and the decode helpers clients use.

Twilio speaks two JSON dialects: the newer products (Conversation Orchestrator, Memory,
Knowledge) use camelCase keys; the classic ones (Studio, the 2010 REST API) use
snake_case. :data:`camel` and :data:`snake` structure wire JSON into our frozen attrs
classes, whose fields are always snake_case.

Both converters are **tolerant of unknown fields** (Twilio adds fields without notice)
and **strict on types**: a string is never coerced into a number, ``"false"`` never
becomes ``True``, a string is never split into a tuple of characters. A JSON ``null``
counts as an absent field, so it takes the field's default, and it is an error for a
required field. Failures surface as :class:`~tac_actors.services.errors.BadResponse`
through :func:`decode` and :func:`decode_list`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from tac_actors._logsafe import excerpt
from tac_actors.services.http import Reply

__all__ = ["camel", "decode", "decode_list", "make_converter", "snake", "to_camel", "to_wire"]

T = TypeVar("T")
logger = logging.getLogger("tac_actors.services")


def to_camel(name: str) -> str:
    """``conversation_ids`` -> ``conversationIds``; a trailing ``_`` is dropped
    (``from_`` -> ``from``)."""
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _strict(kind: type, *accepted: type) -> Callable[[Any, Any], Any]:
    allowed = accepted or (kind,)

    def hook(value: Any, _: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {kind.__name__}, got bool")
        if not isinstance(value, allowed):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    return hook


def make_converter(rename: Callable[[str], str]) -> cattrs.Converter:
    """A strict, unknown-field-tolerant converter that renames fields with ``rename``."""
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(str, _strict(str))
    conv.register_structure_hook(int, _strict(int))
    conv.register_structure_hook(float, _strict(float, int, float))
    conv.register_structure_hook(bool, _strict(bool))

    def is_sequence(tp: Any) -> bool:
        return get_origin(tp) in (tuple, list)

    def sequence_hook(tp: Any) -> Callable[[Any, Any], Any]:
        args = get_args(tp)
        item = args[0] if args else Any
        if get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"wire models use tuple[X, ...], not {tp}")
        container = get_origin(tp)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return container(conv.structure(v, item) for v in value)

        return hook

    conv.register_structure_hook_factory(is_sequence, sequence_hook)

    def structure_factory(cls: type) -> Callable[[Any, Any], Any]:
        renames = {a.name: override(rename=rename(a.name)) for a in attrs.fields(cls)}
        fn: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls, conv, **renames  # type: ignore[arg-type]
        )

        def hook(value: Any, tp: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected an object, got {type(value).__name__}")
            return fn({k: v for k, v in value.items() if v is not None}, tp)

        return hook

    def unstructure_factory(cls: type) -> Callable[[Any], Any]:
        renames = {a.name: override(rename=rename(a.name)) for a in attrs.fields(cls)}
        return make_dict_unstructure_fn(cls, conv, **renames)  # type: ignore[arg-type]

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return conv


#: camelCase JSON (Orchestrator, Memory, Knowledge)
camel = make_converter(to_camel)
#: snake_case JSON (Studio, the 2010 REST API)
snake = make_converter(lambda name: name.rstrip("_"))


def to_wire(obj: Any, converter: cattrs.Converter = camel) -> Any:
    """Unstructure a request model to JSON-ready data, dropping ``None`` fields."""
    return _drop_none(converter.unstructure(obj))


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value


def _explain(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)


def decode(reply: Reply, cls: type[T], converter: cattrs.Converter = camel) -> T:
    """The reply's body as a ``cls``; :class:`BadResponse` when it does not fit."""
    try:
        return converter.structure(reply.object(), cls)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise reply.bad(f"unexpected {cls.__name__}: {_explain(exc)}") from None


def decode_list(
    reply: Reply,
    key: str,
    cls: type[T],
    converter: cattrs.Converter = camel,
    *,
    lenient: bool = False,
    required: bool = True,
) -> tuple[T, ...]:
    """The list under ``key`` in the reply's object body, each item as a ``cls``.

    ``lenient`` drops (and logs) the items that do not fit instead of failing the whole
    reply. A missing or ``null`` key is an error when ``required``, else an empty tuple.
    """
    body = reply.object()
    raw = body.get(key)
    if raw is None:
        if required:
            raise reply.bad(f"missing field {key!r}")
        return ()
    if not isinstance(raw, list):
        raise reply.bad(f"field {key!r} should be a list, got {type(raw).__name__}")
    items: list[T] = []
    for index, item in enumerate(raw):
        try:
            items.append(converter.structure(item, cls))
        except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
            message = f"{key}[{index}] is not a valid {cls.__name__}: {_explain(exc)}"
            if not lenient:
                raise reply.bad(message) from None
            logger.warning(
                "%s %s: dropping %s (request id %s)",
                reply.service, reply.url_path, excerpt(message), excerpt(reply.request_id, 64),
            )
    return tuple(items)
