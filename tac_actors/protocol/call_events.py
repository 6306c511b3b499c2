"""Twilio's call callbacks: status, answering-machine detection, recording. No I/O.

Twilio posts each of these as a form to a URL the call was placed with
(``StatusCallback``, ``AsyncAmdStatusCallback``, ``RecordingStatusCallback``). We serve
one route per kind, so the route tells the kind and no payload is sniffed:
:func:`parse_call_event` turns the form of one kind into its frozen event.

Promises:

* Any form either parses or raises :class:`~tac_actors.protocol.errors.ProtocolError`
  (never anything else): a missing or blank ``CallSid``, an unknown kind, a key or value
  that is not a string, or more than :data:`MAX_FIELDS` fields.
* Fields we do not name are kept, unchanged, in ``extra`` (Twilio adds fields over time).
* Values stay strings, as Twilio sent them; the properties (``is_unreached``,
  ``is_machine``, ``duration``) interpret them and never raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal, TypeAlias, get_args

import attrs

from tac_actors.protocol.errors import ProtocolError

__all__ = [
    "CALL_EVENT_KINDS",
    "MAX_FIELDS",
    "AmdEvent",
    "CallEvent",
    "CallEventKind",
    "CallStatusEvent",
    "RecordingEvent",
    "parse_call_event",
]

CallEventKind: TypeAlias = Literal["status", "amd", "recording"]
#: every kind, in the order their routes are registered
CALL_EVENT_KINDS: Final[tuple[CallEventKind, ...]] = get_args(CallEventKind)
#: more fields than this in one callback is not Twilio (it sends about 20)
MAX_FIELDS: Final = 200

#: the call statuses after which the callee was never reached (worth a retry)
UNREACHED: Final = frozenset({"busy", "no-answer", "failed", "canceled"})
#: the statuses that end a call
FINAL_STATUSES: Final = UNREACHED | {"completed"}


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@attrs.frozen(kw_only=True)
class _CallEventBase:
    #: form names of the attributes below (the rest of the form goes to ``extra``)
    FIELDS: ClassVar[Mapping[str, str]] = {"CallSid": "call_sid", "AccountSid": "account_sid"}

    call_sid: str
    account_sid: str | None = None
    #: every form field not named above, unchanged
    extra: Mapping[str, str] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class CallStatusEvent(_CallEventBase):
    """A ``StatusCallback``: the call's progress (``initiated``, ``ringing``,
    ``in-progress``) or its end (``completed``, ``busy``, ``no-answer``, ``failed``,
    ``canceled``). Twilio sends only the end unless the call asked for more
    (``CallOptions(status_callback_event=...)``)."""

    FIELDS: ClassVar[Mapping[str, str]] = {
        **_CallEventBase.FIELDS, "CallStatus": "call_status", "CallDuration": "call_duration",
        "SipResponseCode": "sip_response_code", "From": "from_", "To": "to",
        "Direction": "direction", "Timestamp": "timestamp",
        "SequenceNumber": "sequence_number"}

    call_status: str | None = None
    call_duration: str | None = None
    sip_response_code: str | None = None
    from_: str | None = None
    to: str | None = None
    direction: str | None = None
    timestamp: str | None = None
    sequence_number: str | None = None

    @property
    def is_unreached(self) -> bool:
        """The call ended without reaching the callee (busy, no answer, failed,
        canceled): worth another try."""
        return (self.call_status or "") in UNREACHED

    @property
    def is_final(self) -> bool:
        """The call is over (``completed`` or unreached)."""
        return (self.call_status or "") in FINAL_STATUSES

    @property
    def duration(self) -> int | None:
        """``CallDuration`` in seconds, when Twilio sent a number."""
        return _int(self.call_duration)


@attrs.frozen(kw_only=True)
class AmdEvent(_CallEventBase):
    """An ``AsyncAmdStatusCallback``: who answered. At most one per call, and only for
    calls placed with machine detection (``CallOptions(machine_detection=...)``).

    ``answered_by`` is ``human``, ``fax``, ``unknown``, or a ``machine_*`` value
    (``machine_start`` under ``Enable``; ``machine_end_beep``, ``machine_end_silence``,
    ``machine_end_other`` under ``DetectMessageEnd``)."""

    FIELDS: ClassVar[Mapping[str, str]] = {
        **_CallEventBase.FIELDS, "AnsweredBy": "answered_by",
        "MachineDetectionDuration": "machine_detection_duration"}

    answered_by: str | None = None
    machine_detection_duration: str | None = None

    @property
    def is_machine(self) -> bool:
        """A machine answered (any ``machine_*``). ``unknown`` is not a machine, so a
        call is never hung up on a guess."""
        return (self.answered_by or "").startswith("machine")

    @property
    def is_human(self) -> bool:
        return self.answered_by == "human"


@attrs.frozen(kw_only=True)
class RecordingEvent(_CallEventBase):
    """A ``RecordingStatusCallback``: a recording's state (``completed`` when its
    ``recording_url`` can be fetched; ``in-progress`` and ``absent`` when asked for).
    Only for calls placed with ``CallOptions(record=True)``."""

    FIELDS: ClassVar[Mapping[str, str]] = {
        **_CallEventBase.FIELDS, "RecordingSid": "recording_sid",
        "RecordingUrl": "recording_url", "RecordingStatus": "recording_status",
        "RecordingDuration": "recording_duration", "RecordingChannels": "recording_channels",
        "RecordingSource": "recording_source"}

    recording_sid: str | None = None
    recording_url: str | None = None
    recording_status: str | None = None
    recording_duration: str | None = None
    recording_channels: str | None = None
    recording_source: str | None = None

    @property
    def duration(self) -> int | None:
        """``RecordingDuration`` in seconds, when Twilio sent a number."""
        return _int(self.recording_duration)


CallEvent: TypeAlias = CallStatusEvent | AmdEvent | RecordingEvent

_CLASSES: Final[Mapping[str, type[CallStatusEvent] | type[AmdEvent] | type[RecordingEvent]]] = {
    "status": CallStatusEvent, "amd": AmdEvent, "recording": RecordingEvent}


def parse_call_event(kind: str, form: Mapping[Any, Any]) -> CallEvent:
    """The event of ``kind`` (``"status"``, ``"amd"``, ``"recording"``) that ``form``
    holds; :class:`ProtocolError` for anything else (see the module docstring)."""
    cls = _CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown call event kind {kind!r}")
    if not isinstance(form, Mapping):
        raise ProtocolError("a call event is a form of names and values")
    if len(form) > MAX_FIELDS:
        raise ProtocolError(f"a call event has at most {MAX_FIELDS} fields, got {len(form)}")
    known: dict[str, str] = {}
    extra: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ProtocolError("call event fields must be strings")
        name = cls.FIELDS.get(key)
        if name is None:
            extra[key] = value
        else:
            known[name] = value
    if not known.get("call_sid", "").strip():
        raise ProtocolError("a call event needs a CallSid")
    return cls(extra=extra, **known)
