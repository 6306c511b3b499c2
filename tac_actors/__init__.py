"""tac-actors: connect phone calls and messaging to AI agents, on trio.

One callback for every channel, one supervised actor per conversation. See the README.
"""

from tac_actors.actors import ActorCrash, ErrorContext, Interruption, TurnTimeout
from tac_actors.config import (
    BusyPolicy,
    ChannelPolicy,
    HTTPConfig,
    IntelligenceConfig,
    MemoryConfig,
    RestartLimit,
    TACConfig,
)
from tac_actors.memory import TACMemoryResponse
from tac_actors.protocol.call_events import AmdEvent, CallStatusEvent, RecordingEvent
from tac_actors.protocol.call_options import CallOptions
from tac_actors.protocol.intelligence import OperatorResult, OperatorResultEvent
from tac_actors.session import AuthorInfo, Channel, ConversationSession, HistoryEntry, Profile
from tac_actors.tac import TAC

__version__ = "0.1.0"

__all__ = [
    "TAC",
    "ActorCrash",
    "AmdEvent",
    "AuthorInfo",
    "BusyPolicy",
    "CallOptions",
    "CallStatusEvent",
    "Channel",
    "ChannelPolicy",
    "ConversationSession",
    "ErrorContext",
    "HTTPConfig",
    "HistoryEntry",
    "IntelligenceConfig",
    "Interruption",
    "MemoryConfig",
    "OperatorResult",
    "OperatorResultEvent",
    "Profile",
    "RecordingEvent",
    "RestartLimit",
    "TACConfig",
    "TACMemoryResponse",
    "TurnTimeout",
    "__version__",
]
