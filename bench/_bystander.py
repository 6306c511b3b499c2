"""The well-behaved call of the soak benchmark, run in its own process.

    python bench/_bystander.py --url ws://127.0.0.1:PORT/ws [--auth-token T] [--interval 0.02]

One call: connect, ``setup``, then a prompt every ``--interval`` seconds (the next one
when the previous reply has arrived and the interval has passed), each reply checked
(``echo: bystander N``). It prints one line per event on stdout, flushed, with
``time.monotonic()`` (one clock for every process on the machine):

    ok <t_sent> <latency_s>         the full reply arrived and was the right one
    miss <t_sent> <reason>          no reply within --turn-timeout, or a wrong reply
    closed <t> <reason>             the connection ended; the call reconnects 0.1 s later

It runs until killed (SIGTERM/SIGINT) or its stdout closes. Running it in a process of
its own keeps the attackers' client CPU out of its latencies.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fastws
import trio
from _codec import dumps, loads, setup_frame, twilio_signature


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _call(url: str, headers: list[tuple[str, str]], interval: float,
                turn_timeout: float, rng: random.Random, counter: list[int]) -> None:
    async with _fastws.open_fast_websocket(url, headers, disconnect_timeout=1.0) as ws:
        await ws.send_message(setup_frame(rng, 0))
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now < next_at:
                await trio.sleep(next_at - now)
            counter[0] += 1
            k = counter[0]
            expect = f"echo: bystander {k}"
            frame = dumps({"type": "prompt", "voicePrompt": f"bystander {k}",
                           "lang": "en-US", "last": True})
            sent = time.monotonic()
            next_at = sent + interval
            await ws.send_message(frame)
            with trio.move_on_after(turn_timeout) as scope:
                while True:
                    msg = loads(await ws.get_message())
                    if msg.get("type") == "text" and msg.get("last"):
                        break
            if scope.cancelled_caught:
                _emit(f"miss {sent:.6f} timeout")
                raise _fastws.Closed("turn timeout")  # start over on a fresh connection
            if msg.get("token") != expect:
                _emit(f"miss {sent:.6f} wrong-reply")
                continue
            _emit(f"ok {sent:.6f} {time.monotonic() - sent:.6f}")


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--auth-token", default=None)
    p.add_argument("--interval", type=float, default=0.020)
    p.add_argument("--turn-timeout", type=float, default=5.0)
    args = p.parse_args()
    headers = []
    if args.auth_token:
        headers.append(("X-Twilio-Signature", twilio_signature(args.auth_token, args.url)))
    rng = random.Random(7)
    counter = [0]
    while True:
        try:
            await _call(args.url, headers, args.interval, args.turn_timeout, rng, counter)
        except (_fastws.FastWSError, OSError) as exc:
            _emit(f"closed {time.monotonic():.6f} {type(exc).__name__}")
        await trio.sleep(0.1)


if __name__ == "__main__":
    try:
        trio.run(main)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
