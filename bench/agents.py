"""Bench agents for our server: ``tac-actors serve bench/agents.py:echo_tac`` (or
``stream_tac``), matching ``bench/reference_server.py`` behaviour for behaviour.

``echo_tac`` answers every prompt with one frame ``echo: <prompt>`` (``last: true``).
``stream_tac`` streams ``BENCH_STREAM_TOKENS`` (default 30) tokens ``tok0 ``, ``tok1 ``...
``BENCH_TOKEN_DELAY_MS`` (default 0) apart, then an empty ``last: true``. Both read
``TWILIO_AUTH_TOKEN`` (the bench signs every upgrade) and log at WARNING, as the
reference does in the bench.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import trio

from tac_actors import TAC, ConversationSession, TACConfig, TACMemoryResponse


def _config() -> TACConfig:
    return TACConfig.from_env(log_level="WARNING")


echo_tac = TAC(_config())
stream_tac = TAC(_config())


@echo_tac.on_message_ready
async def echo(message: str, session: ConversationSession, memory: TACMemoryResponse) -> str:
    return f"echo: {message}"


@stream_tac.on_message_ready
async def stream(message: str, session: ConversationSession,
                 memory: TACMemoryResponse) -> AsyncIterator[str]:
    count = int(os.environ.get("BENCH_STREAM_TOKENS", "30"))
    delay = float(os.environ.get("BENCH_TOKEN_DELAY_MS", "0")) / 1000

    async def tokens() -> AsyncIterator[str]:
        for i in range(count):  # token, then the delay: as the reference bench agent
            yield f"tok{i} "
            if delay:
                await trio.sleep(delay)

    return tokens()
