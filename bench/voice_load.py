#!/usr/bin/env python3
"""ConversationRelay load generator: N simulated WebSocket calls, in its own process.

Phases: connect all calls (bounded concurrency, optional ramp rate) and send ``setup``;
let the server settle and read its RSS; then the measured phase (turns in the chosen
mode), bracketed by /proc CPU readings of the server; then close every socket (1000).

Modes:
  closed   next prompt as soon as the reply's ``last: true`` arrives
  paced    each call speaks about every --pace seconds (jittered +-50%, random first offset)
  stream   closed loop, counting streamed tokens
  bargein  interrupt each reply --barge-after ms after its first token; time the ack
  idle     (--idle-calls N) connect, send setup, hold, measure RSS per call, exit

Examples:
  python bench/voice_load.py --url ws://127.0.0.1:8080/ws --calls 1000 --mode closed --turns 5
  python bench/voice_load.py --url ws://127.0.0.1:8080/ws --idle-calls 10000 --server-pid 1234
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _calls import CLIENTS, ERROR_KINDS, MODES, Config, Gates, Recorder, run_call
from _codec import CODEC, twilio_signature
from _proc import (
    cpu_seconds,
    machine_info,
    now_iso,
    own_cpu_seconds,
    raise_fd_limit,
    rss_kb,
    sched_cpu_seconds,
)
from _report import format_table
from _stats import summarize_ms

_T = TypeVar("_T")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default="ws://127.0.0.1:8080/ws", help="voice WebSocket URL")
    p.add_argument("--calls", type=int, default=100, help="simulated calls (N)")
    p.add_argument("--mode", choices=[m for m in MODES if m != "idle"], default="closed")
    p.add_argument("--turns", type=int, default=5, help="prompts per call")
    p.add_argument("--pace", type=float, default=2.0, help="paced mode: seconds between turns")
    p.add_argument(
        "--idle-calls",
        type=int,
        default=None,
        metavar="N",
        help="connect N calls (setup only), measure RSS per call, exit",
    )
    p.add_argument("--ramp-rate", type=float, default=0.0, help="new connections/s (0: no limit)")
    p.add_argument("--connect-concurrency", type=int, default=100, help="max handshakes in flight")
    p.add_argument("--auth-token", default=None, help="sign the upgrade (X-Twilio-Signature)")
    p.add_argument("--server-pid", type=int, default=None, help="read CPU and RSS of this pid")
    p.add_argument("--barge-after", type=float, default=20.0, help="bargein: ms after 1st token")
    p.add_argument("--quiet-wait", type=float, default=50.0, help="bargein: ms after the ack")
    p.add_argument("--turn-timeout", type=float, default=10.0, help="seconds per turn")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds per handshake")
    p.add_argument("--settle", type=float, default=1.0, help="idle seconds before reading RSS")
    p.add_argument(
        "--client",
        choices=CLIENTS,
        default="fast",
        help="client transport: fast (websockets sans-IO, raw socket under trio) or trio-websocket",
    )
    p.add_argument(
        "--queue-size", type=int, default=1, help="trio-websocket message queue (that client only)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (ids, pacing jitter)")
    p.add_argument("--json", dest="json_out", default=None, help="write all figures here")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    args = p.parse_args(argv)
    if args.idle_calls is not None:
        args.calls, args.mode, args.turns = args.idle_calls, "idle", 0
    if args.calls < 1:
        p.error("--calls must be at least 1")
    return args


async def _progress(
    rec: Recorder, calls: int, expected_turns: int, phase: list[str], t0: float
) -> None:
    """Rewrite one status line on stderr twice a second."""
    while True:
        errors = sum(rec.errors.values())
        sys.stderr.write(
            f"\r[{phase[0]:>8}] {perf_counter() - t0:6.1f}s  connected {rec.connected}/{calls}"
            f"  turns {rec.turns_done}/{expected_turns}  errors {errors}   "
        )
        sys.stderr.flush()
        await trio.sleep(0.5)


def _read(fn: Callable[[int], _T], pid: int | None) -> _T | None:
    if pid is None:
        return None
    try:
        return fn(pid)
    except (OSError, RuntimeError, ValueError):
        return None


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


@dataclass
class Measures:
    """Whole-run readings: phase durations, server and client CPU, server RSS."""

    connect_s: float = 0.0
    measured_s: float = 0.0
    server_cpu_s: float | None = None
    server_sched_s: float | None = None
    client_cpu_s: float | None = None
    rss_before_kb: int | None = None
    rss_connected_kb: int | None = None
    rss_after_kb: int | None = None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run all phases and return the result document (parameters, figures, machine)."""
    headers: list[tuple[str, str]] = []
    if args.auth_token:
        headers.append(("X-Twilio-Signature", twilio_signature(args.auth_token, args.url)))
    cfg = Config(
        url=args.url,
        mode=args.mode,
        turns=args.turns,
        pace=args.pace,
        turn_timeout=args.turn_timeout,
        connect_timeout=args.connect_timeout,
        barge_after=args.barge_after / 1000.0,
        quiet_wait=args.quiet_wait / 1000.0,
        queue_size=args.queue_size,
        headers=headers,
        client=args.client,
    )
    n = args.calls
    rec = Recorder()
    gates = Gates(n, max(1, args.connect_concurrency))
    pid = args.server_pid
    m = Measures(rss_before_kb=_read(rss_kb, pid))
    phase = ["connect"]

    async with trio.open_nursery() as nursery:
        if not args.quiet:
            nursery.start_soon(_progress, rec, n, n * args.turns, phase, perf_counter())
        async with trio.open_nursery() as calls:
            t_connect = perf_counter()
            for i in range(n):
                calls.start_soon(run_call, cfg, i, rec, gates, args.seed)
                if args.ramp_rate > 0:
                    await trio.sleep_until(t_connect + (i + 1) / args.ramp_rate)
            await gates.all_settled.wait()
            m.connect_s = perf_counter() - t_connect
            phase[0] = "settle"
            await trio.sleep(args.settle)
            m.rss_connected_kb = _read(rss_kb, pid)
            # Keep the client's own GC pauses out of the measured latencies.
            gc.collect()
            gc.freeze()
            gc.disable()
            phase[0] = args.mode
            cpu0, sched0 = _read(cpu_seconds, pid), _read(sched_cpu_seconds, pid)
            own0 = own_cpu_seconds()
            t_start = perf_counter()
            gates.start_time = trio.current_time()
            gates.start.set()
            await gates.all_done.wait()
            m.measured_s = perf_counter() - t_start
            m.server_cpu_s = _delta(cpu0, _read(cpu_seconds, pid))
            m.server_sched_s = _delta(sched0, _read(sched_cpu_seconds, pid))
            m.client_cpu_s = own_cpu_seconds() - own0
            gc.enable()
            phase[0] = "close"
            gates.finish.set()
        m.rss_after_kb = _read(rss_kb, pid)
        nursery.cancel_scope.cancel()
    if not args.quiet:
        sys.stderr.write("\n")
    return _document(args, rec, m)


