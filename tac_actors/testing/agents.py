"""Scripted agents: app code that parks at chosen points so a test controls timing.

A :class:`Gate` is a point where the agent waits until the test opens it; the test
knows the agent got there (``await gate.wait_reached()``) and whether it was cancelled
there (barge-in, deadline, hang-up). :func:`token_stream` streams tokens with gates
between them; :class:`Recorder` collects what the hooks saw.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import attrs
import trio

from tac_actors.usercode import trio_native

__all__ = ["Gate", "Recorder", "token_stream"]


class Gate:
    """A parking point. Opening it is permanent; every pass after that is immediate."""

    def __init__(self, name: str = "gate") -> None:
        self.name = name
        self._reached = trio.Event()
        self._opened = trio.Event()
        self.arrivals = 0
        self.cancelled = False

    async def __call__(self) -> None:
        """Park here until :meth:`open`. Records a cancellation while parked."""
        self.arrivals += 1
        self._reached.set()
        try:
            await self._opened.wait()
        except trio.Cancelled:
            self.cancelled = True
            raise

    def open(self) -> None:
        self._opened.set()

    @property
    def reached(self) -> bool:
        return self._reached.is_set()

    async def wait_reached(self) -> None:
        """Wait until some task parks (or passed) here."""
        await self._reached.wait()

    def __repr__(self) -> str:
        return f"<Gate {self.name} arrivals={self.arrivals} cancelled={self.cancelled}>"


async def token_stream(tokens: Sequence[str], *, gates: Mapping[int, Gate] | None = None,
                       finished: list[bool] | None = None) -> AsyncIterator[str]:
    """Yield ``tokens``; before token ``i`` park at ``gates[i]`` when given. If
    ``finished`` is given, ``True`` is appended when the generator is closed (by any
    means), so a test can check cleanup ran."""
    gates = gates or {}
    try:
        for index, token in enumerate(tokens):
            gate = gates.get(index)
            if gate is not None:
                await gate()
            else:
                await trio.lowlevel.checkpoint()
            yield token
    finally:
        if finished is not None:
            finished.append(True)


@attrs.define
class Recorder:
    """Collects hook calls: register its methods as the TAC's hooks (they are trio code
    in every mode: see :func:`~tac_actors.usercode.trio_native`)."""

    errors: list[tuple[BaseException, Any]] = attrs.field(factory=list)
    interrupts: list[tuple[Any, Any]] = attrs.field(factory=list)
    ended: list[Any] = attrs.field(factory=list)
    partials: list[str] = attrs.field(factory=list)
    error_seen: trio.Event = attrs.field(factory=trio.Event)
    ended_seen: trio.Event = attrs.field(factory=trio.Event)

    def attach(self, tac: Any) -> Recorder:
        tac.on_error(self.on_error)
        tac.on_interrupt(self.on_interrupt)
        tac.on_conversation_ended(self.on_ended)
        tac.on_partial_prompt(self.on_partial)
        return self

    @trio_native
    async def on_error(self, exc: BaseException, context: Any) -> None:
        self.errors.append((exc, context))
        self.error_seen.set()
        await trio.lowlevel.checkpoint()

    @trio_native
    async def on_interrupt(self, session: Any, interruption: Any) -> None:
        self.interrupts.append((session, interruption))
        await trio.lowlevel.checkpoint()

    @trio_native
    async def on_ended(self, session: Any) -> None:
        self.ended.append(session)
        self.ended_seen.set()
        await trio.lowlevel.checkpoint()

    @trio_native
    async def on_partial(self, text: str, session: Any) -> None:
        self.partials.append(text)
        await trio.lowlevel.checkpoint()
