"""Typed field access on a parsed JSON object, for the hand-written parsers of hot-path
formats (Media Streams, realtime model events): each accessor returns the field or raises
:class:`~tac_actors.protocol.errors.ProtocolError` naming it, never anything else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tac_actors.protocol.errors import ProtocolError

__all__ = ["JsonFields"]


class JsonFields:
    """Accessors for one format. ``message`` and ``field`` name things in errors (e.g.
    "media stream message" / "media stream field"); ``digit_strings`` accepts integers
    sent as decimal strings (Twilio's sequence numbers and timestamps)."""

    def __init__(self, message: str, field: str, *, digit_strings: bool = False) -> None:
        self.message = message
        self.field = field
        self.digit_strings = digit_strings

    def text(self, obj: Mapping[str, Any], key: str, *, required: bool = False) -> str:
        value = obj.get(key)
        if value is None:
            if required:
                raise ProtocolError(f"{self.message} lacks {key!r}")
            return ""
        if not isinstance(value, str):
            raise ProtocolError(f"{self.field} {key!r} must be a string")
        return value

    def integer(self, obj: Mapping[str, Any], key: str) -> int:
        value = obj.get(key)
        if value is None:
            return 0
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if (self.digit_strings and isinstance(value, str) and value.isdigit()
                and len(value) <= 18):
            return int(value)
        raise ProtocolError(f"{self.field} {key!r} must be an integer")

    def object(self, obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = obj.get(key)
        if not isinstance(value, dict):
            raise ProtocolError(f"{self.message} lacks the object {key!r}")
        return value
