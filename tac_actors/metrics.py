"""What the runtime counts for ``GET /metrics``, cheap enough to run on every turn.

Most figures are read at scrape time from the ``statistics()`` of the long-lived objects
(supervisor, cells, mailboxes, front door, tool registry, memory, service client): the
hot path pays nothing for them. What cannot be read later, because it happens once and is
gone, is handed to one :class:`RuntimeMetrics` object:

* :meth:`~RuntimeMetrics.observe_turn`: a turn ended (its latency, time to first token,
  outcome, and the interrupt-to-stop latency of an interrupted turn);
* :meth:`~RuntimeMetrics.conversation_started` / :meth:`~RuntimeMetrics.conversation_ended`:
  a conversation began or was buried (its counters move into the totals, so the totals
  never go down when a conversation's cell goes away);
* :meth:`~RuntimeMetrics.observe_error` (by phase) and :meth:`~RuntimeMetrics.observe_webhook`
  (by outcome).

It is also where the per-conversation INFO log lines are written (start, end, one per
turn: see :mod:`tac_actors.logs`), so the actor core calls one object, not two.

Labels are bounded by construction: channel (five values), phase, outcome, service
product and status class. No label carries a conversation or call id. Histograms are
plain lists of bucket counts (a ``bisect`` and two additions per observation); this
module imports nothing from prometheus, which reads it through
:mod:`tac_actors.server.metrics`. Everything runs on the one trio thread: no locks.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from tac_actors.logs import bind_conversation, mask

if TYPE_CHECKING:
    from tac_actors.actors.gate import Turn
    from tac_actors.session import Channel, ConversationSession

class _Counts(Protocol):
    turns: int
    interrupts: int
    errors: int


class ActorCell(Protocol):
    """What the hook reads of a conversation's cell (the actor core's ``ActorCell``
    has it; named here so this module imports nothing of the actor core)."""

    @property
    def session(self) -> ConversationSession: ...

    @property
    def stats(self) -> _Counts: ...

    @property
    def stop_reason(self) -> str | None: ...


__all__ = ["LATENCY_BUCKETS", "NULL_METRICS", "Histogram", "MetricsHook", "RuntimeMetrics"]

#: seconds; the turn, first-token, interrupt and service-call histograms share them
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

log = logging.getLogger("tac_actors.conversation")
#: one line per turn, on a logger of its own so it can be silenced alone
turn_log = logging.getLogger("tac_actors.turns")


class Histogram:
    """Bucket counts of observations (Prometheus' ``le`` semantics: a value equal to a
    bound falls in that bound's bucket)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> Iterator[tuple[str, int]]:
        """``(le, cumulative count)`` pairs, ending with ``("+Inf", count)``."""
        total = 0
        for bound, count in zip((*map(_le, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            yield bound, total


def _le(bound: float) -> str:
    return repr(float(bound))


class MetricsHook(Protocol):
    """What the actor core calls. :data:`NULL_METRICS` does nothing."""

    def conversation_started(self, cell: ActorCell) -> None: ...
    def conversation_ended(self, cell: ActorCell) -> None: ...
    def observe_turn(self, session: ConversationSession, turn: Turn, seconds: float,
                     now: float) -> None: ...
    def observe_error(self, phase: str) -> None: ...


class _NullMetrics:
    def conversation_started(self, cell: ActorCell) -> None:
        pass

    def conversation_ended(self, cell: ActorCell) -> None:
        pass

    def observe_turn(self, session: ConversationSession, turn: Turn, seconds: float,
                     now: float) -> None:
        pass

    def observe_error(self, phase: str) -> None:
        pass


#: the hook of a cell or supervisor made without a runtime (tests, embedding)
NULL_METRICS: MetricsHook = _NullMetrics()


class _ChannelFigures:
    """One channel's turn figures (one dict look-up per turn finds them all)."""

    __slots__ = ("first_token", "ok", "outcomes", "stop", "turn")

    def __init__(self) -> None:
        self.turn = Histogram()
        self.first_token = Histogram()
        self.stop = Histogram()
        self.ok = 0
        self.outcomes: dict[str, int] = {}


class RuntimeMetrics:
    """The one-off observations of a runtime (see the module docstring)."""

    def __init__(self) -> None:
        self._channels: dict[Channel, _ChannelFigures] = {}
        self.errors: dict[str, int] = {}
        self.webhooks: dict[str, int] = {}
        #: counters of conversations already buried, by channel
        self.ended: dict[str, int] = {}
        self.ended_interrupts: dict[str, int] = {}

    # -- read at scrape time (by channel value) -------------------------------------------

    @property
    def turn_seconds(self) -> dict[str, Histogram]:
        return {c.value: f.turn for c, f in self._channels.items()}

    @property
    def first_token_seconds(self) -> dict[str, Histogram]:
        return {c.value: f.first_token for c, f in self._channels.items()}

    @property
    def interrupt_stop_seconds(self) -> dict[str, Histogram]:
        return {c.value: f.stop for c, f in self._channels.items() if f.stop.count}

    @property
    def turns(self) -> dict[tuple[str, str], int]:
        """Turns by channel and outcome ("ok", "interrupt", "preempt", "timeout", ...)."""
        found: dict[tuple[str, str], int] = {}
        for channel, figures in self._channels.items():
            if figures.ok:
                found[channel.value, "ok"] = figures.ok
            for outcome, count in figures.outcomes.items():
                found[channel.value, outcome] = count
        return found

    def conversation_started(self, cell: ActorCell) -> None:
        session = cell.session
        # set in the task that spawns the actor: the actor (spawned after this) and the
        # channel's own task (the socket reader, the webhook request) both see it
        bind_conversation(session)
        log.info("conversation started: %s %s from %s", session.channel.value,
                 session.conversation_id, _author(session))

    def conversation_ended(self, cell: ActorCell) -> None:
        channel = cell.session.channel.value
        self.ended[channel] = self.ended.get(channel, 0) + 1
        stats = cell.stats
        if stats.interrupts:
            self.ended_interrupts[channel] = (self.ended_interrupts.get(channel, 0)
                                              + stats.interrupts)
        log.info("conversation ended: %s %s (%s) after %d turn(s), %d interruption(s), "
                 "%d error(s)", channel, cell.session.conversation_id,
                 cell.stop_reason or "ended", stats.turns, stats.interrupts, stats.errors)

    def observe_turn(self, session: ConversationSession, turn: Turn, seconds: float,
                     now: float) -> None:
        figures = self._channels.get(session.channel)
        if figures is None:
            figures = self._channels[session.channel] = _ChannelFigures()
        figures.turn.observe(seconds)
        cause = turn.cause
        if cause is None:
            figures.ok += 1
        else:
            figures.outcomes[cause] = figures.outcomes.get(cause, 0) + 1
        first = turn.first_at
        if first is not None:
            figures.first_token.observe(first - now + seconds)
        if turn.stopped_at is not None:
            figures.stop.observe(now - turn.stopped_at)
        if turn_log.isEnabledFor(logging.INFO):
            turn_log.info("turn %d: %s %s in %.1f ms (first token %s)", turn.id,
                          cause or "ok", session.channel.value, seconds * 1000,
                          "none" if first is None else f"{(first - now + seconds) * 1000:.1f} ms")

    def observe_error(self, phase: str) -> None:
        self.errors[phase] = self.errors.get(phase, 0) + 1

    def observe_webhook(self, outcome: str) -> None:
        self.webhooks[outcome] = self.webhooks.get(outcome, 0) + 1


def _author(session: ConversationSession) -> str:
    author = session.author_info
    address = author.address if author is not None and author.address else session.caller
    return mask(address) if address else "unknown"
