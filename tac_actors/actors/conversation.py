"""The conversation actor: one incarnation of the loop that owns a conversation's turns.

A :class:`ConversationActor` reads its cell's mailbox and runs one **turn** at a time in
a child task, each turn inside its own cancel scope:

* barge-in (:class:`Interruption`): the running turn is *muted* (its queued frames are
  retracted and any later token of it is dropped), cancelled, and the interruption is
  acknowledged with an empty final token. The mute happens before the acknowledgement is
  queued, so no token of that turn can follow it on the wire. A channel that can write
  without waiting does this from its reader the moment the frame is read
  (:meth:`ConversationActor.interrupt_now`, synchronous) and posts the message marked
  ``acknowledged``; the actor then records what was heard and calls the hook.
* busy policy: under ``preempt`` a new utterance does the same to the running turn (its
  reply is closed with an empty final token) and then runs; under ``queue`` it stays in
  the mailbox, and the busy actor reads only urgent messages until the turn ends.
* deadlines: a turn past ``turn_timeout`` is cancelled and the caller hears the timeout
  words; a conversation with no message for ``idle_timeout`` ends.
* errors: an exception from the app fails its turn only: the caller hears the fallback
  words, ``on_error`` is called, the next turn runs as usual. :class:`ActorCrash` (or a
  bug in the engine) ends the incarnation instead, and the supervisor decides.

All awaits on the app's code are cancellable; hooks run under a deadline too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import trio

from tac_actors.actors.agent import ActorCrash, Phase, Reply, TurnTimeout
from tac_actors.actors.messages import (
    ChannelError,
    Digits,
    Drain,
    Interruption,
    Message,
    PartialUtterance,
    SessionUpdate,
    Utterance,
    is_urgent,
)
from tac_actors.config import BusyPolicy

if TYPE_CHECKING:
    from tac_actors.actors.supervisor import ActorCell

__all__ = ["ChannelReportedError", "ConversationActor", "Turn"]

log = logging.getLogger("tac_actors.actor")

#: turn id used for frames that belong to no turn (acknowledgements, closings)
NO_TURN = 0


@attrs.define(eq=False)
class Turn:
    """A running turn. ``open`` turns False when it is muted: nothing of it is sent."""

    id: int
    scope: trio.CancelScope
    done: trio.Event = attrs.field(factory=trio.Event)
    open: bool = True
    cause: str | None = None  # "interrupt" | "preempt" | "timeout" | "error" | "stop"
    spoken: list[str] = attrs.field(factory=list)
    reply_open: bool = False


class ConversationActor:
    """One incarnation of a conversation's actor. Created by the supervisor."""

    def __init__(self, cell: ActorCell) -> None:
        self.cell = cell
        self.session = cell.session
        self.mailbox = cell.mailbox
        self.outbox = cell.outbox
        self.agent = cell.agent
        self.policy = cell.policy
        self.turn: Turn | None = None
        self._last_turn_id = NO_TURN
        self._finished: Turn | None = None
        self._crash: BaseException | None = None
        self._draining = False
        self._nursery: trio.Nursery | None = None
        self._idle_since = trio.current_time()

    # -- the loop ------------------------------------------------------------------------

    async def run(self, *, recovering: bool = False) -> None:
        """Handle messages until the conversation ends. Raises when the incarnation
        crashes; the running turn is cancelled either way."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if recovering:
                await self.outbox.deliver(NO_TURN, self.policy.fallback_text, last=True)
            await self._loop()
            nursery.cancel_scope.cancel()

    def _selector(self) -> Callable[[Message], bool] | None:
        if self.turn is None and not self._draining:
            return None
        if self._draining or self.policy.busy_policy is BusyPolicy.QUEUE:
            return is_urgent
        return None

    async def _loop(self) -> None:
        while True:
            if self._crash is not None:
                raise self._crash
            if self._finished is not None:
                turn, self._finished = self._finished, None
                if await self._after_turn(turn):
                    return
            if self.cell.stop_requested:
                return
            try:
                message = self.mailbox.receive_nowait(self._selector())
            except trio.WouldBlock:
                if self.turn is None and (self._draining or self.mailbox.closed):
                    return
                if self.policy.idle_timeout is None or self.turn is not None:
                    # no deadline to watch: wait here (no cancel scope, no extra frame:
                    # this is where every idle call spends its life)
                    await self.mailbox.wait_readable()
                else:
                    await self._wait_or_idle_out(self.policy.idle_timeout)
                continue
            self._idle_since = trio.current_time()
            await self._dispatch(message)

    async def _wait_or_idle_out(self, idle: float) -> None:
        with trio.move_on_at(self._idle_since + idle) as scope:
            await self.mailbox.wait_readable()
        if scope.cancelled_caught and self.turn is None:
            log.info("conversation %s idle for %.0f s: ending it", self.session.conversation_id,
                     idle)
            self.cell.note_stop("idle")
            await self.outbox.finish()
            self.cell.request_stop()

    async def _dispatch(self, message: Message) -> None:
        match message:
            case Utterance():
                await self._start_turn(lambda: self.agent.reply(message, self.session),
                                       said=message.text)
            case Digits():
                await self._start_turn(lambda: self.agent.reply_digits(message, self.session))
            case Interruption():
                await self._interrupt(message)
            case PartialUtterance():
                await self._hook(self.agent.partial, message, self.session)
            case ChannelError():
                log.warning("conversation %s: channel reported an error: %s",
                            self.session.conversation_id, message.description)
                await self._report(ChannelReportedError(message.description), "channel")
            case SessionUpdate():
                for name, value in message.changes.items():
                    setattr(self.session, name, value)
            case Drain():
                self._draining = True
                self.cell.note_stop("shutdown")

    # -- turns ---------------------------------------------------------------------------

    async def _start_turn(self, work: Callable[[], Awaitable[Reply]], *,
                          said: str | None = None) -> None:
        if self.turn is not None:
            await self._preempt(self.turn)
        if said is not None:
            self.session.record("user", said, _now())
        timeout = self.policy.turn_timeout
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        turn = Turn(self.cell.next_turn_id(), trio.CancelScope(deadline=deadline))
        self.turn = turn
        self._last_turn_id = turn.id
        assert self._nursery is not None
        self._nursery.start_soon(self._run_turn, turn, work)

    async def _preempt(self, turn: Turn) -> None:
        reply_was_open = turn.reply_open
        self._mute(turn, "preempt")
        if reply_was_open:
            await self.outbox.deliver(NO_TURN, "", last=True)
        await turn.done.wait()

    def _mute(self, turn: Turn, cause: str) -> None:
        turn.open = False
        turn.cause = cause
        turn.scope.cancel()
        self.outbox.retract(turn.id)

    async def _run_turn(self, turn: Turn, work: Callable[[], Awaitable[Reply]]) -> None:
        try:
            await self._turn_body(turn, work)
        except Exception as exc:
            # handed to the loop, which raises it before it takes another message: so no
            # message is taken out of the mailbox by an incarnation that is going down
            self._crash = exc
            self.mailbox.nudge()

    async def _turn_body(self, turn: Turn, work: Callable[[], Awaitable[Reply]]) -> None:
        self.cell.stats.turns += 1
        try:
            with turn.scope:
                reply = await work()
                await self._speak(turn, reply)
            if turn.scope.cancelled_caught and turn.cause is None:
                turn.cause = "timeout"
                await self._close_with(turn, self.policy.timeout_text)
                await self._report(TurnTimeout(f"turn {turn.id} ran past "
                                               f"{self.policy.turn_timeout} s"), "timeout", turn)
        except ActorCrash:
            raise
        except Exception as exc:
            turn.cause = "error"
            log.exception("conversation %s: turn %d failed", self.session.conversation_id,
                          turn.id)
            await self._close_with(turn, self.policy.fallback_text)
            await self._report(exc, "turn", turn)
        finally:
            if turn.spoken:
                self.session.record("assistant", "".join(turn.spoken), _now(),
                                    interrupted=turn.cause in ("interrupt", "preempt"))
            self.turn = None
            self._finished = turn
            turn.done.set()
            if self._loop_has_work():
                self.mailbox.nudge()

    def _loop_has_work(self) -> bool:
        """Whether the loop must wake now that a turn ended. When it is parked with an
        empty mailbox and nothing follows a turn, it can learn of the end when the next
        message wakes it: one scheduler round trip less per turn."""
        return bool(len(self.mailbox) or self.session.pending_handoff_data is not None
                    or self._crash is not None or self._draining
                    or self.cell.stop_requested or self.policy.idle_timeout is not None)

    async def _speak(self, turn: Turn, reply: Reply) -> None:
        if reply is None:
            return
        if isinstance(reply, str):
            await self._emit(turn, reply, last=True)
            return
        if not hasattr(reply, "__aiter__"):
            raise TypeError(f"a reply must be a str, None or an async iterator of str, "
                            f"not {type(reply).__name__}")
        iterator: Any = reply.__aiter__()
        if hasattr(iterator, "aclose"):
            async with aclosing(iterator):
                await self._stream(turn, iterator)
        else:
            await self._stream(turn, iterator)

    async def _stream(self, turn: Turn, iterator: Any) -> None:
        async for token in iterator:
            if not isinstance(token, str):
                raise TypeError(f"a streamed token must be a str, not {type(token).__name__}")
            if token:
                await self._emit(turn, token, last=False)
        await self._emit(turn, "", last=True)

    async def _emit(self, turn: Turn, token: str, *, last: bool) -> None:
        if not turn.open:
            await trio.lowlevel.checkpoint()
            return
        turn.spoken.append(token)
        turn.reply_open = not last
        await self.outbox.deliver(turn.id, token, last=last)

    async def _close_with(self, turn: Turn, text: str) -> None:
        if turn.open:
            turn.spoken.append(("" if not turn.spoken else " ") + text)
            turn.reply_open = False
            await self.outbox.deliver(turn.id, text, last=True)

    async def _after_turn(self, turn: Turn) -> bool:
        """Runs in the actor loop after each turn. True when the actor must stop."""
        handoff = self.session.pending_handoff_data
        if handoff is None or self.cell.stop_requested:
            return False
        self.session.pending_handoff_data = None
        log.info("conversation %s: handing off", self.session.conversation_id)
        self.cell.note_stop("handoff")
        await self.outbox.hand_off(handoff)
        return True

    # -- barge-in --------------------------------------------------------------------------

    def interrupt_now(self) -> tuple[bool, Turn | None]:
        """Stop the reply now, from the channel's reader, without a trip through the
        mailbox: mute the running turn (or retract the finished reply still queued) and
        queue the acknowledgement. Synchronous, so nothing of the turn can slip in between.
        Returns whether it was done (the outbox must support ``deliver_nowait``) and the
        turn it stopped; the channel then posts the :class:`Interruption` marked
        ``acknowledged`` for the rest (history, hook)."""
        deliver_nowait = getattr(self.outbox, "deliver_nowait", None)
        if deliver_nowait is None:
            return False, None
        turn = self.turn
        self._stop_reply(turn)
        deliver_nowait(NO_TURN, "", last=True)
        return True, turn

    def _stop_reply(self, turn: Turn | None) -> None:
        if turn is not None:
            self._mute(turn, "interrupt")
        else:
            # a finished reply may still be queued behind a slow socket: it is stale now
            self.outbox.retract(self._last_turn_id)

    async def _interrupt(self, message: Interruption) -> None:
        self.cell.stats.interrupts += 1
        turn: Turn | None
        if message.acknowledged:
            turn = message.stopped_turn
        else:
            turn = self.turn
            self._stop_reply(turn)
            await self.outbox.deliver(NO_TURN, "", last=True)
        if turn is not None:
            await turn.done.wait()
        self._record_heard(message.heard)
        await self._hook(self.agent.interrupted, self.session, message)

    def _record_heard(self, heard: str) -> None:
        history = self.session.history
        for index in range(len(history) - 1, -1, -1):
            entry = history[index]
            if entry.role == "user":
                return
            if entry.role == "assistant":
                history[index] = attrs.evolve(entry, text=heard, interrupted=True)
                return

    # -- hooks and errors ------------------------------------------------------------------

    async def _hook(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        timeout = self.policy.turn_timeout or math.inf
        try:
            with trio.move_on_after(timeout) as scope:
                await fn(*args)
            if scope.cancelled_caught:
                log.warning("conversation %s: hook %s ran past %s s and was cancelled",
                            self.session.conversation_id, _name(fn), timeout)
        except ActorCrash:
            raise
        except Exception as exc:
            log.exception("conversation %s: hook %s raised", self.session.conversation_id,
                          _name(fn))
            await self._report(exc, "hook")

    async def _report(self, exc: BaseException, phase: Phase, turn: Turn | None = None) -> None:
        self.cell.stats.errors += 1
        await self.cell.report(exc, phase, turn.id if turn else None)


class ChannelReportedError(Exception):
    """The channel's far end (e.g. Twilio's ``error`` frame) reported a problem."""


def _now() -> datetime:
    return datetime.now(UTC)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))

