"""A reference-style app (asyncio hooks, VoiceChannel registrations) gets call events
and hangs up through the compat layer."""

from __future__ import annotations

import asyncio
from typing import Any

import trio

from tac_actors.compat import TAC
from tac_actors.compat.channels import VoiceChannel
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.protocol.call_options import CallOptions

from ..messaging.conftest import served

TOKEN = "compat-token"
ADA = "+15551230001"


async def test_reference_style_amd_handler_hangs_up_on_voicemail() -> None:
    seen: list[tuple[str, Any]] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED, auth_token=TOKEN) as emu:
            emu.script_call(ADA, answered_by="machine_end_beep")
            tac = TAC(emu.tac_config(conversation_configuration_id=None,
                                     knowledge_base_id=None, auth_token=TOKEN))
            voice = VoiceChannel(tac)

            async def on_amd(event: Any) -> None:
                asyncio.get_running_loop()  # a reference handler runs on asyncio
                seen.append(("amd", event.answered_by))
                if event.is_machine:
                    seen.append(("hung up", await voice.end_call(event.call_sid)))

            async def on_status(event: Any) -> None:
                seen.append(("status", event.call_status))

            voice.on_amd(on_amd)
            voice.on_call_status(on_status)
            async with served(tac):
                await tac.start_conversation("voice", ADA, call_options=CallOptions(
                    machine_detection="DetectMessageEnd"))
                await emu.wait_call_events(2)
    assert seen == [("amd", "machine_end_beep"), ("hung up", True), ("status", "completed")]
