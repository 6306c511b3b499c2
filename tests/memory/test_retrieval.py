"""OrchestratorMemory: tiers, fallbacks, warnings once, modes, budget."""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs
import httpx
import pytest
import trio
import trio.testing

from tac_actors.config import MemoryConfig
from tac_actors.emulator import Emulator
from tac_actors.memory import (
    MemoryMode,
    OrchestratorConfigError,
    OrchestratorMemory,
    fetch_orchestrator_config,
    lookup_identifier,
)
from tac_actors.services import RetryPolicy, TwilioServices
from tac_actors.session import AuthorInfo, Channel, ConversationSession

CONVERSATION = "conv_conversation_00000000000000000000000777"
STORE = "mem_store_example"
ADA = "mem_profile_00000000000000000000000ada"
NO_RETRY = RetryPolicy(max_attempts=1)


def provider(
    services: TwilioServices, emu: Emulator, *, store: str | None = STORE, **kwargs: object
) -> OrchestratorMemory:
    return OrchestratorMemory(services, emu.tac_config(), store, **kwargs)  # type: ignore[arg-type]


async def test_memory_tier_sets_the_profile_and_recalls(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    memory = provider(services, emu)
    current = make_session()
    result = await memory.retrieve(current, "did my keyboard ship?")
    assert result.source == "memory" and result.complete
    assert "keyboard" in result.observations[0].content
    assert len(result.summaries) == 1
    assert current.profile_id == ADA
    assert current.profile is not None and current.profile.trait("Contact", "firstName") == "Ada"
    recall = [r for r in emu.requests(path_contains="/Recall")]
    assert len(recall) == 1


async def test_lookup_by_email_for_an_author_address(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    current = make_session(caller=None, author_info=AuthorInfo("ada@example.com"))
    result = await provider(services, emu).retrieve(current, None)
    assert result.source == "memory" and current.profile_id == ADA
    assert not emu.requests(path_contains="/Communications")


def test_identifiers_by_channel() -> None:
    assert lookup_identifier("whatsapp:+1 555 123 0001") == ("phone", "+15551230001")
    assert lookup_identifier("rcs:+15551230001") == ("phone", "+15551230001")
    assert lookup_identifier("Ada@Example.com") == ("email", "Ada@Example.com")
    assert lookup_identifier("chat-user-42") is None
    assert lookup_identifier(None) is None


async def test_chat_ids_are_not_looked_up(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    current = make_session(caller="chat-user-42", channel=Channel.CHAT)
    result = await provider(services, emu).retrieve(current, "hi")
    assert result.source == "orchestrator"
    assert not emu.requests(path_contains="/Lookup")


async def test_memory_down_falls_back_to_labelled_communications_warning_once(
    make_session: Callable[..., ConversationSession],
    services: TwilioServices,
    emu: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu.faults.down.add("memory")
    memory = provider(services, emu)
    current = make_session()
    for _ in range(2):
        result = await memory.retrieve(current, "where is my order")
        assert result.source == "orchestrator" and not result.has_memory_features
        assert [(c.role, c.text) for c in result.communications] == [
            ("customer", "Hi, where is my order?"),
            ("assistant", "It ships tomorrow."),
        ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "falling back" in warnings[0].getMessage()
    assert memory.statistics().orchestrator_answers == 2


async def test_roles_come_from_the_session_without_a_participants_call(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    current = make_session(
        caller="chat-user-42",
        author_info=AuthorInfo("+15551230001", "conv_participant_ada"),
        ai_agent_info=AuthorInfo("+15550000000", "conv_participant_bot"),
    )
    result = await provider(services, emu, store=None).retrieve(current, None)
    assert [c.role for c in result.communications] == ["customer", "assistant"]
    assert not emu.requests(path_contains="/Participants")
    assert not emu.requests(product="memory")


async def test_everything_down_is_empty_with_one_warning_per_kind(
    make_session: Callable[..., ConversationSession],
    emu: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu.faults.down.update({"memory", "conversations"})
    async with TwilioServices.open(emu.tac_config(), retry=NO_RETRY) as services:
        memory = provider(services, emu)
        for _ in range(3):
            result = await memory.retrieve(make_session(), "hello")
            assert result.is_empty and result.source == "none"
        other = await memory.retrieve(make_session(conversation_id="conv_other"), "hello")
        assert other.is_empty
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4  # memory + orchestrator, for each of two conversations
    assert sum("without memory" in w for w in warnings) == 2
    assert memory.statistics().empty_answers == 4


async def test_unknown_profile_id_falls_back(
    make_session: Callable[..., ConversationSession],
    services: TwilioServices,
    emu: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    current = make_session(profile_id="mem_profile_gone")
    result = await provider(services, emu).retrieve(current, "hi")
    assert result.source == "orchestrator"
    assert current.profile is None
    assert any("mem_profile_gone" in r.getMessage() for r in caplog.records)


async def test_no_store_goes_straight_to_the_orchestrator(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    result = await provider(services, emu, store=None).retrieve(make_session(), "hi")
    assert result.source == "orchestrator" and len(result.communications) == 2
    assert not emu.requests(product="memory")


async def test_mode_once_caches_per_conversation(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    memory = provider(services, emu, mode="once")
    first = await memory.retrieve(make_session(), "keyboard")
    seen = len(emu.requests())
    again = await memory.retrieve(make_session(), "something else")
    assert again is first and len(emu.requests()) == seen
    assert memory.statistics().cache_hits == 1
    memory.forget(CONVERSATION)
    await memory.retrieve(make_session(), "x")
    assert len(emu.requests()) > seen


async def test_mode_once_recalls_without_query_and_always_with_it(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    bodies: list[bytes] = []

    async def spy(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Recall"):
            bodies.append(request.content)
        async with httpx.AsyncClient() as client:
            forwarded = await client.send(
                httpx.Request(
                    request.method,
                    emu.url + request.url.raw_path.decode(),
                    headers=request.headers,
                    content=request.content,
                )
            )
            await forwarded.aread()
            return httpx.Response(
                forwarded.status_code, headers=forwarded.headers, content=forwarded.content
            )

    config = emu.tac_config(services_base_url="http://spy")
    async with TwilioServices.open(config, transport=httpx.MockTransport(spy)) as spied:
        await OrchestratorMemory(spied, config, STORE, mode="once").retrieve(make_session(), "q1")
        await OrchestratorMemory(spied, config, STORE, mode="always").retrieve(make_session(), "q2")
    assert b"query" not in bodies[0] and b"conversationId" not in bodies[0]
    assert b'"query":"q2"' in bodies[1].replace(b" ", b"")
    assert CONVERSATION.encode() in bodies[1]


async def test_mode_never_asks_nothing(
    make_session: Callable[..., ConversationSession], services: TwilioServices, emu: Emulator
) -> None:
    result = await provider(services, emu, mode=MemoryMode.NEVER).retrieve(make_session(), "x")
    assert result.is_empty and emu.requests() == []


# -- budget, under a fake clock through the in-process transport --------------------------


class SlowPaths(httpx.AsyncBaseTransport):
    """Delays the requests whose path ends with one of ``delays``' keys."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delays: dict[str, float]) -> None:
        self.inner = inner
        self.delays = delays

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for suffix, seconds in self.delays.items():
            if request.url.path.endswith(suffix):
                await trio.sleep(seconds)
        return await self.inner.handle_async_request(request)


async def test_slow_recall_respects_the_budget_and_keeps_the_profile(
    make_session: Callable[..., ConversationSession],
    offline: Emulator,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = offline.tac_config(services_base_url="http://emulator")
    config = attrs.evolve(base, memory=MemoryConfig(budget=1.5))
    transport = SlowPaths(offline.transport(), {"/Recall": 30.0})
    async with TwilioServices.open(config, transport=transport) as services:
        memory = OrchestratorMemory(services, config, STORE)
        current = make_session()
        for _ in range(2):
            start = trio.current_time()
            result = await memory.retrieve(current, "keyboard")
            assert trio.current_time() - start == pytest.approx(1.5)
            assert not result.complete and result.is_empty
        assert current.profile is not None and current.profile.id == ADA
    budget_warnings = [r for r in caplog.records if "budget" in r.getMessage()]
    assert len(budget_warnings) == 1
    assert memory.statistics().budget_expired == 2


async def test_profile_and_recall_run_concurrently(
    make_session: Callable[..., ConversationSession],
    offline: Emulator,
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = offline.tac_config(services_base_url="http://emulator")
    transport = SlowPaths(offline.transport(), {ADA: 1.0, "/Recall": 1.0})
    async with TwilioServices.open(config, transport=transport) as services:
        start = trio.current_time()
        result = await OrchestratorMemory(services, config, STORE).retrieve(
            make_session(profile_id=ADA), "hi"
        )
        assert trio.current_time() - start == pytest.approx(1.0)
        assert result.complete and result.source == "memory"


async def test_slow_memory_service_hits_the_budget_via_the_latency_fault(
    make_session: Callable[..., ConversationSession],
    offline: Emulator,
    autojump_clock: trio.testing.MockClock,
) -> None:
    offline.faults.latency["memory"] = 10.0
    config = offline.tac_config(services_base_url="http://emulator")
    async with TwilioServices.open(config, transport=offline.transport()) as services:
        start = trio.current_time()
        result = await OrchestratorMemory(services, config, STORE, mode="once").retrieve(
            make_session(), "x"
        )
        assert trio.current_time() - start == pytest.approx(config.memory.budget)
        assert not result.complete
        offline.faults.reset()
        full = await OrchestratorMemory(services, config, STORE, mode="once").retrieve(
            make_session(), "x"
        )
        assert full.complete and full.source == "memory"


# -- start-up ---------------------------------------------------------------------------


async def test_fetch_orchestrator_config(services: TwilioServices, emu: Emulator) -> None:
    assert await fetch_orchestrator_config(services, emu.tac_config()) == STORE
    with pytest.raises(OrchestratorConfigError, match="TWILIO_CONVERSATION_CONFIGURATION_ID"):
        await fetch_orchestrator_config(
            services, emu.tac_config(conversation_configuration_id="conv_configuration_nope")
        )
    with pytest.raises(OrchestratorConfigError, match="is not set"):
        await fetch_orchestrator_config(
            services, emu.tac_config(conversation_configuration_id=None)
        )
