"""The reply gate: which turns may still speak.

Every message that starts a turn (an utterance, a key press) is given a **turn id** when
its channel hands it to the conversation (:meth:`ReplyGate.issue`), in the order the
channel read it. Ids only grow. The gate keeps one number, the **barrier**: a turn whose
id is at or below it is stopped: none of its frames may be sent, whether the turn

* is running (its cancel scope is cancelled and its queued frames retracted),
* is still queued in the mailbox (it will not run: the actor records what the person said
  and moves on), or
* has finished while its frames still wait behind a slow socket (they are retracted).

A barge-in (:meth:`interrupt`) raises the barrier to the last issued id: **an interrupt
applies to the reply of every prompt read before it on the same socket**, started or
not; a prompt read after it is answered as usual. That is what the caller experiences on
the wire: the acknowledgement (an empty final ``text`` token) is queued in the same
synchronous step, after the retraction, so no frame of a stopped turn can follow it.
Preemption (busy policy ``preempt``: a new prompt handed over while an earlier one runs
or waits) raises the barrier to just below the new prompt's id, in the same step.

The gate is owned by the conversation's cell, so it outlives a crashed actor
incarnation: frames queued by a turn of the crashed incarnation are still retracted by an
interrupt read during the restart.

It is plain synchronous state: a channel's reader and the actor both call it without
awaiting, so no task switch can fall between deciding to stop and stopping.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

import attrs
import trio

__all__ = ["CURRENT_TURN", "NO_TURN", "ReplyGate", "Turn"]

#: turn id of frames that belong to no turn (acknowledgements, closings): never retracted
NO_TURN = 0

#: the turn whose code is running (set in each turn's task, inherited by the tasks it
#: starts): what the app sends through ``session.controls`` belongs to that turn
CURRENT_TURN: ContextVar[int] = ContextVar("tac_current_turn", default=NO_TURN)


class _Retracting(Protocol):
    def retract_through(self, barrier: int) -> int: ...


@attrs.define(eq=False)
class Turn:
    """A running turn. ``cause`` says why it stopped early ("interrupt", "preempt",
    "timeout", "error", "stop"); ``None`` while it runs or when it finished normally."""

    id: int
    scope: trio.CancelScope
    cause: str | None = None
    spoken: list[str] = attrs.field(factory=list)
    reply_open: bool = False
    #: preempted mid-reply: the stream is closed with an empty final token when it ends
    close_reply: bool = False
    #: metrics: when the first token went out, and when the turn was stopped (None: not)
    first_at: float | None = None
    stopped_at: float | None = None


class ReplyGate:
    """See the module docstring. One per conversation."""

    __slots__ = ("_outbox", "barrier", "issued", "running", "settled")

    def __init__(self, outbox: _Retracting) -> None:
        self._outbox = outbox
        self.issued = NO_TURN
        self.barrier = NO_TURN
        #: the newest turn that has run or was skipped: turns after it up to ``issued``
        #: are queued or running
        self.settled = NO_TURN
        self.running: Turn | None = None

    def issue(self) -> int:
        """A new turn id, greater than every id issued before."""
        self.issued += 1
        return self.issued

    def is_open(self, turn_id: int) -> bool:
        """Whether frames of ``turn_id`` may still be sent."""
        return turn_id > self.barrier

    def stop_through(self, turn_id: int, cause: str) -> bool:
        """Stop every turn with an id at or below ``turn_id``: raise the barrier, cancel
        the running turn if it is one of them, retract their queued frames. Returns
        whether a running turn was stopped. Idempotent."""
        if turn_id > self.barrier:
            self.barrier = turn_id
        stopped = False
        turn = self.running
        if turn is not None and turn.id <= self.barrier:
            if turn.cause is None:  # also when its deadline passed a moment ago
                turn.cause = cause
            stopped = not turn.scope.cancel_called
            if turn.stopped_at is None:
                turn.stopped_at = trio.current_time()  # metrics: interrupt-to-stop
            turn.scope.cancel()
        self._outbox.retract_through(self.barrier)
        return stopped

    def settle(self, turn_id: int) -> None:
        """The actor is done with ``turn_id`` (it ran, or was skipped)."""
        if turn_id > self.settled:
            self.settled = turn_id

    def preempt(self, newer: int) -> bool:
        """Busy policy ``preempt``: the turn ``newer`` was just issued; stop every
        earlier turn that is running or still queued (the newest prompt wins). Turns
        that have ended keep their queued frames. Returns whether anything was stopped."""
        if self.settled >= newer - 1 or newer - 1 <= self.barrier:
            return False
        turn = self.running
        if turn is not None and turn.reply_open and self.is_open(turn.id):
            turn.close_reply = True
        self.stop_through(newer - 1, "preempt")
        return True

    def interrupt(self) -> int:
        """Barge-in: stop the replies of every prompt issued so far. Returns the barrier."""
        self.stop_through(self.issued, "interrupt")
        return self.barrier
