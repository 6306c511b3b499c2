"""One simulated ConversationRelay call: connect, ``setup``, then turns in one of four modes.

Everything a call measures goes into a shared :class:`Recorder` (one trio thread, no
locks). The orchestration (ramp, phases, /proc sampling, report) lives in
``voice_load.py``.
"""

from __future__ import annotations

import random
from collections import Counter
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Protocol

import _fastws
import trio
import trio_websocket
from _codec import INTERRUPT_FRAME, loads, prompt_frame, setup_frame

MODES = ("closed", "paced", "stream", "bargein", "idle")
#: Client transports: ``fast`` (websockets sans-IO on a non-blocking socket under trio, the
#: default; ``_fastws.py``) and ``trio-websocket`` (wsproto, the original client; 2-4x the
#: client CPU per turn).
CLIENTS = ("fast", "trio-websocket")
ERROR_KINDS = (
    "connect_failed",
    "connect_rejected",
    "connect_timeout",
    "closed",
    "turn_timeout",
    "close_timeout",
)


@dataclass
class Config:
    """What every simulated call needs to know."""

    url: str
    mode: str
    turns: int
    pace: float = 2.0
    turn_timeout: float = 10.0
    connect_timeout: float = 10.0
    barge_after: float = 0.020
    quiet_wait: float = 0.050
    queue_size: int = 1
    headers: list[tuple[str, str]] = field(default_factory=list)
    client: str = "fast"


@dataclass
class Recorder:
    """Raw observations of all calls (durations in seconds)."""

    connect_s: list[float] = field(default_factory=list)
    first_token_s: list[float] = field(default_factory=list)
    full_reply_s: list[float] = field(default_factory=list)
    barge_stop_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    connected: int = 0
    turns_done: int = 0
    tokens: int = 0
    replies: int = 0
    late_tokens: int = 0
    turns_with_late_tokens: int = 0
    tokens_after_interrupt: int = 0
    barge_after_reply_end: int = 0
    extra_acks: int = 0


class Gates:
    """Events that move all calls through the phases together."""

    def __init__(self, calls: int, connect_concurrency: int) -> None:
        self.connect_slots = trio.Semaphore(connect_concurrency)
        self.start = trio.Event()
        self.finish = trio.Event()
        self.all_settled = trio.Event()
        self.all_done = trio.Event()
        self.start_time = 0.0
        self._unsettled = calls
        self._running = calls

    def settled(self) -> None:
        """One call is connected (or failed to connect)."""
        self._unsettled -= 1
        if self._unsettled <= 0:
            self.all_settled.set()

    def done(self) -> None:
        """One call has finished its turns (or given up)."""
        self._running -= 1
        if self._running <= 0:
            self.all_done.set()


class TurnTimeout(Exception):
    """A reply (or an interrupt acknowledgement) did not arrive in time."""


class WebSocket(Protocol):
    """What a call needs of a connection (both transports have it)."""

    async def send_message(self, message: str) -> None: ...

    async def get_message(self) -> str | bytes: ...


# The same failure, as each transport spells it.
_CLOSED = (trio_websocket.ConnectionClosed, _fastws.Closed)
_REJECTED = (trio_websocket.ConnectionRejected, _fastws.Rejected)
_CONNECT_TIMEOUT = (trio_websocket.ConnectionTimeout, _fastws.ConnectTimeout)
_CLOSE_TIMEOUT = (trio_websocket.DisconnectionTimeout, _fastws.CloseTimeout)
_CONNECT_FAILED = (trio_websocket.HandshakeError, _fastws.HandshakeFailed, OSError)


def _open(cfg: Config) -> AbstractAsyncContextManager[Any]:
    if cfg.client == "trio-websocket":
        return trio_websocket.open_websocket_url(
            cfg.url,
            extra_headers=[(k.encode(), v.encode()) for k, v in cfg.headers],
            connect_timeout=cfg.connect_timeout,
            disconnect_timeout=5.0,
            message_queue_size=cfg.queue_size,
        )
    return _fastws.open_fast_websocket(
        cfg.url, cfg.headers, connect_timeout=cfg.connect_timeout, disconnect_timeout=5.0
    )


async def _hold(ws: Any, event: trio.Event) -> None:
    """Wait for a phase gate; the fast client keeps reading (answers pings) meanwhile."""
    hold = getattr(ws, "hold", None)
    if hold is None:
        await event.wait()  # trio-websocket reads in its own task
    else:
        await hold(event)


def _is_text(frame: object) -> bool:
    return isinstance(frame, dict) and frame.get("type") == "text"


async def run_call(cfg: Config, index: int, rec: Recorder, gates: Gates, seed: int) -> None:
    """Simulate call ``index`` through all phases; never raises for network trouble."""
    rng = random.Random(seed * 1_000_003 + index)
    settled = done = released = False
    await gates.connect_slots.acquire()
    try:
        t0 = perf_counter()
        async with _open(cfg) as ws:
            gates.connect_slots.release()
            released = True
            await ws.send_message(setup_frame(rng, index))
            rec.connect_s.append(perf_counter() - t0)
            rec.connected += 1
            settled = True
            gates.settled()
            await _hold(ws, gates.start)
            try:
                await _drive(ws, cfg, rec, rng, gates.start_time)
            except _CLOSED:
                rec.errors["closed"] += 1
            except TurnTimeout:
                rec.errors["turn_timeout"] += 1
            done = True
            gates.done()
            await _hold(ws, gates.finish)
    except _REJECTED:
        rec.errors["connect_rejected"] += 1
    except _CONNECT_TIMEOUT:
        rec.errors["connect_timeout"] += 1
    except _CLOSE_TIMEOUT:
        rec.errors["close_timeout"] += 1
    except _CONNECT_FAILED:
        rec.errors["connect_failed"] += 1
    except _CLOSED:
        rec.errors["closed"] += 1
    finally:
        if not released:
            gates.connect_slots.release()
        if not settled:
            gates.settled()
        if not done:
            gates.done()


