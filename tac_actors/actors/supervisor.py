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
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from tac_actors.actors.agent import Agent, ErrorContext, Phase
from tac_actors.actors.conversation import ConversationActor
from tac_actors.actors.gate import NO_TURN, ReplyGate
from tac_actors.actors.mailbox import Mailbox, MailboxStatistics
from tac_actors.actors.messages import Digits, Drain, Interruption, Message, Utterance, is_urgent
from tac_actors.actors.outbox import Outbox
from tac_actors.config import ChannelPolicy, RestartLimit
from tac_actors.protocol.relay import Language, Play, SendDigits

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

#: how long ``on_conversation_ended`` and the goodbye may take once a conversation ends
END_HOOK_TIMEOUT = 5.0


class AlreadyRunning(Exception):
    """An actor for this conversation key is already live."""


class NotAccepting(Exception):
    """The supervisor is shutting down and starts no new conversation."""


@attrs.define
class _Counters:
    turns: int = 0
    interrupts: int = 0
    errors: int = 0
    restarts: int = 0


@attrs.frozen
class CellStatistics:
    key: str
    turns: int
    interrupts: int
    errors: int
    restarts: int
    mailbox: MailboxStatistics
    stop_reason: str | None


@attrs.frozen
class SupervisorStatistics:
    live: int
    started: int
    ended: int
    restarts: int
    gave_up: int
    accepting: bool


