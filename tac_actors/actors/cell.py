"""A conversation's cell: what the supervisor keeps of it across actor incarnations.

The cell owns the mailbox, the session, the outbox, the reply gate and the restart
history, so they survive a crashed incarnation. Channels reach a conversation through
its cell (:meth:`ActorCell.send`, :meth:`ActorCell.hang_up`); apps through
``session.controls`` (:class:`ConversationControls`). The actor
(:mod:`~tac_actors.actors.conversation`) and the supervisor both import this module; it
imports neither.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import trio

from tac_actors.actors.agent import Agent, ErrorContext, Phase
from tac_actors.actors.gate import CURRENT_TURN, NO_TURN, ReplyGate
from tac_actors.actors.mailbox import Mailbox, MailboxStatistics
from tac_actors.actors.messages import (
    Digits,
    Interruption,
    Message,
    PartialUtterance,
    Push,
    Utterance,
    is_urgent,
)
from tac_actors.actors.outbox import Outbox
from tac_actors.config import BusyPolicy, ChannelPolicy, RestartLimit
from tac_actors.metrics import NULL_METRICS, MetricsHook
from tac_actors.protocol.relay import Language, OutboundFrame, Play, SendDigits

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from tac_actors.session import ConversationSession

__all__ = ["END_HOOK_TIMEOUT", "ActorCell", "CellStatistics", "ConversationControls"]

log = logging.getLogger("tac_actors.supervisor")

#: how long ``on_conversation_ended`` and the goodbye may take once a conversation ends
END_HOOK_TIMEOUT = 5.0


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


class ActorCell:
    """The supervisor's record of one conversation. Apps reach it through the session's
    controls; channels through :meth:`send`, :meth:`send_nowait` and :meth:`hang_up`."""

    def __init__(self, key: str, session: ConversationSession,
                 agent: Agent, outbox: Outbox, policy: ChannelPolicy) -> None:
        self.key = key
        self.session = session
        self.agent = agent
        self.outbox = outbox
        self.policy = policy
        self.mailbox: Mailbox[Message] = Mailbox(policy.mailbox_capacity)
        self.gate = ReplyGate(outbox)
        self._preempts = policy.busy_policy is BusyPolicy.PREEMPT
        self.scope = trio.CancelScope()
        #: set once the conversation has ended and its end hook has run
        self.stopped = LazyEvent()
        self.stats = _Counters()
        self.stop_requested = False
        self.stop_reason: str | None = None
        self._crashes: list[float] = []
        self._on_closing: list[Callable[[], object]] = []
        self._on_stopped: list[Callable[[], object]] = []
        session.attach(ConversationControls(self))
        #: metrics and per-conversation log lines (set by the supervisor)
        self.metrics: MetricsHook = NULL_METRICS
        #: tracing: the conversation span's context (None: not traced; see tac_actors.tracing)
        self.trace: Context | None = None

    # -- what channels use --------------------------------------------------------------

    def _admit(self, message: Message) -> Message:
        """What happens the moment a message is handed over, before it is queued: a
        message that starts a turn gets its turn id (the order of hand-over is the order
        of turns); an interruption stops the replies through the reply gate and queues
        the acknowledgement (see :mod:`tac_actors.actors.gate`)."""
        if isinstance(message, Utterance):
            if not message.turn:  # a new instance, built directly (cheaper than evolve)
                message = Utterance(message.text, message.lang, message.message_id,
                                    message.meta, self._issue())
        elif isinstance(message, Digits):
            if not message.turn:
                message = Digits(message.digit, self._issue())
        elif isinstance(message, Push):
            if not message.turn:  # a push never preempts: it runs after the running turn
                message = Push(message.reply, self.gate.issue())
        elif isinstance(message, Interruption) and message.through is None:
            through = self.gate.interrupt()
            ack = getattr(self.outbox, "deliver_nowait", None)
            if ack is not None:
                ack(NO_TURN, "", last=True)
            message = attrs.evolve(message, through=through, acknowledged=ack is not None)
        return message

    def _issue(self) -> int:
        turn_id = self.gate.issue()
        if self._preempts:
            self.gate.preempt(turn_id)
        return turn_id

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
        :class:`trio.ClosedResourceError` (the conversation is closing). While a turn
        runs, a partial utterance takes the place of one queued right before it (only
        the newest unfinished speech is worth a hook call once the turn is over)."""
        if self.mailbox.closed:
            raise trio.ClosedResourceError("the conversation has ended")
        if isinstance(message, PartialUtterance) and self.gate.running is not None and \
                self.mailbox.replace_last(message, _is_partial):
            return  # behind a turn, the hook sees the newest unfinished speech only
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
        self.metrics.observe_error(phase)
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

    def _turn(self) -> int | None:
        """The turn the caller's code belongs to (the running turn when called from
        outside any turn); ``None`` when the reply gate has stopped that turn: what it
        would send is dropped, as its tokens are."""
        turn = CURRENT_TURN.get() or self._cell.current_turn
        if turn and not self._cell.gate.is_open(turn):
            return None
        return turn

    async def send_text(self, text: str) -> None:
        turn = self._turn()
        if turn is None:
            await trio.lowlevel.checkpoint()
            return
        await self._cell.outbox.deliver(turn, text, last=True)

    async def _send_frame(self, frame: OutboundFrame) -> None:
        turn = self._turn()
        if turn is None:
            await trio.lowlevel.checkpoint()
            return
        await self._cell.outbox.send_frame(turn, frame)

    async def play(self, source: str, *, loop: int | None = None) -> None:
        await self._send_frame(Play(source=source, loop=loop))

    async def send_digits(self, digits: str) -> None:
        await self._send_frame(SendDigits(digits=digits))

    async def set_language(self, *, tts_language: str | None = None,
                           transcription_language: str | None = None) -> None:
        await self._send_frame(Language(tts_language=tts_language,
                                        transcription_language=transcription_language))

    async def end(self, handoff_data: str | None = None) -> None:
        cell = self._cell
        if handoff_data is None:
            cell.note_stop("ended")
            await cell.outbox.finish()
        else:
            cell.note_stop("handoff")
            await cell.outbox.hand_off(handoff_data)
        cell.request_stop()


def _is_partial(message: Message) -> bool:
    return isinstance(message, PartialUtterance)


class LazyEvent:
    """What a cell offers of :class:`trio.Event` (``is_set``, ``set``, ``wait``), with
    the event itself made only when a task first waits: most conversations are never
    waited for, and an event costs a set of waiters (a few hundred bytes) per call."""

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: trio.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Return once set (at once, through a checkpoint, if it already is)."""
        if self._flag:
            await trio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()
