"""Every client against the emulator, over real loopback sockets."""

from __future__ import annotations

import httpx
import pytest

from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.services import (
    BadResponse,
    NotFound,
    RetryPolicy,
    ServiceError,
    ServiceUnavailable,
    TwilioServices,
)
from tac_actors.services.orchestrator import ActionRef, ParticipantAddress

STORE = "mem_store_example"
ADA = "mem_profile_00000000000000000000000ada"
CUSTOMER = {"type": "CUSTOMER", "addresses": [{"channel": "SMS", "address": "+15551230001"}]}
AGENT = {"type": "AI_AGENT", "addresses": [{"channel": "SMS", "address": "+15550000000"}]}


async def test_configuration_names_the_memory_store(services: TwilioServices) -> None:
    configuration = await services.orchestrator.get_configuration()
    assert configuration.id == "conv_configuration_example"
    assert configuration.memory_store_id == STORE


async def test_conversations_create_reuse_update_and_page(
    services: TwilioServices, emu: Emulator
) -> None:
    orchestrator = services.orchestrator
    conversation = await orchestrator.create_conversation(participants=[CUSTOMER, AGENT])
    assert conversation.status == "ACTIVE"
    assert await orchestrator.create_or_reuse_conversation(participants=[CUSTOMER]) == (
        conversation.id,
        True,
    )
    for n in range(2):
        await orchestrator.create_conversation(name=f"extra {n}")
    first = await orchestrator.list_conversations(status=["ACTIVE"], page_size=2)
    assert len(first.items) == 2 and first.next_token
    second = await orchestrator.list_conversations(
        status=["ACTIVE"], page_size=2, page_token=first.next_token
    )
    assert len(second.items) == 1 and second.next_token is None
    assert second.meta.previous_token and second.meta.key == "conversations"
    closed = await orchestrator.update_conversation(conversation.id, status="CLOSED")
    assert closed.status == "CLOSED"
    page = await orchestrator.list_conversations(status=["CLOSED"])
    assert [c.id for c in page.items] == [conversation.id]
    await orchestrator.clear_status_callbacks(conversation.id)
    assert emu.requests(method="PATCH")[-1].status == 200


async def test_participants_and_the_customer_profile(services: TwilioServices) -> None:
    orchestrator = services.orchestrator
    conversation = await orchestrator.create_conversation(participants=[CUSTOMER])
    (customer,) = (await orchestrator.list_participants(conversation.id)).items
    assert customer.type == "CUSTOMER" and customer.profile_id == ADA
    address = ParticipantAddress(channel="SMS", address="+15550000000")
    agent = await orchestrator.create_participant(
        conversation.id, type="UNKNOWN", addresses=[address]
    )
    promoted = await orchestrator.update_participant(
        conversation.id, agent.id, type="AI_AGENT", addresses=[address], name="Agent"
    )
    assert (promoted.type, promoted.name, promoted.addresses) == ("AI_AGENT", "Agent", (address,))


async def test_send_message_is_recorded_and_joins_the_history(
    services: TwilioServices, emu: Emulator
) -> None:
    orchestrator = services.orchestrator
    conversation = await orchestrator.create_conversation(participants=[CUSTOMER, AGENT])
    participants = {
        p.type: p for p in (await orchestrator.list_participants(conversation.id)).items
    }
    result = await orchestrator.send_message(
        conversation.id,
        from_=ActionRef(channel="SMS", participant_id=participants["AI_AGENT"].id),
        to=[ActionRef(channel="SMS", participant_id=participants["CUSTOMER"].id)],
        text="Hello Ada",
        channel_settings={"channelId": "CH1"},
    )
    assert result.type == "SEND_MESSAGE" and emu.requests(method="POST")[-1].status == 202
    (sent,) = emu.sent_messages()
    assert sent["text"] == "Hello Ada" and sent["conversationId"] == conversation.id
    assert sent["channelSettings"] == {"channelId": "CH1"}
    history = await orchestrator.list_all_communications(conversation.id, page_size=1)
    assert [(c.author.address, c.content.text, c.channel_id) for c in history] == [
        ("+15550000000", "Hello Ada", "CH1")
    ]
    await services.messaging.send(
        conversation.id,
        channel="SMS",
        text="by address",
        from_address="+15550000000",
        to_address="+15551230001",
    )
    assert [m["text"] for m in emu.sent_messages()] == ["Hello Ada", "by address"]


async def test_profile_lookup_by_phone_and_by_email(services: TwilioServices) -> None:
    memory = services.memory
    by_phone = await memory.lookup_profile(STORE, id_type="phone", value="+1 (555) 123-0001")
    assert by_phone.profiles == (ADA,) and by_phone.normalized_value == "+15551230001"
    by_email = await memory.lookup_profile(STORE, id_type="email", value="Ada@Example.com")
    assert by_email.profiles == (ADA,)
    nobody = await memory.lookup_profile(STORE, id_type="phone", value="+15559999999")
    assert nobody.profiles == ()