class ActorCell:
    """The supervisor's record of one conversation. Apps reach it through the session's
    controls; channels through :meth:`send`, :meth:`send_nowait` and :meth:`hang_up`."""

    def __init__(self, supervisor: Supervisor, key: str, session: ConversationSession,
                 agent: Agent, outbox: Outbox, policy: ChannelPolicy) -> None:
        self.supervisor = supervisor
        self.key = key
        self.session = session
        self.agent = agent
        self.outbox = outbox
        self.policy = policy
        self.mailbox: Mailbox[Message] = Mailbox(policy.mailbox_capacity)
        self.gate = ReplyGate(outbox)
        self.scope = trio.CancelScope()
        self.stopped = trio.Event()
        self.stats = _Counters()
        self.stop_requested = False
        self.stop_reason: str | None = None
        self.actor: ConversationActor | None = None
        self._crashes: list[float] = []
        self._on_closing: list[Callable[[], object]] = []
        self._on_stopped: list[Callable[[], object]] = []
        session.attach(ConversationControls(self))

    # -- what channels use --------------------------------------------------------------

    def _admit(self, message: Message) -> Message:
        """What happens the moment a message is handed over, before it is queued: a
        message that starts a turn gets its turn id (the order of hand-over is the order
        of turns); an interruption stops the replies through the reply gate and queues
        the acknowledgement (see :mod:`tac_actors.actors.gate`)."""
        if isinstance(message, (Utterance, Digits)):
            if not message.turn:
                message = attrs.evolve(message, turn=self.gate.issue())
        elif isinstance(message, Interruption) and message.through is None:
            through = self.gate.interrupt()
            ack = getattr(self.outbox, "deliver_nowait", None)
            if ack is not None:
                ack(NO_TURN, "", last=True)
            message = attrs.evolve(message, through=through, acknowledged=ack is not None)
        return message

    async def send(self, message: Message) -> None:
        """Hand a message over, waiting while the mailbox is full (back-pressure). An
        interruption takes effect at once, before any wait.

        Raises :class:`trio.ClosedResourceError` once the conversation is closing."""
        if self.mailbox.closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("the conversation has ended")
        message = self._admit(message)
        await self.mailbox.send(message, urgent=is_urgent(message))

    def send_nowait(self, message: Message) -> None:
        """Hand a message over now or raise :class:`trio.WouldBlock` (mailbox full; an
        interruption has taken effect all the same) or
        :class:`trio.ClosedResourceError` (the conversation is closing)."""
        if self.mailbox.closed:
            raise trio.ClosedResourceError("the conversation has ended")
        message = self._admit(message)
        self.mailbox.send_nowait(message, urgent=is_urgent(message))

    def hang_up(self, reason: str = "hangup") -> None:
        """The far end is gone: cancel everything the conversation is doing, now."""
        self.note_stop(reason)
        self.scope.cancel()

    async def wait_stopped(self) -> None:
        """Wait until the conversation has ended and its end hook has run."""
        await self.stopped.wait()

    def call_when_closing(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` (synchronously) the moment the conversation starts closing: the
        mailbox refuses messages from then on, and this runs before the end hook (a
        channel stops its reader here). At once if it is already closing."""
        if self.mailbox.closed:
            fn()
        else:
            self._on_closing.append(fn)

    def call_when_stopped(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` (synchronously, from the supervisor) once the conversation has
        ended; at once if it already has. Cheaper than a task waiting on
        :meth:`wait_stopped`."""
        if self.stopped.is_set():
            fn()
        else:
            self._on_stopped.append(fn)

    # -- what the actor uses ------------------------------------------------------------

    def note_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def request_stop(self, reason: str | None = None) -> None:
        """End the conversation after the current message (the actor loop returns)."""
        if reason:
            self.note_stop(reason)
        self.stop_requested = True
        self.mailbox.nudge()

    @property
    def current_turn(self) -> int:
        turn = self.gate.running
        return turn.id if turn is not None else NO_TURN

    async def report(self, exc: BaseException, phase: Phase, turn: int | None = None) -> None:
        """Hand an error to the app's ``on_error``; its own failures are only logged."""
        context = ErrorContext(self.session.conversation_id, str(self.session.channel), phase,
                               turn, str(exc))
        try:
            with trio.move_on_after(END_HOOK_TIMEOUT):
                await self.agent.error(exc, context)
        except Exception:
            log.exception("conversation %s: on_error raised", self.key)

    def statistics(self) -> CellStatistics:
        s = self.stats
        return CellStatistics(self.key, s.turns, s.interrupts, s.errors, s.restarts,
                              self.mailbox.statistics(), self.stop_reason)

    # -- restarts ---------------------------------------------------------------------------

    def _crash_allowed(self, limit: RestartLimit) -> bool:
        now = trio.current_time()
        self._crashes.append(now)
        self._crashes = [t for t in self._crashes if t >= now - limit.window]
        return len(self._crashes) <= limit.max_restarts


class ConversationControls:
    """``session.controls``: what an app may do to its live conversation."""

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    async def send_text(self, text: str) -> None:
        await self._cell.outbox.deliver(self._cell.current_turn, text, last=True)

    async def play(self, source: str, *, loop: int | None = None) -> None:
        await self._cell.outbox.send_frame(self._cell.current_turn, Play(source=source, loop=loop))

    async def send_digits(self, digits: str) -> None:
        await self._cell.outbox.send_frame(self._cell.current_turn, SendDigits(digits=digits))

    async def set_language(self, *, tts_language: str | None = None,
                           transcription_language: str | None = None) -> None:
        frame = Language(tts_language=tts_language, transcription_language=transcription_language)
        await self._cell.outbox.send_frame(self._cell.current_turn, frame)

    async def end(self, handoff_data: str | None = None) -> None:
        cell = self._cell
        if handoff_data is None:
            cell.note_stop("ended")
            await cell.outbox.finish()
        else:
            cell.note_stop("handoff")
            await cell.outbox.hand_off(handoff_data)
        cell.request_stop()


class Supervisor:
    """Owns every live conversation actor.

    Use ``async with Supervisor.open(...) as supervisor`` or
    ``await nursery.start(supervisor.run)``; leaving (or :meth:`shutdown`) drains: running
    turns get ``grace`` seconds to finish, then everything is cancelled, and every end
    hook has run by the time it returns.
    """

    def __init__(self, *, restart_limit: RestartLimit | None = None,
                 shutdown_grace: float = 5.0) -> None:
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
                with trio.CancelScope(shield=True):
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
        cell = ActorCell(self, key, session, agent, outbox, policy)
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
                    cell.actor = actor
                    try:
                        await actor.run(recovering=recovering)
                        cell.note_stop("ended")
                        return
                    except Exception as exc:
                        crash = exc
                    finally:
                        cell.actor = None
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
            with trio.move_on_after(END_HOOK_TIMEOUT):
                await cell.outbox.finish(goodbye=cell.policy.goodbye_text)
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


