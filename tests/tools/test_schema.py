"""JSON schema from signatures: every supported annotation, defaults, descriptions, and
a clear TypeError for everything else."""

import enum
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal, Optional

import attrs
import pytest

from tac_actors.tools import function_tool
from tac_actors.tools.schema import type_schema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Address:
    """A postal address.

    Attributes:
        street: Street and number.
    """

    street: str
    city: Annotated[str, "City name"]
    zip_code: str | None = None
    _country: str = "US"
    lines: list[str] = attrs.Factory(list)
    computed: int = attrs.field(init=False, default=0)


@attrs.frozen
class Customer:
    name: str
    address: Address
    tags: frozenset[str] = frozenset()


@attrs.frozen
class Node:
    children: list["Node"]


NULL = {"type": "null"}


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (datetime, {"type": "string", "format": "date-time"}),
        (date, {"type": "string", "format": "date"}),
        (Any, {}),
        (str | None, {"anyOf": [{"type": "string"}, NULL]}),
        (Optional[int], {"anyOf": [{"type": "integer"}, NULL]}),  # noqa: UP045
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (Literal[Color.RED], {"type": "string", "enum": ["red"]}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (tuple[float, ...], {"type": "array", "items": {"type": "number"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (
            Mapping[str, list[bool]],
            {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "boolean"}},
            },
        ),
        (Annotated[int, "ignored here"], {"type": "integer"}),
    ],
)
def test_type_schema(annotation: Any, expected: dict[str, Any]) -> None:
    assert type_schema(annotation) == expected


def test_nested_attrs_classes() -> None:
    assert type_schema(Customer) == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "address": {
                "type": "object",
                "description": "A postal address.",
                "properties": {
                    "street": {"type": "string", "description": "Street and number."},
                    "city": {"type": "string", "description": "City name"},
                    "zip_code": {"anyOf": [{"type": "string"}, NULL], "default": None},
                    "country": {"type": "string", "default": "US"},
                    "lines": {"type": "array", "items": {"type": "string"}, "default": []},
                },
                "required": ["street", "city"],
                "additionalProperties": False,
            },
            "tags": {
                "type": "array",
                "items": {"type": "string"},
                "uniqueItems": True,
                "default": [],
            },
        },
        "required": ["name", "address"],
        "additionalProperties": False,
    }


def test_function_schema_required_defaults_and_descriptions() -> None:
    @function_tool
    def book(
        party_size: int,
        when: datetime,
        note: str | None,
        color: Color = Color.BLUE,
        seats: Annotated[list[int] | None, "Seat numbers, if chosen"] = None,
    ) -> str:
        """Book a table.

        :param party_size: How many people.
        :param note: Anything the restaurant should know.
        """
        return ""

    assert book.parameters == {
        "type": "object",
        "properties": {
            "party_size": {"type": "integer", "description": "How many people."},
            "when": {"type": "string", "format": "date-time"},
            "note": {
                "anyOf": [{"type": "string"}, NULL],
                "description": "Anything the restaurant should know.",
            },
            "color": {"type": "string", "enum": ["red", "blue"], "default": "blue"},
            "seats": {
                "anyOf": [{"type": "array", "items": {"type": "integer"}}, NULL],
                "description": "Seat numbers, if chosen",
                "default": None,
            },
        },
        # A nullable parameter without a default is still required.
        "required": ["party_size", "when", "note"],
        "additionalProperties": False,
    }


def test_no_parameters() -> None:
    @function_tool
    def now() -> str:
        return "noon"

    assert now.parameters == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def _refused(fn: Any, *fragments: str) -> None:
    with pytest.raises(TypeError) as info:
        function_tool(fn)
    assert fn.__qualname__ in str(info.value)
    for fragment in fragments:
        assert re.search(fragment, str(info.value)), str(info.value)


def test_unsupported_annotations_name_function_and_parameter() -> None:
    def union(x: int | str) -> None: ...
    def bare_list(items: list) -> None: ...  # type: ignore[type-arg]
    def int_keys(m: dict[int, str]) -> None: ...
    def obj(o: object) -> None: ...
    def bytes_(b: bytes) -> None: ...
    def untyped(a, b: int) -> None: ...  # type: ignore[no-untyped-def]
    def star(*names: str) -> None: ...
    def stars(**extra: str) -> None: ...
    def recursive(n: Node) -> None: ...

    _refused(union, "union", "'x'", "union")
    _refused(bare_list, "'items'", "needs its item types")
    _refused(int_keys, "'m'", "keys are strings")
    _refused(obj, "'o'", "unsupported type annotation object")
    _refused(bytes_, "'b'", "bytes")
    _refused(untyped, "'a'", "no type annotation")
    _refused(star, "'names'", r"\*args")
    _refused(stars, "'extra'", r"\*\*kwargs")
    _refused(recursive, "'n'", "recursive")


@attrs.frozen
class BadField:
    when: bytes


def test_unsupported_attrs_field_names_the_field() -> None:
    def f(x: BadField) -> None: ...

    _refused(f, "'x'", "bytes", "field 'when' of BadField")


def test_unresolvable_annotation_is_a_type_error() -> None:
    def f(x: "NotDefinedAnywhere") -> None: ...  # type: ignore[name-defined]  # noqa: F821

    _refused(f, "cannot evaluate the type hints", "NotDefinedAnywhere")
