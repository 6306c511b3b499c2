"""The sans-IO SSE parser: line ends, multi-line data, comments, fields, partial input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tac_actors.llm import SSEEvent, SSEParser

STREAM = (
    ": a comment\n"
    "event: content_block_delta\n"
    "id: 7\n"
    "data: {\"a\":\n"
    "data:  1}\n"
    "\n"
    "retry: 1500\n"
    "data:no-space\n"
    "\n"
    "data: [DONE]\n"
    "\n"
)

EXPECTED = [
    SSEEvent('{"a":\n 1}', "content_block_delta", "7", None),
    SSEEvent("no-space", "message", "7", 1500),
    SSEEvent("[DONE]", "message", "7", None),
]


def test_fields_multiline_data_and_comments() -> None:
    assert SSEParser().feed(STREAM) == EXPECTED


def test_crlf_and_cr_line_ends() -> None:
    assert SSEParser().feed(STREAM.replace("\n", "\r\n")) == EXPECTED
    assert SSEParser().feed(STREAM.replace("\n", "\r")) == EXPECTED


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed("data: a\r") == []
    assert parser.feed("\n\r") == [SSEEvent("a")]
    assert parser.feed("\ndata: b\r\n\r\n") == [SSEEvent("b")]


def test_partial_lines_wait_for_the_rest() -> None:
    parser = SSEParser()
    assert parser.feed("da") == []
    assert parser.feed("ta: hel") == []
    assert parser.feed("lo\n") == []
    assert parser.feed("") == []
    assert parser.feed("\n") == [SSEEvent("hello")]


def test_one_character_at_a_time() -> None:
    parser = SSEParser()
    events = [event for char in STREAM.replace("\n", "\r\n") for event in parser.feed(char)]
    assert events == EXPECTED


def test_feed_line_dispatches_on_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed_line("event: ping") is None
    assert parser.feed_line("data: {}") is None
    assert parser.feed_line("") == SSEEvent("{}", "ping")


def test_events_without_data_and_unknown_fields_are_dropped() -> None:
    parser = SSEParser()
    assert parser.feed("event: ping\n\nfoo: bar\nretry: soon\n\n:\n\n") == []
    assert parser.feed("data\n\n") == [SSEEvent("")]


def test_unterminated_event_is_dropped_at_close() -> None:
    parser = SSEParser()
    assert parser.feed("data: a\n\ndata: half") == [SSEEvent("a")]
    parser.close()
    assert parser.feed("data: b\n\n") == [SSEEvent("b")]


def test_only_cr_and_lf_end_lines() -> None:
    assert SSEParser().feed("data: a\u2028b\x0cc\x85d\n\n") == [SSEEvent("a\u2028b\x0cc\x85d")]


@given(st.text(alphabet="data: \r\n:evntx{}\u2028", max_size=60),
       st.lists(st.integers(min_value=0, max_value=60), max_size=5))
def test_chunking_never_changes_the_events(stream: str, cuts: list[int]) -> None:
    whole = SSEParser().feed(stream)
    parser = SSEParser()
    pieces, start = [], 0
    for cut in sorted(cuts):
        pieces.append(stream[start:cut])
        start = max(start, cut)
    pieces.append(stream[start:])
    assert [event for piece in pieces for event in parser.feed(piece)] == whole
