"""The OpenAI Realtime event protocol, sans-IO: what a speech-to-speech model sends us,
and the client events we send it.

Only what a phone bridge needs is typed; every other server event parses to
:class:`RealtimeOther` (tolerated, as the API adds events). Both the GA names
(``response.output_audio.delta``) and the beta names (``response.audio.delta``) are
accepted. Audio is G.711 μ-law both ways (``audio/pcmu``), so Twilio's frames pass
through without transcoding.

Every parse returns an event or raises
:class:`~tac_actors.protocol.errors.ProtocolError`, never anything else; the encoders
return one JSON text frame each.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from tac_actors.protocol._fields import JsonFields
from tac_actors.protocol.errors import LocalProtocolError, ProtocolError

__all__ = [
    "AudioDelta",
    "FunctionCall",
    "InputTranscript",
    "RealtimeError",
    "RealtimeEvent",
    "RealtimeOther",
    "ResponseCreated",
    "ResponseDone",
    "SessionReady",
    "SpeechStarted",
    "SpeechStopped",
    "TranscriptDelta",
    "TranscriptDone",
    "encode_append_audio",
    "encode_cancel",
    "encode_function_output",
    "encode_response_create",
    "encode_session_update",
    "encode_truncate",
    "parse_realtime_event",
]

#: a server event larger than this is refused (audio deltas are a few KB)
MAX_EVENT_BYTES = 4 * 1024 * 1024
#: μ-law at 8 kHz: one byte is one sample, 8 bytes a millisecond
MULAW_BYTES_PER_MS = 8


@attrs.frozen
class SessionReady:
    """``session.created`` or ``session.updated``."""

    type: str


@attrs.frozen
class AudioDelta:
    """A piece of the model's speech (raw μ-law bytes) for item ``item_id``."""

    response_id: str
    item_id: str
    audio: bytes


@attrs.frozen
class TranscriptDelta:
    """Part of the text of what the model is saying in ``item_id``."""

    item_id: str
    delta: str


@attrs.frozen
class TranscriptDone:
    """The full text of what the model said (or would have said) in ``item_id``."""

    item_id: str
    transcript: str


@attrs.frozen
class InputTranscript:
    """What the caller said, transcribed (``...input_audio_transcription.completed``)."""

    item_id: str
    transcript: str


@attrs.frozen
class SpeechStarted:
    """The model's voice activity detection heard the caller start speaking."""

    audio_start_ms: int = 0
    item_id: str = ""


@attrs.frozen
class SpeechStopped:
    audio_end_ms: int = 0
    item_id: str = ""


@attrs.frozen
class ResponseCreated:
    response_id: str


@attrs.frozen
class ResponseDone:
    """A response ended: ``status`` is ``completed``, ``cancelled``, ``failed`` or
    ``incomplete``."""

    response_id: str
    status: str = "completed"


@attrs.frozen
class FunctionCall:
    """The model asks for a tool call (a ``function_call`` item is done). ``status`` is
    the item's (``completed``; ``incomplete`` when the response was cut short, and its
    arguments may then be a fragment)."""

    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str
    status: str = "completed"


@attrs.frozen
class RealtimeError:
    """An ``error`` event: something we sent was refused."""

    code: str
    message: str
    event_id: str = ""


@attrs.frozen
class RealtimeOther:
    """Any other server event, by type."""

    type: str


RealtimeEvent: TypeAlias = (
    SessionReady | AudioDelta | TranscriptDelta | TranscriptDone | InputTranscript
    | SpeechStarted | SpeechStopped | ResponseCreated | ResponseDone | FunctionCall
    | RealtimeError | RealtimeOther
)

_AUDIO_DELTA = frozenset({"response.output_audio.delta", "response.audio.delta"})
_TRANSCRIPT_DELTA = frozenset({"response.output_audio_transcript.delta",
                               "response.audio_transcript.delta"})
_TRANSCRIPT_DONE = frozenset({"response.output_audio_transcript.done",
                              "response.audio_transcript.done"})


_FIELDS = JsonFields("realtime event", "realtime field")
_str = _FIELDS.text
_int = _FIELDS.integer
_object = _FIELDS.object


