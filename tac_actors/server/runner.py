"""Serve a :class:`~tac_actors.TAC` with hypercorn's trio worker, inside your nursery.

``await nursery.start(serve, tac, "127.0.0.1", 0)`` returns the bound URLs. Shutdown is
graceful: when ``shutdown_trigger`` returns, conversations are drained first (running
turns finish within ``config.shutdown_grace``, sockets are closed with 1001), then
hypercorn stops.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Literal

import hypercorn.config
import hypercorn.trio
import trio
from websockets.http11 import Request

from tac_actors._logsafe import excerpt
from tac_actors.channels.media import MEDIA_WEBSOCKET_PATH
from tac_actors.hypercorn_guard import contain_connection_failures
from tac_actors.protocol.signature import public_url
from tac_actors.server.app import create_app, state_of
from tac_actors.server.fastws import FastTransport
from tac_actors.server.frontdoor import DoorLimits, FrontDoor
from tac_actors.server.worker_metrics import announce
from tac_actors.tac import TAC

__all__ = ["hypercorn_config", "serve"]

log = logging.getLogger("tac_actors.server")

#: after a drain, how long sockets get to finish their close handshakes
FINISH_CLOSES = 3.0
#: young-generation collections every 50,000 allocations instead of 700: with thousands
#: of live calls, collections dominated the CPU profile
GC_THRESHOLDS = (50_000, 20, 100)


class _NoRunningOn(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Running on ")


_BACKEND_LOG = logging.getLogger("hypercorn.backend")
_BACKEND_LOG.addFilter(_NoRunningOn())


def gc_thresholds() -> tuple[int, int, int]:
    """The GC thresholds to run with: ``TAC_GC_THRESHOLDS="a,b,c"`` or the default."""
    raw = os.environ.get("TAC_GC_THRESHOLDS", "").strip()
    if not raw:
        return GC_THRESHOLDS
    try:
        first, second, third = (int(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(f"TAC_GC_THRESHOLDS must be three integers, got {raw!r}") from None
    return first, second, third


def hypercorn_config(tac: TAC, host: str, port: int, *, websockets: bool = True
                     ) -> hypercorn.config.Config:
    """The hypercorn settings we run with (see the comments for why). ``websockets``:
    whether this hypercorn also serves the voice WebSocket (``engine="hypercorn"``)."""
    config = hypercorn.config.Config()
    config.bind = [f"{host}:{port}"]
    config.backlog = 4096  # the default of 100 slows bursts of calls
    config.accesslog = None
    # the fast engine's private back end logs as "hypercorn.backend", without its
    # "Running on http://127.0.0.1:<random port>" line (review: it read as a second address)
    config.errorlog = _BACKEND_LOG if not websockets else logging.getLogger("hypercorn.error")
    # our own frame limit answers 1009 with a log line; let bigger frames reach it
    config.websocket_max_message_size = max(tac.config.max_frame_bytes * 4, 1 << 20)
    config.graceful_timeout = tac.config.shutdown_grace + 2.0
    # no pings: hypercorn never checks pongs, and its ping task outlives a closed socket
    # (shutdown then waits the whole graceful_timeout). Quiet calls end by the
    # idle_timeout policy when one is set.
    config.websocket_ping_interval = None
    config.keep_alive_timeout = tac.config.http.keep_alive_timeout
    # Serving HTTP only (behind the fast front door), a client that sends nothing for
    # read_timeout is dropped (a trickled body is cut earlier by the app's body_timeout).
    # hypercorn's read timeout applies to every connection, WebSockets included: serving
    # voice too, it would end every call whose caller stays quiet that long.
    config.read_timeout = None if websockets else tac.config.http.read_timeout  # type: ignore[assignment]
    return config


async def serve(tac: TAC, host: str = "0.0.0.0", port: int = 8000, *,
                engine: Literal["fast", "hypercorn"] = "fast",
                door_limits: DoorLimits | None = None,
                shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
                sock: socket.socket | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``tac`` until ``shutdown_trigger`` returns (or forever).

    ``engine="fast"`` (the default) serves voice WebSockets on our own trio code and
    hands every other request to hypercorn (see :mod:`tac_actors.server.fastws`);
    ``engine="hypercorn"`` lets hypercorn serve everything. ``door_limits`` bounds the
    fast engine's front door (connections, head timeout, keepalive pings).

    ``sock``: a bound TCP socket to serve on instead of binding ``host:port`` (a worker
    process of ``--workers N``, see :mod:`tac_actors.server.workers`); ``serve`` owns it
    from then on. With it, the fast engine stops accepting as soon as the drain begins
    (the port's other workers take the new connections).
    """
    contain_connection_failures()
    app = create_app(tac)
    state = state_of(app)
    accepting = trio.CancelScope()

    async def drain_after_trigger() -> None:
        if shutdown_trigger is None:
            await trio.sleep_forever()
        else:
            await shutdown_trigger()
        if sock is not None:
            accepting.cancel()
        log.info("shutting down: draining conversations")
        await state.shutdown()

    if engine == "hypercorn":
        config = hypercorn_config(tac, host, port)
        if sock is not None:
            config.bind = [f"fd://{sock.detach()}"]  # hypercorn listens on it, owns it
        gc.freeze()

        class _Started:
            def started(self, binds: list[str]) -> None:
                local = next((b for b in binds if _is_loopback(
                    b.split("://", 1)[-1].rpartition(":")[0].strip("[]"))), None)
                if local is not None and state.runtime is not None:
                    state.runtime.local_base = local  # call-event callbacks, locally
                task_status.started(binds)

        await hypercorn.trio.serve(app, config, shutdown_trigger=drain_after_trigger,
                                   task_status=_Started())  # type: ignore[arg-type]
        return

    internal_stop = trio.Event()
    async with trio.open_nursery() as nursery:
        internal = await nursery.start(partial(
            hypercorn.trio.serve, app, hypercorn_config(tac, "127.0.0.1", 0, websockets=False),
            shutdown_trigger=internal_stop.wait))
        internal_host, _, internal_port = internal[0].split("://", 1)[1].rpartition(":")
        announce(internal_host, int(internal_port))  # to sibling workers, if any
        runtime = state.require_runtime()

        def serve_socket(transport: FastTransport, request: Request) -> Awaitable[None]:
            # not a coroutine itself: the check is synchronous, and the call's coroutine
            # is returned for the front door to await (one frame less per live call)
            if state.validator is not None:
                peer = _peer_address(transport)
                forwarded = state.trust.trusts(peer)
                url = public_url(scheme="ws", host=request.headers.get("Host", host),
                                 path_and_query=request.path, headers=dict(request.headers),
                                 public_domain=tac.config.voice_public_domain, websocket=True,
                                 forwarded=forwarded)
                if not state.validator.validate_websocket(
                        url, request.headers.get("X-Twilio-Signature")):
                    state.rejected.warning(peer, "WebSocket upgrade from %s with a bad or "
                                           "missing X-Twilio-Signature: 1008", excerpt(peer))
                    return transport.close(1008, "invalid signature")
            if request.path.split("?", 1)[0] == MEDIA_WEBSOCKET_PATH:
                return runtime.media.handle(transport)
            return runtime.voice.handle(transport)

        # the splices record their real clients where the routes look them up
        door = FrontDoor(voice_path=tac.config.voice_websocket_path,
                         internal=(internal_host, int(internal_port)),
                         max_frame_bytes=tac.config.max_frame_bytes, serve_socket=serve_socket,
                         limits=door_limits, peers=state.peers,
                         other_paths=frozenset({MEDIA_WEBSOCKET_PATH}))
        state.door = door
        if sock is None:
            listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
        else:
            sock.listen(4096)
            listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(sock))]
        bound = listeners[0].socket.getsockname()
        listening = trio.CancelScope()
        nursery.start_soon(_serve_until, listeners, door, listening, accepting)
        gc.freeze()  # what start-up allocated never needs a cyclic collection again
        gc.set_threshold(*gc_thresholds())
        base = f"http://{_host_for_url(bound[0])}:{bound[1]}"
        if _is_loopback(bound[0]):
            runtime.local_base = base  # call-event callbacks in local development
        task_status.started([base])
        await drain_after_trigger()
        with trio.move_on_after(FINISH_CLOSES):
            await door.wait_no_calls()  # drained calls finish their close handshakes
        listening.cancel()
        internal_stop.set()


async def _serve_until(listeners: list[trio.SocketListener], door: FrontDoor,
                       scope: trio.CancelScope, accepting: trio.CancelScope) -> None:
    """Accept until ``accepting`` is cancelled (which closes the listeners); serve the
    accepted connections and the keepalive sweep until ``scope`` is cancelled."""
    with scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(door.run_keepalive)
            with accepting:
                await trio.serve_listeners(door.handle, listeners, handler_nursery=nursery)


def _peer_address(transport: FastTransport) -> str | None:
    """The client address of a fast-path WebSocket (``None`` if it cannot be read: then
    no proxy header is believed). A transport's own ``peer`` attribute wins."""
    peer_attribute = getattr(transport, "peer", None)
    if isinstance(peer_attribute, str):
        return peer_attribute
    stream = getattr(transport, "_stream", None)
    try:
        peer = stream.socket.getpeername()  # type: ignore[union-attr]
    except (AttributeError, OSError):
        return None
    return str(peer[0]) if isinstance(peer, tuple) else None


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
