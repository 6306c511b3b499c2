"""TACMemoryResponse parsing helpers."""

from __future__ import annotations

import logging

import pytest

from tac_actors.memory import TACMemoryResponse, role_for_participant_type
from tac_actors.services.orchestrator import (
    Communication,
    CommunicationAuthor,
    CommunicationContent,
)


def test_from_recall_payload_drops_only_malformed_items(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = {
        "observations": [
            {
                "id": "o1",
                "content": "Likes tea",
                "source": "ci",
                "createdAt": "t",
                "updatedAt": "t",
                "conversationIds": ["c1"],
                "future": 1,
            },
            {"id": "o2", "content": 42},
        ],
        "summaries": [{"id": "s1", "content": "Talked", "conversationId": "c1"}],
        "communications": [
            {
                "id": "m1",
                "author": {"id": "p1", "address": "+1", "channel": "SMS", "type": "CUSTOMER"},
                "content": {"text": "hi"},
                "recipients": [],
            },
            {"id": "m2", "author": {"type": "AI_AGENT"}, "content": {"text": "hello"}},
        ],
        "meta": {"queryTime": 31},
    }
    with caplog.at_level(logging.WARNING):
        result = TACMemoryResponse.from_recall(payload)
    assert [o.id for o in result.observations] == ["o1"]
    assert result.observations[0].conversation_ids == ("c1",)
    assert result.summaries[0].conversation_id == "c1"
    assert [(c.role, c.text) for c in result.communications] == [
        ("customer", "hi"),
        ("assistant", "hello"),
    ]
    assert result.source == "memory" and result.query_time_ms == 31
    assert "o2" not in caplog.text and "observations[1]" in caplog.text


def test_from_recall_rejects_a_non_list() -> None:
    with pytest.raises(ValueError):
        TACMemoryResponse.from_recall({"observations": {"id": "x"}})


def comm(cid: str, address: str, participant: str | None) -> Communication:
    return Communication(
        id=cid,
        author=CommunicationAuthor(address=address, channel="SMS", participant_id=participant),
        content=CommunicationContent(text=f"text {cid}"),
    )


def test_from_communications_labels_by_type_then_address() -> None:
    items = [
        comm("1", "+1", "p-cust"),
        comm("2", "+2", "p-bot"),
        comm("3", "+3", "p-human"),
        comm("4", "+2", None),
        comm("5", "+9", None),
    ]
    result = TACMemoryResponse.from_communications(
        items,
        participant_types={"p-cust": "CUSTOMER", "p-bot": "UNKNOWN", "p-human": "HUMAN_AGENT"},
        customer_addresses=["+1"],
        assistant_addresses=["+2"],
    )
    assert [c.role for c in result.communications] == [
        "customer",
        "assistant",
        "human_agent",
        "assistant",
        "unknown",
    ]
    assert result.source == "orchestrator" and not result.has_memory_features
    assert "- customer: text 1" in result.build_memory_prompts()


def test_roles_and_empty() -> None:
    assert role_for_participant_type("agent") == "assistant"
    assert role_for_participant_type(None) == "unknown"
    assert TACMemoryResponse.empty() is TACMemoryResponse.empty()
    assert TACMemoryResponse.empty().build_memory_prompts() == ""
