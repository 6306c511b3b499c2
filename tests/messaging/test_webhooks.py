"""The sans-IO webhook parser: events out, or ProtocolError, never anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.webhooks import (
    CommunicationAuthor,
    CommunicationCreated,
    ConversationUpdated,
    IgnoredEvent,
    parse_webhook,
)


def body(event_type: str, data: Any) -> bytes:
    return json.dumps({"eventType": event_type, "data": data}).encode()


COMMUNICATION = {
    "id": "conv_communication_1", "conversationId": "conv_conversation_1",
    "accountId": "AC1", "author": {"address": "+15551230001", "channel": "SMS",
                                   "participantId": "conv_participant_1"},
    "content": {"type": "TEXT", "text": "Hello"},
    "recipients": [{"address": "+15550000000", "channel": "SMS", "participantId": None}],
    "channelId": "SM1", "createdAt": "2026-01-01T00:00:00Z", "somethingNew": {"x": 1},
}


def test_communication_created() -> None:
    event = parse_webhook(body("COMMUNICATION_CREATED", COMMUNICATION))
    assert event == CommunicationCreated(
        id="conv_communication_1", conversation_id="conv_conversation_1",
        author=CommunicationAuthor(address="+15551230001", channel="SMS",
                                   participant_id="conv_participant_1"),
        text="Hello", content_type="TEXT",
        recipients=(CommunicationAuthor(address="+15550000000", channel="SMS"),),
        channel_id="SM1", account_id="AC1", created_at="2026-01-01T00:00:00Z")


@pytest.mark.parametrize("status", ["ACTIVE", "INACTIVE", "CLOSED"])
def test_conversation_updated(status: str) -> None:
    event = parse_webhook(body("CONVERSATION_UPDATED", {
        "id": "conv_1", "status": status, "configurationId": "cfg", "name": None}))
    assert event == ConversationUpdated(conversation_id="conv_1", status=status,
                                        configuration_id="cfg")


@pytest.mark.parametrize("kind", ["CONVERSATION_CREATED", "PARTICIPANT_ADDED",
                                  "PARTICIPANT_UPDATED"])
def test_known_events_without_action_are_ignored(kind: str) -> None:
    assert parse_webhook(body(kind, {"id": "x"})) == IgnoredEvent(kind)


@pytest.mark.parametrize("raw", [
    b"", b"nope", b"\xff\xfe", b"null", b"[]", b'"text"', b"{}",
    b'{"eventType": 3, "data": {}}',
    b'{"eventType": "COMMUNICATION_CREATED"}',
    b'{"eventType": "COMMUNICATION_CREATED", "data": []}',
    body("UNHEARD_OF", {}),
    body("COMMUNICATION_CREATED", {**COMMUNICATION, "id": 7}),
    body("COMMUNICATION_CREATED", {**COMMUNICATION, "author": "me"}),
    body("COMMUNICATION_CREATED", {**COMMUNICATION, "recipients": "all"}),
    body("COMMUNICATION_CREATED", {**COMMUNICATION, "author": {"address": "a", "channel": ""}}),
    body("COMMUNICATION_CREATED", {k: v for k, v in COMMUNICATION.items() if k != "content"}),
    body("CONVERSATION_UPDATED", {"id": "c", "status": "OPEN"}),
    body("CONVERSATION_UPDATED", {"status": "CLOSED"}),
    b"[" * 100_000,
])
def test_bad_bodies_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_webhook(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


def _mutations() -> st.SearchStrategy[bytes]:
    keys = st.sampled_from(sorted(COMMUNICATION))
    mutated = st.builds(lambda k, v: {**COMMUNICATION, k: v}, keys, json_values)
    events = st.sampled_from(["COMMUNICATION_CREATED", "CONVERSATION_UPDATED",
                              "PARTICIPANT_ADDED", "X"])
    return st.one_of(
        st.binary(max_size=200),
        st.builds(lambda v: json.dumps(v).encode(), json_values),
        st.builds(body, events, json_values | mutated),
    )


@settings(max_examples=400, deadline=None)
@given(_mutations())
def test_fuzz_parses_or_raises_protocol_error(raw: bytes) -> None:
    try:
        event = parse_webhook(raw)
    except ProtocolError:
        return
    assert isinstance(event, CommunicationCreated | ConversationUpdated | IgnoredEvent)