async def _drive(
    ws: WebSocket, cfg: Config, rec: Recorder, rng: random.Random, start: float
) -> None:
    if cfg.mode == "idle" or cfg.turns <= 0:
        return
    if cfg.mode == "paced":
        next_at = start + rng.uniform(0.0, cfg.pace)
        for k in range(cfg.turns):
            await trio.sleep_until(next_at)
            await _turn(ws, cfg, rec, k)
            next_at += cfg.pace * rng.uniform(0.5, 1.5)
    elif cfg.mode == "bargein":
        for k in range(cfg.turns):
            await _barge_turn(ws, cfg, rec, k)
    else:  # closed, stream
        for k in range(cfg.turns):
            await _turn(ws, cfg, rec, k)


async def _turn(ws: WebSocket, cfg: Config, rec: Recorder, k: int) -> None:
    """Send one prompt and read the whole reply."""
    get = ws.get_message
    tokens = 0
    first = True
    t0 = perf_counter()
    await ws.send_message(prompt_frame(k))
    with trio.move_on_after(cfg.turn_timeout):
        while True:
            raw = await get()
            now = perf_counter()
            frame = loads(raw)
            if not _is_text(frame):
                continue
            if first:
                rec.first_token_s.append(now - t0)
                first = False
            if frame.get("token"):
                tokens += 1
            if frame.get("last"):
                rec.full_reply_s.append(now - t0)
                rec.tokens += tokens
                rec.replies += 1
                rec.turns_done += 1
                return
    raise TurnTimeout


async def _barge_turn(ws: WebSocket, cfg: Config, rec: Recorder, k: int) -> None:
    """Send a prompt, interrupt the reply ``barge_after`` after its first token, time the ack.

    The ack is an empty ``text`` with ``last: true``. If the reply had not ended when
    the interrupt was sent, its own end marker may still be on the wire: a second
    ``last: true`` inside the quiet window then is the ack, and the first was the end.
    """
    get = ws.get_message
    tokens = 0
    t0 = perf_counter()
    await ws.send_message(prompt_frame(k))
    # Deadlines are on trio's clock; durations are measured with perf_counter.
    deadline = trio.current_time() + cfg.turn_timeout
    reply_ended = False
    t1 = 0.0
    # 1. first token
    with trio.move_on_at(deadline):
        while True:
            frame = loads(await get())
            if _is_text(frame):
                t1 = perf_counter()
                rec.first_token_s.append(t1 - t0)
                if frame.get("token"):
                    tokens += 1
                if frame.get("last"):
                    reply_ended = True
                    rec.full_reply_s.append(t1 - t0)
                break
    if not t1:
        raise TurnTimeout
    # 2. keep reading until it is time to barge in
    if not reply_ended:
        with trio.move_on_at(trio.current_time() + cfg.barge_after - (perf_counter() - t1)):
            while True:
                frame = loads(await get())
                if _is_text(frame):
                    if frame.get("token"):
                        tokens += 1
                    if frame.get("last"):
                        reply_ended = True
                        rec.full_reply_s.append(perf_counter() - t0)
                        break
    if reply_ended:
        rec.barge_after_reply_end += 1
    # 3. interrupt, wait for the ack
    t_int = perf_counter()
    await ws.send_message(INTERRUPT_FRAME)
    t_ack = 0.0
    with trio.move_on_after(cfg.turn_timeout):
        while True:
            frame = loads(await get())
            if _is_text(frame):
                if frame.get("last"):
                    t_ack = perf_counter()
                    break
                if frame.get("token"):
                    rec.tokens_after_interrupt += 1
    if not t_ack:
        raise TurnTimeout
    maybe_end = not reply_ended  # the frame just taken may have been the reply's own end
    # 4. quiet window: tokens now are late (the server kept talking after its ack)
    late = 0
    quiet_until = trio.current_time() + cfg.quiet_wait - (perf_counter() - t_ack)
    while True:
        raw: str | bytes | None = None
        with trio.move_on_at(quiet_until):
            raw = await get()
        if raw is None:
            break
        frame = loads(raw)
        if not _is_text(frame):
            continue
        if frame.get("last"):
            if maybe_end:
                # the first last:true was the reply's natural end; this one is the ack
                rec.tokens_after_interrupt += late
                late = 0
                t_ack = perf_counter()
                quiet_until = trio.current_time() + cfg.quiet_wait
                maybe_end = False
            else:
                rec.extra_acks += 1
        elif frame.get("token"):
            late += 1
    rec.barge_stop_s.append(t_ack - t_int)
    rec.late_tokens += late
    if late:
        rec.turns_with_late_tokens += 1
    rec.tokens += tokens
    rec.turns_done += 1
