"""Messaging over the shared conversation store: texts/s with 1 and 2 server processes
over Redis against 1 process in memory, and the latency a text gains on the Redis path.

    .venv/bin/python bench/store_load.py --conversations 50 --texts 20
    .venv/bin/python bench/store_load.py --conversations 10 --texts 30 --pace 0.2

Runs three set-ups one after the other, each on a fresh emulator: ``memory`` (one
``serve`` process, no store), ``redis1`` (one process, ``TAC_REDIS_URL``), ``redis2``
(two processes sharing one Redis; webhooks alternate between them, so half of the texts
land on a process that does not own their conversation and are routed through Redis).
The emulator and the texters run in this process (as in ``messaging_load.py``: closed
loop, or ``--pace`` seconds between a reply and the next text); latency is from the
webhook POST to the emulator recording the reply. A ``redis-server`` is started on a free
loopback port. The load average (1 min) is printed next to each figure: the machine is
shared, and the figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from messaging_load import TOKEN, _config, _percentile

from tac_actors import TAC
from tac_actors.channels.messaging import MessagingOptions
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.testing import SimulatedTexter
from tac_actors.testing.texter import HttpDelivery, WebhookResult


def serve_child(emulator_url: str, redis_url: str) -> None:
    """A server process: prints its URL, serves until stdin closes."""
    from tac_actors.config import TACConfig
    from tac_actors.server import serve

    config = TACConfig(**_config(emulator_url), redis_url=redis_url or None)
    tac = TAC(config, memory_mode="never",
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


class RoundRobin(HttpDelivery):
    def __init__(self, client: httpx.AsyncClient, urls: list[str]) -> None:
        super().__init__(client, urls[0], auth_token=TOKEN)
        self.urls = urls
        self.turn = 0

    async def post(self, body: bytes, headers: Any) -> WebhookResult:
        self.base_url = self.urls[self.turn % len(self.urls)]
        self.turn += 1
        return await super().post(body, headers)


def _redis() -> tuple[subprocess.Popen[bytes], str, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="tac-bench-redis-")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", folder],
                               stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}/0", folder
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


async def run(setup: str, redis_url: str, conversations: int, texts: int, pace: float
              ) -> dict[str, Any]:
    processes = 2 if setup == "redis2" else 1
    store = "" if setup == "memory" else redis_url
    async with Emulator.running(seed=EXAMPLE_SEED) as emu:
        children = [subprocess.Popen(  # noqa: ASYNC220 (starts at once)
            [sys.executable, __file__, "--serve", emu.url, store], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        try:
            urls = []
            for child in children:
                assert child.stdout is not None
                urls.append((await trio.to_thread.run_sync(child.stdout.readline)).strip())
            load_before = os.getloadavg()[0]
            figures = await _drive(emu, urls, conversations, texts, pace)
            figures["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        finally:
            for child in children:
                assert child.stdin is not None
                child.stdin.close()
                await trio.to_thread.run_sync(child.wait)
    figures["setup"] = setup
    return figures


async def _drive(emu: Emulator, urls: list[str], conversations: int, texts: int,
                 pace: float) -> dict[str, Any]:
    replied: dict[str, trio.Event] = {}
    original = emu._wake

    def wake() -> None:
        record = emu.journal[-1]
        if record.method == "POST" and record.path.endswith("/Actions"):
            event = replied.pop(record.path.split("/")[3], None)
            if event is not None:
                event.set()
        original()

    emu._wake = wake  # type: ignore[method-assign]
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=conversations + 10,
                          max_keepalive_connections=conversations + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        delivery = RoundRobin(client, urls)

        async def one(i: int) -> None:
            texter = SimulatedTexter(emu, delivery, address=f"+1666{i:07d}")
            if pace:
                await trio.sleep(random.uniform(0, pace))
            for j in range(texts):
                if pace and j:
                    await trio.sleep(pace)
                texter._conversation()
                event = replied[texter.conversation_id or ""] = trio.Event()
                start = time.perf_counter()
                answer = await texter.send(f"text {j}")
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
            "texts_per_s": round(total / elapsed, 1),
            "latency_ms": {"p50": round(1000 * _percentile(latencies, 0.50), 1),
                           "p99": round(1000 * _percentile(latencies, 0.99), 1)}}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--texts", type=int, default=20, help="texts per conversation")
    parser.add_argument("--pace", type=float, default=0.0,
                        help="seconds between a reply and the next text; 0: closed loop")
    parser.add_argument("--setups", default="memory,redis1,redis2")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    results = []
    for setup in args.setups.split(","):
        # a fresh Redis per set-up: each emulator numbers its conversations from 1, so
        # the ids of one run would be duplicates in the next
        redis, url, folder = _redis()
        try:
            figures = trio.run(run, setup, url, args.conversations, args.texts, args.pace)
        finally:
            redis.kill()
            redis.wait()
            shutil.rmtree(folder, ignore_errors=True)
        print(json.dumps(figures), flush=True)
        results.append(figures)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cpus": os.cpu_count(), "runs": results}, out, indent=2)


if __name__ == "__main__":
    main()
