"""A simulated Twilio Media Streams caller: it sends what Twilio sends on a bidirectional
stream (``connected``, ``start``, 20 ms μ-law ``media`` frames, ``dtmf``, ``stop``) and
plays what it receives the way Twilio does: audio is queued, each ``mark`` is echoed
once the audio before it has "played", and ``clear`` drops the unplayed audio and echoes
its pending marks at once (as Twilio does).

With ``auto_play=True`` (the default) audio plays as soon as it arrives. With
``auto_play=False`` nothing plays until the test calls :meth:`play` — a caller whose
phone is still playing, so a barge-in can land at a chosen point.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio_websocket

from tac_actors.channels.transport import Transport, TransportClosed
from tac_actors.testing.caller import _ClientTransport, new_call_sid, sign_url
from tac_actors.testing.realtime import tone

__all__ = ["SimulatedMediaCaller", "StreamEnded", "connect_media_caller"]

FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
SILENCE = b"\xff" * FRAME_BYTES

class StreamEnded(Exception):
    """The server closed the stream (``code`` as received)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"stream closed ({code})")
        self.code = code

class SimulatedMediaCaller:
    """One call's Twilio side. ``received`` keeps every message the server sent."""

    def __init__(self, transport: Transport, *, call_sid: str | None = None,
                 parameters: dict[str, str] | None = None, auto_play: bool = True) -> None:
        self.transport = transport
        self.call_sid = call_sid or new_call_sid()
        self.stream_sid = "MZ" + self.call_sid[2:]
        self.parameters = parameters or {"From": "+15550001111", "To": "+15550002222"}
        self.auto_play = auto_play
        self.received: list[dict[str, Any]] = []
        #: audio received and not yet played, with the marks between pieces
        self._queue: list[bytes | str] = []
        self.played_bytes = 0
        self.cleared_bytes = 0
        self.clears = 0
        self.close_code: int | None = None
        self._chunk = 0

    async def _send(self, obj: dict[str, Any]) -> None:
        await self.transport.send(json.dumps(obj))

    async def start(self) -> None:
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send({"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
                          "start": {"streamSid": self.stream_sid, "callSid": self.call_sid,
                                    "accountSid": "AC" + "0" * 32, "tracks": ["inbound"],
                                    "customParameters": self.parameters,
                                    "mediaFormat": {"encoding": "audio/x-mulaw",
                                                    "sampleRate": 8000, "channels": 1}}})

    async def speak(self, ms: int = 200, *, silent: bool = False) -> None:
        """Send ``ms`` of caller audio (a tone, or silence) as 20 ms frames."""
        audio = SILENCE * (ms // 20) if silent else tone(ms)

        for offset in range(0, len(audio), FRAME_BYTES):
            self._chunk += 1
            payload = base64.b64encode(audio[offset:offset + FRAME_BYTES]).decode("ascii")
            await self._send({"event": "media", "streamSid": self.stream_sid,
                              "media": {"track": "inbound", "chunk": str(self._chunk),
                                        "timestamp": str(self._chunk * 20),
                                        "payload": payload}})

    async def press(self, digit: str) -> None:
        await self._send({"event": "dtmf", "streamSid": self.stream_sid,
                          "dtmf": {"track": "inbound_track", "digit": digit}})

    async def hang_up(self) -> None:
        """Twilio's ``stop``, then the socket closes."""
        try:
            await self._send({"event": "stop", "streamSid": self.stream_sid,
                              "stop": {"callSid": self.call_sid}})
        except TransportClosed:
            pass
        await self.transport.close(1000, "hung up")

    # -- what the server sends ------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        return sum(len(piece) for piece in self._queue if isinstance(piece, bytes))

    async def expect(self, event: str) -> dict[str, Any]:
        """Read (and play, per the rules above) until a message of type ``event``;
        return it. Raises :class:`StreamEnded` if the server closes first."""
        while True:
            message = await self.receive()
            if message["event"] == event:
                return message

    async def receive(self) -> dict[str, Any]:
        try:
            data = await self.transport.receive()
        except TransportClosed as exc:
            self.close_code = exc.code
            raise StreamEnded(exc.code) from None
        message: dict[str, Any] = json.loads(data)
        self.received.append(message)
        kind = message.get("event")
        if kind == "media":

            self._queue.append(base64.b64decode(message["media"]["payload"]))
        elif kind == "mark":
            self._queue.append(message["mark"]["name"])
        elif kind == "clear":
            self.clears += 1
            self.cleared_bytes += self.queued_bytes
            marks = [piece for piece in self._queue if isinstance(piece, str)]
            self._queue.clear()
            for name in marks:
                await self._echo(name)
        if self.auto_play:
            await self.play()
        return message

    async def play(self, ms: int | None = None) -> int:
        """Play queued audio (all of it, or about ``ms``), echoing the marks passed.
        Returns the bytes played."""
        budget = None if ms is None else ms * 8
        played = 0
        while self._queue:
            piece = self._queue[0]
            if isinstance(piece, str):
                self._queue.pop(0)
                await self._echo(piece)
                continue
            if budget is not None and played + len(piece) > budget:
                break
            self._queue.pop(0)
            played += len(piece)
        self.played_bytes += played
        return played

    async def _echo(self, name: str) -> None:
        await self._send({"event": "mark", "streamSid": self.stream_sid,
                          "mark": {"name": name}})

    async def drain(self) -> None:
        """Read until the server closes the stream (``close_code`` is then set)."""
        try:
            while True:
                await self.receive()
        except StreamEnded:
            pass

    def heard(self) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("event") == "media"]


@asynccontextmanager
async def connect_media_caller(url: str, *, auth_token: str | None = None,
                               start: bool = True, **caller_options: Any
                               ) -> AsyncIterator[SimulatedMediaCaller]:
    """Open a real WebSocket to ``url`` (``ws://host:port/media-stream``) as Twilio
    would (signed with ``auth_token`` if given), send ``connected`` and ``start`` unless
    told not to, and close the socket on exit."""
    headers: list[tuple[bytes, bytes]] = []
    if auth_token is not None:
        headers.append((b"X-Twilio-Signature", sign_url(auth_token, url).encode()))
    async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
        caller = SimulatedMediaCaller(_ClientTransport(ws), **caller_options)
        try:
            if start:
                await caller.start()
            yield caller
        finally:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 5):
                await ws.aclose()
            stream = getattr(ws, "_stream", None)
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await stream.aclose()
