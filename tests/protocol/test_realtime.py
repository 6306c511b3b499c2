"""The OpenAI Realtime events, sans-IO: parse, encode, fuzz."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.realtime import (
    AudioDelta,
    FunctionCall,
    InputTranscript,
    RealtimeError,
    RealtimeOther,
    ResponseCreated,
    ResponseDone,
    SessionReady,
    SpeechStarted,
    TranscriptDelta,
    TranscriptDone,
    encode_append_audio,
    encode_cancel,
    encode_function_output,
    encode_response_create,
    encode_session_update,
    encode_truncate,
    parse_realtime_event,
)


def event(**fields: object) -> str:
    return json.dumps(fields)


@pytest.mark.parametrize("kind", ["response.output_audio.delta", "response.audio.delta"])
def test_audio_delta_ga_and_beta_names(kind: str) -> None:
    parsed = parse_realtime_event(event(type=kind, response_id="r", item_id="i",
                                        delta=base64.b64encode(b"\x01\x02").decode()))
    assert parsed == AudioDelta("r", "i", b"\x01\x02")


def test_the_events_a_bridge_needs() -> None:
    assert parse_realtime_event(event(type="session.updated", session={})) == SessionReady(
        "session.updated")
    assert parse_realtime_event(event(type="response.output_audio_transcript.delta",
                                      item_id="i", delta="He")) == TranscriptDelta("i", "He")
    assert parse_realtime_event(event(type="response.audio_transcript.done", item_id="i",
                                      transcript="Hello")) == TranscriptDone("i", "Hello")
    assert parse_realtime_event(event(
        type="conversation.item.input_audio_transcription.completed", item_id="u",
        transcript="hi")) == InputTranscript("u", "hi")
    assert parse_realtime_event(event(type="input_audio_buffer.speech_started",
                                      audio_start_ms=120, item_id="u")) == SpeechStarted(120, "u")
    assert parse_realtime_event(event(type="response.created",
                                      response={"id": "r"})) == ResponseCreated("r")
    assert parse_realtime_event(event(type="response.done", response={
        "id": "r", "status": "cancelled"})) == ResponseDone("r", "cancelled")
    assert parse_realtime_event(event(type="response.output_item.done", response_id="r", item={
        "type": "function_call", "id": "f", "call_id": "c", "name": "lookup",
        "arguments": '{"a":1}'})) == FunctionCall("r", "f", "c", "lookup", '{"a":1}')
    assert parse_realtime_event(event(type="response.output_item.done", item={
        "type": "function_call", "call_id": "c", "name": "n", "status": "incomplete"})
    ).status == "incomplete"
    assert parse_realtime_event(event(type="response.output_item.done", item={
        "type": "message"})) == RealtimeOther("response.output_item.done")
    assert parse_realtime_event(event(type="error", error={
        "type": "invalid_request_error", "code": "bad", "message": "no"})) == RealtimeError(
        "bad", "no")
    assert parse_realtime_event(event(type="rate_limits.updated")) == RealtimeOther(
        "rate_limits.updated")


@pytest.mark.parametrize("data", [
    "", "[]", "{}", '{"type": 3}', "not json",
    event(type="response.output_audio.delta", delta="@@@"),
    event(type="response.output_audio.delta"),
    event(type="response.created"),
    event(type="response.done", response=[]),
    event(type="input_audio_buffer.speech_started", audio_start_ms="12"),
    event(type="input_audio_buffer.speech_started", audio_start_ms=True),
    event(type="response.output_item.done", item={"type": "function_call", "name": "x"}),
    event(type="error"),
])
def test_malformed_events_raise_the_protocol_error(data: str) -> None:
    with pytest.raises(ProtocolError):
        parse_realtime_event(data)


def test_oversized_event_closes_with_1009() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_realtime_event(" " * (4 * 1024 * 1024 + 1))
    assert info.value.close_code == 1009


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
_types = st.sampled_from(["response.output_audio.delta", "response.done", "response.created",
                          "response.output_item.done", "error", "session.created",
                          "input_audio_buffer.speech_started", "response.audio_transcript.done",
                          "conversation.item.input_audio_transcription.completed"])


@given(st.dictionaries(st.sampled_from(["type", "delta", "response", "item", "error",
                                        "item_id", "response_id", "audio_start_ms",
                                        "transcript"]), _json, max_size=6), _types)
def test_fuzzed_events_parse_or_raise_the_protocol_error(fields: dict[str, object],
                                                         kind: str) -> None:
    for data in (json.dumps(fields), json.dumps({**fields, "type": kind})):
        try:
            parse_realtime_event(data)
        except ProtocolError:
            pass


@given(st.binary(max_size=64))
def test_fuzzed_bytes_parse_or_raise(data: bytes) -> None:
    try:
        parse_realtime_event(data)
    except ProtocolError:
        pass


def test_session_update_is_pcmu_both_ways_with_tools() -> None:
    tool = {"type": "function", "name": "f", "description": "d", "parameters": {}}
    update = json.loads(encode_session_update(instructions="Be brief", voice="alloy",
                                              tools=[tool], transcribe="whisper-1",
                                              extra={"max_output_tokens": 100}))
    session = update["session"]
    assert update["type"] == "session.update"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "alloy"}
    assert session["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    assert session["audio"]["input"]["turn_detection"] == {"type": "server_vad"}
    assert session["tools"] == [tool] and session["tool_choice"] == "auto"
    assert session["instructions"] == "Be brief" and session["max_output_tokens"] == 100


def test_client_events() -> None:
    assert json.loads(encode_append_audio(b"\xff\x00")) == {
        "type": "input_audio_buffer.append", "audio": base64.b64encode(b"\xff\x00").decode()}
    assert json.loads(encode_response_create()) == {"type": "response.create"}
    assert json.loads(encode_response_create("Greet")) == {
        "type": "response.create", "response": {"instructions": "Greet"}}
    assert json.loads(encode_cancel()) == {"type": "response.cancel"}
    assert json.loads(encode_truncate("i", 400)) == {
        "type": "conversation.item.truncate", "item_id": "i", "content_index": 0,
        "audio_end_ms": 400}
    assert json.loads(encode_truncate("i", -5))["audio_end_ms"] == 0
    assert json.loads(encode_function_output("c", '{"ok":true}')) == {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c", "output": '{"ok":true}'}}


def test_extra_session_fields_merge_key_by_key_and_keep_mulaw() -> None:
    from tac_actors.protocol.errors import LocalProtocolError

    session = json.loads(encode_session_update(extra={
        "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}))["session"]
    assert session["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    with pytest.raises(LocalProtocolError, match=r"audio\.output\.format"):
        encode_session_update(extra={"audio": {"output": {"format": {"type": "audio/pcm"}}}})
