"""The two error types of the protocol layer (after h11): the peer broke the protocol, or
we did."""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProtocolError"]


class ProtocolError(Exception):
    """The peer sent something we cannot accept.

    Every parse in :mod:`tac_actors.protocol` either returns a value or raises this, never
    anything else. ``close_code`` is the WebSocket close code the connection should end
    with, or ``None`` when the frame is dropped and the connection goes on.
    """

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.close_code = close_code


class LocalProtocolError(Exception):
    """We tried to send something the protocol does not allow (a bug on our side, or in
    the app's use of the API)."""
