"""quart's ``websocket`` object as a :class:`~tac_actors.channels.transport.Transport`."""

from __future__ import annotations

from typing import Any

import trio

from tac_actors.channels.transport import TransportClosed

__all__ = ["QuartTransport"]


class QuartTransport:
    """Adapts quart's websocket. quart-trio cancels the handler when the peer disconnects,
    so a disconnect reaches the voice channel as a cancellation (a hang-up)."""

    def __init__(self, websocket: Any) -> None:
        self._ws = websocket
        self._closed = False

    async def receive(self) -> str | bytes:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise TransportClosed(None, "closed")
        data: str | bytes = await self._ws.receive()
        return data

    async def send(self, text: str) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise TransportClosed(None, "closed")
        try:
            await self._ws.send(text)
        except Exception as exc:  # the ASGI server refuses sends once the peer has gone
            self._closed = True
            raise TransportClosed(1006, str(exc)) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            await self._ws.close(code, reason)
        except Exception:  # already gone: nothing left to close
            await trio.lowlevel.checkpoint()
