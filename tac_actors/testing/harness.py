"""Run a :class:`~tac_actors.TAC` in-process and place simulated calls to it.

No sockets, no threads: the voice channel is served over memory transports inside the
test's own trio run, so ``MockClock`` and ``wait_all_tasks_blocked`` reach everything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import trio

from tac_actors.actors import ActorCell
from tac_actors.channels.transport import Transport, memory_transport_pair
from tac_actors.runtime import Runtime
from tac_actors.tac import TAC
from tac_actors.testing.caller import SimulatedCaller
from tac_actors.testing.media_caller import SimulatedMediaCaller
from tac_actors.testing.wire import fast_transport_pair

__all__ = ["GatedTransport", "Harness", "open_harness"]


class Harness:
    """A running runtime plus a nursery for calls. Build it with :func:`open_harness`."""

    def __init__(self, runtime: Runtime, nursery: trio.Nursery) -> None:
        self.runtime = runtime
        self.supervisor = runtime.supervisor
        self._nursery = nursery

    @asynccontextmanager
    async def call(self, *, setup: bool = True,
                   wrap: Callable[[Transport], Transport] | None = None,
                   wire: Literal["memory", "websocket", "socket"] = "memory",
                   **caller_options: Any) -> AsyncIterator[SimulatedCaller]:
        """Place a call. On exit the caller hangs up (if the call is still up) and the
        block waits until the server side has finished with the socket.

        ``wire="memory"`` passes frames as Python objects; ``wire="websocket"`` runs the
        fast engine's own transport over real WebSocket framing in memory, and
        ``wire="socket"`` the same over a real socket pair
        (:func:`~tac_actors.testing.wire.fast_transport_pair`). ``wrap`` wraps the
        server's end of the socket (e.g. in a :class:`GatedTransport` to simulate a slow
        network)."""
        server_end: Transport
        client_end: Transport
        if wire != "memory":
            server_end, client_end = fast_transport_pair(socket=wire == "socket")
        else:
            server_end, client_end = memory_transport_pair()
        if wrap is not None:
            server_end = wrap(server_end)
        caller = SimulatedCaller(client_end, **caller_options)
        served = trio.Event()

        async def serve() -> None:
            try:
                await self.runtime.voice.handle(server_end)
            finally:
                served.set()

        self._nursery.start_soon(serve)
        if setup:
            await caller.setup()
        try:
            yield caller
        finally:
            # bounded: a server side that hangs fails the test instead of hanging it
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 30):
                if not served.is_set():
                    await client_end.close(1000, "caller hung up")
                await served.wait()

    @asynccontextmanager
    async def media_call(self, *, start: bool = True,
                         wrap: Callable[[Transport], Transport] | None = None,
                         **caller_options: Any) -> AsyncIterator[SimulatedMediaCaller]:
        """Place a speech-to-speech call (Twilio Media Streams, served by
        ``runtime.media``) over memory transports. On exit the caller hangs up (if the
        call is still up) and the block waits until the server side is done. ``wrap``
        wraps the server's end (e.g. in a :class:`GatedTransport`)."""
        server_end: Transport
        server_end, client_end = memory_transport_pair()
        if wrap is not None:
            server_end = wrap(server_end)
        caller = SimulatedMediaCaller(client_end, **caller_options)
        served = trio.Event()

        async def serve() -> None:
            try:
                await self.runtime.media.handle(server_end)
            finally:
                served.set()

        self._nursery.start_soon(serve)
        if start:
            await caller.start()
        try:
            yield caller
        finally:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 30):
                if not served.is_set():
                    await client_end.close(1000, "caller hung up")
                await served.wait()

    def cell(self, caller: SimulatedCaller | SimulatedMediaCaller) -> ActorCell:
        """The actor cell of a live call (raises ``KeyError`` when it is gone)."""
        cell = self.supervisor.get(caller.call_sid)
        if cell is None:
            raise KeyError(caller.call_sid)
        return cell

    async def shutdown(self, grace: float | None = None) -> None:
        await self.runtime.shutdown(grace)


class GatedTransport:
    """Wraps a transport so sends park while ``gate`` is closed (a stalled network)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.open = trio.Event()
        self.open.set()

    def stall(self) -> None:
        self.open = trio.Event()

    def release(self) -> None:
        self.open.set()

    async def receive(self) -> str | bytes:
        return await self.inner.receive()

    async def send(self, text: str) -> None:
        await self.open.wait()
        await self.inner.send(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.close(code, reason)


@asynccontextmanager
async def open_harness(tac: TAC) -> AsyncIterator[Harness]:
    """Run ``tac`` for the block (see :meth:`Runtime.open` for what leaving does)."""
    async with Runtime.open(tac) as runtime, trio.open_nursery() as nursery:
        yield Harness(runtime, nursery)
        await runtime.shutdown()
