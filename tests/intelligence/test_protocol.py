"""The operator-results webhook parser and its pure helpers (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.intelligence import (
    parse_operator_results,
    result_content,
    summary_texts,
)


def event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accountId": "AC1", "conversationId": "conv_1", "memoryStoreId": "mem_store_1",
        "intelligenceConfiguration": {"id": "GA1", "version": 2},
        "operatorResults": [{
            "id": "op_1", "operator": {"id": "LY2", "friendlyName": "Summary"},
            "outputFormat": "json", "result": {"payload": '{"summary": "All good."}'},
            "dateCreated": "2026-01-01T00:00:00Z",
            "executionDetails": {
                "trigger": {"on": "conversation_closed"}, "channels": ["SMS"],
                "participants": [{"id": "p1", "type": "CUSTOMER", "profileId": "mem_p"},
                                 {"id": "p2", "type": "AI_AGENT"}]}}],
    }
    body.update(changes)
    return body


def test_parses_the_reference_shape() -> None:
    parsed = parse_operator_results(json.dumps(event()).encode())
    assert (parsed.conversation_id, parsed.configuration_id, parsed.configuration_version,
            parsed.memory_store_id) == ("conv_1", "GA1", 2, "mem_store_1")
    (result,) = parsed.results
    assert result.output_format == "JSON" and result.operator_id == "LY2"
    assert result.customer_profile_ids == ("mem_p",)
    assert result.is_post_conversation and result.channels == ("SMS",)
    assert summary_texts(result.content or "") == ["All good."]


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"accountId": "AC1"}',
    json.dumps(event(conversationId=5)).encode(),
    json.dumps(event(operatorResults={})).encode(),
    json.dumps(event(intelligenceConfiguration={"version": 1})).encode(),
    json.dumps(event(operatorResults=[{"id": "x"}])).encode(),
    json.dumps(event(operatorResults=["x"])).encode(),
    json.dumps(event(operatorResults=[{}] * 101)).encode(),
])
def test_bad_bodies_raise_the_protocol_error_only(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_operator_results(body)


@pytest.mark.parametrize(("fmt", "value", "text"), [
    ("JSON", {"payload": "p"}, "p"),
    ("JSON", {"com.twilio.cai.intelligence.JSONResult": {"payload": "q"}}, "q"),
    ("CLASSIFICATION", {"label": "positive"}, "positive"),
    ("EXTRACTION", {"entities": [{"label": "PERSON", "text": "Ada"}]},
     '[{"label": "PERSON", "text": "Ada"}]'),
    ("GENERATION", {"result": "text"}, "text"),
    ("JSON", None, None),
])
def test_content_by_output_format(fmt: str, value: Any, text: str | None) -> None:
    body = event()
    body["operatorResults"][0].update(outputFormat=fmt, result=value)
    assert result_content(parse_operator_results(body).results[0]) == text


def test_summary_texts_shapes() -> None:
    assert summary_texts('{"summaries": [{"summary": "a"}, {"summary": "b"}]}') == ["a", "b"]
    assert summary_texts("plain words") == ["plain words"]
    assert summary_texts("") == []
