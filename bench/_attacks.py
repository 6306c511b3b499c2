"""The attackers of the soak benchmark (``soak.py``): raw, misbehaving ConversationRelay peers.

Each attack is bounded in count and in time, never raises for what the server does to it
(closes, resets, stalls are counted), and returns a dict of figures. They drive the
``websockets`` sans-IO client of ``_fastws.py`` directly, to send what a polite client
never would: frames that are not JSON, binary frames, oversize frames, floods that never
read, resets (SO_LINGER 0) and silence without a FIN.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import _fastws
import trio
from _codec import dumps, setup_frame
from websockets.exceptions import InvalidState
from websockets.frames import Opcode

Headers = Sequence[tuple[str, str]]
_ERRORS = (_fastws.FastWSError, OSError, InvalidState)

# -- frames --------------------------------------------------------------------------------

#: Frames the server must drop (each counts as "bad"): not JSON, not an object, no or a
#: non-string ``type``, wrong field types, JSON the parser refuses (deep nesting, a
#: 5,000-digit integer), a huge unterminated string.
BAD_FRAMES: tuple[str, ...] = (
    '{"type":"prompt","voicePrompt":"trunc',
    "not json at all",
    "[1,2,3]",
    '"a string"',
    "42",
    "null",
    "",
    '{"voicePrompt":"no type","last":true}',
    '{"type":5,"voicePrompt":"x"}',
    '{"type":null}',
    '{"type":["prompt"]}',
    '{"type":"prompt","voicePrompt":123,"last":true}',
    '{"type":"prompt","voicePrompt":["x"],"lang":"en-US","last":true}',
    '{"type":"prompt","voicePrompt":{"a":1},"last":true}',
    '{"type":"interrupt","utteranceUntilInterrupt":7,"durationUntilInterruptMs":"x"}',
    '{"type":"dtmf","digit":[1]}',
    '{"type":"dtmf","digit":null}',
    '{"type":"error","description":{"x":1}}',
    '{"type":"prompt","voicePrompt":"' + "x" * 60_000,  # huge, unterminated
    "[" * 20_000 + "]" * 20_000,  # deep nesting
    '{"a":' * 5_000 + "1" + "}" * 5_000,
    '{"type":"prompt","voicePrompt":"x","n":' + "9" * 5_000 + "}",  # int digit limit
    '{"type":"prompt","voicePrompt":NaN',
    "\ufeff{}",
)
#: Well-formed frames of an unknown type: tolerated (no close), and they reset the server's
#: bad-in-a-row counter, so one connection can carry many bad frames.
UNKNOWN_FRAMES: tuple[str, ...] = (
    '{"type":"bogus"}',
    '{"type":"Prompt","voicePrompt":"x"}',
    '{"type":"' + "u" * 30_000 + '"}',  # a 30 KB type name (log amplification)
    '{"type":"mark","name":"' + "m" * 1_000 + '"}',
)
INFO_FRAME = dumps({"type": "info", "info": "ping"})
INTERRUPT_FRAME = dumps(
    {"type": "interrupt", "utteranceUntilInterrupt": "", "durationUntilInterruptMs": 10}
)
MAX_FRAME = 64 * 1024


def big_prompt(k: int, size: int = 60_000) -> str:
    """A final prompt of about ``size`` characters."""
    text = f"big {k} " + "x" * size
    return dumps({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": True})


# -- low level -------------------------------------------------------------------------------


async def connect(url: str, headers: Headers, within: float = 10.0) -> _fastws.FastWebSocket:
    """TCP + upgrade (within ``within`` s); the caller ends it with :func:`abort` or
    :func:`close`."""
    try:
        with trio.fail_after(within):
            sock, proto, early = await _fastws._handshake(url, headers)
    except trio.TooSlowError as exc:
        raise _fastws.ConnectTimeout(f"no upgrade within {within} s") from exc
    ws = _fastws.FastWebSocket(sock, proto)
    ws._take(early)
    return ws


def abort(ws: _fastws.FastWebSocket) -> None:
    """Close the socket with a TCP RST (SO_LINGER 0), no close frame."""
    sock = ws._sock
    ws._closed = True
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    trio.lowlevel.notify_closing(sock)
    sock.close()


async def close(ws: _fastws.FastWebSocket, wait: float = 5.0) -> str:
    """Close politely (1000); return how it ended: ``ok``, ``close_timeout`` or ``broken``."""
    try:
        await ws.aclose(wait)
        return "ok"
    except _fastws.CloseTimeout:
        return "close_timeout"
    except _ERRORS:
        return "broken"


async def send_batch(ws: _fastws.FastWebSocket, frames: Sequence[str | bytes],
                     binary: bool = False) -> None:
    """Queue ``frames`` in the protocol and write them with one send (text unless
    ``binary``; text given as ``bytes`` goes out unchecked, e.g. invalid UTF-8)."""
    proto = ws._proto
    for f in frames:
        data = f.encode() if isinstance(f, str) else f
        if binary:
            proto.send_binary(data)
        else:
            proto.send_text(data)
    await ws._send(proto.data_to_send())


def close_code(ws: _fastws.FastWebSocket) -> str:
    """The server's close code as a string, or ``eof`` when it closed without one."""
    rcvd = ws._proto.close_rcvd
    return str(int(rcvd.code)) if rcvd is not None else "eof"


