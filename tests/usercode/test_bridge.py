"""AsyncioBridge on its own: results, errors, cancellation into the task, streams fetched
one ahead (so closing lands as CancelledError where the generator waits), calls back into
trio, and a task that ignores its cancellation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import trio

from tac_actors import asyncio_bridge
from tac_actors.asyncio_bridge import AsyncioBridge, run_on_trio


async def test_results_and_errors_cross() -> None:
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    async def boom() -> None:
        await asyncio.sleep(0)
        raise KeyError("x")

    async with AsyncioBridge.open() as bridge:
        assert await bridge.run(add, 2, 3) == 5
        with pytest.raises(KeyError):
            await bridge.run(boom)


async def test_cancellation_reaches_the_task_where_it_waits() -> None:
    seen: list[str] = []
    parked = trio.Event()
    token = trio.lowlevel.current_trio_token()

    async def wait_forever() -> None:
        token.run_sync_soon(parked.set)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async with AsyncioBridge.open() as bridge:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bridge.run, wait_forever)
            await parked.wait()
            nursery.cancel_scope.cancel()
        assert seen == ["cancelled"], "the trio caller returns once the task has ended"


async def test_closing_a_stream_right_after_an_item_cancels_the_fetch_ahead() -> None:
    seen: list[str] = []

    async def tokens() -> Any:
        try:
            yield "one"
            await asyncio.Event().wait()
            yield "never"
        except asyncio.CancelledError:
            seen.append("CancelledError")
            raise
        except GeneratorExit:
            seen.append("GeneratorExit")
            raise

    async with AsyncioBridge.open() as bridge:
        for _ in range(20):  # no timing makes it land on the yield
            seen.clear()
            stream = bridge.iterate(tokens())
            assert await stream.__anext__() == "one"
            await stream.aclose()
            assert seen == ["CancelledError"]


async def test_asyncio_code_can_await_trio_code() -> None:
    async def on_trio(x: int) -> str:
        await trio.lowlevel.checkpoint()
        return f"trio {x} {trio.lowlevel.current_task().name != ''}"

    async def from_asyncio() -> str:
        return await run_on_trio(on_trio, 7)

    async with AsyncioBridge.open() as bridge:
        assert await bridge.run(from_asyncio) == "trio 7 True"


async def test_a_task_ignoring_cancellation_is_abandoned_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(asyncio_bridge, "CANCEL_GRACE", 0.05)
    release = asyncio.Event()
    started = trio.Event()
    token = trio.lowlevel.current_trio_token()

    async def stubborn() -> None:
        token.run_sync_soon(started.set)
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    async with AsyncioBridge.open() as bridge:
        with trio.move_on_after(0.05):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bridge.run, stubborn)
                await started.wait()
                nursery.cancel_scope.cancel()
        assert any("ignored its cancellation" in r.getMessage() for r in caplog.records
                   if r.levelno == logging.WARNING)
        bridge.loop.call_soon_threadsafe(release.set)
