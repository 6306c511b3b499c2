"""The outbox of a media-stream call: how the actor and the app reach a call whose voice
is a realtime model.

The model speaks for itself; what an app sends through the session (``session.send``,
an ``on_dtmf`` reply) is handed to the model as a response to speak. ``hand_off`` and
``finish`` record how the call ends; the channel ends the stream when the actor stops.
Channel actions of ConversationRelay (play, digits, language) do not exist on a media
stream and raise :class:`NotImplementedError`.
"""

from __future__ import annotations

import logging

import trio

from tac_actors._logsafe import excerpt
from tac_actors.protocol.relay import OutboundFrame
from tac_actors.realtime.model import ModelClosed, RealtimeModel

__all__ = ["MediaOutbox"]

log = logging.getLogger("tac_actors.media")

#: how a text reply is put to the model (it speaks it in its own voice)
SAY = "Say exactly this to the caller, and nothing else: {text}"


class MediaOutbox:
    """One media-stream call's way out. ``handoff_data`` is what the conversation was
    handed off with (the channel keeps it for the action callback)."""

    streaming = True

    def __init__(self) -> None:
        self.model: RealtimeModel | None = None
        self.handoff_data: str | None = None
        self.finished = False
        self._pending: list[str] = []

    async def deliver(self, turn: int, token: str, *, last: bool) -> None:
        """Collect a reply; at ``last`` ask the model to speak it. Dropped (logged) when
        the model is not connected or has gone."""
        if token:
            self._pending.append(token)
        if not last or not self._pending:
            await trio.lowlevel.checkpoint()
            return
        text, self._pending = "".join(self._pending), []
        if self.model is None:
            log.warning("media stream: no model connected, reply dropped: %s",
                        excerpt(text, 80))
            await trio.lowlevel.checkpoint()
            return
        try:
            await self.model.create_response(SAY.format(text=text))
        except ModelClosed:
            log.warning("media stream: model gone, reply dropped: %s", excerpt(text, 80))

    async def send_frame(self, turn: int | None, frame: OutboundFrame) -> None:
        await trio.lowlevel.checkpoint()
        raise NotImplementedError(f"{type(frame).__name__} is a ConversationRelay action; "
                                  "a media stream cannot send it")

    def retract_through(self, barrier: int) -> int:
        # the model's own speech is cut by the bridge (clear + truncate); app replies are
        # handed to the model at once, so nothing of a turn waits here
        return 0

    async def hand_off(self, handoff_data: str) -> None:
        if self.handoff_data is None:
            self.handoff_data = handoff_data
        self.finished = True
        await trio.lowlevel.checkpoint()

    async def finish(self, *, goodbye: str | None = None) -> None:
        if goodbye and self.model is not None and not self.finished:
            log.debug("media stream ends; goodbye words are not spoken: %s",
                      excerpt(goodbye, 80))
        self.finished = True
        await trio.lowlevel.checkpoint()
