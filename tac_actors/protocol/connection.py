"""The server side of one ConversationRelay socket, as a state machine with no I/O.

What lives here: which frames are acceptable when (``setup`` first and once), how many
bad frames in a row are tolerated, and what close code each violation earns. What does
not: sockets, timers, actors. The channel layer feeds received frames in and acts on the
:class:`ProtocolError` it may get back.

=====================  =========================================  ==========
input                  answer                                     close code
=====================  =========================================  ==========
not JSON, not object,  frame dropped, logged                      none
missing/wrong fields
10 such in a row       connection closed (Twilio's own limit)     1007
unknown frame type     :class:`UnknownFrame`, tolerated           none
binary frame           connection closed                          1003
frame over the limit   connection closed                          1009
anything before setup  connection closed                          1008
a second setup         frame dropped, logged                      none
anything after close   :class:`LocalProtocolError` (our bug)      n/a
=====================  =========================================  ==========
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from tac_actors.protocol.errors import LocalProtocolError, ProtocolError
from tac_actors.protocol.relay import (
    DEFAULT_MAX_FRAME_BYTES,
    End,
    InboundFrame,
    OutboundFrame,
    Setup,
    encode_frame,
    parse_frame,
)

__all__ = ["ConnectionState", "ConnectionStatistics", "RelayConnection"]

MAX_CONSECUTIVE_BAD: Final = 10


class ConnectionState(enum.Enum):
    AWAITING_SETUP = "awaiting_setup"
    ACTIVE = "active"
    ENDED = "ended"  # we sent ``end``: nothing more may be sent
    CLOSED = "closed"


@attrs.frozen
class ConnectionStatistics:
    state: ConnectionState
    frames_received: int
    frames_sent: int
    bad_frames: int


class RelayConnection:
    """Validates the order and shape of frames on one ConversationRelay socket."""

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.state = ConnectionState.AWAITING_SETUP
        self.setup: Setup | None = None
        self._max_frame_bytes = max_frame_bytes
        self._received = 0
        self._sent = 0
        self._bad = 0
        self._bad_in_a_row = 0

    def receive_text(self, data: str) -> InboundFrame:
        """Parse one text frame in the current state.

        Returns the frame, or raises :class:`ProtocolError` (see the module table).
        """
        if self.state is ConnectionState.CLOSED:
            raise LocalProtocolError("frame received after the connection was closed")
        self._received += 1
        try:
            frame = parse_frame(data, max_bytes=self._max_frame_bytes)
        except ProtocolError as exc:
            self._bad += 1
            self._bad_in_a_row += 1
            if exc.close_code is None and self._bad_in_a_row >= MAX_CONSECUTIVE_BAD:
                raise ProtocolError(f"{self._bad_in_a_row} malformed frames in a row; last: "
                                    f"{exc.message}", close_code=1007) from None
            if exc.close_code is None and self.state is ConnectionState.AWAITING_SETUP:
                raise ProtocolError(f"first frame must be setup: {exc.message}",
                                    close_code=1008) from None
            raise
        self._bad_in_a_row = 0
        if self.state is ConnectionState.AWAITING_SETUP:
            if not isinstance(frame, Setup):
                self._bad += 1
                raise ProtocolError(
                    f"first frame must be setup, got {type(frame).__name__.lower()!r}",
                    close_code=1008,
                )
            self.setup = frame
            self.state = ConnectionState.ACTIVE
        elif isinstance(frame, Setup):
            self._bad += 1
            raise ProtocolError(f"duplicate setup for call {frame.call_sid} ignored")
        return frame

    def receive_bytes(self, data: bytes) -> None:
        """Binary frames are not part of ConversationRelay: always raises."""
        self._received += 1
        self._bad += 1
        raise ProtocolError(f"binary frame of {len(data)} bytes: ConversationRelay is text "
                            "only", close_code=1003)

    def send(self, frame: OutboundFrame) -> str:
        """Encode a frame to send. After ``end`` nothing more may be sent."""
        if self.state in (ConnectionState.ENDED, ConnectionState.CLOSED):
            raise LocalProtocolError(f"cannot send {type(frame).__name__} after end/close")
        if isinstance(frame, End):
            self.state = ConnectionState.ENDED
        self._sent += 1
        return encode_frame(frame)

    def count_sent(self) -> None:
        """Count a frame encoded on the fast path (plain text tokens)."""
        self._sent += 1

    def close(self) -> None:
        self.state = ConnectionState.CLOSED

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(self.state, self._received, self._sent, self._bad)
