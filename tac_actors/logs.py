"""Log set-up for the server: text or JSON lines, conversation ids on every line,
phone numbers and emails masked.

* :func:`bind_conversation` stores the live session in a context variable. It is called
  once per conversation, in the task that spawns the actor, so the actor, its turns and
  the channel's own task (the socket reader, the webhook request) all carry it. Reading it
  costs nothing until a line is actually written.
* :class:`ConversationFilter` copies ``conversation_id`` and ``call_sid`` from that session
  onto every record (empty outside a conversation).
* :func:`mask` hides the middle of phone numbers and email addresses; the formatters apply
  it to the whole message unless masking is turned off (``--log-unmasked``, or
  ``TAC_LOG_UNMASKED=1``).
* :class:`JSONFormatter`: one JSON object per line (``ts``, ``level``, ``logger``, ``msg``,
  ``conversation_id``, ``call_sid``, and ``exc`` with the traceback when there is one).

Why the standard library and not structlog: every module here already logs through
``logging.getLogger`` with %-style arguments, and so do the libraries underneath
(hypercorn, httpx). A formatter and a filter on the root handler turn all of them into
JSON without a new dependency or a second logging API.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from tac_actors.session import ConversationSession

__all__ = ["ConversationFilter", "JSONFormatter", "TextFormatter", "bind_conversation",
           "configure_logging", "mask", "masking"]

_current: contextvars.ContextVar[ConversationSession | None] = contextvars.ContextVar(
    "tac_actors_conversation", default=None)

# E.164 (+ and 7 to 15 digits, what Twilio uses) and bare runs of 10 to 15 digits that
# are not part of a word (an id like CA0123... is left alone). The patterns are cheap to
# scan; the word-boundary checks run only on a match.
_DIGITS = re.compile(r"\+?\d{7,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

_masking = os.environ.get("TAC_LOG_UNMASKED", "").strip().lower() not in ("1", "true", "yes")


def masking(enabled: bool | None = None) -> bool:
    """Whether :func:`mask` masks (the default), after setting it when ``enabled`` is
    given. One switch for the process."""
    global _masking
    if enabled is not None:
        _masking = enabled
    return _masking


def _inside_word(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return before.isalnum() or before in "_+" or after.isalnum() or after == "_"


def _phone(match: re.Match[str]) -> str:
    number = match.group(0)
    plus = number.startswith("+")
    digits = number[1:] if plus else number
    if (len(digits) > 15 or (not plus and len(digits) < 10)
            or _inside_word(match.string, match.start(), match.end())):
        return number
    return f"{'+' if plus else ''}{'*' * (len(digits) - 4)}{digits[-4:]}"


def _email(match: re.Match[str]) -> str:
    local, _, domain = match.group(0).partition("@")
    return f"{local[0]}***@{domain}"


def mask(text: str) -> str:
    """``text`` with phone numbers (``+15551230001`` → ``+*******0001``) and emails
    (``ada@example.com`` → ``a***@example.com``) masked; unchanged when masking is off."""
    if not _masking:
        return text
    text = _DIGITS.sub(_phone, text)
    return _EMAIL.sub(_email, text) if "@" in text else text


def bind_conversation(session: ConversationSession | None) -> None:
    """Make ``session`` the current conversation of this task and the tasks it spawns
    from now on."""
    _current.set(session)


class ConversationFilter(logging.Filter):
    """Adds ``conversation_id`` and ``call_sid`` (``""`` when none) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        session = _current.get()
        if session is None:
            record.conversation_id = record.call_sid = ""
        else:
            record.conversation_id = session.conversation_id or ""
            record.call_sid = session.call_sid or ""
        return True


class TextFormatter(logging.Formatter):
    """The usual one-line text (``2026-11-28 10:51:08,210 INFO name: message``), masked,
    with ``[conversation_id]`` after the logger name when the line belongs to a
    conversation.

    Written out instead of through ``Formatter``'s %-style template, and with the
    date formatted once per second: this runs for every turn's line."""

    def __init__(self, worker: str = "") -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""
        #: ``" w2"`` in a worker process of ``--workers N``: after the level, on every line
        self._worker = f" w{worker}" if worker else ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        conversation = getattr(record, "conversation_id", "")
        where = f" [{conversation}]" if conversation else ""
        line = (f"{self._stamp},{int(record.msecs):03d} {record.levelname}{self._worker} "
                f"{record.name}{where}: {record.getMessage()}")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return mask(line)


class JSONFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring); with a ``worker`` (a worker
    process of ``--workers N``), every object carries ``"worker"``."""

    def __init__(self, worker: str = "") -> None:
        super().__init__()
        self._worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask(record.getMessage()),
            "conversation_id": getattr(record, "conversation_id", ""),
            "call_sid": getattr(record, "call_sid", ""),
        }
        if self._worker:
            entry["worker"] = self._worker
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = mask(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str | int, *, fmt: Literal["text", "json"] = "text",
                      unmasked: bool = False, turns: bool = True,
                      stream: TextIO | None = None, worker: str = "") -> logging.Handler:
    """Set up the root logger for the CLI: one handler on ``stream`` (stderr), the
    conversation filter, the chosen formatter. ``turns=False`` silences the per-turn
    lines (logger ``tac_actors.turns``); ``worker`` (a worker process's id) is written on
    every line. Returns the handler."""
    masking(not unmasked)
    if not turns:
        logging.getLogger("tac_actors.turns").setLevel(logging.WARNING)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ConversationFilter())
    if fmt == "json":
        formatter: logging.Formatter = JSONFormatter(worker)
    else:
        formatter = TextFormatter(worker)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
