"""The front door: owns the public port on the fast engine and routes each connection.

* a WebSocket upgrade to the voice path is served here, in-process, through
  :class:`~tac_actors.server.fastws.FastTransport`;
* any other request (TwiML, webhooks, callbacks, health, a user's own routes) is spliced
  byte for byte to the quart-trio app, which hypercorn serves on a private loopback port
  (:mod:`tac_actors.server.splice`).

So one port serves everything, the quart app stays the single place where HTTP routes
live, and the actors and protocol code do not know which engine carries a call.

Every connection is a boundary: whatever escapes its handler is logged (rate-limited)
and closes that connection only (1011 for a voice socket), never the server. Limits:
``max_connections`` open at once (more are closed at accept), the request head within
``head_timeout`` and ``MAX_HEAD`` bytes, and a keepalive sweep every
``keepalive_interval`` seconds that pings silent voice sockets and closes those that do
not answer by the next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs
import trio
from websockets.http11 import Request
from websockets.protocol import Protocol
from websockets.server import ServerProtocol

from tac_actors.server.fastws import RECEIVE_SIZE, FastTransport
from tac_actors.server.splice import PeerMap, splice

__all__ = ["DoorLimits", "DoorStatistics", "FrontDoor"]

log = logging.getLogger("tac_actors.server")

MAX_HEAD = 16 * 1024


@attrs.frozen(kw_only=True)
class DoorLimits:
    """The front door's bounds (see the module docstring). ``None`` turns one off."""

    max_connections: int = 20_000
    head_timeout: float = 10.0
    keepalive_interval: float | None = 20.0


@attrs.frozen
class DoorStatistics:
    connections: int
    calls: int
    refused: int
    failed: int
    keepalive_closed: int


class _RateLimitedLog:
    """At most one line per ``every`` seconds per kind; the rest is counted into the next
    line."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._next: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def exception(self, kind: str, message: str, *args: object) -> None:
        now = trio.current_time()
        if now < self._next.get(kind, -1.0):
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        self._next[kind] = now + self.every
        skipped = self._skipped.pop(kind, 0)
        suffix = f" ({skipped} more since the last report)" if skipped else ""
        log.exception(message + suffix, *args)


def _forget_handshake(protocol: ServerProtocol) -> None:
    """Let the upgrade request go. ``ServerProtocol`` parses frames inside the generator
    that parsed the request, which keeps the request (headers and all, ~1.7 KB) alive for
    the life of the connection. Right after the handshake, with no frame bytes buffered,
    a fresh frame parser is the same parser without it. Skipped (harmlessly) if the
    library's internals are not as expected."""
    try:
        if protocol.reader.buffer:
            return
        parser = Protocol.parse(protocol)
        next(parser)
        protocol.parser = parser
    except Exception:  # a websockets version with other internals: keep its parser
        log.debug("websockets internals changed: the upgrade request stays referenced")


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    try:
        text = head.decode("latin-1")
        request_line, *lines = text.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
    except ValueError:
        return None
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


