"""The concurrency core: mailboxes, conversation actors and their supervisor.

Knows channels only through :class:`Outbox` and apps only through :class:`Agent`; imports
no web framework.
"""

from tac_actors.actors.agent import (
    ActorCrash,
    Agent,
    AgentWrapper,
    ErrorContext,
    Reply,
    TurnTimeout,
)
from tac_actors.actors.cell import ActorCell, CellStatistics, ConversationControls
from tac_actors.actors.conversation import ChannelReportedError, ConversationActor
from tac_actors.actors.gate import NO_TURN, ReplyGate, Turn
from tac_actors.actors.mailbox import Mailbox, MailboxStatistics
from tac_actors.actors.messages import (
    ChannelError,
    Digits,
    Drain,
    Fault,
    Interruption,
    Message,
    PartialUtterance,
    Push,
    SessionUpdate,
    Utterance,
)
from tac_actors.actors.outbox import Outbox
from tac_actors.actors.supervisor import (
    AlreadyRunning,
    NotAccepting,
    Supervisor,
    SupervisorStatistics,
)

__all__ = [
    "NO_TURN",
    "ActorCell",
    "ActorCrash",
    "Agent",
    "AgentWrapper",
    "AlreadyRunning",
    "CellStatistics",
    "ChannelError",
    "ChannelReportedError",
    "ConversationActor",
    "ConversationControls",
    "Digits",
    "Drain",
    "ErrorContext",
    "Fault",
    "Interruption",
    "Mailbox",
    "MailboxStatistics",
    "Message",
    "NotAccepting",
    "Outbox",
    "PartialUtterance",
    "Push",
    "Reply",
    "ReplyGate",
    "SessionUpdate",
    "Supervisor",
    "SupervisorStatistics",
    "Turn",
    "TurnTimeout",
    "Utterance",
]
