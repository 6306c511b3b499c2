#!/usr/bin/env python3
"""A bare trio-websocket ConversationRelay server, for developing and testing the bench tools.

It speaks the same frames as the real servers: ``echo`` answers each prompt with one
``{"type":"text","token":"echo: <prompt>","last":true}``; ``stream`` sends --tokens
tokens ``tok0 ``, ``tok1 ``, ... (``last: false``, --token-delay-ms apart) then an empty
``last: true``. A new prompt cancels the reply in flight; an ``interrupt`` cancels it and
is acknowledged with an empty ``text`` with ``last: true``. With --auth-token the upgrade
must carry a valid ``X-Twilio-Signature`` (over ``ws://<Host><path>``), else 403.

Prints ``listening on ws://HOST:PORT/ws`` on stdout once it accepts connections.
Environment defaults: BENCH_STREAM_TOKENS, BENCH_TOKEN_DELAY_MS.
"""

from __future__ import annotations

import argparse
import hmac
import os
import sys
from functools import partial
from pathlib import Path

import trio
from trio_websocket import (
    ConnectionClosed,
    Endpoint,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _codec import END_FRAME, dumps, loads, twilio_signature
from _proc import raise_fd_limit


class Call:
    """One connection's state: the reply in flight, if any."""

    def __init__(self, ws: WebSocketConnection, args: argparse.Namespace) -> None:
        self.ws = ws
        self.args = args
        self.reply_scope: trio.CancelScope | None = None

    def cancel_reply(self) -> None:
        """Stop the reply in flight, if any."""
        if self.reply_scope is not None:
            self.reply_scope.cancel()
            self.reply_scope = None

    async def stream(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send the streamed reply; cancelled by a newer prompt or an interrupt."""
        with trio.CancelScope() as scope:
            self.reply_scope = scope
            task_status.started()
            delay = self.args.token_delay_ms / 1000.0
            send = self.ws.send_message
            for i in range(self.args.tokens):
                await send(f'{{"type":"text","token":"tok{i} ","last":false}}')
                if delay:
                    await trio.sleep(delay)
            await send(END_FRAME)
        if self.reply_scope is scope:
            self.reply_scope = None


def _signature_ok(request: WebSocketRequest, token: str) -> bool:
    """Check ``X-Twilio-Signature`` over ``ws://<local address:port><path>``.

    (trio-websocket does not expose the Host header; on loopback the local endpoint is
    what the client connected to.)
    """
    given = next((v for k, v in request.headers if k.lower() == b"x-twilio-signature"), b"")
    local = request.local
    base = local.url if isinstance(local, Endpoint) else ""
    expected = twilio_signature(token, f"{base}{request.path}")
    return bool(given) and hmac.compare_digest(given.decode(), expected)


async def handle(args: argparse.Namespace, request: WebSocketRequest) -> None:
    """Serve one call until the client closes."""
    if args.auth_token and not _signature_ok(request, args.auth_token):
        await request.reject(403, body=b"invalid signature")
        return
    ws = await request.accept()
    call = Call(ws, args)
    try:
        async with trio.open_nursery() as nursery:
            try:
                await _read_loop(call, nursery)
            except ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()
    except Exception as exc:  # one bad call must not stop the server
        print(f"toy_server: call failed: {exc!r}", file=sys.stderr)


async def _read_loop(call: Call, nursery: trio.Nursery) -> None:
    ws, echo = call.ws, call.args.agent == "echo"
    while True:
        frame = loads(await ws.get_message())
        kind = frame.get("type")
        if kind == "prompt":
            call.cancel_reply()
            if echo:
                token = "echo: " + str(frame.get("voicePrompt"))
                await ws.send_message(dumps({"type": "text", "token": token, "last": True}))
            else:
                await nursery.start(call.stream)
        elif kind == "interrupt":
            call.cancel_reply()
            await ws.send_message(END_FRAME)


async def serve(args: argparse.Namespace) -> None:
    """Listen and serve forever."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, partial(handle, args), args.host, args.port, None)
        )
        print(f"listening on ws://{args.host}:{server.port}/ws", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until interrupted."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--agent", choices=["echo", "stream"], default="echo")
    p.add_argument("--tokens", type=int, default=int(os.environ.get("BENCH_STREAM_TOKENS", "30")))
    p.add_argument(
        "--token-delay-ms", type=float, default=float(os.environ.get("BENCH_TOKEN_DELAY_MS", "0"))
    )
    p.add_argument("--auth-token", default=None, help="require a valid X-Twilio-Signature")
    args = p.parse_args(argv)
    raise_fd_limit()
    try:
        trio.run(serve, args)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
