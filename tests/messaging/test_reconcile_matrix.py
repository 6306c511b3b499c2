"""The rows of the reconciliation matrix the end-to-end tests do not reach: no customer,
an Orchestrator failure, a Memory failure (in-process, against the emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tac_actors.channels.messaging_participants import (
    Reconciled,
    Refused,
    reconcile_participants,
)
from tac_actors.config import MemoryConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.emulator.orchestrator import create_conversation
from tac_actors.services import RetryPolicy, TwilioServices

OURS = "+15550000000"
STORE = "mem_store_example"


@pytest.fixture
async def setup() -> AsyncIterator[tuple[Emulator, TwilioServices]]:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        config = emu.tac_config(services_base_url="http://emulator")
        async with TwilioServices.open(config, transport=emu.transport(),
                                       retry=RetryPolicy(max_attempts=1)) as services:
            yield emu, services


def _conversation(emu: Emulator, *participants: tuple[str | None, str]) -> str:
    conversation = create_conversation(
        emu.db, emu.account_sid, "conv_configuration_example",
        participants=[{"type": kind, "addresses": [{"channel": "SMS", "address": address}]}
                      for kind, address in participants])
    return str(conversation["id"])


async def _reconcile(services: TwilioServices, conversation: str) -> Reconciled | Refused:
    page = await services.orchestrator.list_participants(conversation)
    return await reconcile_participants(services, conversation, page.items, channel="SMS",
                                        agent_address=OURS, memory_store_id=STORE,
                                        memory=MemoryConfig())


async def test_no_customer_is_refused(setup: tuple[Emulator, TwilioServices]) -> None:
    emu, services = setup
    outcome = await _reconcile(services, _conversation(emu, ("AI_AGENT", OURS)))
    assert isinstance(outcome, Refused) and outcome.reason == "no_customer"


async def test_an_orchestrator_failure_is_refused_and_changes_nothing(
        setup: tuple[Emulator, TwilioServices]) -> None:
    emu, services = setup
    conversation = _conversation(emu, ("UNKNOWN", "+15557770000"))
    page = await services.orchestrator.list_participants(conversation)
    emu.faults.down.add("conversations")
    outcome = await reconcile_participants(services, conversation, page.items,
                                           channel="SMS", agent_address=OURS)
    assert isinstance(outcome, Refused) and outcome.reason == "failed"
    assert len(emu.db.all("participant", parent=conversation)) == 1


async def test_a_memory_failure_promotes_the_customer_without_a_profile(
        setup: tuple[Emulator, TwilioServices]) -> None:
    emu, services = setup
    conversation = _conversation(emu, ("UNKNOWN", OURS), ("UNKNOWN", "+15557770000"))
    emu.faults.down.add("memory")
    outcome = await _reconcile(services, conversation)
    assert isinstance(outcome, Reconciled) and outcome.changed
    assert outcome.agent.type == "AI_AGENT"
    assert outcome.customer is not None and outcome.customer.type == "CUSTOMER"
    assert outcome.customer.profile_id is None
