"""Sync callbacks and tools run in worker threads: a blocking one never stalls other
conversations, a barge-in abandons it (its result is discarded), and the number running
at once is capped."""

from __future__ import annotations

import threading
from typing import Any

import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.asyncio_bridge import outside_trio
from tac_actors.testing import Recorder, open_harness
from tac_actors.tools import function_tool
from tests.usercode.test_asyncio_mode import frames_after_ack

#: a bound on every wait on a thread, so a broken build fails instead of hanging
BOUND = 10.0


async def wait_for_thread_event(event: threading.Event) -> None:
    # busy while waiting, so a MockClock does not jump to the test's deadline meanwhile
    assert await outside_trio(trio.to_thread.run_sync, event.wait, BOUND)


async def test_a_blocking_sync_callback_does_not_stall_a_bystander(clock: object) -> None:
    tac = TAC(TACConfig())
    entered, release = threading.Event(), threading.Event()

    @tac.on_message_ready
    def reply(message: str, session: Any, memory: Any) -> str:
        if message == "slow":
            entered.set()
            assert release.wait(BOUND)  # requests.post(...) stand-in
            return "slow answer"
        return f"quick {message}"

    async with open_harness(tac) as h, h.call() as slow, h.call() as bystander:
        await slow.say("slow")
        await wait_for_thread_event(entered)
        for n in range(3):
            await bystander.say(str(n))
            assert (await bystander.read_reply()).text == f"quick {n}"
        assert not release.is_set()
        release.set()
        assert (await slow.read_reply()).text == "slow answer"


async def test_barge_in_abandons_a_blocked_sync_callback(clock: object) -> None:
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()

    @tac.on_message_ready
    def reply(message: str, session: Any, memory: Any) -> str:
        if message != "first":
            return "second answer"
        entered.set()
        try:
            assert release.wait(BOUND)
            return "stale answer"
        finally:
            returned.set()

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("first")
        await wait_for_thread_event(entered)
        await caller.interrupt()
        assert await frames_after_ack(caller) == []
        release.set()
        await wait_for_thread_event(returned)
        await trio.testing.wait_all_tasks_blocked()
        await caller.say("next")
        heard = await caller.read_reply()
        assert heard.text == "second answer", "the stale result was discarded"
    assert len(rec.interrupts) == 1 and rec.errors == []


async def test_worker_threads_are_capped() -> None:
    # the real clock: under MockClock a running thread keeps the run busy, so
    # wait_all_tasks_blocked would wait for the thread the test holds
    tac = TAC(TACConfig(worker_threads=1))
    lock = threading.Lock()
    running = [0]
    peak = [0]
    entered, release = threading.Event(), threading.Event()

    @tac.on_message_ready
    def reply(message: str, session: Any, memory: Any) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        entered.set()
        assert release.wait(BOUND)
        with lock:
            running[0] -= 1
        return message

    async with open_harness(tac) as h, h.call() as first, h.call() as second:
        await first.say("a")
        await wait_for_thread_event(entered)
        await second.say("b")
        await trio.testing.wait_all_tasks_blocked()
        assert tac.thread_limiter.borrowed_tokens == 1
        assert tac.thread_limiter.statistics().tasks_waiting == 1
        release.set()
        assert (await first.read_reply()).text == "a"
        assert (await second.read_reply()).text == "b"
    assert peak[0] == 1


async def test_sync_tool_runs_in_a_worker_thread(clock: object) -> None:
    @function_tool
    def where() -> str:
        """Which thread runs me."""
        return threading.current_thread().name

    result = await where.invoke({})
    assert result.ok and result.content != threading.main_thread().name
