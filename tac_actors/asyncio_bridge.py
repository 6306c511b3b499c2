"""Run asyncio code from the trio engine: :class:`AsyncioBridge`.

The engine is trio; the Python agent ecosystem (OpenAI Agents SDK, LangChain, vendor
SDKs) is mostly asyncio. With ``TAC(config, asyncio=True)`` (or ``TAC_ASYNCIO=1``) every
async callback and async tool runs as a task on a real asyncio event loop, and the trio
side waits for it without blocking other conversations.

Where that loop lives:

* under ``trio.run`` (``tac-actors serve``, :func:`~tac_actors.testing.open_harness`,
  your own nursery), :meth:`AsyncioBridge.open` starts a private loop in one daemon
  thread; pure-trio conversations never touch it, so they keep their speed;
* under an asyncio host (:func:`tac_actors.asgi.asgi` runs the engine as a trio guest on
  uvicorn's loop), :meth:`AsyncioBridge.on_host` uses the host's loop itself.

Cancellation crosses the bridge: when the trio caller is cancelled (a barge-in, a
deadline, a hang-up) the asyncio task is cancelled (``CancelledError`` is raised at the
``await`` it is parked on) and the caller returns only once the task has finished, or
after :data:`CANCEL_GRACE` seconds if the task ignores the cancellation (it is then
abandoned, with a warning).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

__all__ = [
    "CANCEL_GRACE",
    "AsyncioBridge",
    "AsyncioCallbackError",
    "current_bridge",
    "set_current_bridge",
]

log = logging.getLogger("tac_actors")

T = TypeVar("T")

#: seconds a cancelled asyncio task gets to finish before the trio side gives up on it
CANCEL_GRACE = 5.0

_CURRENT: trio.lowlevel.RunVar[AsyncioBridge | None] = trio.lowlevel.RunVar(
    "tac_actors_asyncio_bridge", default=None)


def current_bridge() -> AsyncioBridge | None:
    """The bridge of this trio run (set while an asyncio-mode runtime runs), or ``None``."""
    return _CURRENT.get()


def set_current_bridge(bridge: AsyncioBridge | None) -> None:
    _CURRENT.set(bridge)


class AsyncioCallbackError(RuntimeError):
    """App code needed an event loop it did not get (asyncio code in trio mode, or trio
    code in asyncio mode). The message says which switch to flip."""


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _invoke(fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    # called inside the loop, so code before the first await sees a running loop too
    return await fn(*args)


class AsyncioBridge:
    """Runs coroutines and async iterators on one asyncio loop, for trio callers.

    Methods are called from trio (any task of the run that opened the bridge).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @classmethod
    @asynccontextmanager
    async def open(cls) -> AsyncIterator[AsyncioBridge]:
        """A private asyncio loop in a daemon thread, for the block. On exit, tasks still
        on the loop are cancelled, async generators are shut down and the thread ends."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="tac-asyncio", daemon=True)
        thread.start()
        await trio.to_thread.run_sync(started.wait)
        bridge = cls(loop)
        try:
            yield bridge
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_stop, loop, thread)

    @classmethod
    def on_host(cls, loop: asyncio.AbstractEventLoop | None = None) -> AsyncioBridge:
        """A bridge onto the asyncio loop trio runs as a guest of (the caller owns it)."""
        return cls(loop if loop is not None else asyncio.get_running_loop())

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)`` as an asyncio task; ``fn`` itself is called on the loop.
        Returns its result or raises its exception. See the module for cancellation."""
        return await self._run_task(_invoke, fn, args)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await an asyncio awaitable (e.g. a coroutine object) as an asyncio task."""
        return await self._run_task(_await, awaitable)

    def iterate(self, iterable: Any) -> AsyncioIterator:
        """A trio async iterator over an asyncio async iterable: each item is fetched by
        an asyncio task; closing it closes the asyncio one on its loop."""
        return AsyncioIterator(self, iterable)

    async def _run_task(self, start: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        holder: list[asyncio.Task[T]] = []

        def wake(_: object) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:  # pragma: no cover - the trio run is gone
                pass

        def create() -> None:
            task = self.loop.create_task(start(*args))
            holder.append(task)
            task.add_done_callback(wake)

        self.loop.call_soon_threadsafe(create)
        try:
            await done.wait()
        except trio.Cancelled:
            # create() ran before this callback: the loop runs callbacks in order
            self.loop.call_soon_threadsafe(lambda: holder[0].cancel())
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CANCEL_GRACE):
                    await done.wait()
            if not done.is_set():
                log.warning("an asyncio task ignored its cancellation for %.0f s; abandoned",
                            CANCEL_GRACE)
            raise
        task = holder[0]
        if task.cancelled():
            raise RuntimeError("the asyncio task was cancelled from the asyncio side")
        return task.result()


class AsyncioIterator:
    """Trio-side view of an asyncio async iterator (see :meth:`AsyncioBridge.iterate`)."""

    def __init__(self, bridge: AsyncioBridge, iterable: Any) -> None:
        self._bridge = bridge
        self._iterable = iterable
        self._iterator: Any = None

    def __aiter__(self) -> AsyncioIterator:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._iterable.__aiter__()
        return await self._bridge.run(self._iterator.__anext__)

    async def aclose(self) -> None:
        """Close the asyncio iterator on its loop (bounded by :data:`CANCEL_GRACE` when
        the caller is being cancelled)."""
        iterator = self._iterator if self._iterator is not None else self._iterable
        aclose = getattr(iterator, "aclose", None)
        if aclose is None:
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_GRACE):
            await self._bridge.run(aclose)


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    async def drain() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await loop.shutdown_asyncgens()

    future = asyncio.run_coroutine_threadsafe(drain(), loop)
    try:
        future.result(timeout=CANCEL_GRACE)
    except Exception:  # pragma: no cover - a task that will not die
        log.warning("asyncio loop: tasks did not finish on shutdown", exc_info=True)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
