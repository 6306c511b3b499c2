"""The wire converters: tolerant of unknown fields, strict on types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import pytest

from tac_actors.services import BadResponse
from tac_actors.services.http import Reply
from tac_actors.services.orchestrator import ActionRef, Communication
from tac_actors.services.wire import camel, decode, decode_list, snake, to_camel, to_wire


@attrs.frozen(kw_only=True)
class Sample:
    id: str
    page_size: int = 0
    score: float | None = None
    flag: bool = False
    tags: tuple[str, ...] = ()
    traits: Mapping[str, Any] = attrs.field(factory=dict)


def reply(body: Any) -> Reply:
    return Reply(
        status=200,
        body=body,
        headers=httpx.Headers(),
        request_id="RQ1",
        service="memory",
        method="GET",
        url_path="/v1/x",
    )


def test_camel_names() -> None:
    assert to_camel("conversation_ids") == "conversationIds"
    assert to_camel("from_") == "from"
    assert to_camel("id") == "id"


def test_unknown_fields_are_tolerated_and_null_means_absent() -> None:
    value = camel.structure(
        {"id": "a", "pageSize": 3, "score": 2, "tags": None, "newField": {"x": 1}}, Sample
    )
    assert value == Sample(id="a", page_size=3, score=2.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"id": 1},
        {"id": "a", "pageSize": "3"},
        {"id": "a", "pageSize": True},
        {"id": "a", "flag": "false"},
        {"id": "a", "tags": "abc"},
        {"id": "a", "score": "0.5"},
        {"id": "a", "traits": []},
        {"id": None},
        {},
        ["not", "an", "object"],
    ],
)
def test_types_are_strict(bad: Any) -> None:
    with pytest.raises(BadResponse) as caught:
        decode(reply(bad), Sample)
    assert caught.value.request_id == "RQ1" and caught.value.status == 200


def test_to_wire_renames_and_drops_none() -> None:
    assert to_wire(ActionRef(channel="SMS", participant_id="p1")) == {
        "channel": "SMS",
        "participantId": "p1",
    }


def test_snake_dialect_keeps_names() -> None:
    @attrs.frozen(kw_only=True)
    class Classic:
        account_sid: str
        from_: str | None = None

    assert snake.structure({"account_sid": "AC1", "from": "+1"}, Classic) == Classic(
        account_sid="AC1", from_="+1"
    )


def test_decode_list_strict_or_lenient() -> None:
    good = {"id": "c1", "author": {"address": "+1", "channel": "SMS"}, "content": {"text": "hi"}}
    body = {"communications": [good, {"id": "c2"}]}
    with pytest.raises(BadResponse, match=r"communications\[1\]"):
        decode_list(reply(body), "communications", Communication)
    kept = decode_list(reply(body), "communications", Communication, lenient=True)
    assert [c.id for c in kept] == ["c1"]
    with pytest.raises(BadResponse, match="missing field"):
        decode_list(reply({}), "communications", Communication)
    assert decode_list(reply({}), "communications", Communication, required=False) == ()
    with pytest.raises(BadResponse, match="should be a list"):
        decode_list(reply({"communications": {}}), "communications", Communication)
