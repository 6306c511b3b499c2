"""``tac-actors serve --workers N``: real processes over loopback.

Each test starts the parent (``python -m tac_actors serve``) and reads its merged output
(banner, parent log, worker logs) line by line: every wait is for a line the processes
print, under ``trio.fail_after``; nothing sleeps on the clock.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from tac_actors.server.workers import RestartBudget, RestartLimit, worker_count
from tac_actors.testing import CallEnded, connect_caller

HERE = Path(__file__).parent
#: every call made (by answered_by), to compare with the servers' counts
CALLS: list[str] = []
SERVING = re.compile(r"w(\d+) tac_actors.workers: worker \d+ \(pid (\d+)\) serving")


class Served:
    """A running ``serve --workers`` parent and what it printed."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._cursor = 0
        self._buffer = b""
        self.port = 0
        #: worker id -> pid, as the "serving" lines said
        self.pids: dict[int, int] = {}

    async def _more(self) -> bool:
        assert self.process.stdout is not None
        data = await self.process.stdout.receive_some(65536)
        if not data:
            return False
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        self.lines.extend(line.decode(errors="replace") for line in complete)
        return True

    async def wait_for(self, pattern: str | re.Pattern[str]) -> re.Match[str]:
        """The next printed line matching ``pattern`` (lines before it are passed)."""
        regex = re.compile(pattern)
        while True:
            while self._cursor < len(self.lines):
                line = self.lines[self._cursor]
                self._cursor += 1
                found = regex.search(line)
                if found:
                    self._note(found)
                    return found
            if not await self._more():
                raise AssertionError(f"output ended before {regex.pattern!r}:\n"
                                     + "\n".join(self.lines[-30:]))

    def _note(self, found: re.Match[str]) -> None:
        if found.re is SERVING:
            self.pids[int(found[1])] = int(found[2])

    async def ready(self, count: int) -> None:
        self.port = int((await self.wait_for(r"serving \S+ on http://127\.0\.0\.1:(\d+)"))[1])
        while len(self.pids) < count:
            await self.wait_for(SERVING)

    async def exit_status(self) -> int:
        while await self._more():
            pass
        return await self.process.wait()

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@asynccontextmanager
async def serving(*options: str) -> AsyncIterator[Served]:
    env = dict(os.environ)
    env.pop("TAC_WORKERS", None)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tac_actors", "serve", "worker_app.py:tac", "--host",
         "127.0.0.1", "--port", "0", *options], cwd=HERE, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    served = Served(process)
    try:
        yield served
    finally:
        if process.returncode is None:  # a failed test: the workers see their stdin close
            process.kill()
        with trio.CancelScope(shield=True, deadline=trio.current_time() + 10):
            await process.wait()


async def answered_by(url: str, text: str = "hi") -> int:
    """Make one call, say ``text``; the pid of the worker that answered."""
    CALLS.append(url)
    async with connect_caller(url) as caller:
        await caller.say(text)
        reply = (await caller.read_reply()).text
    pid, _, echoed = reply.partition(": ")
    assert echoed == text
    return int(pid)


