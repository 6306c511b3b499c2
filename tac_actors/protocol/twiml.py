"""TwiML for ``<Connect><ConversationRelay>`` and the action-callback answers, with no I/O.

What lives here: frozen value classes describing every ``<ConversationRelay>`` attribute,
a per-field merge of layered options (defaults < per-route < per-call), and functions
that render a complete TwiML document as a string.

Promises:

* Output is deterministic: ``url`` first, then the typed attributes in field order,
  then ``extra`` in insertion order; ``<Language>`` children before ``<Parameter>``
  children, each in the order given.
* Every attribute value and text node is XML-escaped (``& < > " '`` and tab/newline/CR
  as character references); characters XML 1.0 cannot carry (other control characters,
  lone surrogates, U+FFFE/U+FFFF) raise ``ValueError`` rather than being silently dropped.
* ``None`` fields are omitted; booleans render as ``"true"``/``"false"``.

What does not live here: HTTP routes, the WebSocket protocol, configuration loading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias
from xml.sax.saxutils import escape

import attrs

__all__ = [
    "ConversationRelayOptions",
    "InterruptMode",
    "LanguageOption",
    "connect_twiml",
    "dial_twiml",
    "hangup_twiml",
    "merge_options",
    "say_hangup_twiml",
    "stream_twiml",
]

InterruptMode: TypeAlias = Literal["none", "dtmf", "speech", "any"]
_INTERRUPT_MODES = frozenset({"none", "dtmf", "speech", "any"})

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_ATTR_ENTITIES = {'"': "&quot;", "'": "&apos;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_TEXT_ENTITIES = {'"': "&quot;", "'": "&apos;"}
# Characters outside the XML 1.0 ``Char`` production.
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")

AttrValue: TypeAlias = str | bool | int | float | tuple[str, ...]


def _check_xml_chars(value: str) -> str:
    match = _INVALID_XML_CHARS.search(value)
    if match is not None:
        raise ValueError(f"character {match.group()!r} cannot appear in XML: {value!r}")
    return value


def _escape_attr(value: str) -> str:
    return escape(_check_xml_chars(value), _ATTR_ENTITIES)


def _escape_text(value: str) -> str:
    return escape(_check_xml_chars(value), _TEXT_ENTITIES)


def _render_value(value: AttrValue) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _attributes(pairs: Iterable[tuple[str, AttrValue | None]]) -> str:
    return "".join(
        f' {name}="{_escape_attr(_render_value(value))}"'
        for name, value in pairs
        if value is not None
    )


def _frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _optional_tuple(value: str | Iterable[str] | None) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return value
    return tuple(value)


def _check_interrupt(_inst: object, attribute: attrs.Attribute[object], value: object) -> None:
    if value is None or isinstance(value, bool) or value in _INTERRUPT_MODES:
        return
    raise ValueError(f"{attribute.name} must be a bool or one of {sorted(_INTERRUPT_MODES)}")


def _check_speech_timeout(_inst: object, _attribute: object, value: object) -> None:
    if value is None or value == "auto":
        return
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return
    raise ValueError(f"speech_timeout must be a non-negative int or 'auto', got {value!r}")


@attrs.frozen(kw_only=True)
class LanguageOption:
    """One ``<Language>`` child: per-language TTS and transcription settings."""

    code: str
    tts_provider: str | None = None
    voice: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None

    def to_xml(self) -> str:
        """Render as a self-closing ``<Language .../>`` element (``code`` first)."""
        pairs = [(_camel(a.name), getattr(self, a.name)) for a in attrs.fields(LanguageOption)]
        return f"<Language{_attributes(pairs)}/>"


def _language_tuple(value: Iterable[LanguageOption]) -> tuple[LanguageOption, ...]:
    return tuple(value)


# Fields of ConversationRelayOptions that are children or the escape hatch, not attributes.
_NON_ATTRIBUTE_FIELDS = frozenset({"languages", "parameters", "extra"})


@attrs.frozen(kw_only=True)
class ConversationRelayOptions:
    """Every ``<ConversationRelay>`` attribute, each optional (``None`` = not rendered).

    Attribute names on the wire are the camelCase form of the field names
    (``welcome_greeting`` -> ``welcomeGreeting``). ``hints`` and ``events`` accept a
    string or an iterable of strings (rendered comma-separated). ``parameters`` become
    ``<Parameter name=... value=.../>`` children (delivered to us in
    ``setup.customParameters``); ``extra`` carries attributes this class does not know
    yet and may not shadow a typed field (``ValueError``). Mappings are copied into
    read-only views at construction and excluded from the hash.
    """

    url: str | None = None
    welcome_greeting: str | None = None
    welcome_greeting_interruptible: InterruptMode | bool | None = attrs.field(
        default=None, validator=_check_interrupt
    )
    language: str | None = None
    tts_language: str | None = None
    transcription_language: str | None = None
    tts_provider: str | None = None
    voice: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None
    interruptible: InterruptMode | bool | None = attrs.field(
        default=None, validator=_check_interrupt
    )
    preemptible: bool | None = None
    dtmf_detection: bool | None = None
    partial_prompts: bool | None = None
    hints: str | tuple[str, ...] | None = attrs.field(default=None, converter=_optional_tuple)
    debug: str | bool | None = None
    intelligence_service: str | None = None
    conversation_configuration: str | None = None
    elevenlabs_text_normalization: str | bool | None = None
    eot_threshold: float | str | None = None
    deepgram_smart_format: bool | None = None
    speech_timeout: int | Literal["auto"] | None = attrs.field(
        default=None, validator=_check_speech_timeout
    )
    interrupt_sensitivity: str | None = None
    report_input_during_agent_speech: InterruptMode | bool | None = attrs.field(
        default=None, validator=_check_interrupt
    )
    ignore_backchannel: bool | None = None
    events: str | tuple[str, ...] | None = attrs.field(default=None, converter=_optional_tuple)
    languages: tuple[LanguageOption, ...] = attrs.field(default=(), converter=_language_tuple)
    parameters: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    extra: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)

    @extra.validator
    def _check_extra(self, _attribute: object, value: Mapping[str, str]) -> None:
        for key in value:
            if key.lower() in _KNOWN_ATTRIBUTE_NAMES:
                raise ValueError(
                    f"extra attribute {key!r} shadows the typed field "
                    f"{_KNOWN_ATTRIBUTE_NAMES[key.lower()]!r}; set that field instead"
                )
            if not _XML_NAME.match(key):
                raise ValueError(f"extra attribute name {key!r} is not a valid XML name")

    def attribute_pairs(self) -> list[tuple[str, str]]:
        """The rendered ``(wireName, value)`` pairs, in output order (url first)."""
        pairs: list[tuple[str, str]] = []
        for field in attrs.fields(ConversationRelayOptions):
            if field.name in _NON_ATTRIBUTE_FIELDS:
                continue
            value = getattr(self, field.name)
            if value is not None:
                pairs.append((_camel(field.name), _render_value(value)))
        pairs.extend(self.extra.items())
        return pairs

    def merged(self, *overrides: ConversationRelayOptions) -> ConversationRelayOptions:
        """Layer ``overrides`` on top of ``self``; see :func:`merge_options`."""
        return merge_options(self, *overrides)

    def to_xml(self) -> str:
        """Render the ``<ConversationRelay>`` element. Raises ``ValueError`` if no url."""
        if not self.url:
            raise ValueError("ConversationRelayOptions.url is required (the wss:// URL)")
        children = "".join(language.to_xml() for language in self.languages) + "".join(
            f"<Parameter{_attributes([('name', name), ('value', value)])}/>"
            for name, value in self.parameters.items()
        )
        attributes = _attributes(self.attribute_pairs())
        if not children:
            return f"<ConversationRelay{attributes}/>"
        return f"<ConversationRelay{attributes}>{children}</ConversationRelay>"


# Lower-cased wire and Python names of every typed attribute -> the field name.
_KNOWN_ATTRIBUTE_NAMES: dict[str, str] = {
    alias.lower(): field.name
    for field in attrs.fields(ConversationRelayOptions)
    if field.name not in _NON_ATTRIBUTE_FIELDS
    for alias in (field.name, _camel(field.name))
}


def _is_set(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, tuple | Mapping):
        return len(value) > 0
    return True


def merge_options(
    base: ConversationRelayOptions, *layers: ConversationRelayOptions
) -> ConversationRelayOptions:
    """Merge option layers field by field; later layers win for the fields they set.

    A field counts as set when it is not ``None`` (for ``languages``, ``parameters`` and
    ``extra``: when non-empty). Tuples and mappings are replaced wholesale, never merged
    element-wise, so a layer cannot clear a collection set by an earlier one.
    """
    changes: dict[str, Any] = {}
    for layer in layers:
        for field in attrs.fields(ConversationRelayOptions):
            value = getattr(layer, field.name)
            if _is_set(value):
                changes[field.name] = value
    return attrs.evolve(base, **changes)


def _document(body: str) -> str:
    return f"{_XML_DECLARATION}<Response>{body}</Response>"


def connect_twiml(options: ConversationRelayOptions, *, action_url: str | None) -> str:
    """The TwiML answer to the call webhook: ``<Connect><ConversationRelay>``.

    ``action_url`` (if given) is where Twilio POSTs when the session ends.
    Raises ``ValueError`` if ``options.url`` is missing or a value cannot be XML.
    """
    connect = f"<Connect{_attributes([('action', action_url)])}>"
    return _document(f"{connect}{options.to_xml()}</Connect>")


def say_hangup_twiml(text: str, *, voice: str | None = None, language: str | None = None) -> str:
    """``<Response><Say>text</Say><Hangup/></Response>``: speak, then end the call."""
    say = f"<Say{_attributes([('voice', voice), ('language', language)])}>"
    return _document(f"{say}{_escape_text(text)}</Say><Hangup/>")


def hangup_twiml() -> str:
    """``<Response><Hangup/></Response>``: end the call."""
    return _document("<Hangup/>")


def dial_twiml(number: str, *, caller_id: str | None = None) -> str:
    """``<Response><Dial>number</Dial></Response>``: transfer the caller (e.g. to a human)."""
    if not number.strip():
        raise ValueError("dial_twiml needs a number")
    dial = f"<Dial{_attributes([('callerId', caller_id)])}>"
    return _document(f"{dial}{_escape_text(number)}</Dial>")


def stream_twiml(url: str, *, parameters: Mapping[str, str] | None = None,
                 action_url: str | None = None, name: str | None = None,
                 status_callback: str | None = None) -> str:
    """The TwiML answer for a speech-to-speech call: ``<Connect><Stream>``, a
    bidirectional Media Stream to ``url`` (``wss://``), with ``parameters`` as
    ``<Parameter>`` values (they arrive in the stream's ``start``). ``action_url`` is
    where Twilio asks for the next TwiML once the stream ends (a handoff).
    Raises ``ValueError`` if ``url`` is empty or a value cannot be XML."""
    if not url.strip():
        raise ValueError("stream_twiml needs the WebSocket url")
    connect = f"<Connect{_attributes([('action', action_url)])}>"
    stream = "<Stream" + _attributes([("url", url), ("name", name),
                                      ("statusCallback", status_callback)]) + ">"
    params = "".join(f"<Parameter{_attributes([('name', key), ('value', value)])}/>"
                     for key, value in (parameters or {}).items())
    return _document(f"{connect}{stream}{params}</Stream></Connect>")
