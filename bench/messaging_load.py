"""Messaging load: texts/s answered and answer latency, and what a reconcile sweep costs.

    .venv/bin/python bench/messaging_load.py --conversations 50 --texts 20
    .venv/bin/python bench/messaging_load.py --conversations 1000 --texts 3 --pace 10

The emulator and the texters run in this process; the server (Orchestrator mode, an
agent that answers at once) runs in a child process of its own, on loopback. Each
conversation writes its next text when the reply to the previous one was sent (closed
loop: the figure is the capacity with that many texts in flight), or ``--pace`` seconds
after it (first text at a random offset within ``--pace``). Latency is
from the webhook POST being sent to the emulator recording the reply's SEND_MESSAGE.

Then, in this process, a runtime against the same emulator state runs reconcile sweeps
over every conversation (all answered, so a sweep only reads): milliseconds and
Orchestrator requests per sweep of ``--batch`` conversations.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from typing import Any

import httpx
import trio

from tac_actors import TAC
from tac_actors.channels.messaging import MessagingOptions
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.runtime import Runtime
from tac_actors.testing import SimulatedTexter
from tac_actors.testing.texter import HttpDelivery

TOKEN = "bench-token"
CONFIGURATION = "conv_configuration_example"


def _config(emulator_url: str) -> dict[str, Any]:
    return {"conversation_configuration_id": CONFIGURATION, "auth_token": TOKEN,
            "services_base_url": emulator_url, "account_sid": "AC" + "0" * 32,
            "api_key": "SK" + "0" * 32, "api_secret": "secret",
            "phone_number": "+15550000000"}


def serve_child(emulator_url: str) -> None:
    """The server process: prints its URL, serves until stdin closes."""
    from tac_actors.config import TACConfig
    from tac_actors.server import serve

    tac = TAC(TACConfig(**_config(emulator_url)), memory_mode="never",
              messaging=MessagingOptions(reconcile_interval=None))
    tac.on_message_ready(lambda message, session, memory: f"re: {message}")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            binds = await nursery.start(lambda task_status: serve(
                tac, "127.0.0.1", 0, shutdown_trigger=stop.wait, task_status=task_status))
            print(binds[0], flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)
            stop.set()

    trio.run(main)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(conversations: int, texts: int, batch: int, pace: float) -> dict[str, Any]:
    async with Emulator.running(seed=EXAMPLE_SEED) as emu:
        child = subprocess.Popen(  # noqa: ASYNC220 (starts at once; reads go to threads)
            [sys.executable, __file__, "--serve", emu.url], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            url = (await trio.to_thread.run_sync(child.stdout.readline)).strip()
            figures = await _drive(emu, url, conversations, texts, pace)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            await trio.to_thread.run_sync(child.wait)
        figures["reconcile"] = await _sweeps(emu, batch)
    return figures


async def _drive(emu: Emulator, url: str, conversations: int, texts: int, pace: float
                 ) -> dict[str, Any]:
    replied: dict[str, trio.Event] = {}
    original = emu._wake

    def wake() -> None:  # one journal record per answered request: find the replies
        record = emu.journal[-1]
        if record.method == "POST" and record.path.endswith("/Actions"):
            event = replied.pop(record.path.split("/")[3], None)
            if event is not None:
                event.set()
        original()

    emu._wake = wake  # type: ignore[method-assign]
    latencies: list[float] = []
    retried = [0]
    limits = httpx.Limits(max_connections=conversations + 10,
                          max_keepalive_connections=conversations + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        delivery = HttpDelivery(client, url, auth_token=TOKEN)

        async def one(i: int) -> None:
            texter = SimulatedTexter(emu, delivery, address=f"+1666{i:07d}")
            if pace:
                await trio.sleep(random.uniform(0, pace))
            for j in range(texts):
                if pace and j:
                    await trio.sleep(pace)
                texter._conversation()  # the conversation exists before the event waits
                event = replied[texter.conversation_id or ""] = trio.Event()
                start = time.perf_counter()
                try:
                    answer = await texter.send(f"text {j}")
                except httpx.TransportError:
                    # an idle kept-alive connection closed under us (as Twilio would,
                    # redeliver once: same body and token)
                    retried[0] += 1
                    answer = await texter.redeliver()
                assert answer.status == 200, answer
                await event.wait()
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(conversations):
                nursery.start_soon(one, i)
        elapsed = time.perf_counter() - started
    emu._wake = original  # type: ignore[method-assign]
    total = conversations * texts
    return {"conversations": conversations, "texts": total, "pace_s": pace,
            "texts_per_s": round(total / elapsed, 1), "webhooks_redelivered": retried[0],
            "latency_ms": {"p50": round(1000 * _percentile(latencies, 0.50), 1),
                           "p99": round(1000 * _percentile(latencies, 0.99), 1)}}


async def _sweeps(emu: Emulator, batch: int) -> dict[str, Any]:
    from tac_actors.config import TACConfig

    tac = TAC(TACConfig(**_config(emu.url)), memory_mode="never",
              messaging=MessagingOptions(reconcile_interval=None, reconcile_batch=batch))
    tac.on_message_ready(lambda message, session, memory: "unexpected")
    async with Runtime.open(tac) as runtime:
        channel = runtime.messaging
        assert channel is not None
        await channel.reconciler.started_up.wait()  # the start-up pass: everything once
        stats = channel.reconciler.statistics()
        first = {"requests": stats.requests, "queued": stats.queued}
        before = stats.requests
        started = time.perf_counter()
        sweeps = 5
        for _ in range(sweeps):
            await channel.reconciler.sweep()
        elapsed = time.perf_counter() - started
        after = channel.reconciler.statistics()
        await runtime.shutdown()
    return {"batch": batch, "startup_pass": first,
            "ms_per_sweep": round(1000 * elapsed / sweeps, 1),
            "requests_per_sweep": (after.requests - before) / sweeps,
            "queued_by_sweeps": after.queued - first["queued"]}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--texts", type=int, default=20, help="texts per conversation")
    parser.add_argument("--batch", type=int, default=50, help="conversations per sweep")
    parser.add_argument("--pace", type=float, default=0.0,
                        help="seconds between a reply and the conversation's next text "
                             "(first text at a random offset within it); 0: closed loop")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    figures = trio.run(load, args.conversations, args.texts, args.batch, args.pace)
    figures["cpus"] = os.cpu_count()
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
