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
import functools
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import outcome
import sniffio
import trio
from trio.testing import MockClock

__all__ = [
    "CANCEL_GRACE",
    "AsyncioBridge",
    "AsyncioCallbackError",
    "current_bridge",
    "outside_trio",
    "run_on_trio",
    "set_current_bridge",
    "trio_side",
]

log = logging.getLogger("tac_actors")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: seconds a cancelled asyncio task gets to finish before the trio side gives up on it
CANCEL_GRACE = 5.0

_CURRENT: trio.lowlevel.RunVar[AsyncioBridge | None] = trio.lowlevel.RunVar(
    "tac_actors_asyncio_bridge", default=None)


def current_bridge() -> AsyncioBridge | None:
    """The bridge of this trio run (set while an asyncio-mode runtime runs), or ``None``."""
    return _CURRENT.get()


def set_current_bridge(bridge: AsyncioBridge | None) -> None:
    _CURRENT.set(bridge)


#: the trio run each bridged asyncio loop belongs to (for calls back into trio)
_TOKENS: dict[asyncio.AbstractEventLoop, trio.lowlevel.TrioToken] = {}


async def run_on_trio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """From asyncio code on a bridged loop: ``await fn(*args)`` in the engine's trio run
    and return its result (raises :class:`RuntimeError` on a loop that is not bridged).
    The asyncio caller waits in an executor thread; if it is cancelled, the trio call
    still runs to its end."""
    loop = asyncio.get_running_loop()
    token = _TOKENS.get(loop)
    if token is None:
        raise RuntimeError("this asyncio loop is not bridged to a tac_actors engine")
    return await loop.run_in_executor(
        None, lambda: trio.from_thread.run(fn, *args, trio_token=token))


def trio_side(method: F) -> F:
    """Decorate an ``async def`` of the engine so asyncio callers can await it too: on a
    bridged asyncio loop it is run on trio through :func:`run_on_trio`; under trio it
    is called directly."""
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if sniffio.current_async_library() == "asyncio":
            return await run_on_trio(functools.partial(method, *args, **kwargs))
        return await method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


async def outside_trio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await fn(*args)``, where ``fn`` waits for work outside trio (a thread, an asyncio
    task). Under :class:`~trio.testing.MockClock` the waiting task keeps checkpointing
    until the work is done, so the run is not idle meanwhile: the clock does not jump to
    the next deadline and ``wait_all_tasks_blocked`` waits for the work, which keeps
    tests deterministic. Otherwise it simply awaits."""
    if not isinstance(trio.lowlevel.current_clock(), MockClock):
        return await fn(*args)
    box: list[outcome.Outcome[T]] = []

    async def work() -> None:
        box.append(await outcome.acapture(fn, *args))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(work)
        try:
            while not box:
                await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            # the work is being cancelled too (it may wait for the other side to stop):
            # stay busy until it has
            with trio.CancelScope(shield=True):
                while not box:
                    await trio.lowlevel.checkpoint()
            raise
    return box[0].unwrap()


class AsyncioCallbackError(RuntimeError):
    """App code needed an event loop it did not get (asyncio code in trio mode, or trio
    code in asyncio mode). The message says which switch to flip."""


def _same(awaitable: Awaitable[T]) -> Awaitable[T]:
    return awaitable


async def _entered(pending: _Pending[T], fn: Callable[..., Awaitable[T]], args: Sequence[Any]
                   ) -> T:
    # fn is called inside the loop, so code before its first await sees a running loop
    pending.started = True
    return await fn(*args)


class AsyncioBridge:
    """Runs coroutines and async iterators on one asyncio loop, for trio callers.

    Methods are called from trio (any task of the run that opened the bridge).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 token: trio.lowlevel.TrioToken | None = None) -> None:
        self.loop = loop
        _TOKENS[loop] = token or trio.lowlevel.current_trio_token()

    def close(self) -> None:
        """Forget the loop (calls back into trio from it fail from now on)."""
        _TOKENS.pop(self.loop, None)

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
        await outside_trio(trio.to_thread.run_sync, started.wait)
        bridge = cls(loop)
        try:
            yield bridge
        finally:
            bridge.close()
            with trio.CancelScope(shield=True):
                await outside_trio(trio.to_thread.run_sync, _stop, loop, thread)

    @classmethod
    def on_host(cls, loop: asyncio.AbstractEventLoop | None = None) -> AsyncioBridge:
        """A bridge onto the asyncio loop trio runs as a guest of (the caller owns it)."""
        return cls(loop if loop is not None else asyncio.get_running_loop())

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)`` as an asyncio task; ``fn`` itself is called on the loop.
        Returns its result or raises its exception. See the module for cancellation."""
        return await self._finish(self._start(fn, args))

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await an asyncio awaitable (e.g. a coroutine object) as an asyncio task."""
        return await self._finish(self._start(_same, (awaitable,)))

    def iterate(self, iterable: Any) -> AsyncioIterator:
        """A trio async iterator over an asyncio async iterable: each item is fetched by
        an asyncio task; closing it closes the asyncio one on its loop."""
        return AsyncioIterator(self, iterable)

    def _start(self, fn: Callable[..., Awaitable[T]], args: Sequence[Any]) -> _Pending[T]:
        """Create the task on the loop (from trio); the trio side waits with _finish."""
        pending: _Pending[T] = _Pending(trio.lowlevel.current_trio_token(), self.loop)

        def create() -> None:
            pending.task = self.loop.create_task(_entered(pending, fn, args))
            pending.task.add_done_callback(pending.wake)

        self.loop.call_soon_threadsafe(create)
        return pending

    async def _finish(self, pending: _Pending[T]) -> T:
        try:
            await pending.done.wait()
        except trio.Cancelled:
            await self._cancel(pending)
            pending.discard()
            raise
        return pending.result()

    async def _cancel(self, pending: _Pending[Any]) -> None:
        """Cancel the task and wait (shielded, at most CANCEL_GRACE) until it has ended."""
        # create() ran before this callback: the loop runs callbacks in order
        self.loop.call_soon_threadsafe(pending.cancel)
        with trio.CancelScope(shield=True):
            with trio.move_on_after(CANCEL_GRACE):
                await pending.done.wait()
        if not pending.done.is_set():
            log.warning("an asyncio task ignored its cancellation for %.0f s; abandoned",
                        CANCEL_GRACE)


