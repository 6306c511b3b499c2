"""Sans-IO wire formats: ConversationRelay frames, TwiML and X-Twilio-Signature.

Nothing here does I/O or imports trio; every parser returns a value or raises
:class:`ProtocolError`.
"""

from tac_actors.protocol.connection import ConnectionState, RelayConnection
from tac_actors.protocol.errors import LocalProtocolError, ProtocolError
from tac_actors.protocol.relay import (
    Dtmf,
    End,
    ErrorFrame,
    InboundFrame,
    Info,
    Interrupt,
    Language,
    OutboundFrame,
    Play,
    Prompt,
    SendDigits,
    Setup,
    Text,
    UnknownFrame,
    encode_frame,
    parse_frame,
)

__all__ = [
    "ConnectionState",
    "Dtmf",
    "End",
    "ErrorFrame",
    "InboundFrame",
    "Info",
    "Interrupt",
    "Language",
    "LocalProtocolError",
    "OutboundFrame",
    "Play",
    "Prompt",
    "ProtocolError",
    "RelayConnection",
    "SendDigits",
    "Setup",
    "Text",
    "UnknownFrame",
    "encode_frame",
    "parse_frame",
]
