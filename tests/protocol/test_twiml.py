"""Tests for the TwiML builder: names, values, escaping, children, merging, errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tac_actors.protocol.twiml import (
    ConversationRelayOptions,
    LanguageOption,
    connect_twiml,
    dial_twiml,
    hangup_twiml,
    merge_options,
    say_hangup_twiml,
)

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
HOSTILE = "\"<&>' and more"

# Every typed attribute, its camelCase wire name, a value and its rendering.
ALL_ATTRIBUTES: list[tuple[str, str, Any, str]] = [
    ("url", "url", "wss://example.com/ws", "wss://example.com/ws"),
    ("welcome_greeting", "welcomeGreeting", "Hello!", "Hello!"),
    ("welcome_greeting_interruptible", "welcomeGreetingInterruptible", "dtmf", "dtmf"),
    ("language", "language", "en-US", "en-US"),
    ("tts_language", "ttsLanguage", "en-GB", "en-GB"),
    ("transcription_language", "transcriptionLanguage", "fr-FR", "fr-FR"),
    ("tts_provider", "ttsProvider", "ElevenLabs", "ElevenLabs"),
    ("voice", "voice", "UgBBYS2sOqTuMpoF3BR0", "UgBBYS2sOqTuMpoF3BR0"),
    ("transcription_provider", "transcriptionProvider", "Deepgram", "Deepgram"),
    ("speech_model", "speechModel", "nova-3-general", "nova-3-general"),
    ("interruptible", "interruptible", "speech", "speech"),
    ("preemptible", "preemptible", True, "true"),
    ("dtmf_detection", "dtmfDetection", False, "false"),
    ("partial_prompts", "partialPrompts", True, "true"),
    ("hints", "hints", ("Twilio", "trio"), "Twilio,trio"),
    ("debug", "debug", "debugging speaker-events", "debugging speaker-events"),
    ("intelligence_service", "intelligenceService", "GA123", "GA123"),
    ("conversation_configuration", "conversationConfiguration", "CC1", "CC1"),
    ("elevenlabs_text_normalization", "elevenlabsTextNormalization", "on", "on"),
    ("eot_threshold", "eotThreshold", 0.7, "0.7"),
    ("deepgram_smart_format", "deepgramSmartFormat", True, "true"),
    ("speech_timeout", "speechTimeout", 1500, "1500"),
    ("interrupt_sensitivity", "interruptSensitivity", "high", "high"),
    ("report_input_during_agent_speech", "reportInputDuringAgentSpeech", "any", "any"),
    ("ignore_backchannel", "ignoreBackchannel", True, "true"),
    ("events", "events", "a,b", "a,b"),
]


def relay_element(xml: str) -> ET.Element:
    assert xml.startswith(DECLARATION)
    root = ET.fromstring(xml.removeprefix(DECLARATION))
    assert root.tag == "Response"
    relay = root.find("./Connect/ConversationRelay")
    assert relay is not None
    return relay


def test_every_attribute_rendered_with_camel_case_name_in_field_order() -> None:
    options = ConversationRelayOptions(**{field: value for field, _, value, _ in ALL_ATTRIBUTES})
    xml = connect_twiml(options, action_url=None)
    relay = relay_element(xml)
    assert dict(relay.attrib) == {wire: rendered for _, wire, _, rendered in ALL_ATTRIBUTES}
    # attribute order is stable: url first, then field order
    assert list(relay.attrib) == [wire for _, wire, _, _ in ALL_ATTRIBUTES]
    assert [name for name, _ in options.attribute_pairs()] == list(relay.attrib)


def test_every_typed_field_is_covered_by_this_test() -> None:
    typed = {f.name for f in attrs.fields(ConversationRelayOptions)}
    assert typed - {"languages", "parameters", "extra"} == {f for f, *_ in ALL_ATTRIBUTES}


def test_minimal_document_exact_text() -> None:
    options = ConversationRelayOptions(url="wss://h/ws")
    assert connect_twiml(options, action_url="https://h/action") == (
        DECLARATION + '<Response><Connect action="https://h/action">'
        '<ConversationRelay url="wss://h/ws"/></Connect></Response>'
    )
    assert connect_twiml(options, action_url=None) == (
        DECLARATION
        + '<Response><Connect><ConversationRelay url="wss://h/ws"/></Connect></Response>'
    )


def test_booleans_and_none_omitted() -> None:
    options = ConversationRelayOptions(
        url="wss://h/ws", interruptible=False, welcome_greeting_interruptible=True
    )
    relay = relay_element(connect_twiml(options, action_url=None))
    assert relay.attrib == {
        "url": "wss://h/ws",
        "welcomeGreetingInterruptible": "true",
        "interruptible": "false",
    }


def test_speech_timeout_auto_and_validation() -> None:
    options = ConversationRelayOptions(url="wss://h/ws", speech_timeout="auto")
    assert relay_element(connect_twiml(options, action_url=None)).attrib["speechTimeout"] == "auto"
    with pytest.raises(ValueError, match="speech_timeout"):
        ConversationRelayOptions(speech_timeout=-1)
    with pytest.raises(ValueError, match="interruptible"):
        ConversationRelayOptions(interruptible="sometimes")  # type: ignore[arg-type]


def test_hostile_text_is_escaped_everywhere() -> None:
    options = ConversationRelayOptions(
        url="wss://h/ws?a=1&b=2",
        welcome_greeting=HOSTILE + "\nline two\ttab",
        parameters={"who": HOSTILE, "k": "v"},
        languages=[LanguageOption(code="en-US", voice=HOSTILE)],
    )
    xml = connect_twiml(options, action_url='https://h/a?x="1"&y=<2>')
    assert HOSTILE not in xml
    assert "\n" not in xml and "\t" not in xml  # whitespace kept as character references
    assert "&quot;&lt;&amp;&gt;&apos;" in xml
    assert "&#10;line two&#9;tab" in xml
    assert 'action="https://h/a?x=&quot;1&quot;&amp;y=&lt;2&gt;"' in xml
    relay = relay_element(xml)
    # a parser reads back exactly what we meant, including whitespace
    assert relay.attrib["welcomeGreeting"] == HOSTILE + "\nline two\ttab"
    assert relay.attrib["url"] == "wss://h/ws?a=1&b=2"
    params = relay.findall("Parameter")
    assert [(p.get("name"), p.get("value")) for p in params] == [("who", HOSTILE), ("k", "v")]
    language = relay.find("Language")
    assert language is not None and language.get("voice") == HOSTILE


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b", "\ufffe", "\ud800"])
def test_control_characters_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot appear in XML"):
        connect_twiml(
            ConversationRelayOptions(url="wss://h/ws", welcome_greeting=f"hi{bad}"),
            action_url=None,
        )
    with pytest.raises(ValueError, match="cannot appear in XML"):
        say_hangup_twiml(f"bye{bad}")


def test_language_and_parameter_children_in_order() -> None:
    options = ConversationRelayOptions(
        url="wss://h/ws",
        languages=(
            LanguageOption(
                code="en-US",
                tts_provider="Google",
                voice="en-US-Journey-O",
                transcription_provider="Deepgram",
                speech_model="nova-3-general",
            ),
            LanguageOption(code="es-ES"),
        ),
        parameters={"tenant": "acme", "plan": "gold"},
    )
    xml = connect_twiml(options, action_url=None)
    assert (
        '<Language code="en-US" ttsProvider="Google" voice="en-US-Journey-O" '
        'transcriptionProvider="Deepgram" speechModel="nova-3-general"/>'
        '<Language code="es-ES"/>'
        '<Parameter name="tenant" value="acme"/><Parameter name="plan" value="gold"/>'
        "</ConversationRelay>"
    ) in xml


def test_extra_attributes_rendered_last() -> None:
    options = ConversationRelayOptions(url="wss://h/ws", voice="v", extra={"newThing": "x&y"})
    relay = relay_element(connect_twiml(options, action_url=None))
    assert list(relay.attrib.items()) == [
        ("url", "wss://h/ws"),
        ("voice", "v"),
        ("newThing", "x&y"),
    ]


@pytest.mark.parametrize("key", ["welcomeGreeting", "welcome_greeting", "URL", "ttsprovider"])
def test_extra_shadowing_a_typed_field_is_an_error(key: str) -> None:
    with pytest.raises(ValueError, match="shadows the typed field"):
        ConversationRelayOptions(url="wss://h/ws", extra={key: "x"})


def test_extra_invalid_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a valid XML name"):
        ConversationRelayOptions(extra={'a" onload="x': "1"})


def test_missing_url_is_an_error() -> None:
    with pytest.raises(ValueError, match="url is required"):
        connect_twiml(ConversationRelayOptions(voice="v"), action_url=None)


def test_merge_layers_later_wins_for_fields_it_sets() -> None:
    defaults = ConversationRelayOptions(
        url="wss://default/ws",
        voice="default-voice",
        tts_provider="Google",
        interruptible="any",
        dtmf_detection=True,
        parameters={"a": "1", "b": "2"},
        languages=(LanguageOption(code="en-US"),),
    )
    route = ConversationRelayOptions(voice="route-voice", dtmf_detection=False)
    call = ConversationRelayOptions(parameters={"c": "3"}, welcome_greeting="hi")
    merged = merge_options(defaults, route, call)
    assert merged == defaults.merged(route, call)
    assert merged.url == "wss://default/ws"
    assert merged.voice == "route-voice"
    assert merged.tts_provider == "Google"
    assert merged.interruptible == "any"
    assert merged.dtmf_detection is False  # a False value counts as set
    assert merged.welcome_greeting == "hi"
    assert dict(merged.parameters) == {"c": "3"}  # replaced wholesale
    assert merged.languages == (LanguageOption(code="en-US"),)  # empty tuple = not set
    assert merge_options(defaults) == defaults


def test_options_are_frozen_and_hashable() -> None:
    params = {"a": "1"}
    options = ConversationRelayOptions(url="wss://h/ws", parameters=params, hints=["x"])
    params["a"] = "changed"
    assert options.parameters["a"] == "1"  # copied at construction
    assert options.hints == ("x",)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.url = "other"  # type: ignore[misc]
    hash(options)


def test_action_helpers() -> None:
    assert hangup_twiml() == DECLARATION + "<Response><Hangup/></Response>"
    assert say_hangup_twiml('Bye <&> "now"') == (
        DECLARATION + "<Response><Say>Bye &lt;&amp;&gt; &quot;now&quot;</Say><Hangup/></Response>"
    )
    assert say_hangup_twiml("Ciao", voice="Polly.Bianca", language="it-IT") == (
        DECLARATION
        + '<Response><Say voice="Polly.Bianca" language="it-IT">Ciao</Say><Hangup/></Response>'
    )
    assert dial_twiml("+15551234567") == (
        DECLARATION + "<Response><Dial>+15551234567</Dial></Response>"
    )
    assert dial_twiml("+1555", caller_id="+1666") == (
        DECLARATION + '<Response><Dial callerId="+1666">+1555</Dial></Response>'
    )
    with pytest.raises(ValueError):
        dial_twiml(" ")


xml_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff"),
).filter(lambda s: all(c in "\t\n\r" or ord(c) >= 0x20 for c in s))


@given(greeting=xml_text, value=xml_text)
def test_any_valid_text_round_trips_through_a_parser(greeting: str, value: str) -> None:
    options = ConversationRelayOptions(
        url="wss://h/ws", welcome_greeting=greeting, parameters={"p": value}
    )
    relay = relay_element(connect_twiml(options, action_url=None))
    assert relay.attrib["welcomeGreeting"] == greeting
    parameter = relay.find("Parameter")
    assert parameter is not None and parameter.get("value") == value
    say = ET.fromstring(say_hangup_twiml(greeting).removeprefix(DECLARATION)).find("Say")
    assert say is not None and (say.text or "") == greeting.replace("\r\n", "\n").replace(
        "\r", "\n"
    )


def test_stream_twiml_connects_a_bidirectional_media_stream() -> None:
    from tac_actors.protocol.twiml import stream_twiml

    xml = stream_twiml("wss://h/media-stream", parameters={"From": "+1 & <2>"},
                       action_url="https://h/media-stream-callback")
    assert xml.endswith('<Response><Connect action="https://h/media-stream-callback">'
                        '<Stream url="wss://h/media-stream">'
                        '<Parameter name="From" value="+1 &amp; &lt;2&gt;"/>'
                        '</Stream></Connect></Response>')
    with pytest.raises(ValueError):
        stream_twiml(" ")
