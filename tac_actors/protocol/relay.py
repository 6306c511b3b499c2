"""ConversationRelay frames, both directions, as frozen attrs classes.

Inbound text is parsed by :func:`parse_frame`; outbound frames are encoded by
:func:`encode_frame`. Both are pure: no I/O, no trio. The wire is JSON with camelCase
keys; one cattrs converter does the renaming and the strict type checks (no silent
coercion: ``"false"`` is not a bool, ``null`` is not a string).

Unknown frame types parse to :class:`UnknownFrame` and unknown fields are ignored: the
protocol grows, and a new Twilio field must not break a live call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from tac_actors.protocol.errors import LocalProtocolError, ProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "Dtmf",
    "End",
    "ErrorFrame",
    "InboundFrame",
    "Info",
    "Interrupt",
    "Language",
    "OutboundFrame",
    "Play",
    "Prompt",
    "SendDigits",
    "Setup",
    "Text",
    "UnknownFrame",
    "encode_frame",
    "parse_frame",
    "text_frame",
]

DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024

# -- Twilio → us ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Setup:
    """First frame of a call: who is calling whom, and the TwiML's custom parameters."""

    call_sid: str
    session_id: str | None = None
    account_sid: str | None = None
    parent_call_sid: str | None = None
    from_: str | None = None
    to: str | None = None
    forwarded_from: str | None = None
    caller_name: str | None = None
    direction: str | None = None
    call_type: str | None = None
    call_status: str | None = None
    custom_parameters: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Prompt:
    """The caller said something. ``last=False`` is a partial (partial prompts on)."""

    voice_prompt: str
    lang: str | None = None
    last: bool = True


@attrs.frozen(kw_only=True)
class Dtmf:
    """A key press."""

    digit: str


@attrs.frozen(kw_only=True)
class Interrupt:
    """The caller spoke over our speech; Twilio already stopped playback.

    ``utterance_until_interrupt`` is the part of our reply the caller heard.
    """

    utterance_until_interrupt: str = ""
    duration_until_interrupt_ms: int | None = None


@attrs.frozen(kw_only=True)
class ErrorFrame:
    """Twilio rejected something we sent."""

    description: str = ""


@attrs.frozen(kw_only=True)
class Info:
    """Debug information (``debug``/``events`` attributes on)."""

    name: str | None = None
    value: Any = None


@attrs.frozen(kw_only=True)
class UnknownFrame:
    """A frame type this version does not know. Kept whole for logs and hooks."""

    type: str
    fields: Mapping[str, Any]


InboundFrame: TypeAlias = Setup | Prompt | Dtmf | Interrupt | ErrorFrame | Info | UnknownFrame

# -- us → Twilio ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Text:
    """Words to speak. Stream with ``last=False``; an empty token with ``last=True``
    closes a reply."""

    token: str
    last: bool
    lang: str | None = None
    interruptible: bool | None = None
    preemptible: bool | None = None


@attrs.frozen(kw_only=True)
class Play:
    """Play an audio file."""

    source: str
    loop: int | None = None
    interruptible: bool | None = None
    preemptible: bool | None = None


@attrs.frozen(kw_only=True)
class SendDigits:
    """Send DTMF tones: ``0-9``, ``*``, ``#`` and ``w`` (a pause)."""

    digits: str

    def __attrs_post_init__(self) -> None:
        if not self.digits or any(c not in "0123456789*#w" for c in self.digits):
            raise LocalProtocolError(f"sendDigits accepts 0-9 * # w, got {self.digits!r}")


@attrs.frozen(kw_only=True)
class Language:
    """Switch languages mid-call."""

    tts_language: str | None = None
    transcription_language: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.tts_language is None and self.transcription_language is None:
            raise LocalProtocolError("language needs tts_language or transcription_language")


@attrs.frozen(kw_only=True)
class End:
    """End the session. Twilio then POSTs the action URL with ``HandoffData``."""

    handoff_data: str | None = None


OutboundFrame: TypeAlias = Text | Play | SendDigits | Language | End

_INBOUND: Final[dict[str, type[Any]]] = {
    "setup": Setup,
    "prompt": Prompt,
    "dtmf": Dtmf,
    "interrupt": Interrupt,
    "error": ErrorFrame,
    "info": Info,
}
_OUTBOUND_TYPE: Final[dict[type[Any], str]] = {
    Text: "text",
    Play: "play",
    SendDigits: "sendDigits",
    Language: "language",
    End: "end",
}

