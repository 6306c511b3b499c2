"""The interface through which an actor reaches its channel.

An actor never touches a socket or an HTTP client: it hands reply tokens and control
actions to an :class:`Outbox`, tagged with the turn that produced them, and may later
retract everything of the turns the reply gate stopped that has not reached the wire yet
(barge-in).
"""

from __future__ import annotations

from typing import Protocol

from tac_actors.protocol.relay import OutboundFrame

__all__ = ["Outbox"]


class Outbox(Protocol):
    """One conversation's way out. Implementations keep frames of one turn in order."""

    #: True when tokens are delivered as they come (voice); False when a reply is
    #: joined and sent whole at ``last=True`` (text channels)
    streaming: bool

    async def deliver(self, turn: int, token: str, *, last: bool) -> None:
        """Send (or queue) one reply token of ``turn``; ``last`` closes the reply.

        May wait for back-pressure. Always checkpoints.
        """
        ...

    async def send_frame(self, turn: int | None, frame: OutboundFrame) -> None:
        """Send a channel action (play, digits, language, end). Channels that cannot
        honour it raise :class:`NotImplementedError`."""
        ...

    def retract_through(self, barrier: int) -> int:
        """Drop what the turns with ids ``1..barrier`` queued and has not been sent (the
        reply gate stopped them); return how many frames. Synchronous."""
        ...

    async def hand_off(self, handoff_data: str) -> None:
        """Hand the conversation to a human (voice: ``end`` with the data)."""
        ...

    async def finish(self, *, goodbye: str | None = None) -> None:
        """End the conversation from our side, after the optional last words."""
        ...
