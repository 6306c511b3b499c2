"""How app code is called: hooks, tools and streamed replies, whatever their flavour.

* **trio coroutines** (the default mode) are awaited inline: the fast path, unchanged.
* **asyncio coroutines and async generators** (asyncio mode: ``TAC(config,
  asyncio=True)`` or ``TAC_ASYNCIO=1``) run as tasks on an asyncio loop through
  :class:`~tac_actors.asyncio_bridge.AsyncioBridge`; a returned async iterator is
  iterated there too. Cancellation reaches the asyncio task.
* **sync functions** run in a worker thread (``trio.to_thread.run_sync``), at most
  ``TACConfig.worker_threads`` at once, so a blocking call (``requests.post``) never
  stalls other conversations. A thread cannot be interrupted: when the caller is
  cancelled (barge-in, deadline, hang-up) it stops waiting at once and the function's
  result is discarded when it eventually returns. A sync function runs outside trio, so it
  must not call trio APIs directly (use ``trio.from_thread.run_sync``). If it returns an
  awaitable or an async iterator, that is awaited/iterated in the current mode.

Under :class:`trio.testing.MockClock` (the test kit's fake clock), the run is not idle
while app code runs outside trio (a worker thread, an asyncio task): the clock does not
jump to the next deadline meanwhile, and ``wait_all_tasks_blocked`` waits for that code.

A callback that needs the other event loop never fails quietly: the error is an
:class:`~tac_actors.asyncio_bridge.AsyncioCallbackError` naming the switch to flip (and it
reaches the log and ``on_error`` as every callback error does).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import trio

from tac_actors.asyncio_bridge import (
    AsyncioBridge,
    AsyncioCallbackError,
    current_bridge,
)
from tac_actors.asyncio_bridge import outside_trio as _outside

__all__ = ["Hook", "Kind", "call_hook", "call_tool", "current_limiter", "in_thread",
           "kind_of", "on_asyncio", "set_current_limiter", "trio_native"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: default cap on sync callbacks and tools running at once in worker threads
DEFAULT_WORKER_THREADS = 40

_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter | None] = trio.lowlevel.RunVar(
    "tac_actors_worker_limiter", default=None)


def current_limiter() -> trio.CapacityLimiter:
    """The worker-thread limiter of this trio run (trio's default one if no runtime set
    its own)."""
    limiter = _LIMITER.get()
    return limiter if limiter is not None else trio.to_thread.current_default_thread_limiter()


def set_current_limiter(limiter: trio.CapacityLimiter | None) -> None:
    _LIMITER.set(limiter)


def trio_native(fn: F) -> F:
    """Mark ``fn`` (a function, or a class whose instances are called) as trio code that
    is cheap to call: it is called inline on trio in every mode, never in a thread nor on
    asyncio, and what it returns is awaited/iterated on trio. The built-in LLM agents and
    tools carry this mark."""
    fn.__tac_trio_native__ = True  # type: ignore[attr-defined]
    return fn


async def in_thread(fn: Callable[..., T], *args: Any,
                    limiter: trio.CapacityLimiter | None = None) -> T:
    """``fn(*args)`` in a worker thread under ``limiter`` (default
    :func:`current_limiter`); cancellation abandons the thread (its result is
    discarded)."""
    return await _outside(partial(trio.to_thread.run_sync, fn, *args,
                                  limiter=limiter or current_limiter(),
                                  abandon_on_cancel=True))


async def on_asyncio(bridge: AsyncioBridge, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await _outside(bridge.run, fn, *args)


async def on_asyncio_wait(bridge: AsyncioBridge, awaitable: Awaitable[T]) -> T:
    return await _outside(bridge.wait, awaitable)


class Kind(enum.Enum):
    NATIVE = "native"  # marked with trio_native: inline on trio
    ASYNC = "async"  # coroutine function
    AGEN = "agen"  # async generator function
    SYNC = "sync"  # anything else: runs in a worker thread


def kind_of(fn: Callable[..., Any]) -> Kind:
    """What calling ``fn`` gives: decided once, when a hook or tool is registered."""
    if getattr(fn, "__tac_trio_native__", False):
        return Kind.NATIVE
    call = None if inspect.isroutine(fn) else getattr(type(fn), "__call__", None)  # noqa: B004
    for candidate in (fn, call):
        if candidate is None:
            continue
        if inspect.iscoroutinefunction(candidate):
            return Kind.ASYNC
        if inspect.isasyncgenfunction(candidate):
            return Kind.AGEN
    return Kind.SYNC


class Hook:
    """A registered callback and its :class:`Kind`."""

    __slots__ = ("fn", "kind", "name")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.kind = kind_of(fn)
        self.name = name


async def call_hook(hook: Hook, bridge: AsyncioBridge | None,
                    limiter: trio.CapacityLimiter | None, *args: Any) -> Any:
    """Call ``hook`` with ``args`` in the mode given by ``bridge`` (``None``: trio mode);
    see the module for each kind. A returned async iterator comes back ready for trio."""
    kind = hook.kind
    if kind is Kind.NATIVE:
        result = hook.fn(*args)
        return (await result) if inspect.isawaitable(result) else result
    try:
        if bridge is None:
            if kind is Kind.ASYNC:
                return await hook.fn(*args)
            if kind is Kind.AGEN:
                return _Translating(hook.fn(*args), hook.name)
            result = await in_thread(_call_sync, hook.fn, args, limiter=limiter)
            if inspect.isawaitable(result):
                result = await result
            if hasattr(result, "__aiter__"):
                return _Translating(result, hook.name)
            return result
        if kind is Kind.ASYNC:
            result = await on_asyncio(bridge, hook.fn, *args)
        elif kind is Kind.AGEN:
            result = hook.fn(*args)
        else:
            result = await in_thread(_call_sync, hook.fn, args, limiter=limiter)
            if inspect.isawaitable(result):
                result = await on_asyncio_wait(bridge, result)
        if hasattr(result, "__aiter__") and not isinstance(result, str):
            return _Translating(bridge.iterate(result), hook.name, asyncio_mode=True,
                                hold=True)
        return result
    except Exception as exc:
        _reraise(exc, hook.name, asyncio_mode=bridge is not None)
        raise


async def call_tool(fn: Callable[..., Any], name: str, args: Sequence[Any],
                    kwargs: dict[str, Any]) -> Any:
    """Call a tool function in this run's mode (see :func:`current_bridge`); errors that
    come from the wrong event loop are translated as for hooks."""
    bridge = current_bridge()
    kind = kind_of(fn)
    label = f"tool {name}"
    if kind is Kind.NATIVE:
        result = fn(*args, **kwargs)
        return (await result) if inspect.isawaitable(result) else result
    try:
        if kind is Kind.ASYNC:
            if bridge is None:
                return await fn(*args, **kwargs)
            return await on_asyncio(bridge, _kwcall, fn, args, kwargs)
        if kind is Kind.AGEN:
            raise TypeError(f"{label} is an async generator; a tool must return a value")
        result = await in_thread(_call_sync_kw, fn, args, kwargs)
        if inspect.isawaitable(result):
            result = await (result if bridge is None else on_asyncio_wait(bridge, result))
        return result
    except Exception as exc:
        _reraise(exc, label, asyncio_mode=bridge is not None)
        raise


async def _kwcall(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
                  ) -> Any:
    return await fn(*args, **kwargs)


def _call_sync(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(*args)


def _call_sync_kw(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
                  ) -> Any:
    return fn(*args, **kwargs)


class _Translating:
    """An async iterator that translates wrong-event-loop errors of the one it wraps."""

    __slots__ = ("_asyncio_mode", "_hold", "_inner", "_iterator", "_name")

    def __init__(self, inner: Any, name: str, *, asyncio_mode: bool = False,
                 hold: bool = False) -> None:
        self._inner = inner
        self._iterator: Any = None
        self._name = name
        self._asyncio_mode = asyncio_mode
        self._hold = hold

    def __aiter__(self) -> _Translating:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._inner.__aiter__()
        try:
            if self._hold:
                return await _outside(self._iterator.__anext__)
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            _reraise(exc, self._name, asyncio_mode=self._asyncio_mode)
            raise

    async def aclose(self) -> None:
        target = self._iterator if self._iterator is not None else self._inner
        aclose = getattr(target, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            await trio.lowlevel.checkpoint()


_ASYNCIO_SYMPTOMS = ("no running event loop", "no current event loop",
                     "unrecognized yield message")
_TRIO_SYMPTOMS = ("must be called from async context", "Task got bad yield")


def _reraise(exc: Exception, name: str, *, asyncio_mode: bool) -> None:
    """Raise the translation of ``exc`` if there is one (the caller re-raises ``exc``)."""
    new = translate(exc, name, asyncio_mode=asyncio_mode)
    if new is not exc:
        raise new from exc


def translate(exc: Exception, name: str, *, asyncio_mode: bool) -> Exception:
    """``exc`` itself, or an :class:`AsyncioCallbackError` when ``exc`` (or what caused
    it) shows that ``name`` ran code for the other event loop."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen and len(seen) < 8:
        seen.add(id(cause))
        text = str(cause)
        if not asyncio_mode and (type(cause).__name__ == "AsyncLibraryNotFoundError"
                                 or any(s in text for s in _ASYNCIO_SYMPTOMS)):
            return AsyncioCallbackError(
                f"{name} ran asyncio code ({type(cause).__name__}: {text[:120]}), but "
                "callbacks run on trio. Turn on asyncio mode: TAC(config, asyncio=True) or "
                "the environment variable TAC_ASYNCIO=1.")
        if asyncio_mode and any(s in text for s in _TRIO_SYMPTOMS):
            return AsyncioCallbackError(
                f"{name} ran trio code ({type(cause).__name__}: {text[:120]}), but asyncio "
                "mode is on (TAC(asyncio=True) / TAC_ASYNCIO=1), which runs async callbacks "
                "on asyncio: use asyncio APIs there, or turn asyncio mode off.")
        cause = cause.__cause__ or cause.__context__
    return exc
