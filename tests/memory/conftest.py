from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tac_actors.emulator import EXAMPLE_SEED, Emulator, read_seed
from tac_actors.services import RetryPolicy, TwilioServices
from tac_actors.session import Channel, ConversationSession

CONVERSATION = "conv_conversation_00000000000000000000000777"


def seed() -> dict[str, Any]:
    """The example seed plus one conversation with a short history."""
    data = read_seed(EXAMPLE_SEED)
    data["conversations"] = [
        {
            "id": CONVERSATION,
            "configurationId": "conv_configuration_example",
            "participants": [
                {
                    "id": "conv_participant_ada",
                    "type": "CUSTOMER",
                    "addresses": [{"channel": "SMS", "address": "+15551230001"}],
                },
                {
                    "id": "conv_participant_bot",
                    "type": "AI_AGENT",
                    "addresses": [{"channel": "SMS", "address": "+15550000000"}],
                },
            ],
            "communications": [
                {
                    "author": {"participantId": "conv_participant_ada"},
                    "text": "Hi, where is my order?",
                    "createdAt": "2026-03-02T10:00:00Z",
                },
                {
                    "author": {"participantId": "conv_participant_bot"},
                    "text": "It ships tomorrow.",
                    "createdAt": "2026-03-02T10:00:05Z",
                },
            ],
        }
    ]
    return data


def session(**overrides: Any) -> ConversationSession:
    values: dict[str, Any] = {
        "conversation_id": CONVERSATION,
        "channel": Channel.SMS,
        "started_at": datetime(2026, 3, 2, tzinfo=UTC),
        "caller": "+15551230001",
    }
    values.update(overrides)
    return ConversationSession(**values)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator.running(seed=seed()) as emulator:
        yield emulator


@pytest.fixture
async def services(emu: Emulator) -> AsyncIterator[TwilioServices]:
    # one attempt per call: fallbacks are then immediate and deterministic
    async with TwilioServices.open(emu.tac_config(), retry=RetryPolicy(max_attempts=1)) as opened:
        yield opened


@pytest.fixture
def make_session() -> Callable[..., ConversationSession]:
    return session


@pytest.fixture
def offline() -> Iterator[Emulator]:
    """An emulator reached only through ``emu.transport()`` (no sockets)."""
    with Emulator(seed=seed()) as emulator:
        yield emulator