def parse_realtime_event(data: str | bytes) -> RealtimeEvent:
    """Parse one server event. Raises :class:`ProtocolError` for anything that is not a
    well-formed event."""
    if len(data) > MAX_EVENT_BYTES:
        raise ProtocolError("realtime event too large", close_code=1009)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"realtime event is not JSON ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise ProtocolError("realtime event is not a JSON object")
    kind = _str(obj, "type", required=True)
    if kind in _AUDIO_DELTA:
        try:
            audio = base64.b64decode(_str(obj, "delta", required=True), validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("realtime audio delta is not base64") from None
        return AudioDelta(_str(obj, "response_id"), _str(obj, "item_id"), audio)
    if kind in _TRANSCRIPT_DELTA:
        return TranscriptDelta(_str(obj, "item_id"), _str(obj, "delta"))
    if kind in _TRANSCRIPT_DONE:
        return TranscriptDone(_str(obj, "item_id"), _str(obj, "transcript"))
    if kind == "input_audio_buffer.speech_started":
        return SpeechStarted(_int(obj, "audio_start_ms"), _str(obj, "item_id"))
    if kind == "input_audio_buffer.speech_stopped":
        return SpeechStopped(_int(obj, "audio_end_ms"), _str(obj, "item_id"))
    if kind == "conversation.item.input_audio_transcription.completed":
        return InputTranscript(_str(obj, "item_id"), _str(obj, "transcript"))
    if kind == "response.created":
        return ResponseCreated(_str(_object(obj, "response"), "id"))
    if kind == "response.done":
        response = _object(obj, "response")
        return ResponseDone(_str(response, "id"), _str(response, "status") or "completed")
    if kind == "response.output_item.done":
        item = _object(obj, "item")
        if item.get("type") == "function_call":
            return FunctionCall(_str(obj, "response_id"), _str(item, "id"),
                                _str(item, "call_id", required=True),
                                _str(item, "name", required=True),
                                _str(item, "arguments") or "{}",
                                _str(item, "status") or "completed")
        return RealtimeOther(kind)
    if kind in ("session.created", "session.updated"):
        return SessionReady(kind)
    if kind == "error":
        error = _object(obj, "error")
        return RealtimeError(_str(error, "code") or _str(error, "type"),
                             _str(error, "message"), _str(error, "event_id"))
    return RealtimeOther(kind)


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def encode_session_update(*, instructions: str | None = None, voice: str | None = None,
                          tools: Sequence[Mapping[str, Any]] = (),
                          model: str | None = None, transcribe: str | None = None,
                          extra: Mapping[str, Any] | None = None) -> str:
    """``session.update`` for a phone call: μ-law in and out, server voice activity
    detection (barge-in), the tools in the flat Realtime format, and input
    transcription with model ``transcribe`` (``None``: the caller's words are not
    transcribed). ``extra`` is merged into ``session`` last, nested objects key by key
    (e.g. ``{"audio": {"input": {"turn_detection": {...}}}}``).

    Raises :class:`~tac_actors.protocol.errors.LocalProtocolError` if ``extra`` changes
    the audio format: Twilio's audio is 8 kHz μ-law, and anything else would be noise."""
    audio_in: dict[str, Any] = {"format": {"type": "audio/pcmu"},
                                "turn_detection": {"type": "server_vad"}}
    if transcribe:
        audio_in["transcription"] = {"model": transcribe}
    audio_out: dict[str, Any] = {"format": {"type": "audio/pcmu"}}
    if voice:
        audio_out["voice"] = voice
    session: dict[str, Any] = {"type": "realtime", "output_modalities": ["audio"],
                               "audio": {"input": audio_in, "output": audio_out}}
    if model:
        session["model"] = model
    if instructions:
        session["instructions"] = instructions
    if tools:
        session["tools"] = [dict(tool) for tool in tools]
        session["tool_choice"] = "auto"
    if extra:
        _merge(session, extra)
        for direction in ("input", "output"):
            if session["audio"][direction].get("format") != {"type": "audio/pcmu"}:
                raise LocalProtocolError(
                    f"session audio.{direction}.format must stay {{'type': 'audio/pcmu'}} "
                    "(Twilio's audio is 8 kHz μ-law)")
    return _dumps({"type": "session.update", "session": session})


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        else:
            into[key] = value


def encode_append_audio(audio: bytes) -> str:
    """``input_audio_buffer.append``: the caller's μ-law audio."""
    encoded = base64.b64encode(audio).decode("ascii")
    return f'{{"type":"input_audio_buffer.append","audio":"{encoded}"}}'


def encode_response_create(instructions: str | None = None) -> str:
    """``response.create``: speak now (with one-off ``instructions`` if given)."""
    if instructions is None:
        return '{"type":"response.create"}'
    return _dumps({"type": "response.create", "response": {"instructions": instructions}})


def encode_cancel() -> str:
    """``response.cancel``: stop the active response."""
    return '{"type":"response.cancel"}'


def encode_truncate(item_id: str, audio_end_ms: int, content_index: int = 0) -> str:
    """``conversation.item.truncate``: the caller heard ``audio_end_ms`` of the item."""
    return _dumps({"type": "conversation.item.truncate", "item_id": item_id,
                   "content_index": content_index, "audio_end_ms": max(0, audio_end_ms)})


def encode_function_output(call_id: str, output: str) -> str:
    """``conversation.item.create`` carrying a tool's result for ``call_id``."""
    return _dumps({"type": "conversation.item.create",
                   "item": {"type": "function_call_output", "call_id": call_id,
                            "output": output}})
