"""Typed forms of the HTTP callbacks Twilio makes for a voice call."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["ActionCallback", "InboundCall"]


def _get(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name)
    return value if value else None


@attrs.frozen(kw_only=True)
class InboundCall:
    """The call webhook Twilio posts to the TwiML route."""

    call_sid: str | None
    account_sid: str | None = None
    from_: str | None = None
    to: str | None = None
    direction: str | None = None
    params: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundCall:
        return cls(call_sid=_get(form, "CallSid"), account_sid=_get(form, "AccountSid"),
                   from_=_get(form, "From"), to=_get(form, "To"),
                   direction=_get(form, "Direction"), params=dict(form))


@attrs.frozen(kw_only=True)
class ActionCallback:
    """The ``<Connect action>`` callback: the ConversationRelay session is over.

    ``handoff_data`` is the raw string we sent in ``end``; ``handoff`` is it parsed as
    JSON when it is a JSON object (``None`` otherwise).
    """

    call_sid: str | None
    account_sid: str | None = None
    call_status: str | None = None
    from_: str | None = None
    to: str | None = None
    direction: str | None = None
    application_sid: str | None = None
    session_id: str | None = None
    session_status: str | None = None
    session_duration: str | None = None
    handoff_data: str | None = None
    handoff: Mapping[str, Any] | None = None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> ActionCallback:
        raw = _get(form, "HandoffData")
        parsed: Mapping[str, Any] | None = None
        if raw is not None:
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):
                value = None
            parsed = value if isinstance(value, dict) else None
        return cls(call_sid=_get(form, "CallSid"), account_sid=_get(form, "AccountSid"),
                   call_status=_get(form, "CallStatus"), from_=_get(form, "From"),
                   to=_get(form, "To"), direction=_get(form, "Direction"),
                   application_sid=_get(form, "ApplicationSid"),
                   session_id=_get(form, "SessionId"),
                   session_status=_get(form, "SessionStatus"),
                   session_duration=_get(form, "SessionDuration"), handoff_data=raw,
                   handoff=parsed)
