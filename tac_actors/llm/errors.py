"""The one exception type of the LLM adapters."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["LLMError"]


class LLMError(Exception):
    """An LLM call failed: the API refused it, the stream broke, or it never answered.

    ``status`` is the HTTP status the API answered with (``None`` when no answer came:
    connection refused, timeout, connection lost), ``message`` the API's own words when it
    gave any, ``kind`` its error type (``"rate_limit_error"``, ``"invalid_request_error"``
    ...), or ``"bad_stream"`` when the answer did not follow the streaming protocol, or
    ``"transport"`` when no answer came. The original exception, if any, is the
    ``__cause__``.
    """

    def __init__(
        self, message: str, *, status: int | None = None, kind: str | None = None,
        provider: str = "llm",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.provider = provider

    @property
    def retryable(self) -> bool:
        """True when trying again later may succeed: no answer, a timeout, a conflict,
        rate limiting, an overloaded or failing server."""
        if self.kind in ("transport", "overloaded_error", "rate_limit_error", "api_error"):
            return True
        return self.status is not None and (self.status in (408, 409, 429) or self.status >= 500)

    @classmethod
    def from_response(cls, status: int, body: bytes, *, provider: str) -> LLMError:
        """The error for a non-2xx answer, from its JSON body when it has the shape both
        OpenAI and Anthropic use (``{"error": {"message": ..., "type": ...}}``)."""
        message, kind = _error_fields(body)
        return cls(message or f"HTTP {status}", status=status, kind=kind, provider=provider)

    @classmethod
    def from_payload(cls, payload: Any, *, status: int, provider: str) -> LLMError:
        """The error for an error event inside a stream (decoded JSON)."""
        message, kind = _fields(payload)
        return cls(message or "the stream reported an error", status=status, kind=kind,
                   provider=provider)

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no answer"
        kind = f", {self.kind}" if self.kind else ""
        return f"{self.provider} ({where}{kind}): {self.message}"

    def __repr__(self) -> str:
        return (f"LLMError({self.message!r}, status={self.status!r}, kind={self.kind!r}, "
                f"provider={self.provider!r})")


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    try:
        payload = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:500] or None), None
    return _fields(payload)


def _fields(payload: Any) -> tuple[str | None, str | None]:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return None, None
    message, kind = error.get("message"), error.get("type") or error.get("code")
    return (str(message) if message is not None else None,
            str(kind) if kind is not None else None)
