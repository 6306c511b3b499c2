"""Conversation memory: the models handed to callbacks and the providers that fetch them."""

from tac_actors.memory.base import MemoryProvider, NoMemory
from tac_actors.memory.models import (
    ObservationInfo,
    SummaryInfo,
    TACCommunication,
    TACMemoryResponse,
)

__all__ = [
    "MemoryProvider",
    "NoMemory",
    "ObservationInfo",
    "SummaryInfo",
    "TACCommunication",
    "TACMemoryResponse",
]
