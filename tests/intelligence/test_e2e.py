"""Conversation Intelligence end to end over loopback sockets: the emulator closes a
conversation, runs its operators and POSTs the signed results to our server, which
writes the summary to Memory and calls ``on_intelligence_result``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from tac_actors.config import IntelligenceConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.emulator.intelligence import (
    CONFIGURATION_ID,
    SENTIMENT_OPERATOR_SID,
    SUMMARY_OPERATOR_SID,
    operator_results,
)
from tac_actors.protocol.intelligence import OperatorResultEvent
from tac_actors.protocol.signature import body_sha256, compute_signature
from tac_actors.testing import open_texter
from tests.messaging.conftest import AUTH_TOKEN, make_tac, served

INTELLIGENCE = IntelligenceConfig(configuration_id=CONFIGURATION_ID,
                                  summary_operator_sid=SUMMARY_OPERATOR_SID)
ADA_PROFILE = "mem_profile_00000000000000000000000ada"


async def _post(url: str, payload: Any, token: str | None = AUTH_TOKEN
                ) -> httpx.Response:
    body = json.dumps(payload).encode()
    signed = f"{url}/ci-webhook?bodySHA256={body_sha256(body)}"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Twilio-Signature"] = compute_signature(token, signed)
    async with httpx.AsyncClient() as client:
        return await client.post(signed, content=body, headers=headers)


async def test_closing_a_conversation_delivers_a_summary_to_memory_and_the_app() -> None:
    seen: list[tuple[OperatorResultEvent, Any]] = []
    arrived = trio.Event()
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu, intelligence=INTELLIGENCE)
            tac.on_message_ready(lambda m, s, mem: "Refunds take 5 days. Thanks!")

            @tac.on_intelligence_result
            async def results(event: OperatorResultEvent, session: Any) -> None:
                seen.append((event, session))
                arrived.set()

            async with served(tac) as url, open_texter(url, emu,
                                                       auth_token=AUTH_TOKEN) as texter:
                emu.intelligence.set_target(url + "/ci-webhook", AUTH_TOKEN)
                await texter.send("Great, thank you: how long does shipping take?")
                await texter.read_reply()
                await texter.close()
                await arrived.wait()
                await emu.wait_until(lambda: emu.intelligence.events()[0]["delivery"]
                                     != "pending")
                (record,) = emu.intelligence.events()
                summaries = emu.created_summaries()
    event, session = seen[0]
    assert event.conversation_id == texter.conversation_id and session is None
    assert {r.operator_id for r in event.results} == {SUMMARY_OPERATOR_SID,
                                                      SENTIMENT_OPERATOR_SID}
    sentiment = next(r for r in event.results if r.operator_id == SENTIMENT_OPERATOR_SID)
    assert sentiment.content == "positive"
    (summary,) = summaries
    assert summary["profileId"] == ADA_PROFILE
    assert summary["conversationId"] == texter.conversation_id
    assert summary["source"] == "conversation-intelligence"
    assert "how long does shipping take?" in summary["content"]
    assert record["delivery"] == "HTTP 200"
    assert json.loads(record["answer"])["created_count"] == 1


async def test_real_time_results_reach_the_live_session_and_retries_write_once() -> None:
    sessions: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu, intelligence=INTELLIGENCE)
            tac.on_message_ready(lambda m, s, mem: sessions.append(s) or "ok")
            tac.on_intelligence_result(lambda event, session: sessions.append(session))
            async with served(tac) as url, open_texter(url, emu,
                                                       auth_token=AUTH_TOKEN) as texter:
                await texter.send("hello")
                await texter.read_reply()
                assert texter.conversation_id is not None
                payload = operator_results(emu.db, texter.conversation_id,
                                           emu.account_sid, trigger="utterance")
                first = await _post(url, payload)
                again = await _post(url, payload)  # Twilio retrying the webhook
                other = await _post(url, {**payload, "intelligenceConfiguration": {
                    "id": "GA_someone_else", "version": 1}})
                forged = await _post(url, payload, token="wrong")
                bad = await _post(url, {"accountId": "AC1"})
                summaries = emu.created_summaries()
    live = sessions[0]
    assert sessions[1] is live and sessions[2] is live  # the hook got the live session
    assert len(sessions) == 3  # not called for another configuration
    assert [r.operator_id for r in live.intelligence][:2] == [SUMMARY_OPERATOR_SID,
                                                              SENTIMENT_OPERATOR_SID]
    assert first.status_code == 200 and first.json()["created_count"] == 1
    assert again.json()["skipped"] and again.json()["created_count"] == 0
    assert other.json()["skip_reason"].startswith("Configuration ID mismatch")
    assert (forged.status_code, bad.status_code) == (403, 400)
    assert len(summaries) == 1


async def test_a_failing_hook_is_reported_to_on_error_and_the_webhook_answered() -> None:
    errors: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu, intelligence=INTELLIGENCE)
            tac.on_message_ready(lambda m, s, mem: "ok")
            tac.on_error(lambda exc, context: errors.append((exc, context)))

            @tac.on_intelligence_result
            def broken(event: Any, session: Any) -> None:
                raise ValueError("app bug")

            async with served(tac) as url, open_texter(url, emu,
                                                       auth_token=AUTH_TOKEN) as texter:
                await texter.send("hello")
                await texter.read_reply()
                assert texter.conversation_id is not None
                answer = await _post(url, operator_results(
                    emu.db, texter.conversation_id, emu.account_sid))
    assert answer.status_code == 200
    ((exc, context),) = errors
    assert isinstance(exc, ValueError) and context.phase == "hook"
    assert context.detail == "on_intelligence_result"


async def test_tac_actors_text_close_triggers_the_emulators_intelligence() -> None:
    """What ``tac-actors text --close`` does under ``tac-actors dev``: the remote texter
    closes the conversation in the emulator, which runs its operators and POSTs them."""
    from tac_actors.testing.remote_texter import DevInfo, RemoteTexter

    seen: list[OperatorResultEvent] = []
    arrived = trio.Event()
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu, intelligence=INTELLIGENCE, auth_token=None)
            tac.on_message_ready(lambda m, s, mem: "hi")

            @tac.on_intelligence_result
            async def results(event: OperatorResultEvent, session: Any) -> None:
                seen.append(event)
                arrived.set()

            async with served(tac) as url, httpx.AsyncClient(timeout=10) as client:
                emu.intelligence.set_target(url + "/ci-webhook")
                info = DevInfo(emu.url, "conv_configuration_example", "+15550000000")
                texter = RemoteTexter(client, url, info, address="+15551230001")
                await texter.send("hello")
                await texter.close()
                await arrived.wait()
    assert seen[0].conversation_id == texter.conversation_id
