"""Per-turn cost of the callback kinds, in-process (no sockets): N turns on one simulated
call through :func:`tac_actors.testing.open_harness`, best of R rounds.

    python bench/turn_cost.py [N] [R] [kind ...]

Kinds: ``trio`` (async def returning a str), ``trio-stream`` (async generator of 5
tokens), ``sync`` (plain def: a worker thread), ``asyncio`` and ``asyncio-stream``
(the same two under ``TAC(asyncio=True)``: an asyncio task per call / per token).
Run it before and after a change in the same session; only ``trio``/``trio-stream``/
``sync`` exist on a tree without asyncio mode.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import trio

from tac_actors import TAC, TACConfig
from tac_actors.testing import open_harness

TOKENS = ["one ", "two ", "three ", "four ", "five"]


def make(kind: str) -> TAC:
    if kind.startswith("asyncio"):
        tac = TAC(TACConfig(), asyncio=True)
    else:
        tac = TAC(TACConfig())
    if kind == "trio":
        async def reply(m: str, s: Any, mem: Any) -> str:
            return "ok"
    elif kind in ("trio-stream", "asyncio-stream"):
        async def reply(m: str, s: Any, mem: Any) -> Any:  # type: ignore[misc]
            for t in TOKENS:
                yield t
    elif kind == "asyncio":
        async def reply(m: str, s: Any, mem: Any) -> str:
            await asyncio.sleep(0)
            return "ok"
    elif kind == "sync":
        def reply(m: str, s: Any, mem: Any) -> str:  # type: ignore[misc]
            return "ok"
    else:
        raise SystemExit(f"unknown kind {kind}")
    tac.on_message_ready(reply)
    return tac


async def rounds(kind: str, n: int, r: int) -> float:
    best = float("inf")
    tac = make(kind)
    async with open_harness(tac) as h, h.call() as caller:
        for _ in range(50):
            await caller.say("warm")
            await caller.read_reply()
        for _ in range(r):
            start = time.perf_counter()
            for _ in range(n):
                await caller.say("hi")
                await caller.read_reply()
            best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    r = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    kinds = sys.argv[3:] or ["trio", "trio-stream", "sync", "asyncio", "asyncio-stream"]
    for kind in kinds:
        us = trio.run(rounds, kind, n, r)
        print(f"{kind:15s} {us:8.1f} us/turn  (N={n}, best of {r}, "
              f"py{sys.version_info[0]}.{sys.version_info[1]})")


if __name__ == "__main__":
    main()
