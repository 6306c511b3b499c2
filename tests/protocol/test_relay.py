"""ConversationRelay frames and the connection state machine: pure, synchronous tests."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tac_actors.protocol import (
    ConnectionState,
    Dtmf,
    End,
    ErrorFrame,
    Info,
    Interrupt,
    Language,
    LocalProtocolError,
    Play,
    Prompt,
    ProtocolError,
    RelayConnection,
    SendDigits,
    Setup,
    Text,
    UnknownFrame,
    encode_frame,
    parse_frame,
)
from tac_actors.protocol.relay import encode_inbound, parse_outbound

SETUP = {
    "type": "setup", "sessionId": "VX1", "accountSid": "AC1", "callSid": "CA1",
    "parentCallSid": "", "from": "+15551230001", "to": "+15559990000", "forwardedFrom": "",
    "callerName": "", "direction": "inbound", "callType": "PSTN", "callStatus": "RINGING",
    "customParameters": {"tier": "gold"},
}


def test_setup_parses_every_field() -> None:
    frame = parse_frame(json.dumps(SETUP))
    assert frame == Setup(call_sid="CA1", session_id="VX1", account_sid="AC1",
                          parent_call_sid="", from_="+15551230001", to="+15559990000",
                          forwarded_from="", caller_name="", direction="inbound",
                          call_type="PSTN", call_status="RINGING",
                          custom_parameters={"tier": "gold"})


@pytest.mark.parametrize(("wire", "frame"), [
    ({"type": "prompt", "voicePrompt": "hi", "lang": "en-US", "last": False},
     Prompt(voice_prompt="hi", lang="en-US", last=False)),
    ({"type": "prompt", "voicePrompt": "hi"}, Prompt(voice_prompt="hi")),
    ({"type": "dtmf", "digit": "5"}, Dtmf(digit="5")),
    ({"type": "interrupt", "utteranceUntilInterrupt": "Hel", "durationUntilInterruptMs": 420},
     Interrupt(utterance_until_interrupt="Hel", duration_until_interrupt_ms=420)),
    ({"type": "error", "description": "bad"}, ErrorFrame(description="bad")),
    ({"type": "info", "name": "roundTripDelayMs", "value": 120},
     Info(name="roundTripDelayMs", value=120)),
])
def test_inbound_frames(wire: dict[str, object], frame: object) -> None:
    assert parse_frame(json.dumps(wire)) == frame
    assert parse_frame(json.dumps({**wire, "brandNewField": [1]})) == frame


def test_unknown_type_is_kept_whole() -> None:
    frame = parse_frame('{"type":"newThing","a":1}')
    assert frame == UnknownFrame(type="newThing", fields={"type": "newThing", "a": 1})


@pytest.mark.parametrize(("data", "message"), [
    ("{", "not JSON"),
    ("[]", "not an object"),
    ('"text"', "not an object"),
    ('{"voicePrompt":"x"}', "no string 'type'"),
    ('{"type":5}', "no string 'type'"),
    ('{"type":"prompt"}', "required field missing"),
    ('{"type":"prompt","voicePrompt":null}', "expected str"),
    ('{"type":"prompt","voicePrompt":"x","last":1}', "expected bool"),
    ('{"type":"interrupt","durationUntilInterruptMs":true}', "int"),
    ('{"type":"setup","callSid":"CA","customParameters":{"a":1}}', "Mapping"),
    ('{"type":"dtmf"}', "required field missing"),
])
def test_bad_frames_raise_protocol_error_only(data: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        parse_frame(data)
    assert info.value.close_code is None


def test_oversized_frame_closes_1009() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame('{"type":"prompt","voicePrompt":"' + "é" * 600 + '"}', max_bytes=1000)
    assert info.value.close_code == 1009


def test_deep_nesting_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_frame("[" * 100_000 + "]" * 100_000, max_bytes=10**6)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "voicePrompt", "last", "digit", "callSid", "lang",
                         "customParameters", "utteranceUntilInterrupt", "x"]),
        children, max_size=5),
    max_leaves=12).map(json.dumps)))
def test_fuzz_any_input_parses_or_raises_protocol_error(data: str) -> None:
    try:
        parse_frame(data)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["setup", "prompt", "dtmf", "interrupt", "error", "info", "zzz"]),
       st.dictionaries(st.sampled_from(["voicePrompt", "last", "digit", "callSid", "lang",
                                        "customParameters", "from", "description", "value",
                                        "durationUntilInterruptMs"]),
                       st.none() | st.booleans() | st.integers() | st.text(max_size=5)
                       | st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3),
                                         max_size=2), max_size=6))
def test_fuzz_typed_frames(kind: str, fields: dict[str, object]) -> None:
    try:
        parse_frame(json.dumps({"type": kind, **fields}))
    except ProtocolError:
        pass


@pytest.mark.parametrize(("frame", "wire"), [
    (Text(token='say "hi"', last=False), {"type": "text", "token": 'say "hi"', "last": False}),
    (Text(token="", last=True, lang="fr-FR", interruptible=False),
     {"type": "text", "token": "", "last": True, "lang": "fr-FR", "interruptible": False}),
    (Play(source="https://x/a.mp3", loop=2), {"type": "play", "source": "https://x/a.mp3",
                                              "loop": 2}),
    (SendDigits(digits="12w#"), {"type": "sendDigits", "digits": "12w#"}),
    (Language(tts_language="fr-FR", transcription_language="fr-FR"),
     {"type": "language", "ttsLanguage": "fr-FR", "transcriptionLanguage": "fr-FR"}),
    (End(handoff_data='{"a":1}'), {"type": "end", "handoffData": '{"a":1}'}),
    (End(), {"type": "end"}),
])
def test_outbound_encoding(frame: object, wire: dict[str, object]) -> None:
    text = encode_frame(frame)  # type: ignore[arg-type]
    assert json.loads(text) == wire
    assert parse_outbound(text) == frame


def test_outbound_validation() -> None:
    with pytest.raises(LocalProtocolError):
        SendDigits(digits="12x")
    with pytest.raises(LocalProtocolError):
        Language()


def test_inbound_round_trip_for_the_test_kit() -> None:
    frame = Setup(call_sid="CA9", from_="+1", custom_parameters={"k": "v"})
    assert parse_frame(encode_inbound(frame)) == frame


class TestConnection:
    def test_setup_first_then_active(self) -> None:
        conn = RelayConnection()
        assert conn.state is ConnectionState.AWAITING_SETUP
        conn.receive_text(json.dumps(SETUP))
        assert conn.state is ConnectionState.ACTIVE and conn.setup is not None
        assert conn.receive_text('{"type":"dtmf","digit":"1"}') == Dtmf(digit="1")

    @pytest.mark.parametrize("first", ['{"type":"prompt","voicePrompt":"x"}', "junk",
                                       '{"type":"mystery"}'])
    def test_anything_before_setup_closes_1008(self, first: str) -> None:
        with pytest.raises(ProtocolError) as info:
            RelayConnection().receive_text(first)
        assert info.value.close_code == 1008

    def test_duplicate_setup_dropped(self) -> None:
        conn = RelayConnection()
        conn.receive_text(json.dumps(SETUP))
        with pytest.raises(ProtocolError) as info:
            conn.receive_text(json.dumps(SETUP))
        assert info.value.close_code is None
        assert conn.statistics().bad_frames == 1

    def test_ten_bad_in_a_row_closes_1007_and_good_frames_reset(self) -> None:
        conn = RelayConnection()
        conn.receive_text(json.dumps(SETUP))
        for _ in range(9):
            with pytest.raises(ProtocolError):
                conn.receive_text("junk")
        conn.receive_text('{"type":"dtmf","digit":"1"}')  # resets the run
        for _ in range(9):
            with pytest.raises(ProtocolError) as info:
                conn.receive_text("junk")
            assert info.value.close_code is None
        with pytest.raises(ProtocolError) as info:
            conn.receive_text("junk")
        assert info.value.close_code == 1007

    def test_binary_closes_1003(self) -> None:
        with pytest.raises(ProtocolError) as info:
            RelayConnection().receive_bytes(b"\x00")
        assert info.value.close_code == 1003

    def test_nothing_after_end(self) -> None:
        conn = RelayConnection()
        conn.receive_text(json.dumps(SETUP))
        conn.send(End())
        assert conn.state is ConnectionState.ENDED
        with pytest.raises(LocalProtocolError):
            conn.send(Text(token="late", last=True))
