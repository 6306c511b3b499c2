"""The messaging channel's edges: ids that cannot be an actor key or a URL path segment
get a 400, never a 500 or a request to another path (review D13); bad input is logged
once, escaped (D11, D12); only a shutdown refuses a new conversation (C16)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio

from tac_actors.actors import NotAccepting
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.webhooks import parse_webhook
from tac_actors.services.errors import ServiceUnavailable
from tac_actors.services.orchestrator import OrchestratorClient
from tac_actors.testing import SimulatedTexter, open_texter
from tac_actors.testing.texter import ChannelDelivery, WebhookResult

from .conftest import AUTH_TOKEN, in_process, make_tac, served

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


async def test_bad_webhooks_are_logged_once_and_escaped(
        autojump_clock: Any, caplog: pytest.LogCaptureFixture, emu: Emulator) -> None:
    caplog.set_level(logging.WARNING, logger="tac_actors.messaging")
    tac = make_tac(emu, services_base_url="http://emulator")
    async with in_process(emu, tac) as runtime:
        assert runtime.messaging is not None
        forged = json.dumps({"eventType": "X\n2026-01-01 CRITICAL forged", "data": {}})
        for _ in range(50):
            answer = await runtime.messaging.receive_webhook(forged.encode())
            assert answer.status == 400
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]


async def test_only_a_shutdown_refuses_a_conversation(autojump_clock: Any,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      emu: Emulator) -> None:
    tac = make_tac(emu, services_base_url="http://emulator")
    async with in_process(emu, tac) as runtime:
        assert runtime.messaging is not None
        texter = SimulatedTexter(emu, runtime.messaging)
        # during the start-up reconcile pass a new conversation's first text waits in its
        # backlog (200) and the actor is started later; after it, spawning is immediate
        await runtime.messaging.reconciler.started_up.wait()

        def shutting_down(*args: Any, **kwargs: Any) -> Any:
            raise NotAccepting("the server is shutting down")

        monkeypatch.setattr(runtime.supervisor, "spawn", shutting_down)
        assert (await texter.send("hello")).status == 503  # retried after the restart

        def bug(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in spawn")

        monkeypatch.setattr(runtime.supervisor, "spawn", bug)
        with pytest.raises(RuntimeError, match="a bug"):  # a 500, not endless 503s
            await texter.send("hello again")


class _Dropped:
    """A delivery that loses every webhook (the texts are in the Orchestrator's log)."""

    async def post(self, body: bytes, headers: Any) -> WebhookResult:
        await trio.lowlevel.checkpoint()
        return WebhookResult(0, body="dropped")


async def test_texts_owed_from_before_a_failed_start_up_pass_are_answered_first(
        autojump_clock: Any, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up pass could not read the Orchestrator (down): a conversation's first
    text here must not reach an actor before its log is read, or what it owes from
    before (texts the last process accepted and never answered) would be answered
    after it, out of order."""
    tac = make_tac(emu, services_base_url="http://emulator")

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        return f"re: {message}"

    texter = SimulatedTexter(emu, _Dropped())
    for text in ("t0", "t1"):
        await texter.send(text)  # owed: the webhooks were lost
    async def not_listed(*args: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        raise ServiceUnavailable("conversations down", status=503)

    monkeypatch.setattr(OrchestratorClient, "list_conversations", not_listed)
    async with in_process(emu, tac) as runtime:
        assert runtime.messaging is not None
        await runtime.messaging.reconciler.started_up.wait()
        assert not runtime.messaging.reconciler.listed_at_start_up
        monkeypatch.undo()
        texter.delivery = ChannelDelivery(runtime.messaging)
        assert (await texter.send("t2")).status == 200
        with trio.fail_after(30):
            await emu.wait_until(lambda: len(texter.replies()) >= 3)
        assert [r.text for r in texter.replies()] == ["re: t0", "re: t1", "re: t2"]
