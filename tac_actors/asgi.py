"""Mount a :class:`~tac_actors.TAC` into an asyncio ASGI app (FastAPI, Starlette) served
by uvicorn or any asyncio ASGI server::

    from fastapi import FastAPI
    from tac_actors.asgi import asgi

    tac_app = asgi(tac)
    app = FastAPI(lifespan=tac_app.lifespan)  # optional: start at startup, drain at exit
    app.mount("/tac", tac_app)                 # /tac/twiml, /tac/ws, /tac/webhook, ...

The engine (actors, routes, voice WebSocket) is trio. It runs as a trio *guest* on the
server's asyncio loop (:func:`trio.lowlevel.start_guest_run`), in the same thread: each
ASGI call is handed to the engine's routes in trio, whose ``receive``/``send`` run on
the host loop. In asyncio mode (``TAC(asyncio=True)``), async callbacks run as tasks on
that same host loop, next to your FastAPI code.

The engine starts with the app's lifespan when you pass ``lifespan=tac_app.lifespan``
(Starlette does not forward lifespan events to mounted apps), otherwise on the first
request; without the lifespan, conversations are not drained at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import outcome
import trio

from tac_actors.asyncio_bridge import AsyncioBridge
from tac_actors.server.app import create_app
from tac_actors.tac import TAC

__all__ = ["TrioGuestASGI", "asgi"]

log = logging.getLogger("tac_actors.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def asgi(tac: TAC) -> TrioGuestASGI:
    """An ASGI app serving ``tac``'s routes (TwiML, voice WebSocket, webhooks, health)
    for an asyncio server. See the module for how it runs."""
    return TrioGuestASGI(create_app(tac), tac)


class TrioGuestASGI:
    """Runs a trio ASGI app (``inner``) in a trio guest run on the calling asyncio loop."""

    def __init__(self, inner: Any, tac: TAC | None = None) -> None:
        self.inner = inner
        self.tac = tac
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._bridge: AsyncioBridge | None = None
        self._started: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._stop: trio.Event | None = None

    # -- lifecycle (asyncio side) ------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine on the running loop (once; later calls wait for the first)."""
        if self._started is None:
            loop = asyncio.get_running_loop()
            self._loop = loop
            self._started = loop.create_future()
            self._done = loop.create_future()
            trio.lowlevel.start_guest_run(
                self._main,
                run_sync_soon_threadsafe=loop.call_soon_threadsafe,
                run_sync_soon_not_threadsafe=loop.call_soon,
                done_callback=self._finished,
                host_uses_signal_set_wakeup_fd=True,
            )
        await asyncio.shield(self._started)

    async def aclose(self) -> None:
        """Drain conversations and stop the engine; returns when the guest run is over."""
        if self._done is None:
            return
        if self._token is not None and self._stop is not None:
            self._token.run_sync_soon(self._stop.set)
        await asyncio.shield(self._done)

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """For ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)``."""
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    def _finished(self, result: outcome.Outcome[None]) -> None:
        assert self._done is not None and self._started is not None
        if isinstance(result, outcome.Error):
            log.error("the TAC engine stopped with an error", exc_info=result.error)
            if not self._started.done():
                self._started.set_exception(result.error)
        if not self._done.done():
            self._done.set_result(None)

    # -- the guest run (trio side) -----------------------------------------------------------

    async def _main(self) -> None:
        assert self._loop is not None and self._started is not None
        self._token = trio.lowlevel.current_trio_token()
        self._bridge = AsyncioBridge.on_host(self._loop)
        self._stop = trio.Event()
        tac = self.tac
        if tac is not None and tac.config.asyncio:
            tac.bridge = self._bridge  # callbacks run on the host loop itself
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                to_app, app_in = trio.open_memory_channel[Message](4)
                app_out, from_app = trio.open_memory_channel[Message](4)
                nursery.start_soon(self._lifespan, app_in, app_out)
                await to_app.send({"type": "lifespan.startup"})
                answer = await from_app.receive()
                if answer["type"] != "lifespan.startup.complete":
                    raise RuntimeError(f"the TAC app did not start: {answer}")
                self._loop.call_soon(_resolve, self._started)
                await self._stop.wait()
                await to_app.send({"type": "lifespan.shutdown"})
                await from_app.receive()
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self._bridge.close()
            if tac is not None and tac.bridge is self._bridge:
                tac.bridge = None

    async def _lifespan(self, app_in: trio.MemoryReceiveChannel[Message],
                        app_out: trio.MemorySendChannel[Message]) -> None:
        async def receive() -> Message:
            return await app_in.receive()

        async def send(message: Message) -> None:
            await app_out.send(message)

        await self.inner({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send,
                     scope_box: list[trio.CancelScope], done: asyncio.Future[None]) -> None:
        bridge = self._bridge
        assert bridge is not None

        async def trio_receive() -> Message:
            return await bridge.run(receive)

        async def trio_send(message: Message) -> None:
            await bridge.run(send, message)

        result: outcome.Outcome[None]
        with trio.CancelScope() as cancel_scope:
            scope_box.append(cancel_scope)
            result = await outcome.acapture(self.inner, scope, trio_receive, trio_send)
        if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
            result = outcome.Value(None)  # cancelled from the asyncio side or at shutdown
        assert self._loop is not None
        self._loop.call_soon(_settle, done, result)

    # -- ASGI entry (asyncio side) -------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._own_lifespan(receive, send)
            return
        await self.start()
        nursery, token = self._nursery, self._token
        if nursery is None or token is None:
            raise RuntimeError("the TAC engine is not running")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        scope_box: list[trio.CancelScope] = []
        token.run_sync_soon(nursery.start_soon, self._serve, scope, receive, send, scope_box,
                            done)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # the server gave up on this request/socket: stop the trio side, then go
            token.run_sync_soon(lambda: scope_box and scope_box[0].cancel())
            await asyncio.shield(done)
            raise

    async def _own_lifespan(self, receive: Receive, send: Send) -> None:
        """When served directly (not mounted): the server's lifespan starts and stops us."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _settle(future: asyncio.Future[None], result: outcome.Outcome[None]) -> None:
    if future.done():
        return
    if isinstance(result, outcome.Error):
        future.set_exception(result.error)
    else:
        future.set_result(None)
