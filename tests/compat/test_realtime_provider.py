"""A reference app's OpenAI Realtime provider, ported: VoiceChannel(tac,
OpenAIRealtimeProviderConfig(...)) serves speech-to-speech calls."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from tac_actors.compat import TAC, TACConfig
from tac_actors.compat.channels import VoiceChannel
from tac_actors.compat.channels.realtime import OpenAIRealtimeProviderConfig
from tac_actors.compat.tools import function_tool
from tac_actors.testing import open_fake_realtime, open_harness


@function_tool
async def lookup(order_id: str) -> str:
    """Look an order up.

    Args:
        order_id: the order
    """
    return f"order {order_id} shipped"


def test_an_api_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIRealtimeProviderConfig()


async def test_ported_realtime_app_greets_and_runs_tools() -> None:
    seen: list[Any] = []

    async def per_call(call: Any) -> dict[str, Any] | None:
        seen.append(call.to)
        return {"instructions": "VIP line"} if call.to == "+1999" else None

    tac = TAC(TACConfig())
    VoiceChannel(tac, OpenAIRealtimeProviderConfig(
        openai_api_key="sk-test", tools=[lookup],
        default_session_config={"instructions": "Be brief", "max_output_tokens": 300},
        welcome_greeting_response={"instructions": "Say hi"},
        on_inbound_call_session_config=per_call))
    assert tac.realtime is not None and tac.realtime.answers("+1")
    assert tac._twiml is not None
    from tac_actors.server.callbacks import InboundCall

    vip = await tac._twiml.fn(InboundCall(call_sid="CA1", to="+1999"))
    plain = await tac._twiml.fn(InboundCall(call_sid="CA2", to="+1000"))
    assert vip.realtime.instructions == "VIP line" and plain.realtime is None
    assert seen == ["+1999", "+1000"]
    async with open_fake_realtime() as fake:
        tac.realtime = attrs.evolve(tac.realtime, connect=fake.connector)
        async with open_harness(tac) as h, h.media_call() as caller:
            model = await fake.next_session()
            session = (await model.wait_for("session.update"))["session"]
            assert session["instructions"] == "Be brief"
            assert session["max_output_tokens"] == 300
            assert [tool["name"] for tool in session["tools"]] == ["lookup"]
            assert (await model.wait_for("response.create"))["response"] == {
                "instructions": "Say hi"}
            await model.call_tool("lookup", {"order_id": "7"})
            output = await model.wait_for("conversation.item.create")
            assert output["item"]["output"] == "order 7 shipped"
            await caller.hang_up()
            await caller.drain()
            del h
