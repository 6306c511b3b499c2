"""Conversation memory: the models handed to callbacks and the providers that fetch them."""

from tac_actors.memory.base import MemoryProvider, NoMemory
from tac_actors.memory.models import (
    ObservationInfo,
    Role,
    SummaryInfo,
    TACCommunication,
    TACMemoryResponse,
    role_for_participant_type,
)
from tac_actors.memory.retrieval import (
    MemoryMode,
    MemoryStatistics,
    OrchestratorConfigError,
    OrchestratorMemory,
    fetch_orchestrator_config,
    lookup_identifier,
)

__all__ = [
    "MemoryMode",
    "MemoryProvider",
    "MemoryStatistics",
    "NoMemory",
    "ObservationInfo",
    "OrchestratorConfigError",
    "OrchestratorMemory",
    "Role",
    "SummaryInfo",
    "TACCommunication",
    "TACMemoryResponse",
    "fetch_orchestrator_config",
    "lookup_identifier",
    "role_for_participant_type",
]