async def read_until_closed(ws: _fastws.FastWebSocket, within: float) -> str:
    """Read (and discard) until the server closes, for up to ``within`` s; return its
    close code, or ``open``."""
    with trio.move_on_after(within):
        try:
            while True:
                await ws.get_message()
        except _ERRORS:
            return close_code(ws)
    return "open"


def drain_nowait(ws: _fastws.FastWebSocket) -> tuple[bool, int]:
    """Read what the kernel holds without waiting; return (server closed?, pings seen)."""
    sock, proto = ws._sock, ws._proto
    pings = 0
    closed = False
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            break
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        proto.receive_data(data)
        for ev in proto.events_received():
            if ev.opcode is Opcode.PING:
                pings += 1
            elif ev.opcode is Opcode.CLOSE:
                closed = True
    proto.data_to_send()  # the pongs are never sent: this peer is silent
    return closed, pings


# -- attacks ---------------------------------------------------------------------------------


async def hostile_frames(url: str, headers: Headers, *, total: int, per_conn: int,
                         concurrency: int, time_limit: float, seed: int = 1) -> dict[str, Any]:
    """Send at least ``total`` bad frames over many connections (``per_conn`` each, 8 bad
    then 1 unknown-type frame, so the server keeps the connection), each connection ended
    by one of: 10 bad in a row (1007), a binary frame (1003), an oversize frame (1009),
    invalid UTF-8 (1007), a polite close (1000); every 16th connection sends a bad frame
    before setup (1008). Counts the close codes received."""
    rng = random.Random(seed)
    codes: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    endings = ("ten_bad", "binary", "oversize", "bad_utf8", "polite")
    state = {"conns": 0, "frames": 0}
    deadline = time.monotonic() + time_limit

    async def one(index: int) -> None:
        try:
            ws = await connect(url, headers)
        except _ERRORS as exc:
            errors[type(exc).__name__] += 1
            return
        try:
            if index % 16 == 15:
                await send_batch(ws, [rng.choice(BAD_FRAMES)])
                sent["before_setup"] += 1
                codes[await read_until_closed(ws, 10.0)] += 1
                return
            await send_batch(ws, [setup_frame(rng, index)])
            n = 0
            bi = rng.randrange(len(BAD_FRAMES))
            while n < per_conn:
                batch = []
                for _ in range(min(45, per_conn - n)):
                    if n % 9 == 8:
                        batch.append(UNKNOWN_FRAMES[(n // 9) % len(UNKNOWN_FRAMES)])
                        sent["unknown"] += 1
                    else:
                        batch.append(BAD_FRAMES[bi % len(BAD_FRAMES)])
                        bi += 1
                        sent["bad"] += 1
                    n += 1
                await send_batch(ws, batch)
                state["frames"] += len(batch)
            ending = endings[index % len(endings)]
            sent[ending] += 1
            if ending == "ten_bad":
                await send_batch(ws, [BAD_FRAMES[1]] * 10)
                state["frames"] += 10
            elif ending == "binary":
                await send_batch(ws, [b"\x00\x01binary"], binary=True)
            elif ending == "oversize":
                await send_batch(ws, ["x" * (MAX_FRAME + 1)])
            elif ending == "bad_utf8":
                await send_batch(ws, [b'{"type":"prompt","voicePrompt":"\xff\xfe"}'])
            else:
                ws._proto.send_close(1000)
                await ws._send(ws._proto.data_to_send())
            codes[await read_until_closed(ws, 10.0)] += 1
        except _ERRORS as exc:
            errors[type(exc).__name__] += 1
            codes[close_code(ws)] += 1
        finally:
            abort(ws)

    async def worker() -> None:
        while state["frames"] < total and time.monotonic() < deadline:
            state["conns"] += 1
            with trio.move_on_after(30.0) as scope:
                await one(state["conns"])
            if scope.cancelled_caught:
                errors["connection_over_30s"] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return {
        "connections": state["conns"],
        "frames_sent": state["frames"],
        "frames_by_kind": dict(sent),
        "close_codes": dict(codes),
        "client_errors": dict(errors),
    }


async def info_flood(url: str, headers: Headers, *, seconds: float) -> dict[str, Any]:
    """One call streams ``info`` frames as fast as this client can for ``seconds``."""
    frames = 0
    outcome = "ok"
    try:
        ws = await connect(url, headers)
    except _ERRORS as exc:
        return {"frames_sent": 0, "outcome": type(exc).__name__}
    batch = [INFO_FRAME] * 200
    try:
        await send_batch(ws, [setup_frame(random.Random(2), 0)])
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with trio.move_on_after(max(0.0, end - time.monotonic())):
                await send_batch(ws, batch)
                frames += len(batch)
            await trio.lowlevel.checkpoint()
        outcome = await close(ws)
    except _ERRORS as exc:
        outcome = type(exc).__name__
        abort(ws)
    return {"frames_sent": frames, "frames_per_s": round(frames / seconds),
            "close": outcome, "close_code": close_code(ws)}


async def never_reading(url: str, headers: Headers, *, calls: int, prompts: int,
                        stall: float, hold: float, rss: Any,
                        gap: float = 0.003) -> dict[str, Any]:
    """``calls`` calls each send up to ``prompts`` 60 KB prompts, ``gap`` s apart, and never
    read; a call stops sending when one send has been blocked for ``stall`` s (TCP
    back-pressure). The gap lets each echo be produced before the next prompt arrives (a
    prompt that lands while the previous turn runs preempts it, and nothing backs up).
    After ``hold`` s, ``rss()`` is read, then every call is reset."""
    sent: list[int] = []
    stalled = 0
    socks: list[_fastws.FastWebSocket] = []
    errors: Counter[str] = Counter()

    async def one(i: int) -> None:
        nonlocal stalled
        try:
            ws = await connect(url, headers)
        except _ERRORS as exc:
            errors[type(exc).__name__] += 1
            return
        socks.append(ws)
        n = 0
        try:
            await send_batch(ws, [setup_frame(random.Random(100 + i), i)])
            for k in range(prompts):
                with trio.move_on_after(stall) as scope:
                    await send_batch(ws, [big_prompt(k)])
                if scope.cancelled_caught:
                    stalled += 1
                    break
                n += 1
                await trio.sleep(gap)
        except _ERRORS as exc:
            errors[type(exc).__name__] += 1
        sent.append(n)

    async with trio.open_nursery() as nursery:
        for i in range(calls):
            nursery.start_soon(one, i)
    await trio.sleep(hold)
    held = rss()
    for ws in socks:
        abort(ws)
    return {"calls": calls, "prompts_sent": sum(sent), "per_call_max": max(sent, default=0),
            "calls_stalled": stalled, "rss_held_kb": held, "client_errors": dict(errors)}


async def interrupt_flood(url: str, headers: Headers, *, count: int, stall: float,
                          hold: float, rss: Any) -> dict[str, Any]:
    """One call sends ``count`` interrupts (batches of 1,000) and never reads the acks;
    stops when one batch has been blocked for ``stall`` s. Reads ``rss()`` after ``hold``
    s, then resets the call."""
    try:
        ws = await connect(url, headers)
    except _ERRORS as exc:
        return {"sent": 0, "outcome": type(exc).__name__}
    sent = 0
    outcome = "all sent"
    try:
        await send_batch(ws, [setup_frame(random.Random(3), 0)])
        batch = [INTERRUPT_FRAME] * 1000
        while sent < count:
            with trio.move_on_after(stall) as scope:
                await send_batch(ws, batch)
            if scope.cancelled_caught:
                outcome = f"blocked after {sent} (server stopped reading)"
                break
            sent += len(batch)
    except _ERRORS as exc:
        outcome = f"{type(exc).__name__} after {sent}, close {close_code(ws)}"
    await trio.sleep(hold)
    held = rss()
    abort(ws)
    return {"sent": sent, "outcome": outcome, "rss_held_kb": held}


async def reset_mid_turn(url: str, headers: Headers, *, calls: int,
                         concurrency: int) -> dict[str, Any]:
    """``calls`` calls: setup, a prompt, then at once a TCP RST (the reply in flight)."""
    errors: Counter[str] = Counter()
    done = 0
    slots = trio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal done
        async with slots:
            try:
                ws = await connect(url, headers)
            except _ERRORS as exc:
                errors[type(exc).__name__] += 1
                return
            try:
                await send_batch(ws, [setup_frame(random.Random(200 + i), i), big_prompt(i, 2000)])
                await trio.sleep(0.001 * (i % 5))
                done += 1
            except _ERRORS as exc:
                errors[type(exc).__name__] += 1
            finally:
                abort(ws)

    async with trio.open_nursery() as nursery:
        for i in range(calls):
            nursery.start_soon(one, i)
    return {"calls_reset": done, "client_errors": dict(errors)}


async def silent_peers(url: str, headers: Headers, *, calls: int,
                       hold: float) -> dict[str, Any]:
    """``calls`` calls send setup, then nothing: no reads, no pongs, no FIN. After
    ``hold`` s, count those the server closed (close frame or EOF) and the pings it sent;
    then reset the rest."""
    socks: list[_fastws.FastWebSocket] = []
    errors: Counter[str] = Counter()

    async def one(i: int) -> None:
        try:
            ws = await connect(url, headers)
            socks.append(ws)
            await send_batch(ws, [setup_frame(random.Random(300 + i), i)])
        except _ERRORS as exc:
            errors[type(exc).__name__] += 1

    async with trio.open_nursery() as nursery:
        for i in range(calls):
            nursery.start_soon(one, i)
    await trio.sleep(hold)
    closed = pings = 0
    for ws in socks:
        c, p = drain_nowait(ws)
        closed += c
        pings += p
        abort(ws)
    return {"calls": len(socks), "held_s": hold, "closed_by_server": closed,
            "pings_received": pings, "client_errors": dict(errors)}


async def churn(url: str, headers: Headers, *, cycles: int, concurrency: int) -> dict[str, Any]:
    """``cycles`` times (connect, setup, polite close), ``concurrency`` at a time."""
    outcomes: Counter[str] = Counter()
    slots = trio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            try:
                ws = await connect(url, headers)
            except _ERRORS as exc:
                outcomes[type(exc).__name__] += 1
                return
            try:
                await send_batch(ws, [setup_frame(random.Random(i), i)])
            except _ERRORS as exc:
                outcomes[type(exc).__name__] += 1
                abort(ws)
                return
            outcomes[await close(ws)] += 1

    async with trio.open_nursery() as nursery:
        for i in range(cycles):
            nursery.start_soon(one, i)
    return {"cycles": cycles, "outcomes": dict(outcomes)}


async def surrogate_backed_up(url: str, headers: Headers, *, prompts: int,
                              stall: float, read_for: float,
                              gap: float = 0.003) -> dict[str, Any]:
    """The review's attack 2h: one call sends up to ``prompts`` 60 KB prompts (``gap`` s
    apart, see :func:`never_reading`) without reading (the server's output backs up),
    then a prompt holding a JSON-escaped lone surrogate (``\\ud800``), then reads for
    up to ``read_for`` s, until the answer to that prompt. Counts the replies read (replies
    still queued when the next prompt lands may be retracted) and how it ended."""
    try:
        ws = await connect(url, headers)
    except _ERRORS as exc:
        return {"prompts_sent": 0, "outcome": type(exc).__name__}
    sent = replies = 0
    try:
        await send_batch(ws, [setup_frame(random.Random(4), 0)])
        for k in range(prompts):
            with trio.move_on_after(stall) as scope:
                await send_batch(ws, [big_prompt(k)])
            if scope.cancelled_caught:
                break
            sent += 1
            await trio.sleep(gap)
        await send_batch(ws, ['{"type":"prompt","voicePrompt":"\\ud800 lone","last":true}'])
        ending = "no answer to the surrogate prompt"
        with trio.move_on_after(read_for):
            try:
                while True:
                    msg = await ws.get_message()
                    replies += 1
                    if b"lone" in msg:
                        ending = "surrogate prompt answered"
                        break
            except _ERRORS:
                ending = f"closed {close_code(ws)}"
    except _ERRORS as exc:
        ending = f"{type(exc).__name__}, close {close_code(ws)}"
    abort(ws)
    return {"prompts_sent": sent, "replies_read": replies, "outcome": ending}
