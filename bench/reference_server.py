#!/usr/bin/env python3
"""The reference TAC (twilio-agent-connect 2.5.0) as a ConversationRelay-only bench server.

Run it with the SCRATCH venv, never the project's: ``bench/side_by_side.py`` creates
``bench/.ref-venv`` with ``pip install 'twilio-agent-connect[server]==2.5.0'``.

    bench/.ref-venv/bin/python bench/reference_server.py --agent echo --port 8081

Wiring (public API only): ``TAC(TACConfig(...))`` with no conversation configuration id
(ConversationRelay-only mode, no Twilio API calls), ``VoiceChannel(tac)`` with its default
session manager (each prompt runs as a task; an ``interrupt`` cancels it and is acknowledged
with an empty ``text``/``last: true``), and ``TACFastAPIServer``, whose ``app`` is served by
uvicorn (uvloop; the ``websockets`` protocol when installed).

Agents: ``echo`` returns ``echo: <prompt>`` from ``on_message_ready`` (TAC sends one
``text`` with ``last: true``); ``stream`` returns ``None`` and sends an async generator of
``--tokens`` tokens ``tok0 ``, ``tok1 ``, ... through ``VoiceChannel.send_response`` (TAC then
sends an empty ``last: true``), --token-delay-ms apart.

Signatures: TACFastAPIServer always validates ``X-Twilio-Signature`` on the WebSocket
upgrade (there is no switch to turn it off), so clients must sign with --auth-token
(voice_load.py does, given the same --auth-token). The signed URL is ``ws://HOST:PORT/ws``.

Logging: TAC and uvicorn log at --log-level (default WARNING), so neither server pays
for a log line per call in the measured phase. TAC analytics are disabled
(TAC_ANALYTICS_DISABLED=true).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
from collections.abc import AsyncGenerator
from typing import Any

DEFAULT_AUTH_TOKEN = "bench-auth-token"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--agent", choices=["echo", "stream"], default="echo")
    p.add_argument("--tokens", type=int, default=int(os.environ.get("BENCH_STREAM_TOKENS", "30")))
    p.add_argument(
        "--token-delay-ms", type=float, default=float(os.environ.get("BENCH_TOKEN_DELAY_MS", "0"))
    )
    p.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN, help="Twilio auth token")
    p.add_argument("--log-level", default="WARNING")
    p.add_argument(
        "--via-start",
        action="store_true",
        help="serve with TACFastAPIServer.start() as shipped (uvicorn at INFO level)",
    )
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> Any:
    """Build and return the TACFastAPIServer with the chosen agent."""
    os.environ["TAC_ANALYTICS_DISABLED"] = "true"
    from tac import TAC, TACConfig
    from tac.channels.voice import VoiceChannel
    from tac.server import TACFastAPIServer
    from tac.server.config import TACServerConfig

    config = TACConfig(
        account_sid="AC" + "0" * 32,
        auth_token=args.auth_token,
        api_key="SK" + "0" * 32,
        api_secret="bench-api-secret",
        phone_number="+15550000000",
        voice_public_domain=f"{args.host}:{args.port}",
        log_level=args.log_level,
    )
    tac = TAC(config)
    voice = VoiceChannel(tac)
    delay = args.token_delay_ms / 1000.0
    n_tokens = args.tokens

    async def tokens() -> AsyncGenerator[str, None]:
        for i in range(n_tokens):
            yield f"tok{i} "
            if delay:
                await asyncio.sleep(delay)

    async def echo(message: str, session: Any, memory: Any) -> str | None:
        return f"echo: {message}"

    async def stream(message: str, session: Any, memory: Any) -> str | None:
        await voice.send_response(session.conversation_id, tokens())
        return None

    tac.on_message_ready(echo if args.agent == "echo" else stream)
    return TACFastAPIServer(
        tac=tac,
        voice_channel=voice,
        config=TACServerConfig(host=args.host, port=args.port),
    )


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = build(args)
    print(f"reference TAC ({args.agent}) on ws://{args.host}:{args.port}/ws", flush=True)
    if args.via_start:
        server.start()
        return 0
    import uvicorn

    uvicorn.run(
        server.app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
