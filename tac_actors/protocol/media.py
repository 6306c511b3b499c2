"""Twilio Media Streams over WebSocket, sans-IO: the messages of a bidirectional stream
(``<Connect><Stream>``).

Twilio sends ``connected``, then ``start`` (the stream's and call's ids, the audio
format, the ``<Parameter>`` values), then ``media`` frames (base64 μ-law, 8 kHz, mono,
20 ms each), ``mark`` (a mark we sent has been played), ``dtmf`` and finally ``stop``.
We send ``media`` (audio to play), ``mark`` (tell me when the audio before this has
played) and ``clear`` (drop the audio not yet played: barge-in).

Media frames are the hot path (50 a second each way per call), so they are parsed and
encoded by hand, without the general converter: one ``json.loads``, a few dict look-ups,
one ``base64`` decode. Every parse returns an event or raises
:class:`~tac_actors.protocol.errors.ProtocolError`, never anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import TypeAlias

import attrs

from tac_actors.protocol._fields import JsonFields
from tac_actors.protocol.errors import ProtocolError

__all__ = [
    "MediaConnected",
    "MediaDtmf",
    "MediaEvent",
    "MediaFrame",
    "MediaMark",
    "MediaStart",
    "MediaStop",
    "MediaUnknown",
    "encode_clear",
    "encode_mark",
    "encode_media",
    "parse_media_event",
]

#: a media frame larger than this is refused (20 ms of μ-law is 160 bytes; Twilio's
#: frames are small, so this only guards memory)
MAX_MESSAGE_BYTES = 64 * 1024


@attrs.frozen
class MediaConnected:
    protocol: str = ""
    version: str = ""


@attrs.frozen
class MediaStart:
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    tracks: tuple[str, ...] = ()
    custom_parameters: Mapping[str, str] = attrs.field(factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@attrs.frozen
class MediaFrame:
    """Audio from the call: ``payload`` is raw μ-law bytes (already base64-decoded)."""

    payload: bytes
    track: str = "inbound"
    chunk: int = 0
    timestamp_ms: int = 0


@attrs.frozen
class MediaMark:
    """A mark we sent has been reached: the audio before it has been played."""

    name: str


@attrs.frozen
class MediaDtmf:
    digit: str


@attrs.frozen
class MediaStop:
    reason: str = ""


@attrs.frozen
class MediaUnknown:
    """An event type we do not know: tolerated, as Twilio may add some."""

    event: str


MediaEvent: TypeAlias = (
    MediaConnected | MediaStart | MediaFrame | MediaMark | MediaDtmf | MediaStop | MediaUnknown
)


_FIELDS = JsonFields("media stream message", "media stream field", digit_strings=True)
_str = _FIELDS.text
_int = _FIELDS.integer
_object = _FIELDS.object


def parse_media_event(data: str | bytes) -> MediaEvent:
    """Parse one message from Twilio. Raises :class:`ProtocolError` for anything that is
    not a well-formed Media Streams message."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError("media stream message too large", close_code=1009)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"media stream message is not JSON ({type(exc).__name__})"
                            ) from None
    if not isinstance(obj, dict):
        raise ProtocolError("media stream message is not a JSON object")
    event = _str(obj, "event", required=True)
    if event == "media":
        media = _object(obj, "media")
        try:
            payload = base64.b64decode(_str(media, "payload", required=True), validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("media payload is not base64") from None
        return MediaFrame(payload, _str(media, "track") or "inbound", _int(media, "chunk"),
                          _int(media, "timestamp"))
    if event == "mark":
        return MediaMark(_str(_object(obj, "mark"), "name", required=True))
    if event == "start":
        start = _object(obj, "start")
        fmt = start.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise ProtocolError("mediaFormat must be an object")
        tracks = start.get("tracks") or []
        params = start.get("customParameters") or {}
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise ProtocolError("tracks must be a list of strings")
        if not isinstance(params, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            raise ProtocolError("customParameters must map strings to strings")
        return MediaStart(
            stream_sid=_str(start, "streamSid") or _str(obj, "streamSid", required=True),
            call_sid=_str(start, "callSid", required=True),
            account_sid=_str(start, "accountSid"),
            tracks=tuple(tracks),
            custom_parameters=dict(params),
            encoding=_str(fmt, "encoding") or "audio/x-mulaw",
            sample_rate=_int(fmt, "sampleRate") or 8000,
            channels=_int(fmt, "channels") or 1,
        )
    if event == "dtmf":
        return MediaDtmf(_str(_object(obj, "dtmf"), "digit", required=True))
    if event == "connected":
        return MediaConnected(_str(obj, "protocol"), _str(obj, "version"))
    if event == "stop":
        stop = obj.get("stop")
        return MediaStop(_str(stop, "reason") if isinstance(stop, dict) else "")
    return MediaUnknown(event)


def encode_media(stream_sid: str, payload: bytes) -> str:
    """Audio for the call to play: raw μ-law bytes."""
    encoded = base64.b64encode(payload).decode("ascii")
    return f'{{"event":"media","streamSid":{json.dumps(stream_sid)},' \
           f'"media":{{"payload":"{encoded}"}}}}'


def encode_mark(stream_sid: str, name: str) -> str:
    """Ask Twilio to tell us (a ``mark`` event) when the audio sent before is played."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}},
                      separators=(",", ":"))


def encode_clear(stream_sid: str) -> str:
    """Drop the audio sent but not yet played (barge-in)."""
    return json.dumps({"event": "clear", "streamSid": stream_sid}, separators=(",", ":"))