async def test_profile_traits_and_recall(services: TwilioServices) -> None:
    memory = services.memory
    profile = await memory.get_profile(STORE, ADA, trait_groups=["Contact"])
    assert profile.traits["Contact"]["firstName"] == "Ada"
    assert (await memory.get_profile(STORE, ADA, trait_groups=["Other"])).traits == {}
    recall = await memory.recall(STORE, ADA, query="keyboard order", observations_limit=2)
    assert len(recall.observations) == 2
    assert "keyboard" in recall.observations[0].content
    assert recall.summaries[0].content.startswith("Ada asked")
    assert recall.query_time_ms is not None


async def test_missing_profile_is_not_found_with_request_id(services: TwilioServices) -> None:
    with pytest.raises(NotFound) as caught:
        await services.memory.get_profile(STORE, "mem_profile_nobody")
    error = caught.value
    assert error.status == 404 and error.request_id and error.request_id.startswith("RQ")
    assert error.service == "memory" and error.url_path.endswith("/mem_profile_nobody")


async def test_memory_writes_are_recorded(services: TwilioServices, emu: Emulator) -> None:
    memory = services.memory
    await memory.create_observation(STORE, ADA, content="Likes jazz", conversation_ids=["c1"])
    await memory.create_summary(STORE, ADA, content="Talked about jazz", conversation_id="c1")
    assert [o["content"] for o in emu.created_observations()] == ["Likes jazz"]
    assert [s["conversationId"] for s in emu.created_summaries()] == ["c1"]
    recall = await memory.recall(STORE, ADA, query="jazz")
    assert recall.observations[0].content == "Likes jazz"
    new_id = await memory.create_profile(STORE, traits={"Contact": {"phone": "+15557770000"}})
    assert new_id != ADA
    assert (
        await memory.create_profile(STORE, traits={"Contact": {"email": "ada@example.com"}}) == ADA
    )


async def test_knowledge_search_ranks_with_bm25(services: TwilioServices) -> None:
    knowledge = services.knowledge
    base = await knowledge.get_knowledge_base("know_base_example")
    assert base.status == "ACTIVE"
    chunks = await knowledge.search("know_base_example", "How long does shipping take?", top=3)
    assert chunks[0].knowledge_id == "know_knowledge_shipping"
    scores = [c.score for c in chunks]
    assert all(s is not None and 0 < s < 1 for s in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    only = await knowledge.search(
        "know_base_example", "gift card receipt", knowledge_ids=["know_knowledge_giftcards"]
    )
    assert [c.knowledge_id for c in only] == ["know_knowledge_giftcards"]
    assert await knowledge.search("know_base_example", "zeppelin") == ()


async def test_studio_execution_and_plain_sms(services: TwilioServices, emu: Emulator) -> None:
    execution = await services.studio.create_execution(
        "FW123",
        to="+15551230001",
        from_="+15550000000",
        parameters={"HandoffData": {"reason": "asked for a human"}},
    )
    assert execution.sid.startswith("FN") and execution.flow_sid == "FW123"
    (recorded,) = emu.studio_executions()
    assert recorded["parameters"] == {"HandoffData": {"reason": "asked for a human"}}
    sent = await services.messaging.send_sms(to="+15551230001", from_="+15550000000", body="hi")
    assert sent.sid.startswith("SM") and sent.from_ == "+15550000000"
    assert emu.sent_messages()[-1]["via"] == "messages"


async def test_faults_set_over_http_reach_the_clients(
    services: TwilioServices, emu: Emulator
) -> None:
    async with httpx.AsyncClient(base_url=emu.url) as client:
        answer = await client.post("/_emulator/faults", json={"down": ["memory"]})
        assert answer.json()["down"] == ["memory"]
        with pytest.raises(ServiceUnavailable) as caught:
            await services.memory.get_profile(STORE, ADA)
        assert caught.value.status == 503
        await client.post("/_emulator/faults", json={"reset": True, "html": ["knowledge"]})
        await services.memory.get_profile(STORE, ADA)
        with pytest.raises(BadResponse, match="text/html"):
            await services.knowledge.search("know_base_example", "hours")
        messages = (await client.get("/_emulator/messages")).json()
        assert messages == {"messages": []}


async def test_wrong_credentials_are_refused_and_not_retried() -> None:
    async with Emulator.running(seed=EXAMPLE_SEED, credentials={"SKgood": "right"}) as emu:
        bad = emu.tac_config(api_key="SKgood", api_secret="wrong")
        async with TwilioServices.open(bad, retry=RetryPolicy(max_attempts=3)) as services:
            with pytest.raises(ServiceError) as caught:
                await services.orchestrator.get_configuration()
        assert caught.value.status == 401 and caught.value.code == 20003
        assert len(emu.requests()) == 1
        async with TwilioServices.open(emu.tac_config()) as services:
            assert (await services.orchestrator.get_configuration()).memory_store_id == STORE
