"""The small interface between a channel and its WebSocket engine.

The voice channel never touches quart's ``websocket`` object or a wsproto connection
directly: any engine that can receive a frame, send text and close with a code will do.
That keeps the engine swappable (hypercorn for the simplest set-up, a faster one for the
hot path) and lets tests run whole calls in memory.
"""

from __future__ import annotations

import math
from typing import Protocol

import trio

__all__ = ["MemoryTransport", "Transport", "TransportClosed", "memory_transport_pair"]


class TransportClosed(Exception):
    """The connection is gone. ``code`` is the close code when one was received."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class Transport(Protocol):
    """One WebSocket connection, as the channel sees it."""

    async def receive(self) -> str | bytes:
        """The next frame: ``str`` for text, ``bytes`` for binary. Raises
        :class:`TransportClosed` when the peer has gone."""
        ...

    async def send(self, text: str) -> None:
        """Send one text frame. Raises :class:`TransportClosed` if the peer has gone."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection. Idempotent; never raises for a connection already gone."""
        ...


class MemoryTransport:
    """An in-memory transport end (the test kit's caller holds the other end)."""

    def __init__(self, inbound: trio.MemoryReceiveChannel[str | bytes | TransportClosed],
                 outbound: trio.MemorySendChannel[str | bytes | TransportClosed]) -> None:
        self._inbound = inbound
        self._outbound = outbound
        self.close_code: int | None = None
        self.close_reason = ""
        self._closed = False

    async def receive(self) -> str | bytes:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise TransportClosed(self.close_code, self.close_reason)
        try:
            item = await self._inbound.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed(1006, "peer vanished") from None
        if isinstance(item, TransportClosed):
            self._closed = True
            self.close_code, self.close_reason = item.code, item.reason
            raise item
        return item

    async def send(self, text: str | bytes) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise TransportClosed(self.close_code, self.close_reason)
        try:
            await self._outbound.send(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TransportClosed(1006, "peer vanished") from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self.close_code, self.close_reason = code, reason
        try:
            self._outbound.send_nowait(TransportClosed(code, reason))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        await self._outbound.aclose()

    @property
    def closed(self) -> bool:
        return self._closed


def memory_transport_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected ends, unbounded both ways (the in-process caller reads everything)."""
    a_send, b_receive = trio.open_memory_channel[str | bytes | TransportClosed](math.inf)
    b_send, a_receive = trio.open_memory_channel[str | bytes | TransportClosed](math.inf)
    return MemoryTransport(a_receive, a_send), MemoryTransport(b_receive, b_send)
