"""``TAC.retrieve_memory`` looks memory up now, whatever ``memory_mode`` (the audit's
defect 1: it returned nothing under "never", the mode in which the README tells you to
call it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tac_actors import TAC
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.runtime import Runtime
from tac_actors.session import AuthorInfo, Channel, ConversationSession


@pytest.mark.parametrize("mode", ["never", "once", "always"])
async def test_retrieve_memory_recalls_in_every_mode(mode: str) -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        tac = TAC(emu.tac_config(conversation_configuration_id="conv_configuration_example"),
                  memory_mode=mode)
        async with Runtime.open(tac, transport=emu.transport()) as runtime:
            session = ConversationSession(conversation_id="conv_probe", channel=Channel.SMS,
                                          started_at=datetime.now(UTC))
            session.author_info = AuthorInfo("+15551230001")
            first = await tac.retrieve_memory(session, "refunds")
            again = await tac.retrieve_memory(session, "contact")
            await runtime.shutdown()
    assert first.observations and again.observations
    assert first.source == "memory"
