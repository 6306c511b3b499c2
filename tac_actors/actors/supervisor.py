"""The supervisor: starts conversation actors, restarts them when they crash, ends them.

Each conversation lives in an :class:`ActorCell` that the supervisor owns: the mailbox,
the session, the outbox and the restart history survive a crashed incarnation (Akka's
semantics, not OTP's); the message that crashed it is not replayed. Past the restart
intensity (``RestartLimit``, default 3 in 10 s) the conversation is ended cleanly: the
caller hears the goodbye words and the channel ends the conversation.

Every cell's task is a child of the supervisor's nursery: nothing outlives the
supervisor, and ``on_conversation_ended`` runs exactly once per cell, in a shielded,
time-bounded scope, whatever ended it (hang-up, handoff, idle, crash limit, shutdown).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from tac_actors import tracing
from tac_actors.actors.agent import Agent
from tac_actors.actors.cell import END_HOOK_TIMEOUT, ActorCell, CellStatistics
from tac_actors.actors.conversation import ConversationActor
from tac_actors.actors.messages import Drain
from tac_actors.actors.outbox import Outbox
from tac_actors.config import ChannelPolicy, RestartLimit
from tac_actors.metrics import NULL_METRICS, MetricsHook

if TYPE_CHECKING:
    from tac_actors.session import ConversationSession

__all__ = [
    "ActorCell",
    "AlreadyRunning",
    "CellStatistics",
    "NotAccepting",
    "Supervisor",
    "SupervisorStatistics",
]

log = logging.getLogger("tac_actors.supervisor")


class AlreadyRunning(Exception):
    """An actor for this conversation key is already live."""


class NotAccepting(Exception):
    """The supervisor is shutting down and starts no new conversation."""


@attrs.frozen
class SupervisorStatistics:
    live: int
    started: int
    ended: int
    restarts: int
    gave_up: int
    accepting: bool


class Supervisor:
    """Owns every live conversation actor.

    Use ``async with Supervisor.open(...) as supervisor`` or
    ``await nursery.start(supervisor.run)``; leaving (or :meth:`shutdown`) drains: running
    turns get ``grace`` seconds to finish, then everything is cancelled, and every end
    hook has run by the time it returns.
    """

    def __init__(self, *, restart_limit: RestartLimit | None = None,
                 shutdown_grace: float = 5.0, metrics: MetricsHook | None = None) -> None:
        #: told of every conversation's start, turns, errors and end (metrics, log lines)
        self.metrics = metrics or NULL_METRICS
        self.restart_limit = restart_limit or RestartLimit()
        self.shutdown_grace = shutdown_grace
        self._cells: dict[str, ActorCell] = {}
        self._nursery: trio.Nursery | None = None
        self._accepting = False
        self._started = self._ended = self._restarts = self._gave_up = 0
        self._all_stopped = trio.Event()

    @classmethod
    @asynccontextmanager
    async def open(cls, **kwargs: Any) -> AsyncIterator[Supervisor]:
        """Run a supervisor for the duration of the block; drain it on the way out."""
        supervisor = cls(**kwargs)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            try:
                yield supervisor
            finally:
                # shielded so a cancelled owner still drains; bounded by the grace, the end
                # hooks' deadline and a margin (shutdown cancels what is left at the grace)
                limit = supervisor.shutdown_grace + END_HOOK_TIMEOUT * 2 + 5.0
                with trio.CancelScope(shield=True, deadline=trio.current_time() + limit):
                    await supervisor.shutdown()
                nursery.cancel_scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Serve until cancelled. Conversations started here are children of this task."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._accepting = True
            task_status.started(self)
            try:
                await trio.sleep_forever()
            finally:
                self._accepting = False
                self._nursery = None

    # -- conversations ----------------------------------------------------------------------

    def spawn(self, key: str, *, session: ConversationSession, agent: Agent, outbox: Outbox,
              policy: ChannelPolicy) -> ActorCell:
        """Start the actor of conversation ``key`` and return its cell.

        Raises :class:`AlreadyRunning` if ``key`` is live, :class:`NotAccepting` during
        shutdown.
        """
        if not self._accepting or self._nursery is None:
            raise NotAccepting("the server is shutting down")
        if key in self._cells:
            raise AlreadyRunning(f"conversation {key} already has a live actor")
        cell = ActorCell(key, session, agent, outbox, policy)
        cell.metrics = self.metrics
        self.metrics.conversation_started(cell)
        tracing.conversation_started(cell)  # tracing
        self._cells[key] = cell
        self._started += 1
        self._nursery.start_soon(self._supervise, cell, name=f"conversation:{key}")
        return cell

    def get(self, key: str) -> ActorCell | None:
        return self._cells.get(key)

    def __iter__(self) -> Iterator[ActorCell]:
        return iter(list(self._cells.values()))

    def __len__(self) -> int:
        return len(self._cells)

    async def _supervise(self, cell: ActorCell) -> None:
        # one frame for the life of the conversation (the restart loop is inline: every
        # idle call holds this frame, so nesting here is memory)
        try:
            with cell.scope:
                recovering = False
                while True:
                    actor = ConversationActor(cell)
                    try:
                        await actor.run(recovering=recovering)
                        cell.note_stop("ended")
                        return
                    except Exception as exc:
                        crash = exc
                    if not await self._restart_allowed(cell, crash):
                        return
                    recovering = True
        finally:
            await self._bury(cell)

    async def _restart_allowed(self, cell: ActorCell, crash: Exception) -> bool:
        """Count a crash; past the intensity, end the conversation cleanly."""
        if not cell._crash_allowed(self.restart_limit):
            self._gave_up += 1
            cell.note_stop("gave_up")
            log.error("conversation %s crashed %d times in %.0f s: ending it", cell.key,
                      len(cell._crashes), self.restart_limit.window, exc_info=crash)
            await cell.report(crash, "gave_up")
            gate = cell.gate
            # no goodbye over an interrupt that came after the newest prompt
            goodbye = cell.policy.goodbye_text if gate.is_open(gate.issued) or not gate.issued \
                else None
            with trio.move_on_after(END_HOOK_TIMEOUT):
                await cell.outbox.finish(goodbye=goodbye)
            return False
        cell.stats.restarts += 1
        self._restarts += 1
        log.warning("conversation %s: actor crashed, restarting (%d in window)", cell.key,
                    len(cell._crashes), exc_info=crash)
        await cell.report(crash, "crash")
        return True

    async def _bury(self, cell: ActorCell) -> None:
        """After the end: unregister, report what was left, run the end hook once."""
        self._cells.pop(cell.key, None)
        # "over" is one synchronous step: the mailbox refuses messages and the channel's
        # reader is told, before anything below can let another task run
        cell.mailbox.close()
        for fn in cell._on_closing:
            try:
                fn()
            except Exception:
                log.exception("conversation %s: closing callback raised", cell.key)
        cell._on_closing.clear()
        dropped = [m for m in cell.mailbox.drain() if not isinstance(m, Drain)]
        if dropped:
            log.warning("conversation %s ended (%s) with %d unhandled message(s): %s",
                        cell.key, cell.stop_reason, len(dropped),
                        ", ".join(type(m).__name__ for m in dropped))
        with trio.CancelScope(shield=True, deadline=trio.current_time() + END_HOOK_TIMEOUT):
            try:
                await cell.agent.ended(cell.session)
            except Exception:
                log.exception("conversation %s: on_conversation_ended raised", cell.key)
        cell.session.attach(None)
        self._ended += 1
        self.metrics.conversation_ended(cell)
        tracing.conversation_ended(cell)  # tracing
        cell.stopped.set()
        for fn in cell._on_stopped:
            try:
                fn()
            except Exception:
                log.exception("conversation %s: stop callback raised", cell.key)
        cell._on_stopped.clear()
        if not self._cells:
            self._all_stopped.set()

    # -- shutdown -------------------------------------------------------------------------------

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, let running turns finish within ``grace`` seconds, then cancel
        what is left. Returns when every conversation has ended and its end hook ran."""
        self._accepting = False
        grace = self.shutdown_grace if grace is None else grace
        cells = list(self._cells.values())
        for cell in cells:
            cell.note_stop("shutdown")
            try:
                cell.mailbox.send_nowait(Drain(), urgent=True)
            except (trio.WouldBlock, trio.ClosedResourceError):
                cell.scope.cancel()
        with trio.move_on_after(grace if grace > 0 else 0):
            for cell in cells:
                await cell.wait_stopped()
        for cell in cells:
            cell.scope.cancel()
        for cell in cells:
            await cell.wait_stopped()

    def statistics(self) -> SupervisorStatistics:
        return SupervisorStatistics(len(self._cells), self._started, self._ended, self._restarts,
                                    self._gave_up, self._accepting)


