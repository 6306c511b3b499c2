"""Docstring parsing: Google and reST styles, prose, continuation lines, odd input."""

from tac_actors.tools.docstrings import ParsedDocstring, parse_docstring


def test_google_style_with_types_and_continuations() -> None:
    doc = """Look up an order.

    Use this when the caller gives an order number.

    Args:
        order_id (str): The order number,
            e.g. "A-1042".
        verbose: Whether to include
            every line item
            of the order.
        *args: Ignored.

    Returns:
        The order status.
    """
    parsed = parse_docstring(doc)
    assert parsed.summary == "Look up an order."
    assert parsed.description == (
        "Look up an order.\n\nUse this when the caller gives an order number."
    )
    assert dict(parsed.params) == {
        "order_id": 'The order number, e.g. "A-1042".',
        "verbose": "Whether to include every line item of the order.",
        "args": "Ignored.",
    }


def test_google_sections_after_args_are_not_parameters() -> None:
    doc = """Do it.

    Arguments:
        a: First.

    Raises:
        ValueError: when it cannot.
    Note:
        b: not a parameter.
    """
    assert dict(parse_docstring(doc).params) == {"a": "First."}


def test_google_attributes_section_and_first_line_docstring() -> None:
    doc = """An item of an order.
    Attributes:
        sku: Stock keeping unit.
        qty (int): How many.
    """
    parsed = parse_docstring(doc)
    assert parsed.summary == "An item of an order."
    assert dict(parsed.params) == {"sku": "Stock keeping unit.", "qty": "How many."}


def test_rest_style() -> None:
    doc = """Book a table.

    :param party_size: How many people,
        children included.
    :param str when: ISO date-time of the booking.
    :type when: str
    :returns: The booking reference.
    :raises ValueError: when full.
    """
    parsed = parse_docstring(doc)
    assert parsed.description == "Book a table."
    assert dict(parsed.params) == {
        "party_size": "How many people, children included.",
        "when": "ISO date-time of the booking.",
    }


def test_rest_ivar_for_classes() -> None:
    assert dict(parse_docstring(":ivar name: The name.").params) == {"name": "The name."}


def test_no_docstring_and_prose_only() -> None:
    assert parse_docstring(None) == ParsedDocstring()
    assert parse_docstring("   \n ") == ParsedDocstring()
    parsed = parse_docstring("Say hello\nto the caller.\n\nPolitely.")
    assert parsed.summary == "Say hello to the caller."
    assert parsed.description == "Say hello to the caller.\n\nPolitely."
    assert dict(parsed.params) == {}


def test_dedented_prose_ends_the_args_section() -> None:
    doc = "Summary.\n\nArgs:\n    a: First.\nTrailing words: not an argument.\n"
    assert dict(parse_docstring(doc).params) == {"a": "First."}
