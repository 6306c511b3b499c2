"""Server-sent events, sans-IO: text in, :class:`SSEEvent` values out.

:class:`SSEParser` follows the WHATWG ``text/event-stream`` rules that matter to LLM
APIs: lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start
of the next are one line end); a blank line dispatches the event; ``data`` lines are
joined with ``\\n``; a line starting with ``:`` is a comment; one space after the colon
is dropped; a line without a colon is a field with an empty value; unknown fields are
ignored; an event without data is not dispatched. It does no I/O and never raises on any
input: malformed payloads are the business of whoever reads ``data``.

>>> parser = SSEParser()
>>> parser.feed("event: ping\\ndata: {}\\n\\ndata: [DO")
[SSEEvent(data='{}', event='ping', id=None, retry=None)]
>>> parser.feed("NE]\\n\\n")
[SSEEvent(data='[DONE]', event='message', id=None, retry=None)]
"""

from __future__ import annotations

import re

import attrs

__all__ = ["SSEEvent", "SSEParser"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@attrs.frozen
class SSEEvent:
    """One dispatched event: its ``data`` (lines joined with ``\\n``), its ``event`` type
    (``"message"`` when the stream named none), the last ``id`` seen, and ``retry`` in
    milliseconds when this event carried a valid one."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """An incremental ``text/event-stream`` parser. Feed it decoded text in chunks of any
    size (:meth:`feed`) or one line at a time (:meth:`feed_line`)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._after_cr = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, text: str) -> list[SSEEvent]:
        """Parse a chunk; return the events it completed, in order. A trailing partial
        line is kept until the next chunk."""
        if not text:
            return []
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        text = self._buffer + text
        events: list[SSEEvent] = []
        start = 0
        for end in _LINE_END.finditer(text):
            event = self.feed_line(text[start : end.start()])
            start = end.end()
            if event is not None:
                events.append(event)
        self._buffer = text[start:]
        return events

    def feed_line(self, line: str) -> SSEEvent | None:
        """Parse one complete line (without its line end); return the event a blank line
        dispatches, else ``None``."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def close(self) -> None:
        """The end of the stream: a final line without a line end is parsed, and the
        event it leaves undispatched (no blank line after it) is dropped, as the standard
        says. The parser is then ready for a new stream."""
        if self._buffer:
            self.feed_line(self._buffer)
        self._buffer, self._after_cr = "", False
        self._data, self._event, self._retry = [], "", None

    def _dispatch(self) -> SSEEvent | None:
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], "", None
        if not data:
            return None
        return SSEEvent("\n".join(data), event or "message", self._last_id, retry)
