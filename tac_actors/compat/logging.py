"""``get_logger(name, **context)``: a logger taking keyword context, with phone numbers
and e-mail addresses scrubbed from every line; and the masking helpers."""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["ContextLogger", "get_logger", "mask_address", "mask_email", "mask_phone"]

_MASK = "***"
_PHONE = re.compile(r"(?<![\w])\+?\d[\d\-\s().]{8,}\d")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def mask_phone(value: str | None) -> str:
    """``+15551230001`` -> ``+1***0001``; ``***`` for nothing or fewer than 7 characters."""
    text = (value or "").strip()
    return text[:2] + _MASK + text[-4:] if len(text) >= 7 else _MASK


def mask_email(value: str | None) -> str:
    """``ada@example.com`` -> ``a***@example.com``; ``***`` without a local part."""
    text = (value or "").strip()
    at = text.find("@")
    return text[0] + _MASK + text[at:] if at >= 1 else _MASK


def mask_address(value: str | None) -> str:
    """:func:`mask_email` for addresses with ``@``, :func:`mask_phone` otherwise."""
    text = (value or "").strip()
    if not text:
        return _MASK
    return mask_email(text) if "@" in text else mask_phone(text)


def scrub(text: str) -> str:
    """``text`` with phone numbers and e-mail addresses replaced by ``***``."""
    return _PHONE.sub(_MASK, _EMAIL.sub(_MASK, text))


class ContextLogger:
    """A :class:`logging.Logger` whose calls take keyword context (``conversation_id=``):
    it is appended as ``key=value``; PII is scrubbed from the whole line."""

    def __init__(self, logger: logging.Logger, **context: Any) -> None:
        self.logger = logger
        self.context = context

    def bind(self, **context: Any) -> ContextLogger:
        return ContextLogger(self.logger, **{**self.context, **context})

    def isEnabledFor(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)

    def _log(self, level: int, msg: str, exc_info: bool = False, **extra: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        fields = {**self.context, **extra}
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        self.logger.log(level, "%s", scrub(f"{msg} {tail}" if tail else msg),
                        exc_info=exc_info, stacklevel=3)

    def debug(self, msg: str, **extra: Any) -> None:
        self._log(logging.DEBUG, msg, **extra)

    def info(self, msg: str, **extra: Any) -> None:
        self._log(logging.INFO, msg, **extra)

    def warning(self, msg: str, **extra: Any) -> None:
        self._log(logging.WARNING, msg, **extra)

    def error(self, msg: str, exc_info: bool = False, **extra: Any) -> None:
        self._log(logging.ERROR, msg, exc_info, **extra)

    def critical(self, msg: str, exc_info: bool = False, **extra: Any) -> None:
        self._log(logging.CRITICAL, msg, exc_info, **extra)


def get_logger(name: str, **context: Any) -> ContextLogger:
    return ContextLogger(logging.getLogger(name), **context)
