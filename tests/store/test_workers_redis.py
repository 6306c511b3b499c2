"""``tac-actors serve APP --workers 2 --redis URL``: the two halves of scaling out
together. One parent, two worker processes sharing the port and one real Redis; the
emulator as the Orchestrator. 200 texts over 40 conversations, posted to the shared port
(the kernel spreads the connections over the workers), are each answered exactly once
and in order per conversation (each conversation started once, on one worker); both
workers answer on the port, and a voice call on it is answered too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.testing import SimulatedTexter, connect_caller
from tac_actors.testing.texter import HttpDelivery

from ..messaging.conftest import AUTH_TOKEN
from .redis_server import RedisServer, free_port
from .test_chaos import ROOT, _env

CONVERSATIONS = 40
PER = 5


def _start(port: int, redis_url: str, env: dict[str, str], log: Path
           ) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tac_actors", "serve", "tests/store/chaos_app.py:tac",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
             "--redis", redis_url, "--log-level", "info"],
            cwd=ROOT, env=env, stdout=out, stderr=out)


def _tail(log: Path, size: int | None = 4000) -> str:
    text = log.read_text() if log.exists() else ""
    return text if size is None else text[-size:]


async def _healthy_workers(client: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes],
                           log: Path) -> set[object]:
    """Poll ``/health`` until both workers have answered it once (bounded by the
    caller's deadline); returns the worker ids seen."""
    seen: set[object] = set()
    while len(seen) < 2:
        try:
            # a fresh connection each time, so the kernel may pick either worker
            answer = await client.get(f"{url}/health", headers={"Connection": "close"})
            if answer.status_code == 200 and answer.json().get("status") == "ok":
                seen.add(answer.json().get("worker"))
        except httpx.TransportError:
            pass
        assert process.poll() is None, _tail(log)
        await trio.sleep(0.05)
    return seen


@pytest.mark.hang_limit(90)
async def test_two_workers_over_redis_answer_every_text_once_in_order(tmp_path: Path) -> None:
    redis = RedisServer()
    redis.start()
    log = tmp_path / "serve.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            port = free_port()
            env = {**os.environ, **_env(emu, redis, "node")}
            process = _start(port, redis.url, env, log)
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=20) as client:
                with trio.fail_after(30):
                    workers = await _healthy_workers(client, url, process, log)
                assert len(workers) == 2
                delivery = HttpDelivery(client, url, auth_token=AUTH_TOKEN)
                texters = [SimulatedTexter(emu, delivery, address=f"+1555400{i:04d}")
                           for i in range(CONVERSATIONS)]

                async def one(i: int, texter: SimulatedTexter) -> None:
                    for j in range(PER):
                        answer = await texter.send(f"c{i}-{j}")
                        assert answer.status == 200, answer

                with trio.fail_after(60):
                    async with trio.open_nursery() as nursery:
                        for i, texter in enumerate(texters):
                            nursery.start_soon(one, i, texter)
                    await emu.wait_until(
                        lambda: emu.db.count("action") >= CONVERSATIONS * PER)
                    async with connect_caller(f"ws://127.0.0.1:{port}/ws",
                                              auth_token=AUTH_TOKEN) as caller:
                        await caller.say("hello")
                        assert (await caller.read_reply()).text == "re: hello"
            for i, texter in enumerate(texters):
                replies = [r.text for r in texter.replies()]
                assert replies == [f"re: c{i}-{j}" for j in range(PER)], (i, replies)
            started = re.findall(r"INFO (w\d+) tac_actors.conversation .*conversation started",
                                 _tail(log, None))
            assert len(started) == CONVERSATIONS + 1  # each conversation started once
    except BaseException:
        sys.stderr.write(f"--- serve.log (tail)\n{_tail(log)}\n")
        raise
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.stop()
