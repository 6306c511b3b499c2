"""Log lines that a peer cannot forge or flood.

Two helpers for every log site that writes something a peer chose (a CallSid, an id, a
frame's text, an error description, a header):

* :func:`excerpt` makes the value safe to put in a line: control characters (a newline
  would start a forged log line), bidi overrides and lone surrogates are escaped, and
  the length is bounded. Use it as ``log.warning("call %s: ...", excerpt(call_sid))``.
* :class:`LogLimiter` logs the first message of a *key* (a conversation, a source
  address) and only counts the next ones for ``interval`` seconds; the count is reported
  on the next line of that key after the window, or by :meth:`LogLimiter.flush`. The
  number of keys and the lines per window across all keys are bounded, so a peer that
  invents a new key per message cannot flood the log either.

Neither does I/O beyond the ``logging`` call, nor needs trio: usable from any layer.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

import attrs

__all__ = ["DEFAULT_LIMIT", "LogLimiter", "LogLimiterStatistics", "excerpt"]

#: characters of the value :func:`excerpt` keeps by default
DEFAULT_LIMIT = 200


def _escapes() -> dict[int, str]:
    table = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
    table.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\\"): "\\\\"})
    # line and paragraph separators end a line for some readers; bidi controls reorder
    # what a terminal shows; surrogates cannot be encoded by a UTF-8 log handler
    for code in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A),
                 0x200E, 0x200F, 0xFEFF, *range(0xD800, 0xE000)):
        table[code] = f"\\u{code:04x}"
    return table


_ESCAPES = _escapes()
# bytes are decoded with "surrogateescape": an undecodable byte b becomes U+DC00 + b
_BYTE_ESCAPES = {**_ESCAPES, **{0xDC00 + byte: f"\\x{byte:02x}" for byte in range(0x80, 0x100)}}


def excerpt(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as a one-line string safe for a log, of bounded length.

    * ``str`` is used as is, ``bytes`` are decoded as UTF-8 (bad bytes as ``\\xNN``;
      the limit then counts bytes),
      ``None`` is ``"None"``; anything else goes through ``str()``.
    * At most ``limit`` characters of it are kept; a longer value ends with
      ``…(+N chars)`` saying how many were left out.
    * Control characters (C0, DEL, C1), backslash, U+2028/2029, bidi and other
      invisible format controls and lone surrogates are written as escapes (``\\n``,
      ``\\x1b``, ``\\u2028``, ``\\\\``), so the result never contains a line break and can
      always be encoded. Printable non-ASCII text (accents, emoji) is kept.

    The result is at most ``6 * limit + 20`` characters long. Never raises.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        text = data[:limit].decode("utf-8", "surrogateescape").translate(_BYTE_ESCAPES)
        return text + (f"…(+{len(data) - limit} bytes)" if len(data) > limit else "")
    else:
        try:
            text = str(value)
        except Exception:  # a broken __str__ must not break the log line
            text = f"<unprintable {type(value).__name__}>"
    if len(text) <= limit:
        return text.translate(_ESCAPES)
    return text[:limit].translate(_ESCAPES) + f"…(+{len(text) - limit} chars)"


@attrs.frozen
class LogLimiterStatistics:
    """``keys``: keys remembered; ``suppressed``: lines counted but not written yet."""

    keys: int
    suppressed: int


@attrs.define
class _Entry:
    since: float
    suppressed: int = 0


class LogLimiter:
    """Log once per key and window, count the rest, then summarise (see the module doc).

    ``interval``: seconds a key stays quiet after a written line. ``max_keys``: keys
    remembered (the oldest is forgotten first; a forgotten key with a count gets its
    summary line then). ``max_lines``: lines written per ``interval`` across all keys;
    past it, lines are only counted and one summary follows when the window ends.
    ``clock`` returns seconds (``time.monotonic`` by default; tests pass a fake).

    Not thread-safe (one event loop). Messages are %-format strings with ``args``, as for
    :mod:`logging`; the caller still passes peer values through :func:`excerpt`.
    """

    def __init__(self, logger: logging.Logger, *, interval: float = 60.0,
                 max_keys: int = 1024, max_lines: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0 or max_keys < 1 or max_lines < 1:
            raise ValueError("interval, max_keys and max_lines must be positive")
        self.logger = logger
        self.interval = interval
        self.max_keys = max_keys
        self.max_lines = max_lines
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._window_start = clock()
        self._window_lines = 0
        self._overflow = 0
        self._overflow_level = logging.INFO

    def log(self, level: int, key: Hashable, msg: str, *args: object) -> bool:
        """Write ``msg % args`` at ``level`` unless ``key`` logged within ``interval``
        (then count it). Returns whether a line was written."""
        now = self._clock()
        self._roll_window(now)
        entry = self._entries.get(key)
        if entry is not None and now - entry.since < self.interval:
            entry.suppressed += 1
            return False
        if self._window_lines >= self.max_lines:
            self._overflow += 1
            self._overflow_level = max(self._overflow_level, level)
            return False
        self._window_lines += 1
        if entry is not None and entry.suppressed:
            msg += " (and %d more like it in the last %.0f s, not logged)"
            args = (*args, entry.suppressed, now - entry.since)
        self._entries[key] = _Entry(now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_keys:
            old_key, old = self._entries.popitem(last=False)
            self._summarise(old_key, old, level)
        self.logger.log(level, msg, *args)
        return True

    def debug(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.DEBUG, key, msg, *args)

    def info(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.INFO, key, msg, *args)

    def warning(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def flush(self, level: int = logging.INFO) -> None:
        """Write the pending counts now (e.g. at shutdown) and forget every key."""
        entries, self._entries = self._entries, OrderedDict()
        for key, entry in entries.items():
            self._summarise(key, entry, level)
        self._report_overflow()

    def statistics(self) -> LogLimiterStatistics:
        pending = sum(entry.suppressed for entry in self._entries.values()) + self._overflow
        return LogLimiterStatistics(keys=len(self._entries), suppressed=pending)

    def _summarise(self, key: Hashable, entry: _Entry, level: int) -> None:
        if entry.suppressed:
            self.logger.log(level, "%s: %d more line(s) like the last one were not logged",
                            excerpt(key, 80), entry.suppressed)

    def _roll_window(self, now: float) -> None:
        if now - self._window_start >= self.interval:
            self._report_overflow()
            self._window_start = now
            self._window_lines = 0

    def _report_overflow(self) -> None:
        if self._overflow:
            self.logger.log(self._overflow_level, "%d log line(s) not written: more than %d "
                            "in %.0f s", self._overflow, self.max_lines, self.interval)
            self._overflow = 0
            self._overflow_level = logging.INFO
