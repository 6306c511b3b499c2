"""A reference-style app (written against Twilio Agent Connect's documented API), ported
by changing the import prefix ``tac`` -> ``tac_actors.compat`` and nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

from tac_actors.compat import TAC, TACConfig, get_logger
from tac_actors.compat.channels import SMSChannel, VoiceChannel
from tac_actors.compat.tools import function_tool

logger = get_logger(__name__, app="ported")


def build(config: TACConfig, runner: Any) -> tuple[TAC, dict[str, list[Any]]]:
    """``runner(message, tools) -> str`` stands for the LLM call (an Agents SDK run in
    the test)."""
    tac = TAC(config)
    voice_channel = VoiceChannel(tac)
    sms_channel = SMSChannel(tac)
    seen: dict[str, list[Any]] = {"channels": [], "interrupts": [], "errors": [],
                                  "ended": [], "prompts": []}

    @function_tool
    async def check_order(order_id: str) -> str:
        """Look up the status of an order."""
        await asyncio.sleep(0)
        return f"order {order_id} has shipped"

    async def handle_message_ready(message: str, context: Any, memory: Any) -> Any:
        logger.info("message received", conversation_id=context.conversation_id,
                    caller=context.author_info.address if context.author_info else None)
        seen["channels"].append(context.channel)
        seen["prompts"].append("\n\n".join(memory.build_memory_prompts()))
        if message == "fail":
            raise RuntimeError("the model is down")
        if message == "stream":
            async def words() -> Any:
                for word in ("Streaming ", "works."):
                    await asyncio.sleep(0)
                    yield word
            await voice_channel.send_response(context.conversation_id, words())
            return None
        answer = await runner(message, [check_order])
        channel = voice_channel if context.channel == "VOICE" else sms_channel
        await channel.send_response(context.conversation_id, answer)
        return None

    async def handle_interrupt(context: Any, interrupt: Any) -> None:
        seen["interrupts"].append((interrupt.type, interrupt.utterance_until_interrupt))

    async def handle_error(error: Exception, context: dict[str, Any]) -> None:
        logger.error("callback failed", conversation_id=context["conversation_id"],
                     error=str(error))
        seen["errors"].append((context["conversation_id"], context["channel"], str(error)))

    async def handle_ended(context: Any) -> None:
        seen["ended"].append(context.channel)

    tac.on_message_ready(handle_message_ready)
    tac.on_interrupt(handle_interrupt)
    tac.on_error(handle_error)
    tac.on_conversation_ended(handle_ended)
    return tac, seen
