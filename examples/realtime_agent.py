"""A speech-to-speech phone agent: Twilio Media Streams bridged to OpenAI Realtime.

    export OPENAI_API_KEY=sk-...       # required; OPENAI_REALTIME_MODEL optional
    export HUMAN_NUMBER=+15551234567   # optional: where "transfer" dials
    tac-actors dev examples/realtime_agent.py:tac

Point the number's voice webhook at ``/twiml`` (or ``/media-twiml``). The model hears
the caller and speaks itself (no separate speech-to-text or text-to-speech); it may look
up an order or transfer the caller. When the caller talks over it, the audio stops at
once and the model is told how much was heard.

Without ``OPENAI_API_KEY`` the server still starts: calls are answered with
ConversationRelay and the caller is told what is missing (the log says it at start-up).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from tac_actors import TAC, ConversationSession, TACMemoryResponse
from tac_actors.protocol.twiml import dial_twiml, say_hangup_twiml
from tac_actors.realtime import OpenAIRealtime, RealtimeOptions
from tac_actors.tools import function_tool

log = logging.getLogger("examples.realtime_agent")

MISSING = ("This demo agent has no OpenAI key. Set the OPENAI_API_KEY environment variable "
           "and restart the server to talk to the model.")


@function_tool
async def order_status(order_id: str) -> dict[str, str]:
    """Look up where an order is.

    Args:
        order_id: The order number the customer gave, e.g. "A-1042".
    """
    return {"order_id": order_id, "status": "shipped", "eta": "in two days"}


@function_tool
async def transfer(reason: str, session: ConversationSession) -> str:
    """Transfer the caller to a human. Say a short goodbye first.

    Args:
        reason: Why the caller needs a human, in a few words.
    """
    session.request_handoff(json.dumps({"reason": reason}))
    return "The transfer starts once you have said goodbye."


HAS_KEY = bool(os.environ.get("OPENAI_API_KEY"))

tac = TAC(realtime=RealtimeOptions(
    connect=OpenAIRealtime(model=os.environ.get("OPENAI_REALTIME_MODEL", "gpt-realtime"),
                           url=os.environ.get("OPENAI_REALTIME_URL",
                                              "wss://api.openai.com/v1/realtime")),
    instructions="You are a friendly phone concierge for a small store. Keep answers to one "
                 "or two short sentences. Use order_status for orders; use transfer when the "
                 "caller asks for a person.",
    greeting="Greet the caller briefly and ask how you can help.",
    voice="alloy",
    tools=[order_status, transfer],
    answer_inbound=HAS_KEY,
))

if not HAS_KEY:
    log.warning("OPENAI_API_KEY is not set: calls get ConversationRelay and hear what is "
                "missing")


@tac.on_message_ready
async def missing_key(message: str, session: ConversationSession,
                      memory: TACMemoryResponse) -> str:
    """Only reached without a key (calls then use ConversationRelay)."""
    return MISSING


@tac.on_handoff
async def after_stream(callback: Any) -> str:
    """The stream ended: dial a human after a transfer, else hang up."""
    human = os.environ.get("HUMAN_NUMBER")
    if callback.handoff is not None and human:
        return dial_twiml(human)
    if callback.handoff is not None:
        return say_hangup_twiml("Sorry, nobody can take your call right now. Goodbye.")
    return say_hangup_twiml("Goodbye.")


@tac.on_error
async def report(exc: BaseException, context: Any) -> None:
    log.warning("call %s: %s (%s)", context.conversation_id, exc, context.phase)
