"""Ids that cannot be an actor key or a URL path segment: 400 at the edge, never a 500 and
never a request to another path (review D13)."""

from __future__ import annotations

import json

import pytest
import trio

from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.webhooks import parse_webhook
from tac_actors.testing import open_texter

from .conftest import AUTH_TOKEN, make_tac, served

BAD_IDS = {
    "lone surrogate": "conv_\ud800",
    "parent path": "../../v1/Stores",
    "dot segment": "..",
    "control character": "conv\n1",
    "too long": "c" * 257,
    "empty after trim": " ",
}


def communication(**fields: object) -> bytes:
    data: dict[str, object] = {
        "id": "comm_1", "conversationId": "conv_x",
        "author": {"address": "+15551230001", "channel": "SMS", "participantId": "part_1"},
        "content": {"type": "TEXT", "text": "hi"}}
    data.update(fields)
    # json.dumps writes a lone surrogate as the escape "\ud800", as a hostile peer would
    return json.dumps({"eventType": "COMMUNICATION_CREATED", "data": data}).encode()


@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_the_parser_rejects_malformed_ids(bad: str) -> None:
    author = {"address": "+15551230001", "channel": "SMS", "participantId": bad}
    for body in (communication(conversationId=bad), communication(id=bad),
                 communication(author=author),
                 json.dumps({"eventType": "CONVERSATION_UPDATED",
                             "data": {"id": bad, "status": "CLOSED"}}).encode()):
        with pytest.raises(ProtocolError, match="malformed"):
            parse_webhook(body)


async def test_a_signed_webhook_with_a_bad_id_is_a_400_and_reaches_no_service() -> None:
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)
            async with served(tac) as url, open_texter(url, emu,
                                                       auth_token=AUTH_TOKEN) as texter:
                for name, bad in BAD_IDS.items():
                    result = await texter.post_raw(communication(conversationId=bad))
                    assert result.status == 400, name
                runtime = tac.runtime
                assert runtime is not None and len(runtime.supervisor) == 0
    assert emu.requests(path_contains="/Participants") == []
