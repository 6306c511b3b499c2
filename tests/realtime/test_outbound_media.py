"""Outbound speech-to-speech calls (against the emulator's Calls API, loopback)."""

from __future__ import annotations

import trio

from tac_actors import TAC
from tac_actors.emulator import Emulator
from tac_actors.emulator.seed import EXAMPLE_SEED
from tac_actors.realtime import MediaStreamOptions, RealtimeOptions
from tac_actors.testing import open_fake_realtime, open_harness

ADA = "+15551230001"


async def test_outbound_media_call_streams_to_our_media_route() -> None:
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu, open_fake_realtime() as fake:
            tac = TAC(emu.tac_config(voice_public_domain="agent.example.com",
                                     phone_number="+15550000000"),
                      realtime=RealtimeOptions(connect=fake.connector))
            special = RealtimeOptions(connect=fake.connector, instructions="Renewals only")
            async with open_harness(tac) as h:
                result = await tac.start_conversation(
                    "voice", ADA, metadata={"campaign": "renewals"},
                    media=MediaStreamOptions(realtime=special))
                assert result.call_sid is not None
                async with h.media_call(call_sid=result.call_sid):
                    model = await fake.next_session()
                    update = await model.wait_for("session.update")
                    assert update["session"]["instructions"] == "Renewals only"
            (call,) = emu.made_calls()
    assert (call["to"], call["from"]) == (ADA, "+15550000000")
    assert '<Stream url="wss://agent.example.com/media-stream">' in call["twiml"]
    assert 'action="https://agent.example.com/media-stream-callback"' in call["twiml"]
    assert '<Parameter name="campaign" value="renewals"/>' in call["twiml"]
    assert '<Parameter name="To" value="+15551230001"/>' in call["twiml"]