class FrontDoor:
    """Accepts connections on the public port and routes each one (see the module doc).

    ``voice_path`` is the WebSocket path served fast; ``serve_socket`` handles one
    accepted WebSocket (``request`` is the upgrade, for signature checks) and returns
    when the call is over; ``internal`` is the (host, port) of hypercorn.
    """

    def __init__(self, *, voice_path: str, internal: tuple[str, int], max_frame_bytes: int,
                 serve_socket: Callable[[FastTransport, Request], object],
                 limits: DoorLimits | None = None, peers: PeerMap | None = None,
                 other_paths: frozenset[str] = frozenset()) -> None:
        self.voice_path = voice_path
        #: more WebSocket paths served here (the media stream), handed to the same
        #: ``serve_socket``, which routes by ``request.path``
        self.socket_paths = frozenset({voice_path}) | other_paths
        self.internal = internal
        self.max_frame_bytes = max_frame_bytes
        self.serve_socket = serve_socket
        self.limits = limits or DoorLimits()
        #: the client address of each spliced connection, by the port it reaches
        #: hypercorn from (the app looks its peers up here)
        self.peers = peers if peers is not None else PeerMap()
        self.connections = 0
        self.calls = 0
        self._refused = 0
        self._failed = 0
        self._keepalive_closed = 0
        self._live: set[FastTransport] = set()
        self._no_calls = trio.Event()
        self._no_calls.set()
        self._errors = _RateLimitedLog()

    def statistics(self) -> DoorStatistics:
        return DoorStatistics(self.connections, self.calls, self._refused, self._failed,
                              self._keepalive_closed)

    async def wait_no_calls(self) -> None:
        """Wait until no voice socket is being served (used to finish a drain)."""
        await self._no_calls.wait()

    async def run_keepalive(self) -> None:
        """Sweep the live voice sockets every ``keepalive_interval`` seconds, forever (see
        :meth:`FastTransport.keepalive`). One task for all of them: an idle call holds no
        timer of its own."""
        interval = self.limits.keepalive_interval
        if interval is None:
            await trio.sleep_forever()
            return
        while True:
            await trio.sleep(interval)
            for count, transport in enumerate(list(self._live)):
                if not transport.keepalive():
                    self._keepalive_closed += 1
                if count % 256 == 255:
                    await trio.lowlevel.checkpoint()

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one accepted TCP connection until it closes. Never raises."""
        if self.connections >= self.limits.max_connections:
            self._refused += 1
            with trio.CancelScope(shield=True):
                await stream.aclose()
            return
        self.connections += 1
        try:
            buffer = b""
            with trio.move_on_after(self.limits.head_timeout):
                while b"\r\n\r\n" not in buffer and len(buffer) < MAX_HEAD:
                    data = await stream.receive_some(RECEIVE_SIZE)
                    if not data:
                        return
                    buffer += data
            if b"\r\n\r\n" not in buffer:
                return
            parsed = _parse_head(buffer.split(b"\r\n\r\n", 1)[0])
            voice = parsed is not None and self._is_voice_upgrade(*parsed)
            del parsed  # nothing of the request head outlives the hand-over
            if voice:
                await self._serve_websocket(stream, buffer)
            else:
                await splice(stream, buffer, self.internal, self.peers)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            self._failed += 1
            self._errors.exception("connection", "connection handler failed: closed it")
        finally:
            self.connections -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def _is_voice_upgrade(self, method: str, target: str, headers: dict[str, str]) -> bool:
        return (method == "GET" and target.split("?", 1)[0] in self.socket_paths
                and headers.get("upgrade", "").lower() == "websocket")

    async def _serve_websocket(self, stream: trio.SocketStream, buffer: bytes) -> None:
        protocol = ServerProtocol(max_size=self.max_frame_bytes * 4)
        protocol.receive_data(buffer)
        del buffer
        events = protocol.events_received()
        first = events.pop(0) if events else None
        if not isinstance(first, Request):
            protocol.send_response(protocol.reject(400, "bad WebSocket upgrade\n"))
            await stream.send_all(b"".join(protocol.data_to_send()))
            return
        pending: list[Request] = [first]
        del first
        response = protocol.accept(pending[0])
        protocol.send_response(response)
        accepted = response.status_code == 101
        del response
        transport = FastTransport(stream, protocol)
        if events:  # frames sent right behind the upgrade (clients should wait; some don't)
            transport._collect(list(events))
        del events
        _forget_handshake(protocol)
        await transport.flush()
        if not accepted:
            return
        self.calls += 1
        self._live.add(transport)
        self._no_calls = trio.Event() if self._no_calls.is_set() else self._no_calls
        try:
            # handed over without a local name: the handler may drop it after its checks
            result = self.serve_socket(transport, pending.pop())
            if hasattr(result, "__await__"):
                await result
        except Exception:
            self._failed += 1
            self._errors.exception("voice", "voice socket handler failed: closing it (1011)")
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 1.0):
                await transport.close(1011, "internal error")
        finally:
            self._live.discard(transport)
            self.calls -= 1
            if not self.calls:
                self._no_calls.set()
