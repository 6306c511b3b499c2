"""Bench agent for speech-to-speech calls:
``tac-actors serve bench/media_agents.py:echo_model_tac``.

Every call is answered with a media stream (``RealtimeOptions(answer_inbound=True)``)
bridged to :class:`EchoModel`, an in-process stand-in for a realtime model: after every
``BENCH_REPLY_AFTER_MS`` (default 400) of caller audio it answers with one response of
``BENCH_REPLY_MS`` (default 500) of audio in 5 pieces, each with a transcript piece, at
once (as a model streams faster than real time). It costs no JSON and no socket, so the
server's CPU is the bridge's: Twilio's messages parsed and written, marks, the actor.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from tac_actors import TAC, ConversationSession, TACConfig
from tac_actors.protocol.realtime import (
    AudioDelta,
    RealtimeEvent,
    ResponseCreated,
    ResponseDone,
    TranscriptDelta,
    TranscriptDone,
)
from tac_actors.realtime import ModelClosed, RealtimeModel, RealtimeOptions

REPLY_AFTER = int(os.environ.get("BENCH_REPLY_AFTER_MS", "400")) * 8
REPLY_BYTES = int(os.environ.get("BENCH_REPLY_MS", "500")) * 8
PIECES = 5
AUDIO = bytes([0x1F, 0x9F]) * (REPLY_BYTES // PIECES // 2)


class EchoModel:
    """A :class:`RealtimeModel` that answers audio with audio (see the module doc)."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[RealtimeEvent](math.inf)
        self._heard = 0
        self._replies = 0

    def _reply(self) -> None:
        self._replies += 1
        response, item = f"r{self._replies}", f"i{self._replies}"
        events: list[RealtimeEvent] = [ResponseCreated(response)]
        for index in range(PIECES):
            events.append(TranscriptDelta(item, f"word{index} "))
            events.append(AudioDelta(response, item, AUDIO))
        events += [TranscriptDone(item, " ".join(f"word{i}" for i in range(PIECES))),
                   ResponseDone(response)]
        for event in events:
            self._send.send_nowait(event)

    async def configure(self, *, instructions: str | None, voice: str | None,
                        tools: Sequence[Mapping[str, Any]], transcribe: str | None,
                        extra: Mapping[str, Any] | None = None) -> None:
        await trio.lowlevel.checkpoint()

    async def send_audio(self, mulaw: bytes) -> None:
        self._heard += len(mulaw)
        if self._heard >= REPLY_AFTER:
            self._heard = 0
            self._reply()
        await trio.lowlevel.checkpoint()

    async def create_response(self, instructions: str | None = None) -> None:
        await trio.lowlevel.checkpoint()

    async def cancel_response(self) -> None:
        await trio.lowlevel.checkpoint()

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        await trio.lowlevel.checkpoint()

    async def send_tool_output(self, call_id: str, output: str) -> None:
        await trio.lowlevel.checkpoint()

    async def receive(self) -> RealtimeEvent:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ModelClosed("closed") from None


def echo_model(session: ConversationSession) -> AbstractAsyncContextManager[RealtimeModel]:
    return _open()


@asynccontextmanager
async def _open() -> AsyncIterator[RealtimeModel]:
    model = EchoModel()
    try:
        yield model
    finally:
        await model._send.aclose()


echo_model_tac = TAC(TACConfig.from_env(log_level="WARNING"), realtime=RealtimeOptions(
    connect=echo_model, answer_inbound=True, transcribe=None))
