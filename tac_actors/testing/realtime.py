"""A fake realtime (speech-to-speech) model for tests: it speaks the OpenAI Realtime
protocol, and the test scripts every event it sends.

Open one with :func:`open_fake_realtime`; use ``fake.connector`` (in memory, for
deterministic tests) or ``await fake.serve()`` (a loopback WebSocket server; connect with
:class:`~tac_actors.realtime.OpenAIRealtime` at the returned URL) as a TAC's
``RealtimeOptions(connect=...)``. Each model connection is a :class:`FakeSession`,
handed out by ``await fake.next_session()``; the test then waits for client events
(``await session.wait_for("response.create")``) and sends scripted ones (``speak``,
``call_tool``, ``speech_started``, ...). A response can be left open (``done=False``) so
a barge-in lands exactly while it plays.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio
import trio_websocket

from tac_actors.realtime.model import (
    ModelClosed,
    RealtimeClient,
    RealtimeModel,
    TextSocket,
    memory_socket_pair,
)
from tac_actors.realtime.openai import WebSocketText
from tac_actors.session import ConversationSession

__all__ = ["FakeRealtime", "FakeSession", "open_fake_realtime", "tone"]

#: 8 bytes of μ-law per millisecond
BYTES_PER_MS = 8


def tone(ms: int) -> bytes:
    """``ms`` milliseconds of a μ-law tone (a square wave: non-silent bytes)."""
    pattern = bytes([0x1F, 0x9F] * 4)  # loud positive / negative samples
    return (pattern * (ms * BYTES_PER_MS // len(pattern) + 1))[: ms * BYTES_PER_MS]


class FakeSession:
    """One model connection, as the test drives it. Client events (except audio appends,
    which are only counted) are kept in :attr:`received` in order."""

    _ids = itertools.count(1)

    def __init__(self, socket: TextSocket) -> None:
        self.socket = socket
        self.received: list[dict[str, Any]] = []
        self.audio_in_bytes = 0
        self.closed = trio.Event()
        self._new = trio.Event()
        self._seen = 0

    async def _read(self) -> None:
        try:
            while True:
                event = json.loads(await self.socket.receive_text())
                if event.get("type") == "input_audio_buffer.append":
                    self.audio_in_bytes += len(base64.b64decode(event.get("audio", "")))
                else:
                    self.received.append(event)
                self._new.set()
                self._new = trio.Event()
        except ModelClosed:
            pass
        finally:
            self.closed.set()
            self._new.set()

    def types(self) -> list[str]:
        return [event["type"] for event in self.received]

    async def wait_for(self, kind: str) -> dict[str, Any]:
        """The next client event of type ``kind`` not yet returned by a ``wait_for``
        (events are consumed in order). Raises :class:`ModelClosed` if the client left."""
        while True:
            for index in range(self._seen, len(self.received)):
                if self.received[index]["type"] == kind:
                    self._seen = index + 1
                    return self.received[index]
            if self.closed.is_set():
                raise ModelClosed(f"the client left without sending {kind}")
            await self._new.wait()

    async def wait_audio(self, size: int) -> None:
        """Wait until at least ``size`` bytes of caller audio have arrived."""
        while self.audio_in_bytes < size:
            if self.closed.is_set():
                raise ModelClosed("the client left")
            await self._new.wait()

    async def send(self, event: dict[str, Any]) -> None:
        await self.socket.send_text(json.dumps(event))

    # -- scripted server events -----------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    async def speak(self, text: str, *, audio_ms: int = 1000, chunks: int = 5,
                    response_id: str | None = None, item_id: str | None = None,
                    done: bool = True) -> tuple[str, str]:
        """One spoken response: ``response.created``, then ``chunks`` pieces of audio
        (``audio_ms`` in all), each with its share of the transcript, then (``done``) the
        full transcript and ``response.done``. Returns (response id, item id)."""
        response_id = response_id or self.new_id("resp")
        item_id = item_id or self.new_id("item")
        await self.send({"type": "response.created", "response": {"id": response_id}})
        audio = tone(audio_ms)
        words = text.split(" ")
        for index in range(chunks):
            piece = audio[len(audio) * index // chunks: len(audio) * (index + 1) // chunks]
            part = words[len(words) * index // chunks: len(words) * (index + 1) // chunks]
            if part:
                await self.send({"type": "response.output_audio_transcript.delta",
                                 "response_id": response_id, "item_id": item_id,
                                 "delta": (" " if index and part else "") + " ".join(part)})
            await self.send({"type": "response.output_audio.delta", "response_id": response_id,
                             "item_id": item_id,
                             "delta": base64.b64encode(piece).decode("ascii")})
        if done:
            await self.finish(response_id, item_id, text)
        return response_id, item_id

    async def finish(self, response_id: str, item_id: str, text: str,
                     status: str = "completed") -> None:
        await self.send({"type": "response.output_audio_transcript.done",
                         "response_id": response_id, "item_id": item_id, "transcript": text})
        await self.send({"type": "response.done",
                         "response": {"id": response_id, "status": status}})

    async def call_tool(self, name: str, arguments: dict[str, Any], *,
                        call_id: str | None = None) -> str:
        """A response that only calls tool ``name``. Returns the call id."""
        response_id = self.new_id("resp")
        call_id = call_id or self.new_id("call")
        await self.send({"type": "response.created", "response": {"id": response_id}})
        await self.send({"type": "response.output_item.done", "response_id": response_id,
                         "item": {"type": "function_call", "id": self.new_id("item"),
                                  "call_id": call_id, "name": name,
                                  "arguments": json.dumps(arguments)}})
        await self.send({"type": "response.done",
                         "response": {"id": response_id, "status": "completed"}})
        return call_id

    async def speech_started(self, audio_start_ms: int = 0) -> None:
        await self.send({"type": "input_audio_buffer.speech_started",
                         "audio_start_ms": audio_start_ms, "item_id": self.new_id("item")})

    async def user_said(self, text: str) -> None:
        await self.send({"type": "conversation.item.input_audio_transcription.completed",
                         "item_id": self.new_id("item"), "content_index": 0,
                         "transcript": text})

    async def close(self) -> None:
        await self.socket.aclose()


class FakeRealtime:
    """Hands out a :class:`FakeSession` per model connection. Build with
    :func:`open_fake_realtime`."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._send, self._receive = trio.open_memory_channel[FakeSession](math.inf)
        self.sessions: list[FakeSession] = []
        #: set to an exception to make the next connections fail with it
        self.refuse: Exception | None = None

    def _register(self, socket: TextSocket) -> FakeSession:
        session = FakeSession(socket)
        self.sessions.append(session)
        self._nursery.start_soon(session._read)
        self._send.send_nowait(session)
        return session

    async def next_session(self) -> FakeSession:
        """The next model connection (waits for it)."""
        return await self._receive.receive()

    def connector(self, session: ConversationSession
                  ) -> AbstractAsyncContextManager[RealtimeModel]:
        """A :data:`~tac_actors.realtime.Connector` over memory sockets."""
        return self._connect_memory()

    @asynccontextmanager
    async def _connect_memory(self) -> AsyncIterator[RealtimeModel]:
        if self.refuse is not None:
            await trio.lowlevel.checkpoint()
            raise self.refuse
        client, server = memory_socket_pair()
        self._register(server)
        try:
            yield RealtimeClient(client)
        finally:
            await client.aclose()

    async def serve(self, host: str = "127.0.0.1") -> str:
        """Serve on a loopback port; returns the ``ws://`` URL to connect to."""
        server = await self._nursery.start(trio_websocket.serve_websocket, self._accept,
                                           host, 0, None)
        return f"ws://{host}:{server.port}/v1/realtime"

    async def _accept(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        session = self._register(WebSocketText(ws))
        await session.closed.wait()


@asynccontextmanager
async def open_fake_realtime() -> AsyncIterator[FakeRealtime]:
    """A fake model for the block; its sessions and server end with it."""
    async with trio.open_nursery() as nursery:
        yield FakeRealtime(nursery)
        nursery.cancel_scope.cancel()
