"""quart's ``websocket`` object as a :class:`~tac_actors.channels.transport.Transport`."""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.utils import UnexpectedMessageError

from tac_actors.channels.transport import TransportClosed

__all__ = ["QuartTransport"]


#: what hypercorn raises when a message is sent on a socket it already closed (the peer
#: went away, or it closed after an error)
_GONE = (UnexpectedMessageError, trio.BrokenResourceError, trio.ClosedResourceError)


class QuartTransport:
    """Adapts quart's websocket. quart-trio cancels the handler when the peer disconnects,
    so a disconnect reaches the voice channel as a cancellation (a hang-up). Only the
    errors that mean "the socket is gone" become :class:`TransportClosed`; anything else
    is a bug and propagates."""

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
            text.encode()
        except UnicodeEncodeError:
            # our frames are JSON: a lone surrogate goes out as its JSON escape (as on the
            # fast engine) instead of failing inside the server's encoder
            text = text.encode("utf-8", "backslashreplace").decode()
        try:
            await self._ws.send(text)
        except _GONE as exc:  # the ASGI server refuses sends once the peer has gone
            self._closed = True
            raise TransportClosed(1006, str(exc)) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            await self._ws.close(code, reason)
        except (*_GONE, RuntimeError):  # already gone (quart: "Cannot close ... multiple
            await trio.lowlevel.checkpoint()  # times"): nothing left to close
