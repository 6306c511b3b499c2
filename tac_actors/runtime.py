"""The running half of a :class:`~tac_actors.TAC`: supervisor, channels and services.

A :class:`Runtime` exists while a server (or a test harness) runs. It is the one place
where the app's callbacks, the actors and the channels are wired together, so the HTTP
server, the CLI and the test kit all assemble the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tac_actors.actors import ActorCell, Supervisor, SupervisorStatistics
from tac_actors.channels.voice import VoiceChannel
from tac_actors.session import ConversationSession
from tac_actors.tac import TAC

__all__ = ["Runtime"]

log = logging.getLogger("tac_actors")


class Runtime:
    """Supervisor + channels for one :class:`TAC`. Build it with :meth:`open`."""

    def __init__(self, tac: TAC, supervisor: Supervisor) -> None:
        self.tac = tac
        self.supervisor = supervisor
        self.voice = VoiceChannel(supervisor, tac.agent, policy=tac.config.voice_policy,
                                  max_frame_bytes=tac.config.max_frame_bytes,
                                  on_session=self._track_call)
        self._calls: dict[str, ActorCell] = {}

    @classmethod
    @asynccontextmanager
    async def open(cls, tac: TAC) -> AsyncIterator[Runtime]:
        """Run the supervisor for the block. On the way out running turns get
        ``config.shutdown_grace`` seconds, then everything is cancelled; every
        ``on_conversation_ended`` has run when the block exits."""
        config = tac.config
        async with Supervisor.open(restart_limit=config.restart_limit,
                                   shutdown_grace=config.shutdown_grace) as supervisor:
            runtime = cls(tac, supervisor)
            if not config.orchestrator_enabled:
                log.info("ConversationRelay-only mode: voice only, empty memory")
            yield runtime

    def _track_call(self, session: ConversationSession, cell: ActorCell) -> None:
        if session.call_sid:
            self._calls[session.call_sid] = cell

    def session_by_call_sid(self, call_sid: str) -> ConversationSession | None:
        """The live session of a call, or ``None`` once it has ended."""
        cell = self._calls.get(call_sid)
        if cell is None or cell.stopped.is_set():
            self._calls.pop(call_sid, None)
            return None
        return cell.session

    async def shutdown(self, grace: float | None = None) -> None:
        """Drain every conversation (see :meth:`Supervisor.shutdown`)."""
        await self.supervisor.shutdown(grace)

    def statistics(self) -> SupervisorStatistics:
        return self.supervisor.statistics()
