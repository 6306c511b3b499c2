"""Tool calls as the LLM makes them, tool results as the LLM reads them.

Results are text: whatever a tool returns is rendered once, here, into the ``content``
string every LLM API expects. The rendering is JSON-safe by construction (the
Agents-SDK conversion of TAC 2.5.0 broke on Pydantic objects; this one cannot break):

* a ``str`` is passed through as is;
* anything else is unstructured with a cattrs JSON converter (attrs instances become
  objects keyed by field alias, enums become their values, ``datetime`` and ``date``
  ISO 8601 strings, sets lists) and dumped as JSON (``None`` gives ``null``);
* a leaf JSON cannot represent (a UUID, a Decimal, an arbitrary object) is rendered with
  ``str()``; should dumping fail anyway (say, a cyclic structure), the content is
  ``str(value)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from cattrs.preconf.json import make_converter

__all__ = ["ToolCall", "ToolResult", "render_content", "to_json_value"]

_JSON = make_converter(use_alias=True)


@attrs.frozen
class ToolCall:
    """One tool call of an LLM step: the provider's call ``id`` (echoed back in the
    result), the tool ``name`` and the ``arguments`` exactly as the LLM sent them, a JSON
    string or an already-decoded mapping."""

    id: str
    name: str
    arguments: str | Mapping[str, Any] = "{}"


@attrs.frozen
class ToolResult:
    """What a tool call produced, ready for the LLM.

    ``ok`` is false when the call failed (bad arguments, unknown tool, the tool raised or
    timed out): ``content`` then explains the failure in words the LLM can act on, e.g.
    to retry with corrected arguments. Map it to Anthropic's ``is_error``.
    ``timed_out`` is true when the tool's deadline expired. ``call_id`` is the id of the
    :class:`ToolCall` when the result comes from :meth:`ToolRegistry.run_calls`.
    """

    name: str
    content: str
    ok: bool = True
    call_id: str | None = None
    timed_out: bool = False


def to_json_value(value: Any) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, numbers, bool, ``None``).

    Never raises: leaves JSON cannot represent come back as their ``str()``.
    """
    try:
        return json.loads(_dumps(value))
    except (TypeError, ValueError, RecursionError):
        return str(value)


def render_content(value: Any) -> str:
    """The ``content`` string for a tool's return value (see the module docstring).

    Never raises.
    """
    if isinstance(value, str):
        return value
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(_JSON.unstructure(value), ensure_ascii=False, default=str)
