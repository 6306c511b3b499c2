"""What a speech-to-speech model is to a call: :class:`RealtimeModel`, and
:class:`RealtimeClient`, its implementation over any text WebSocket speaking the OpenAI
Realtime event protocol (:mod:`tac_actors.protocol.realtime`).

The client is a thin shell: every frame is built and parsed by the sans-IO protocol
module, and the socket is a three-method :class:`TextSocket`, so the same client runs over
trio-websocket to OpenAI (:mod:`tac_actors.realtime.openai`), over loopback to the test
kit's fake model, and over memory channels in deterministic tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeAlias

import trio

from tac_actors.protocol.realtime import (
    RealtimeEvent,
    encode_append_audio,
    encode_cancel,
    encode_function_output,
    encode_response_create,
    encode_session_update,
    encode_truncate,
    parse_realtime_event,
)
from tac_actors.session import ConversationSession

__all__ = [
    "Connector",
    "MemorySocket",
    "ModelClosed",
    "RealtimeClient",
    "RealtimeModel",
    "TextSocket",
    "memory_socket_pair",
]


class ModelClosed(Exception):
    """The model's connection is gone (closed by either side, or failed)."""


class TextSocket(Protocol):
    """A WebSocket carrying text frames, as the client needs it."""

    async def send_text(self, text: str) -> None:
        """Send one frame; raises :class:`ModelClosed` once the connection is gone."""
        ...

    async def receive_text(self) -> str:
        """The next frame; raises :class:`ModelClosed` once the connection is gone."""
        ...

    async def aclose(self) -> None:
        """Close; idempotent, never raises."""
        ...


class RealtimeModel(Protocol):
    """One live session with a speech-to-speech model. Every method is a checkpoint and
    may be cancelled; sends raise :class:`ModelClosed` once the connection is gone."""

    async def configure(self, *, instructions: str | None, voice: str | None,
                        tools: Sequence[Mapping[str, Any]], transcribe: str | None,
                        extra: Mapping[str, Any] | None = None) -> None:
        """Set the session up: μ-law both ways, voice activity detection, tools."""
        ...

    async def send_audio(self, mulaw: bytes) -> None:
        """Append the caller's audio (μ-law, 8 kHz)."""
        ...

    async def create_response(self, instructions: str | None = None) -> None:
        """Make the model speak now."""
        ...

    async def cancel_response(self) -> None:
        """Stop the active response."""
        ...

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """Tell the model the caller heard only ``audio_end_ms`` of item ``item_id``."""
        ...

    async def send_tool_output(self, call_id: str, output: str) -> None:
        """Answer a function call (no new response: call :meth:`create_response`)."""
        ...

    async def receive(self) -> RealtimeEvent:
        """The next event. Raises :class:`ModelClosed` when the connection is gone and
        :class:`~tac_actors.protocol.ProtocolError` for a malformed event (the session
        goes on: receive again)."""
        ...


#: opens a model session for one call (an async context manager; leaving it closes the
#: model's connection). Raises whatever it likes when the model cannot be reached: the
#: channel reports it to ``on_error`` and ends the call.
Connector: TypeAlias = Callable[[ConversationSession],
                               AbstractAsyncContextManager[RealtimeModel]]


class RealtimeClient:
    """A :class:`RealtimeModel` over a :class:`TextSocket` speaking OpenAI Realtime.

    Sends from several tasks (the caller's audio, a barge-in, tool results) are
    serialised by a fair lock, so frames never interleave mid-send.
    """

    def __init__(self, socket: TextSocket) -> None:
        self.socket = socket
        self._send_lock = trio.Lock()
        self.sent = 0
        self.received = 0

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            await self.socket.send_text(text)
        self.sent += 1

    async def configure(self, *, instructions: str | None, voice: str | None,
                        tools: Sequence[Mapping[str, Any]], transcribe: str | None,
                        extra: Mapping[str, Any] | None = None) -> None:
        await self._send(encode_session_update(instructions=instructions, voice=voice,
                                               tools=tools, transcribe=transcribe,
                                               extra=extra))

    async def send_audio(self, mulaw: bytes) -> None:
        await self._send(encode_append_audio(mulaw))

    async def create_response(self, instructions: str | None = None) -> None:
        await self._send(encode_response_create(instructions))

    async def cancel_response(self) -> None:
        await self._send(encode_cancel())

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        await self._send(encode_truncate(item_id, audio_end_ms))

    async def send_tool_output(self, call_id: str, output: str) -> None:
        await self._send(encode_function_output(call_id, output))

    async def receive(self) -> RealtimeEvent:
        text = await self.socket.receive_text()
        self.received += 1
        return parse_realtime_event(text)

    async def aclose(self) -> None:
        await self.socket.aclose()


class MemorySocket:
    """One end of an in-memory :class:`TextSocket` pair (see :func:`memory_socket_pair`)."""

    def __init__(self, send: trio.MemorySendChannel[str],
                 receive: trio.MemoryReceiveChannel[str]) -> None:
        self._send = send
        self._receive = receive

    async def send_text(self, text: str) -> None:
        try:
            await self._send.send(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ModelClosed("peer closed") from None

    async def receive_text(self) -> str:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ModelClosed("peer closed") from None

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def memory_socket_pair() -> tuple[MemorySocket, MemorySocket]:
    """Two connected in-memory text sockets, unbounded both ways (tests only)."""
    a_send, b_receive = trio.open_memory_channel[str](math.inf)
    b_send, a_receive = trio.open_memory_channel[str](math.inf)
    return MemorySocket(a_send, a_receive), MemorySocket(b_send, b_receive)
