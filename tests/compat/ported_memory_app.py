"""A second reference-style app (the memory + OpenAI adapter pattern), ported by changing
the import prefix ``tac`` -> ``tac_actors.compat`` only."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI

from tac_actors.compat import TAC, TACConfig
from tac_actors.compat.adapters import AdapterOptions
from tac_actors.compat.adapters.openai import with_tac_memory
from tac_actors.compat.channels import SMSChannel


def build(config: TACConfig, base_url: str) -> TAC:
    tac = TAC(config)
    sms_channel = SMSChannel(tac)
    client = AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)

    async def handle_message_ready(message: str, context: Any, memory: Any) -> None:
        if tac.is_orchestrator_enabled():
            memory = await tac.retrieve_memory(context, query=message)
        llm = with_tac_memory(client, memory, context, AdapterOptions(profile_traits=["Contact"]))
        completion = await llm.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "system", "content": "You are a support agent."},
                      {"role": "user", "content": message}])
        await sms_channel.send_response(context.conversation_id,
                                        completion.choices[0].message.content)

    async def handle_ended(context: Any) -> None:
        await client.close()

    tac.on_message_ready(handle_message_ready)
    tac.on_conversation_ended(handle_ended)
    return tac
