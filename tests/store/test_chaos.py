"""Chaos over real processes: three ``tac-actors serve`` processes sharing one real
Redis, the emulator as the Orchestrator, 1,000 texts over 100 conversations posted to
whichever process a round-robin "load balancer" picks (a refused connection goes to the
next one, as a load balancer's health check would).

* one process SIGKILLed mid-burst, then restarted: every text answered exactly once,
  in order per conversation (its conversations are taken over once their leases
  expire, and their queues replayed);
* Redis killed mid-burst and restarted empty: webhooks get 503 while it is down (the
  texts are in the Orchestrator's log), and once it is back every text is answered
  exactly once (reconcile fills the gap from the log); order holds among the texts whose
  webhook was accepted.

Leases of 1.5 s keep the takeover quick. The processes log to files under the test's
temporary directory (shown on failure).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.testing import SimulatedTexter
from tac_actors.testing.texter import HttpDelivery, WebhookResult

from ..messaging.conftest import AUTH_TOKEN, CONFIGURATION
from .redis_server import RedisServer, free_port

CONVERSATIONS = 100
#: texts per conversation: 1,000 in all for the killed process, 500 for Redis restarted
PER = {"node": 10, "redis": 5}
LEASE_TTL = 3.0
ROOT = Path(__file__).resolve().parents[2]


@attrs.define(eq=False)
class Node:
    """One ``tac-actors serve`` process."""

    port: int
    env: Mapping[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tac_actors", "serve", "tests/store/chaos_app.py:tac",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "info"],
                cwd=ROOT, env={**os.environ, **self.env}, stdout=out, stderr=out)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)
        self.process = None

    async def ready(self, client: httpx.AsyncClient) -> None:
        """Poll ``/health`` until the runtime is up (bounded by the caller's deadline)."""
        while True:
            try:
                answer = await client.get(f"{self.url}/health")
                if answer.status_code == 200 and answer.json()["status"] == "ok":
                    return
            except httpx.TransportError:
                pass
            assert self.process is not None and self.process.poll() is None, (
                self.log.read_text()[-3000:])
            await trio.sleep(0.05)


class Balancer(HttpDelivery):
    """Round robin over the nodes; a node that refuses the connection is skipped (the
    webhook goes to the next). Every node down: the webhook is lost (status 0)."""

    def __init__(self, client: httpx.AsyncClient, nodes: list[Node]) -> None:
        super().__init__(client, nodes[0].url, auth_token=AUTH_TOKEN)
        self.nodes = nodes
        self._turn = itertools.count()

    async def post(self, body: bytes, headers: Any) -> WebhookResult:
        start = next(self._turn)
        for k in range(len(self.nodes)):
            self.base_url = self.nodes[(start + k) % len(self.nodes)].url
            try:
                return await super().post(body, headers)
            except httpx.TransportError:
                continue
        return WebhookResult(0, body="no node")


def _env(emu: Emulator, redis: RedisServer, fault: str) -> dict[str, str]:
    config = emu.tac_config()
    return {
        "TWILIO_ACCOUNT_SID": config.account_sid or "", "TWILIO_API_KEY": config.api_key or "",
        "TWILIO_API_SECRET": config.api_secret or "", "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": config.phone_number or "",
        "TWILIO_CONVERSATION_CONFIGURATION_ID": CONFIGURATION,
        "TAC_SERVICES_URL": config.services_base_url or "", "TAC_REDIS_URL": redis.url,
        "TAC_LEASE_TTL": str(LEASE_TTL), "TWILIO_LOG_LEVEL": "INFO",
        # texts refused while Redis is down are found in the log by the sweeps
        "CHAOS_RECONCILE": "3" if fault == "redis" else "",
    }


async def _run(tmp_path: Path, fault: str) -> None:
    per = PER[fault]
    total = CONVERSATIONS * per
    redis = RedisServer()
    redis.start()
    nodes: list[Node] = []
    try:
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            env = _env(emu, redis, fault)
            nodes = [Node(free_port(), env, tmp_path / f"node{n}.log") for n in range(3)]
            async with httpx.AsyncClient(timeout=20) as client:
                for node in nodes:
                    node.start()
                with trio.fail_after(20):
                    for node in nodes:
                        await node.ready(client)
                balancer = Balancer(client, nodes)
                texters = [SimulatedTexter(emu, balancer, address=f"+1555300{i:04d}")
                           for i in range(CONVERSATIONS)]
                accepted: set[str] = set()
                accepted_after: set[str] = set()  # once Redis or the node was back
                statuses: list[int] = []
                fault_at, back_at, refused = trio.Event(), trio.Event(), trio.Event()

                async def one(i: int, texter: SimulatedTexter) -> None:
                    for j in range(per):
                        n = j * CONVERSATIONS + i
                        if n >= total * 3 // 10:
                            fault_at.set()
                        if n >= total * 6 // 10:
                            await back_at.wait()
                        answer = await texter.send(f"c{i}-{j}")
                        statuses.append(answer.status)
                        if answer.status == 503:
                            refused.set()
                        if answer.status == 200:
                            accepted.add(texter.sent_ids[-1])
                            if back_at.is_set():
                                accepted_after.add(texter.sent_ids[-1])

                async def progress() -> None:
                    while True:
                        await trio.sleep(2)
                        sys.stderr.write(f"progress: {len(statuses)} webhooks, "
                                         f"{emu.db.count('action')} replies\n")

                with trio.fail_after(90):
                    async with trio.open_nursery() as watch:
                        watch.start_soon(progress)
                        async with trio.open_nursery() as nursery:
                            for i, texter in enumerate(texters):
                                nursery.start_soon(one, i, texter)
                            await fault_at.wait()
                            if fault == "node":
                                nodes[0].kill()
                                await trio.sleep(LEASE_TTL)  # texts keep coming meanwhile
                                nodes[0].start()
                                await nodes[0].ready(client)
                            else:
                                redis.kill()
                                await trio.sleep(1.0)  # a second without Redis ...
                                with trio.move_on_after(10):
                                    await refused.wait()  # ... and webhooks refused
                                redis.start()
                            back_at.set()
                        # every text answered, then a quiet spell past a lease and a
                        # sweep, so a late duplicate (a replay) would show
                        await emu.wait_until(lambda: emu.db.count("action") >= total)
                        await trio.sleep(LEASE_TTL * 2)
                        watch.cancel_scope.cancel()
                _check(texters, accepted_after, statuses, fault, per)
    finally:
        for node in nodes:
            node.kill()
        redis.stop()


def _check(texters: list[SimulatedTexter], accepted_after: set[str], statuses: list[int],
           fault: str, per: int) -> None:
    """Every text answered exactly once; in order per conversation (Redis restarted:
    in order among the texts accepted once it was back; a text accepted before and lost
    with Redis's data is answered by reconcile, later than its successors)."""
    for i, texter in enumerate(texters):
        replies = [r.text for r in texter.replies()]
        expected = [f"re: c{i}-{j}" for j in range(per)]
        assert sorted(replies) == sorted(expected), f"conversation {i}: {replies}"
        if fault == "node":
            assert replies == expected, f"conversation {i} out of order: {replies}"
        else:
            late = {f"re: c{i}-{j}" for j, cid in enumerate(texter.sent_ids)
                    if cid in accepted_after}
            assert [r for r in replies if r in late] == [r for r in expected if r in late]
    if fault == "node":
        assert set(statuses) == {200}
    else:
        assert 503 in statuses, "Redis was down: some webhook should have got 503"
        assert set(statuses) <= {200, 503}


# killed connections leave httpx's request streams unclosed
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.hang_limit(120)
@pytest.mark.parametrize("fault", ["node", "redis"])
async def test_chaos(tmp_path: Path, fault: str) -> None:
    try:
        await _run(tmp_path, fault)
    except BaseException:
        for log in sorted(tmp_path.glob("node*.log")):  # noqa: ASYNC240 (after the run)
            sys.stderr.write(f"--- {log.name} (tail)\n{log.read_text()[-4000:]}\n")
        raise
