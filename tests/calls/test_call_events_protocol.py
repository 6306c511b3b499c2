"""The sans-IO call events: typed parsing, properties, and fuzzing (any form parses or
raises our one ProtocolError)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tac_actors.protocol.call_events import (
    MAX_FIELDS,
    AmdEvent,
    CallStatusEvent,
    RecordingEvent,
    parse_call_event,
)
from tac_actors.protocol.errors import ProtocolError


def test_status_event_is_typed_and_keeps_unknown_fields() -> None:
    event = parse_call_event("status", {
        "CallSid": "CA1", "AccountSid": "AC1", "CallStatus": "completed",
        "CallDuration": "42", "To": "+1555", "Caller": "+1666"})
    assert isinstance(event, CallStatusEvent)
    assert (event.call_sid, event.account_sid, event.call_status) == ("CA1", "AC1", "completed")
    assert event.duration == 42 and event.is_final and not event.is_unreached
    assert event.to == "+1555" and event.extra == {"Caller": "+1666"}


@pytest.mark.parametrize(("status", "unreached", "final"), [
    ("busy", True, True), ("no-answer", True, True), ("failed", True, True),
    ("canceled", True, True), ("completed", False, True), ("ringing", False, False),
    ("in-progress", False, False), (None, False, False)])
def test_is_unreached_matches_the_statuses_worth_a_retry(status: str | None, unreached: bool,
                                                         final: bool) -> None:
    form = {"CallSid": "CA1", **({"CallStatus": status} if status else {})}
    event = parse_call_event("status", form)
    assert isinstance(event, CallStatusEvent)
    assert (event.is_unreached, event.is_final) == (unreached, final)


@pytest.mark.parametrize(("answered_by", "machine"), [
    ("machine_start", True), ("machine_end_beep", True), ("machine_end_silence", True),
    ("machine_end_other", True), ("human", False), ("fax", False), ("unknown", False),
    (None, False)])
def test_is_machine_is_any_machine_value_and_never_a_guess(answered_by: str | None,
                                                          machine: bool) -> None:
    form = {"CallSid": "CA1", **({"AnsweredBy": answered_by} if answered_by else {})}
    event = parse_call_event("amd", form)
    assert isinstance(event, AmdEvent)
    assert event.is_machine is machine
    assert event.is_human is (answered_by == "human")


def test_recording_event() -> None:
    event = parse_call_event("recording", {
        "CallSid": "CA1", "RecordingSid": "RE1", "RecordingUrl": "https://x/RE1",
        "RecordingStatus": "completed", "RecordingDuration": "nope"})
    assert isinstance(event, RecordingEvent)
    assert (event.recording_sid, event.recording_status) == ("RE1", "completed")
    assert event.duration is None  # not a number: None, never an exception


@pytest.mark.parametrize("form", [
    {}, {"CallSid": ""}, {"CallSid": "   "}, {"CallStatus": "completed"},
    {"CallSid": 5}, {1: "x", "CallSid": "CA1"}, {"CallSid": ["CA1"]},
    {f"F{i}": "x" for i in range(MAX_FIELDS + 1)} | {"CallSid": "CA1"}])
def test_bad_forms_raise_the_protocol_error(form: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_call_event("status", form)


@pytest.mark.parametrize("kind", ["", "Status", "voicemail", None, 3])
def test_unknown_kinds_raise_the_protocol_error(kind: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_call_event(kind, {"CallSid": "CA1"})


def test_a_non_mapping_raises_the_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_call_event("amd", ["CallSid", "CA1"])  # type: ignore[arg-type]


_values = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.binary(max_size=5),
                    st.lists(st.text(max_size=3), max_size=2))
_keys = st.one_of(st.sampled_from(["CallSid", "CallStatus", "AnsweredBy", "RecordingSid",
                                   "AccountSid", "CallDuration"]), st.text(max_size=10),
                  st.integers())


@given(kind=st.one_of(st.sampled_from(["status", "amd", "recording"]), st.text(max_size=8)),
       form=st.dictionaries(_keys, _values, max_size=12))
def test_fuzz_any_form_parses_or_raises_protocol_error(kind: str, form: dict[Any, Any]
                                                       ) -> None:
    try:
        event = parse_call_event(kind, form)
    except ProtocolError:
        return
    assert event.call_sid.strip()
    assert all(isinstance(v, str) for v in event.extra.values())
    # properties never raise
    for name in ("is_unreached", "is_final", "duration", "is_machine", "is_human"):
        getattr(event, name, None)


@given(form=st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=30))
def test_fuzz_string_forms_with_a_call_sid_always_parse(form: dict[str, str]) -> None:
    form["CallSid"] = "CA" + "1" * 32
    for kind in ("status", "amd", "recording"):
        event = parse_call_event(kind, form)
        assert event.call_sid == form["CallSid"]