# -- the converter ---------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.title() for part in rest)


def _strict(kind: type[Any]) -> Any:
    def hook(value: Any, _: Any) -> Any:
        # bool is an int subclass: a bool is never accepted for an int and vice versa
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return hook


def _str_mapping(value: Any, _: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise TypeError(f"parameter {key!r} must be a string, got {type(item).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)
    for kind in (str, int, bool, float):
        conv.register_structure_hook(kind, _strict(kind))
    conv.register_structure_hook_func(lambda t: t == Mapping[str, str], _str_mapping)
    conv.register_structure_hook_func(lambda t: t is Any, lambda value, _: value)
    for cls in (*_INBOUND.values(), *_OUTBOUND_TYPE):
        renames: dict[str, Any] = {
            a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls)
        }
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **renames))
        conv.register_unstructure_hook(
            cls,
            make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True, **renames),
        )
    return conv


converter: Final = _make_converter()


def _describe(exc: Exception, cls: type[Any]) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        details = "; ".join(cattrs.transform_error(exc, path=cls.__name__.lower()))
        return details.replace("$.", "")
    return str(exc)


# -- parsing and encoding ----------------------------------------------------------------------


def parse_frame(data: str, *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> InboundFrame:
    """Parse one inbound text frame.

    Raises :class:`ProtocolError` for anything that is not a well-formed frame (never any
    other exception). An oversized frame carries close code 1009; other errors carry no
    close code (the frame is dropped).
    """
    if len(data) > max_bytes // 4 and len(data.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(f"frame of {len(data)} characters exceeds {max_bytes} bytes",
                            close_code=1009)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"frame is a JSON {type(obj).__name__}, not an object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("frame has no string 'type' field")
    cls = _INBOUND.get(kind)
    if cls is None:
        return UnknownFrame(type=kind, fields=obj)
    try:
        frame: InboundFrame = converter.structure(obj, cls)
    except Exception as exc:  # cattrs raises ExceptionGroups and plain errors alike
        raise ProtocolError(f"bad {kind!r} frame: {_describe(exc, cls)}") from None
    return frame


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def text_frame(token: str, last: bool) -> str:
    """The hot path: encode a plain ``text`` frame without the general converter."""
    return f'{{"type":"text","token":{_dumps(token)},"last":{"true" if last else "false"}}}'


def encode_frame(frame: OutboundFrame) -> str:
    """Encode one outbound frame as JSON text. Optional fields left ``None`` are omitted."""
    if type(frame) is Text and frame.lang is None and frame.interruptible is None \
            and frame.preemptible is None:
        return text_frame(frame.token, frame.last)
    kind = _OUTBOUND_TYPE.get(type(frame))
    if kind is None:
        raise LocalProtocolError(f"not an outbound ConversationRelay frame: {frame!r}")
    body: dict[str, Any] = {"type": kind}
    body.update((k, v) for k, v in converter.unstructure(frame).items() if v is not None)
    return _dumps(body)


def unstructure_inbound(frame: InboundFrame) -> dict[str, Any]:
    """The wire dict of an inbound frame (used by the simulated caller)."""
    if isinstance(frame, UnknownFrame):
        return dict(frame.fields)
    kind = next(k for k, v in _INBOUND.items() if v is type(frame))
    body: dict[str, Any] = {"type": kind}
    body.update((k, v) for k, v in converter.unstructure(frame).items() if v is not None)
    return body


def encode_inbound(frame: InboundFrame) -> str:
    """Encode a frame as Twilio would send it (for the test kit and the load generator)."""
    return _dumps(unstructure_inbound(frame))


def parse_outbound(data: str) -> OutboundFrame | UnknownFrame:
    """Parse a frame we sent (the simulated caller's side). Raises :class:`ProtocolError`."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError("frame is not an object with a string 'type'")
    cls = {v: k for k, v in _OUTBOUND_TYPE.items()}.get(obj["type"])
    if cls is None:
        return UnknownFrame(type=obj["type"], fields=obj)
    try:
        return converter.structure(obj, cls)  # type: ignore[no-any-return]
    except Exception as exc:
        raise ProtocolError(f"bad {obj['type']!r} frame: {_describe(exc, cls)}") from None


Direction = Literal["inbound", "outbound"]
