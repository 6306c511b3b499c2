"""Echo turns in one process, for counting instructions per turn with callgrind.

Wall-clock CPU figures on this shared 2-core machine move by 10-20 % between runs; an
instruction count does not. This runs CALLS simulated calls of TURNS echo turns each
through the harness, over the fast engine's own transport (``--wire socket``: a real
socket pair; ``websocket``: framing in memory), client and server in one process. Run it
twice under callgrind with two turn counts; the difference of the totals divided by the
difference of the turns is the cost of one turn (client and server), start-up excluded:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/turn_instructions.py 20 20 --wire socket
    valgrind ... bench/turn_instructions.py 20 80 --wire socket
    # (I(80) - I(20)) / (20 * 60)

Run it against another checkout with ``PYTHONPATH=that/checkout``. Without valgrind it
prints the process CPU per turn.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.testing import open_harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("calls", type=int)
    parser.add_argument("turns", type=int)
    parser.add_argument("--wire", choices=["websocket", "socket", "memory"], default="socket")
    args = parser.parse_args()
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def echo(message: str, session: Any, memory: Any) -> str:
        return f"echo: {message}"

    async def run() -> None:
        async with open_harness(tac) as harness:
            go = trio.Event()

            async def one() -> None:
                async with harness.call(wire=args.wire) as caller:
                    await go.wait()
                    for i in range(args.turns):
                        await caller.say(f"hello {i}")
                        await caller.read_reply()

            async with trio.open_nursery() as nursery:
                for _ in range(args.calls):
                    nursery.start_soon(one)
                await trio.testing.wait_all_tasks_blocked()
                gc.collect()
                gc.freeze()
                start = time.process_time()
                go.set()
            spent = time.process_time() - start
        print(f"{spent / (args.calls * args.turns) * 1e6:.1f} µs CPU per turn "
              f"(client and server, {args.calls} calls x {args.turns} turns, {args.wire})")

    trio.run(run)


if __name__ == "__main__":
    main()
