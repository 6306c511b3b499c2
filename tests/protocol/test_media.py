"""Media Streams messages and the μ-law codec."""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.media import (
    MediaConnected,
    MediaDtmf,
    MediaFrame,
    MediaMark,
    MediaStart,
    MediaStop,
    MediaUnknown,
    encode_clear,
    encode_mark,
    encode_media,
    parse_media_event,
)
from tac_actors.protocol.mulaw import linear_to_ulaw, ulaw_to_linear

START = {
    "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
    "start": {"accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1",
              "tracks": ["inbound", "outbound"], "customParameters": {"lang": "en"},
              "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
}


def test_a_call_as_twilio_sends_it() -> None:
    audio = bytes(range(160))
    events = [
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
        START,
        {"event": "media", "sequenceNumber": "3", "streamSid": "MZ1",
         "media": {"track": "inbound", "chunk": "1", "timestamp": "5",
                   "payload": base64.b64encode(audio).decode()}},
        {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "7"}},
        {"event": "mark", "streamSid": "MZ1", "mark": {"name": "reply-3"}},
        {"event": "stop", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA1"}},
        {"event": "something-new"},
    ]
    parsed = [parse_media_event(json.dumps(e)) for e in events]
    assert parsed == [
        MediaConnected("Call", "1.0.0"),
        MediaStart("MZ1", "CA1", "AC1", ("inbound", "outbound"), {"lang": "en"}),
        MediaFrame(audio, "inbound", 1, 5),
        MediaDtmf("7"),
        MediaMark("reply-3"),
        MediaStop(""),
        MediaUnknown("something-new"),
    ]


def test_what_we_send() -> None:
    assert json.loads(encode_media("MZ1", b"\xff\x7f")) == {
        "event": "media", "streamSid": "MZ1", "media": {"payload": "/38="}}
    assert json.loads(encode_mark("MZ1", "m1")) == {
        "event": "mark", "streamSid": "MZ1", "mark": {"name": "m1"}}
    assert json.loads(encode_clear("MZ1")) == {"event": "clear", "streamSid": "MZ1"}


@pytest.mark.parametrize("bad", [
    "", "{", "[]", '{"event": 3}', '{"event": "media"}',
    '{"event": "media", "media": {"payload": "not base64!"}}',
    '{"event": "start", "start": {"callSid": 1}}',
    '{"event": "start", "streamSid": "MZ", "start": {"callSid": "CA", "tracks": "in"}}',
    '{"event": "mark", "mark": {}}', '{"event": "media", "media": {"payload": "", "chunk": true}}',
    "[" * 100_000,
])
def test_bad_messages_raise_the_protocol_error(bad: str) -> None:
    with pytest.raises(ProtocolError):
        parse_media_event(bad)


@given(st.one_of(st.text(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["event", "media", "payload", "start", "mark", "name", "callSid",
                         "streamSid", "tracks", "dtmf", "digit", "chunk"]), inner,
        max_size=5), max_leaves=20).map(json.dumps)))
def test_any_input_parses_or_raises_the_protocol_error(data: str) -> None:
    try:
        parse_media_event(data)
    except ProtocolError:
        pass


def test_mulaw_known_values_and_round_trip() -> None:
    assert ulaw_to_linear(b"\xff\x7f\x00\x80") == struct.pack("<4h", 0, 0, -32124, 32124)
    every = bytes(range(256))
    again = linear_to_ulaw(ulaw_to_linear(every))
    assert [a for a, b in zip(again, every, strict=True) if a != b] == [0xFF]  # 0x7F: -0


def test_mulaw_tone_survives_within_its_precision() -> None:
    tone = [round(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(160)]
    decoded = struct.unpack("<160h", ulaw_to_linear(linear_to_ulaw(struct.pack("<160h", *tone))))
    assert all(abs(a - b) <= max(16, abs(a) // 16) for a, b in zip(tone, decoded, strict=True))


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="audioop was removed in 3.13")
def test_mulaw_matches_audioop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    pcm = struct.pack("<512h", *range(-32768, 32768, 128))
    assert linear_to_ulaw(pcm) == audioop.lin2ulaw(pcm, 2)
    every = bytes(range(256))
    assert ulaw_to_linear(every) == audioop.ulaw2lin(every, 2)
