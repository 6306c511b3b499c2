"""Participant reconciliation end to end over loopback sockets: what Twilio's v1 bridge
leaves (no agent participant, UNKNOWN types) is fixed before the first reply; a first
contact gets a Memory profile; a text to an address a person holds is dropped and
reported."""

from __future__ import annotations

from typing import Any

import trio

from tac_actors.channels.messaging_participants import InboundDropped
from tac_actors.compat._views import error_dict
from tac_actors.config import MemoryConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.testing import open_texter

from .conftest import AUTH_TOKEN, make_tac, served

NEWCOMER = "+15557770000"
ADA_PROFILE = "mem_profile_00000000000000000000000ada"


def _participants(emu: Emulator, conversation_id: str | None) -> dict[str, dict[str, Any]]:
    assert conversation_id is not None
    return {p["addresses"][0]["address"]: p
            for p in emu.db.all("participant", parent=conversation_id)}


async def test_a_v1_bridge_first_contact_is_reconciled_and_gets_a_profile() -> None:
    sessions: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu, memory=MemoryConfig(phone_trait_group="Identity",
                                                    phone_trait_field="phone"))
            tac.on_message_ready(lambda m, s, mem: sessions.append(s) or "Welcome!")
            async with served(tac) as url, open_texter(
                    url, emu, auth_token=AUTH_TOKEN, address=NEWCOMER,
                    customer_type="UNKNOWN", agent_type=None) as texter:
                await texter.send("hi, first time here")
                reply = await texter.read_reply()
                participants = _participants(emu, texter.conversation_id)
                profiles = emu.created_profiles()
    ours, customer = participants["+15550000000"], participants[NEWCOMER]
    assert ours["type"] == "AI_AGENT" and customer["type"] == "CUSTOMER"
    (profile,) = profiles
    assert profile["traits"] == {"Identity": {"phone": NEWCOMER}}
    assert customer["profileId"] == profile["profileId"]
    assert reply.text == "Welcome!"
    assert reply.from_["participantId"] == ours["id"]
    assert reply.to[0]["participantId"] == customer["id"]
    session = sessions[0]
    assert session.profile_id == profile["profileId"]
    assert session.ai_agent_info.participant_id == ours["id"]


async def test_our_unknown_participant_is_retyped_and_a_known_customer_kept() -> None:
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)
            tac.on_message_ready(lambda m, s, mem: "ok")
            async with served(tac) as url, open_texter(
                    url, emu, auth_token=AUTH_TOKEN, agent_type="UNKNOWN") as texter:
                await texter.send("hello")
                await texter.read_reply()
                participants = _participants(emu, texter.conversation_id)
                profiles = emu.created_profiles()
    assert participants["+15550000000"]["type"] == "AI_AGENT"
    assert participants[texter.address]["profileId"] == ADA_PROFILE
    assert profiles == []  # a CUSTOMER is used as is: no profile work


async def test_an_address_held_by_a_human_agent_drops_and_reports_the_text() -> None:
    errors: list[Any] = []
    answered: list[str] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            tac = make_tac(emu)
            tac.on_message_ready(lambda m, s, mem: answered.append(m) or "bot words")
            reported = trio.Event()

            @tac.on_error
            async def on_error(exc: BaseException, context: Any) -> None:
                errors.append((exc, context))
                reported.set()

            async with served(tac) as url, open_texter(
                    url, emu, auth_token=AUTH_TOKEN, agent_type="HUMAN_AGENT") as texter:
                assert (await texter.send("is anyone there?")).status == 200
                await reported.wait()
                assert (await texter.send("hello?")).status == 200
                participants = _participants(emu, texter.conversation_id)
                sent = texter.replies()
    assert answered == [] and sent == []
    assert participants["+15550000000"]["type"] == "HUMAN_AGENT"  # not overwritten
    ((exc, context),) = errors
    assert isinstance(exc, InboundDropped) and context.phase == "channel"
    assert context.detail.startswith("dropped_inbound: held")
    assert error_dict(context)["dropped_inbound"] is True
