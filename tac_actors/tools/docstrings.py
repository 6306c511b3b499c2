"""Docstring parsing: the prose of a docstring and one description per parameter.

Two styles are understood, and may not be mixed within one docstring:

* Google style: an ``Args:`` section (also ``Arguments:``, ``Parameters:``, ``Params:``,
  ``Keyword Args:``, ``Attributes:``) whose entries read ``name (type): description`` or
  ``name: description``, with more-indented continuation lines;
* reST style: ``:param name: description`` fields (also ``:param type name:``,
  ``:ivar name:``), continuation lines indented below the field.

Everything else (``Returns:``, ``Raises:``, ``:rtype:``...) is recognised as a section so
it is left out of the prose, then ignored. Parsing never raises: an unusual docstring
yields less information, not an error.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping

import attrs

__all__ = ["ParsedDocstring", "parse_docstring"]

_PARAM_SECTIONS = frozenset(
    {
        "args",
        "arguments",
        "parameters",
        "params",
        "keyword args",
        "keyword arguments",
        "kwargs",
        "attributes",
    }
)
_OTHER_SECTIONS = frozenset(
    {
        "returns",
        "return",
        "yields",
        "yield",
        "raises",
        "raise",
        "except",
        "exceptions",
        "examples",
        "example",
        "note",
        "notes",
        "see also",
        "warning",
        "warnings",
        "todo",
        "references",
        "methods",
        "other parameters",
        "receives",
        "warns",
    }
)
_SECTION_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
# ``name (type): desc`` or ``name: desc``; ``*args`` and ``**kwargs`` keep their stars out.
_GOOGLE_ENTRY_RE = re.compile(r"^\**(?P<name>\w+)\s*(\([^)]*\))?\s*:\s*(?P<desc>.*)$")
_REST_FIELD_RE = re.compile(r"^:(?P<kind>\w+)(?P<args>[^:]*):\s*(?P<desc>.*)$")
_REST_PARAM_KINDS = frozenset(
    {"param", "parameter", "arg", "argument", "key", "keyword", "ivar", "var"}
)


@attrs.frozen
class ParsedDocstring:
    """What a docstring says.

    ``summary`` is the first paragraph, ``description`` all the prose before the first
    section or field (paragraphs separated by a blank line), ``params`` the description
    of each documented parameter, whitespace-normalised, in documentation order.
    """

    summary: str = ""
    description: str = ""
    params: Mapping[str, str] = attrs.field(factory=dict)


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Parse a Google-style or reST docstring (see the module docstring).

    ``None`` or an empty docstring gives an empty :class:`ParsedDocstring`.
    """
    if not doc or not doc.strip():
        return ParsedDocstring()
    lines = inspect.cleandoc(doc).splitlines()
    prose_end = _first_structured_line(lines)
    paragraphs = _paragraphs(lines[:prose_end])
    if any(_REST_FIELD_RE.match(line.strip()) for line in lines[prose_end:]):
        params = _rest_params(lines[prose_end:])
    else:
        params = _google_params(lines[prose_end:])
    return ParsedDocstring(
        summary=paragraphs[0] if paragraphs else "",
        description="\n\n".join(paragraphs),
        params=params,
    )


def _is_section_header(line: str) -> str | None:
    match = _SECTION_RE.match(line.strip())
    if match is None:
        return None
    title = match.group(1).strip().lower()
    return title if title in _PARAM_SECTIONS or title in _OTHER_SECTIONS else None


def _first_structured_line(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if _is_section_header(line) or _REST_FIELD_RE.match(line.strip()):
            return index
    return len(lines)


def _paragraphs(lines: list[str]) -> list[str]:
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    in_params = False
    section_indent = 0
    entry_indent: int | None = None
    current: list[str] | None = None
    for line in lines:
        if not line.strip():
            continue
        title = _is_section_header(line)
        if title is not None and _indent(line) <= section_indent:
            in_params = title in _PARAM_SECTIONS
            section_indent = _indent(line)
            entry_indent = None
            current = None
            continue
        if not in_params:
            continue
        if _indent(line) <= section_indent:  # dedented prose: the section is over
            in_params = False
            current = None
            continue
        if entry_indent is None:
            entry_indent = _indent(line)
        match = _GOOGLE_ENTRY_RE.match(line.strip())
        if _indent(line) <= entry_indent and match is not None:
            current = params.setdefault(match.group("name"), [])
            current.append(match.group("desc").strip())
        elif current is not None:
            current.append(line.strip())
    return {name: _join(parts) for name, parts in params.items()}


def _rest_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        match = _REST_FIELD_RE.match(stripped)
        if match is None:
            if current is not None:
                current.append(stripped)
            continue
        words = match.group("args").split()
        if match.group("kind") in _REST_PARAM_KINDS and words:
            # ``:param name:`` or ``:param type name:``: the name is the last word.
            current = params.setdefault(words[-1].lstrip("*"), [])
            current.append(match.group("desc").strip())
        else:
            current = None
    return {name: _join(parts) for name, parts in params.items()}


def _join(parts: list[str]) -> str:
    return " ".join(part for part in parts if part)