async def pids_answering(url: str, want: set[int], tries: int = 60) -> set[int]:
    """Call until every pid of ``want`` has answered (the kernel picks the worker by a
    hash of the client's port, so some tries go to the same one)."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(await answered_by(url))
        if want <= seen:
            break
    return seen


def test_restart_budget_counts_restarts_in_a_sliding_window() -> None:
    budget = RestartBudget(RestartLimit(restarts=2, window=10.0))
    assert budget.allow(0.0) and budget.allow(1.0)
    assert not budget.allow(5.0)  # a third within 10 s
    assert budget.allow(10.0)  # the one at 0.0 has left the window
    assert not budget.allow(10.5)


def test_worker_count() -> None:
    assert worker_count("3") == 3 and worker_count(1) == 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    assert worker_count("auto") == worker_count("0") == (cores or os.cpu_count())
    with pytest.raises(ValueError, match="a number or 'auto'"):
        worker_count("many")
    with pytest.raises(ValueError, match="negative"):
        worker_count("-1")


async def test_two_workers_answer_a_killed_one_is_replaced_up_to_the_limit() -> None:
    with trio.fail_after(30):
        async with serving("--workers", "2", "--restart-limit", "1",
                           "--restart-window", "3600") as served:
            await served.ready(2)
            first, second = served.pids[1], served.pids[2]
            CALLS.clear()
            assert await pids_answering(served.ws, {first, second}) == {first, second}
            # a scrape reaches one worker, which answers for both
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"http://127.0.0.1:{served.port}/metrics")).text
                status = (await http.get(f"http://127.0.0.1:{served.port}/status")).json()
            assert 'tac_worker_up{worker="1"} 1.0' in metrics
            assert 'tac_worker_up{worker="2"} 1.0' in metrics
            turns = {worker: float(value) for worker, value in re.findall(
                r'tac_turns_total\{channel="voice",outcome="ok",worker="(\d)"\} (\S+)',
                metrics)}
            assert set(turns) == {"1", "2"} and sum(turns.values()) == len(CALLS)
            assert status["workers"] == {"1": "ok", "2": "ok"}
            assert status["started"] == len(CALLS)

            os.kill(first, signal.SIGKILL)
            await served.wait_for(rf"worker 1 \(pid {first}\) was killed by SIGKILL")
            await served.wait_for("restarting worker 1")
            # while worker 1 starts again, the kernel sends every call to worker 2
            assert await answered_by(served.ws) == second
            await served.wait_for(SERVING)
            replacement = served.pids[1]
            assert replacement not in (first, second)
            assert await pids_answering(served.ws, {replacement, second}) == {
                replacement, second}

            os.kill(second, signal.SIGKILL)  # the second death within the hour: too many
            await served.wait_for(r"workers died more than 1 times in 3600 s: stopping "
                                  "every worker")
            assert await served.exit_status() == 1
    assert not any("restarting worker 2" in line for line in served.lines)
    assert any(f"worker 1 (pid {replacement}) exited with status 0" in line
               for line in served.lines)  # the survivor drained


async def test_sigterm_drains_a_running_turn_then_closes_with_1001() -> None:
    with trio.fail_after(30):
        async with serving("--workers", "2") as served:
            await served.ready(2)
            async with connect_caller(served.ws) as caller:
                await caller.say("slow")
                first = await caller.next_frame()  # the turn runs: its first token is out
                pid = int(first.token.partition(":")[0])  # type: ignore[union-attr]
                worker = next(w for w, p in served.pids.items() if p == pid)
                served.process.send_signal(signal.SIGTERM)
                await served.wait_for(rf"w{worker} tac_actors.server: shutting down: "
                                      "draining")
                os.kill(pid, signal.SIGUSR1)  # only now may the turn finish
                rest = await caller.read_reply()
                assert rest.text == "slow"  # the turn finished during the drain
                assert await caller.wait_closed() == 1001
            assert await served.exit_status() == 0
    assert any("all workers stopped (status 0)" in line for line in served.lines)


async def test_second_signal_forces_the_stop() -> None:
    """On the fallback way of sharing the port (one inherited socket) too."""
    with trio.fail_after(30):
        async with serving("--workers", "2", "--share-port", "inherit") as served:
            await served.ready(2)
            assert await answered_by(served.ws) in served.pids.values()
            async with connect_caller(served.ws) as caller:
                await caller.say("slow")
                await caller.next_frame()  # a turn that never finishes by itself
                served.process.send_signal(signal.SIGINT)
                await served.wait_for("SIGINT: draining 2 worker")
                await served.wait_for(r"shutting down: draining")
                served.process.send_signal(signal.SIGINT)
                await served.wait_for("second SIGINT: stopping the workers now")
                with pytest.raises(CallEnded):
                    await caller.read_reply()
            assert await served.exit_status() == 130


def test_a_taken_port_is_one_error_before_any_worker_starts(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tac_actors.cli import main

    monkeypatch.chdir(HERE)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            assert main(["serve", "worker_app.py:tac", "--host", "127.0.0.1", "--port",
                         str(port), "--workers", "2"]) == 1
    finally:  # main set up logging for a command line
        root.handlers[:] = handlers
        root.setLevel(level)
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
