"""The interface between the engine and whatever fetches memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import trio

from tac_actors.memory.models import TACMemoryResponse

if TYPE_CHECKING:
    from tac_actors.session import ConversationSession


class MemoryProvider(Protocol):
    """Fetches memory for one turn.

    ``retrieve`` never raises for a service failure: it degrades (Memory API →
    Orchestrator communications → empty) and logs. It is cancellable at any await.
    """

    async def retrieve(
        self, session: ConversationSession, query: str | None
    ) -> TACMemoryResponse: ...


class NoMemory:
    """ConversationRelay-only mode: memory is always empty."""

    async def retrieve(
        self, session: ConversationSession, query: str | None
    ) -> TACMemoryResponse:
        await trio.lowlevel.checkpoint()
        return TACMemoryResponse.empty()
