"""The conversation actor: one incarnation of the loop that owns a conversation's turns.

A :class:`ConversationActor` reads its cell's mailbox and handles one message at a time,
in arrival order (urgent ones first). A message that starts a **turn** runs it inline,
in the actor's own task (no task per turn), inside the turn's own cancel scope; the
actor reads no other message until the turn has ended. What must reach a running turn
does so without the actor, when the channel hands the message over to the cell:

* barge-in (:class:`Interruption`): the cell's :class:`~tac_actors.actors.gate.ReplyGate`
  cancels the running turn and retracts its queued frames; prompts read before the
  interruption and not yet started never run. The actor then handles the message in
  order: it records what was heard and calls the hook.
* busy policy: under ``preempt`` a new utterance stops every earlier turn, running or
  queued, the same way (a reply cut mid-stream is closed with an empty final token);
  under ``queue`` it waits in the mailbox for the running turn.
* a turn whose id is behind the gate's barrier when it is dequeued does not run: the
  person's words go into the history, no callback is called.
* partial prompts queued behind a turn are coalesced (the hook sees the newest).
* deadlines: a turn past ``turn_timeout`` is cancelled and the caller hears the timeout
  words; a conversation with no message for ``idle_timeout`` ends. A turn that takes
  longer than ``stop_timeout`` to stop once cancelled (an app shielding its work) holds
  its own conversation only, and is logged when it ends.
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
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from tac_actors import tracing
from tac_actors.actors.agent import ActorCrash, Phase, Reply, TurnTimeout
from tac_actors.actors.gate import CURRENT_TURN, NO_TURN, Turn
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
    is_urgent,
)

if TYPE_CHECKING:
    from tac_actors.actors.cell import ActorCell

__all__ = ["NO_TURN", "ChannelReportedError", "ConversationActor", "Turn"]

log = logging.getLogger("tac_actors.actor")

class ConversationActor:
    """One incarnation of a conversation's actor. Created by the supervisor."""

    def __init__(self, cell: ActorCell) -> None:
        self.cell = cell
        self.session = cell.session
        self.mailbox = cell.mailbox
        self.outbox = cell.outbox
        self.agent = cell.agent
        self.policy = cell.policy
        self.gate = cell.gate
        self.turn: Turn | None = None
        self._draining = False
        self._idle_since = trio.current_time()

    # -- the loop ------------------------------------------------------------------------

    async def run(self, *, recovering: bool = False) -> None:
        """Handle messages until the conversation ends. Raises when the incarnation
        crashes; the running turn is cancelled either way."""
        if recovering:
            # tagged with the newest turn: an interrupt read while the crash was being
            # reported (or after) stops these words too
            tag = self.gate.issued
            if tag == NO_TURN or self.gate.is_open(tag):
                await self.outbox.deliver(tag, self.policy.fallback_text, last=True)
        await self._loop()

    async def _loop(self) -> None:
        while True:
            if self.cell.stop_requested:
                return
            message = self.mailbox.take(
                _urgent_or_interruption if self._draining
                else is_urgent if self.mailbox.urgent_queued else None)
            if message is None:
                if self._draining or self.mailbox.closed:
                    return
                if self.policy.idle_timeout is None:
                    # no deadline to watch: wait here (no cancel scope, no extra frame:
                    # this is where every idle call spends its life)
                    await self.mailbox.wait_readable()
                else:
                    await self._wait_or_idle_out(self.policy.idle_timeout)
                continue
            if self.policy.idle_timeout is not None:
                self._idle_since = trio.current_time()
            await self._dispatch(message)
            del message  # a parked actor holds no handled message
            if self.session.pending_handoff_data is not None and \
                    await self._hand_off_if_requested():
                return  # requested in a turn or a hook

    async def _wait_or_idle_out(self, idle: float) -> None:
        with trio.move_on_at(self._idle_since + idle) as scope:
            await self.mailbox.wait_readable()
        if scope.cancelled_caught:
            log.info("conversation %s idle for %.0f s: ending it", self.session.conversation_id,
                     idle)
            self.cell.note_stop("idle")
            await self.outbox.finish()
            self.cell.request_stop()

    async def _dispatch(self, message: Message) -> None:
        match message:
            case Utterance():
                await self._start_turn(message.turn,
                                       lambda: self.agent.reply(message, self.session),
                                       said=message.text)
            case Digits():
                await self._start_turn(message.turn,
                                       lambda: self.agent.reply_digits(message, self.session))
            case Push():
                await self._start_turn(message.turn, partial(self._pushed, message))
            case Interruption():
                await self._interrupt(message)
            case PartialUtterance():
                await self._hook(self.agent.partial, message, self.session)
            case ChannelError():
                log.warning("conversation %s: channel reported an error: %s",
                            self.session.conversation_id, message.description)
                await self._report(ChannelReportedError(message.description), "channel")
            case Fault():
                self.cell.stats.errors += 1
                await self.cell.report(message.exc, message.phase,  # type: ignore[arg-type]
                                       message.turn)
            case SessionUpdate():
                for name, value in message.changes.items():
                    setattr(self.session, name, value)
            case Drain():
                self._draining = True
                self.cell.note_stop("shutdown")

    # -- turns ---------------------------------------------------------------------------

    async def _start_turn(self, turn_id: int, work: Callable[[], Awaitable[Reply]], *,
                          said: str | None = None) -> None:
        """Run one turn, inline in the actor's task (no task per turn: the actor reads
        no message while it runs). What must reach a running turn does so through the
        cell without waiting for the actor: a barge-in, or under ``preempt`` a newer
        prompt, stops it through the reply gate the moment it is handed over."""
        if not turn_id:  # posted without going through the cell (e.g. by a test)
            turn_id = self.gate.issue()
        if said is not None:
            self._record("user", said)
        if not self.gate.is_open(turn_id):
            # interrupted (or preempted) before it started: the person's words are in
            # the history, and what stopped it comes next in the mailbox
            log.debug("conversation %s: turn %d stopped before it started",
                      self.session.conversation_id, turn_id)
            self.gate.settle(turn_id)
            await trio.lowlevel.checkpoint()
            return
        timeout = self.policy.turn_timeout
        started = trio.current_time()
        turn = Turn(turn_id, trio.CancelScope(
            deadline=math.inf if timeout is None else started + timeout))
        self.turn = turn
        self.gate.running = turn
        # the app's code (and the tasks it starts) sees its turn; hooks outside turns
        # see none
        token = CURRENT_TURN.set(turn_id)
        try:
            await self._turn_body(turn, work, started)
        finally:
            CURRENT_TURN.reset(token)

    async def _pushed(self, push: Push) -> Reply:
        """The work of a pushed turn: its reply as given. A text outbox starts a turn
        that answers no inbound message (so the reply gets a key of its own)."""
        begin = getattr(self.outbox, "begin", None)
        if begin is not None:
            begin(())
        await trio.lowlevel.checkpoint()
        return push.reply  # type: ignore[no-any-return]

    async def _turn_body(self, turn: Turn, work: Callable[[], Awaitable[Reply]],
                         started: float) -> None:
        self.cell.stats.turns += 1
        span = tracing.start_turn(self.cell, turn)  # tracing: None when not traced
        try:
            with turn.scope:
                reply = await work()
                await self._speak(turn, reply)
            if turn.scope.cancelled_caught:
                if turn.cause is None:
                    turn.cause = "timeout"
                    await self._close_with(turn, self.policy.timeout_text)
                    self._post_fault(TurnTimeout(f"turn {turn.id} ran past "
                                                 f"{self.policy.turn_timeout} s"),
                                     "timeout", turn)
                else:
                    await self._after_stop(turn)
        except ActorCrash:
            raise
        except Exception as exc:
            crash = _crash_in(exc)
            if crash is not None:
                raise crash from exc
            turn.cause = "error"
            log.exception("conversation %s: turn %d failed", self.session.conversation_id,
                          turn.id)
            await self._close_with(turn, self.policy.fallback_text)
            self._post_fault(exc, "turn", turn)
        finally:
            if turn.spoken:
                self._record("assistant", "".join(turn.spoken),
                             interrupted=turn.cause in ("interrupt", "preempt"))
            self.turn = None
            # idle time counts from the end of the last turn, not from when its message
            # was taken (review C11: a long turn ended the conversation right after it)
            self._idle_since = now = trio.current_time()
            if self.gate.running is turn:
                self.gate.running = None
            self.gate.settle(turn.id)
            self.cell.metrics.observe_turn(self.session, turn, now - started, now)
            tracing.end_turn(span, turn)  # tracing

    async def _after_stop(self, turn: Turn) -> None:
        """A turn stopped through the gate (barge-in, preemption) has ended."""
        stopped_at = turn.stopped_at
        if stopped_at is not None and trio.current_time() - stopped_at > self.policy.stop_timeout:
            log.warning("conversation %s: turn %d took %.1f s to stop after being cancelled "
                        "(does the app shield its work?)", self.session.conversation_id,
                        turn.id, trio.current_time() - stopped_at)
        if turn.close_reply:
            # preempted mid-reply: the caller's side of the stream is closed with an
            # empty final token before the next turn speaks (an acknowledgement just
            # queued is not repeated: the outbox coalesces them)
            turn.close_reply = False
            turn.reply_open = False
            await self.outbox.deliver(NO_TURN, "", last=True)

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
        if not self.gate.is_open(turn.id):
            await trio.lowlevel.checkpoint()
            return
        if not turn.spoken:
            turn.first_at = trio.current_time()  # metrics: time to first token
        turn.spoken.append(token)
        turn.reply_open = not last
        await self.outbox.deliver(turn.id, token, last=last)

    async def _close_with(self, turn: Turn, text: str) -> None:
        if self.gate.is_open(turn.id):
            turn.spoken.append(("" if not turn.spoken else " ") + text)
            turn.reply_open = False
            await self.outbox.deliver(turn.id, text, last=True)

    async def _hand_off_if_requested(self) -> bool:
        """Hand off if ``session.request_handoff`` was called (in a turn or a hook) and
        no turn is running. True when the actor must stop."""
        handoff = self.session.pending_handoff_data
        if handoff is None or self.cell.stop_requested:
            return False
        self.session.pending_handoff_data = None
        log.info("conversation %s: handing off", self.session.conversation_id)
        self.cell.note_stop("handoff")
        await self.outbox.hand_off(handoff)
        return True

    # -- barge-in --------------------------------------------------------------------------

    async def _interrupt(self, message: Interruption) -> None:
        self.cell.stats.interrupts += 1
        if message.through is None:  # not handed over through the cell: stop them now
            self.gate.interrupt()
        if not message.acknowledged:
            await self.outbox.deliver(NO_TURN, "", last=True)
        # the turns it stopped have ended (turns run inline), so their words are in the
        # history
        self._record_heard(message.heard)
        await self._hook(self.agent.interrupted, self.session, message)

    def _record(self, role: Literal["user", "assistant"], text: str, *,
                interrupted: bool = False) -> None:
        self.session.record(role, text, _now(), interrupted=interrupted)
        policy = self.policy
        size = len(self.session.history)
        # amortised: past the entry limit the history is cut to three quarters of it; the
        # characters are summed only after an entry longer than the budget's average
        # (entries no longer than that, at most history_limit of them, fit the budget)
        if size > policy.history_limit:
            self.session.trim_history(entries=policy.history_limit * 3 // 4,
                                      chars=policy.history_chars)
        elif len(text) > policy.history_chars // policy.history_limit:
            self.session.trim_history(entries=policy.history_limit,
                                      chars=policy.history_chars)

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

    def _post_fault(self, exc: BaseException, phase: Phase, turn: Turn) -> None:
        """Report a turn's failure from the actor loop, not from the turn: a preempting
        prompt or a barge-in never waits for ``on_error`` (review C12)."""
        try:
            self.mailbox.send_nowait(Fault(exc, phase, turn.id), urgent=True)
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.cell.stats.errors += 1
            log.warning("conversation %s: on_error not called for turn %d (%s): the "
                        "conversation is closing or its urgent lane is full",
                        self.session.conversation_id, turn.id, type(exc).__name__)

    async def _report(self, exc: BaseException, phase: Phase, turn: Turn | None = None) -> None:
        self.cell.stats.errors += 1
        await self.cell.report(exc, phase, turn.id if turn else None)


class ChannelReportedError(Exception):
    """The channel's far end (e.g. Twilio's ``error`` frame) reported a problem."""


def _urgent_or_interruption(message: Message) -> bool:
    return is_urgent(message) or isinstance(message, Interruption)


def _crash_in(exc: Exception) -> ActorCrash | None:
    """The :class:`ActorCrash` an app raised inside its own nursery (a group of crashes
    only), else ``None``."""
    if isinstance(exc, ExceptionGroup):
        crashes, rest = exc.split(ActorCrash)
        if crashes is not None and rest is None:
            first: ActorCrash = next(_leaves(crashes))
            return first
    return None


def _leaves(group: BaseExceptionGroup[Any]) -> Any:
    for inner in group.exceptions:
        if isinstance(inner, BaseExceptionGroup):
            yield from _leaves(inner)
        else:
            yield inner


def _now() -> datetime:
    return datetime.now(UTC)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))

