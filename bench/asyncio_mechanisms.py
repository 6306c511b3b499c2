"""Round trip of one asyncio coroutine called from trio, by mechanism, one per process
(importing trio_asyncio changes asyncio for the whole process)::

    python bench/asyncio_mechanisms.py A|B|C|N

A: an asyncio loop in a thread (what :mod:`tac_actors.asyncio_bridge` does under
``trio.run``); B: trio-asyncio (``pip install trio-asyncio``); C: trio as a guest on an
asyncio host, the coroutine a host task (what :mod:`tac_actors.asgi` does), then a bare
trio checkpoint in guest mode; N: a bare trio checkpoint under ``trio.run``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import trio

N = 5000
WARM = 200


async def work() -> int:
    await asyncio.sleep(0)
    return 1


def report(name: str, seconds: float) -> None:
    version = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    print(f"{name:34s} {seconds / N * 1e6:7.1f} us/call  ({version})")


async def timed(name: str, call: Any) -> None:
    for _ in range(WARM):
        await call()
    start = time.perf_counter()
    for _ in range(N):
        await call()
    report(name, time.perf_counter() - start)


async def thread_loop() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    token = trio.lowlevel.current_trio_token()

    async def call() -> int:
        done = trio.Event()
        future = asyncio.run_coroutine_threadsafe(work(), loop)
        future.add_done_callback(lambda _: token.run_sync_soon(done.set))
        await done.wait()
        return future.result()

    await timed("A asyncio loop in a thread", call)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


async def trio_asyncio_loop() -> None:
    import trio_asyncio

    async with trio_asyncio.open_loop():
        await timed("B trio-asyncio aio_as_trio", trio_asyncio.aio_as_trio(work))


def guest() -> None:
    async def trio_main() -> None:
        loop = asyncio.get_running_loop()
        token = trio.lowlevel.current_trio_token()

        async def call() -> int:
            done = trio.Event()
            task = loop.create_task(work())
            task.add_done_callback(lambda _: token.run_sync_soon(done.set))
            await done.wait()
            return task.result()

        await timed("C trio guest on asyncio host", call)
        await timed("C' trio checkpoint in guest mode", trio.lowlevel.checkpoint)

    async def host() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        trio.lowlevel.start_guest_run(
            trio_main, run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result, host_uses_signal_set_wakeup_fd=True)
        (await done).unwrap()

    asyncio.run(host())


async def native() -> None:
    await timed("N trio checkpoint under trio.run", trio.lowlevel.checkpoint)


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "A"
    if which == "A":
        trio.run(thread_loop)
    elif which == "B":
        trio.run(trio_asyncio_loop)
    elif which == "C":
        guest()
    else:
        trio.run(native)


if __name__ == "__main__":
    main()