class _Pending(Generic[T]):
    """One asyncio task started for trio: ``done`` is set (on trio) when it has ended."""

    __slots__ = ("done", "loop", "started", "task", "token")

    def __init__(self, token: trio.lowlevel.TrioToken, loop: asyncio.AbstractEventLoop
                 ) -> None:
        self.token = token
        self.loop = loop
        self.done = trio.Event()
        self.task: asyncio.Task[T] | None = None
        self.started = False

    def wake(self, _: object) -> None:
        try:
            self.token.run_sync_soon(self.done.set)
        except trio.RunFinishedError:  # pragma: no cover - the trio run is gone
            pass

    def cancel(self) -> None:  # on the loop
        task = self.task
        if task is None or task.done():
            return
        if not self.started:
            # let the task take its first step, so the cancellation lands where the code
            # waits (inside an async generator's __anext__, not before it)
            self.loop.call_soon(self.cancel)
            return
        task.cancel()

    def result(self) -> T:
        task = self.task
        assert task is not None and task.done()
        if task.cancelled():
            raise RuntimeError("the asyncio task was cancelled from the asyncio side")
        return task.result()

    def discard(self) -> None:
        """Mark an ended task's outcome as seen (no "never retrieved" warning)."""
        task = self.task
        if task is not None and task.done() and not task.cancelled():
            task.exception()


class AsyncioIterator:
    """Trio-side view of an asyncio async iterator (see :meth:`AsyncioBridge.iterate`).

    It fetches one item ahead: as soon as an item is handed over, the next ``__anext__``
    starts on the loop. So the asyncio generator is parked at an ``await`` (not at a
    ``yield``) whenever the consumer stops, and a cancellation (barge-in) reaches it as
    ``CancelledError`` where it waits, e.g. inside the OpenAI Agents SDK's
    ``stream_events()``, which then cancels its run. An item fetched ahead and never
    asked for is dropped. Closing cancels the fetch in flight, then closes the iterator.
    """

    def __init__(self, bridge: AsyncioBridge, iterable: Any) -> None:
        self._bridge = bridge
        self._iterable = iterable
        self._iterator: Any = None
        self._ahead: _Pending[Any] | None = None
        self._finished = False

    def __aiter__(self) -> AsyncioIterator:
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        if self._iterator is None:
            self._iterator = self._iterable.__aiter__()
        pending = self._ahead or self._bridge._start(self._iterator.__anext__, ())
        self._ahead = None
        try:
            value = await self._bridge._finish(pending)
        except BaseException:
            self._finished = True
            raise
        self._ahead = self._bridge._start(self._iterator.__anext__, ())
        return value

    async def aclose(self) -> None:
        """Cancel the fetch in flight, then close the asyncio iterator on its loop (each
        bounded by :data:`CANCEL_GRACE`, shielded)."""
        self._finished = True
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if not ahead.done.is_set():
                await self._bridge._cancel(ahead)
            ahead.discard()
        iterator = self._iterator if self._iterator is not None else self._iterable
        aclose = getattr(iterator, "aclose", None)
        if aclose is None:
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_GRACE):
            try:
                await self._bridge.run(aclose)
            except RuntimeError:  # still running: its fetch ignored the cancellation
                log.warning("an asyncio iterator could not be closed", exc_info=True)


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
