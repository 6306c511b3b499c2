"""The OpenAI Realtime API as a :data:`~tac_actors.realtime.model.Connector`.

``OpenAIRealtime()`` reads ``OPENAI_API_KEY`` when a call starts (not when it is built),
so a server starts without a key and each call without one fails with
:class:`RealtimeUnavailable`, reported to ``on_error``. ``url`` points it elsewhere (the
test kit's fake model, a proxy).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import quote

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tac_actors.protocol.realtime import MAX_EVENT_BYTES
from tac_actors.realtime.model import ModelClosed, RealtimeClient, RealtimeModel
from tac_actors.session import ConversationSession

__all__ = ["OPENAI_REALTIME_URL", "OpenAIRealtime", "RealtimeUnavailable", "WebSocketText"]

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"


class RealtimeUnavailable(Exception):
    """The model cannot be used (no API key, refused connection)."""


class WebSocketText:
    """A trio-websocket connection as a :class:`~tac_actors.realtime.model.TextSocket`."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def send_text(self, text: str) -> None:
        try:
            await self.ws.send_message(text)
        except ConnectionClosed as exc:
            raise ModelClosed(str(exc.reason)) from None

    async def receive_text(self) -> str:
        try:
            message = await self.ws.get_message()
        except ConnectionClosed as exc:
            raise ModelClosed(str(exc.reason)) from None
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + 2.0):
            await self.ws.aclose()


@attrs.frozen
class OpenAIRealtime:
    """Connects each call to ``{url}?model={model}`` with a Bearer key."""

    model: str = "gpt-realtime"
    api_key: str | None = attrs.field(default=None, repr=False)
    url: str = OPENAI_REALTIME_URL
    connect_timeout: float = 10.0

    def __call__(self, session: ConversationSession
                 ) -> AbstractAsyncContextManager[RealtimeModel]:
        return self._open()

    def key(self) -> str | None:
        return self.api_key or os.environ.get("OPENAI_API_KEY") or None

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[RealtimeModel]:
        key = self.key()
        if key is None:
            raise RealtimeUnavailable("OPENAI_API_KEY is not set: the realtime model "
                                      "cannot be reached")
        separator = "&" if "?" in self.url else "?"
        url = f"{self.url}{separator}model={quote(self.model)}"
        headers = [(b"authorization", f"Bearer {key}".encode())]
        async with open_websocket_url(url, extra_headers=headers,
                                      max_message_size=MAX_EVENT_BYTES,
                                      connect_timeout=self.connect_timeout,
                                      disconnect_timeout=2.0) as ws:
            client = RealtimeClient(WebSocketText(ws))
            yield client