def _per_turn_ms(seconds: float | None, turns: int) -> float | None:
    return round(seconds * 1000 / turns, 4) if seconds is not None and turns else None


def _util(seconds: float | None, wall: float) -> float | None:
    return round(seconds / wall, 3) if seconds is not None and wall > 0 else None


def _document(args: argparse.Namespace, rec: Recorder, m: Measures) -> dict[str, Any]:
    turns, wall = rec.turns_done, m.measured_s
    errors = {kind: rec.errors.get(kind, 0) for kind in ERROR_KINDS}
    errors["total"] = sum(errors.values())
    rss_per_call = None
    if m.rss_before_kb is not None and m.rss_connected_kb is not None and rec.connected:
        rss_per_call = round((m.rss_connected_kb - m.rss_before_kb) / rec.connected, 2)
    figures: dict[str, Any] = {
        "calls": args.calls,
        "connected": rec.connected,
        "turns_expected": args.calls * args.turns,
        "turns_done": turns,
        "duration_s": round(wall, 3),
        "turns_per_s": round(turns / wall, 1) if wall > 0 and turns else None,
        "first_token_ms": summarize_ms(rec.first_token_s),
        "full_reply_ms": summarize_ms(rec.full_reply_s),
        "barge_stop_ms": summarize_ms(rec.barge_stop_s),
        "late_tokens": rec.late_tokens,
        "turns_with_late_tokens": rec.turns_with_late_tokens,
        "tokens_after_interrupt_before_ack": rec.tokens_after_interrupt,
        "barge_after_reply_end": rec.barge_after_reply_end,
        "extra_acks": rec.extra_acks,
        "tokens": rec.tokens,
        "tokens_per_turn": round(rec.tokens / turns, 2) if turns else None,
        "tokens_per_s": round(rec.tokens / wall, 1) if wall > 0 and turns else None,
        "connect": {"total_s": round(m.connect_s, 3), "per_call_ms": summarize_ms(rec.connect_s)},
        "errors": errors,
        "server": {
            "pid": args.server_pid,
            "cpu_ms_total": round(m.server_cpu_s * 1000, 1) if m.server_cpu_s is not None else None,
            "cpu_ms_per_turn": _per_turn_ms(m.server_cpu_s, turns),
            "cpu_sched_ms_per_turn": _per_turn_ms(m.server_sched_s, turns),
            "cpu_util": _util(m.server_cpu_s, wall),
            "rss_before_kb": m.rss_before_kb,
            "rss_connected_kb": m.rss_connected_kb,
            "rss_after_kb": m.rss_after_kb,
            "rss_per_call_kb": rss_per_call,
        },
        "client": {
            "cpu_ms_per_turn": _per_turn_ms(m.client_cpu_s, turns),
            "cpu_util": _util(m.client_cpu_s, wall),
            "codec": CODEC,
            "transport": args.client,
        },
        # the load generator's own CPU (getrusage, measured phase) per turn
        "client_cpu_ms_per_turn": _per_turn_ms(m.client_cpu_s, turns),
    }
    params = {
        "url": args.url,
        "mode": args.mode,
        "calls": args.calls,
        "turns": args.turns,
        "pace_s": args.pace if args.mode == "paced" else None,
        "ramp_rate": args.ramp_rate,
        "connect_concurrency": args.connect_concurrency,
        "barge_after_ms": args.barge_after if args.mode == "bargein" else None,
        "quiet_wait_ms": args.quiet_wait if args.mode == "bargein" else None,
        "turn_timeout_s": args.turn_timeout,
        "signed": bool(args.auth_token),
        "client": args.client,
        "server_pid": args.server_pid,
        "seed": args.seed,
    }
    return {
        "tool": "voice_load",
        "date": now_iso(),
        "machine": machine_info(),
        "params": params,
        "figures": figures,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: run, print the table, write JSON; exit 0 when the run completed."""
    args = parse_args(argv)
    raise_fd_limit()
    doc = trio.run(run, args)
    print(format_table(doc))
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
