#!/usr/bin/env python3
"""Soak: attack a running voice server while one well-behaved call keeps talking; report.

    .venv/bin/python bench/soak.py                       # our server, full run (a few min)
    .venv/bin/python bench/soak.py --quick               # about 30 s per server
    .venv/bin/python bench/soak.py --server ours --server before --json soak.json

For each server (``--server NAME`` or ``NAME=TEMPLATE``; templates as in side_by_side.py,
with ``{port}``, ``{python_dir}``, ``{before}``) a fresh process is started, then a
*bystander* call (``_bystander.py``, its own process) talks every 20 ms for the whole run,
and these phases run one after the other, each bounded in count and in time:

    0 quiet       the bystander alone: the reference latency
    1 hostile     >= 100,000 bad frames over many connections; close codes counted
    2 info        one peer streams {"type":"info"} frames as fast as it can
    3 no-read     K calls send 60 KB prompts and never read; RSS per stalled call
    3s surrogate  one such call, then a prompt with a lone surrogate, then it reads (2h)
    4 interrupts  one call sends 200k interrupts and never reads the acks
    5a reset      calls reset (SO_LINGER 0) right after a prompt, reply in flight
    5b silent     calls that go silent after setup (no reads, no pongs, no FIN)
    6 churn       connect / setup / close, many times

Per phase: bystander full-reply p50/p99 (and the ratio to the quiet phase), its missed
replies and reconnects; server RSS and open fds (``/proc/PID/fd``) before, after and at
the peak; server CPU (``/proc/PID/task/*/schedstat``); server log growth; the attack's own
figures. If the server dies in a phase, that is recorded (exit code, last log line) and a
fresh server (and bystander) is started for the next phase. Figures are reported, never
asserted: the exit code is 0 whenever the run completed.

The machine has 2 cores: the server, the attackers (this process) and the bystander share
them, so latencies are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _attacks
import trio
from _codec import twilio_signature
from _proc import machine_info, now_iso, raise_fd_limit, rss_kb, sched_cpu_seconds
from _servers import BENCH, REPO, ServerProcess, free_port, server_command
from _stats import fmt, summarize_ms

SERVERS = {
    "ours": "{python_dir}/tac-actors serve bench/agents.py:echo_tac --port {port}",
    "before": "env PYTHONPATH={before} {python_dir}/tac-actors serve bench/agents.py:echo_tac"
    " --port {port}",
}
BYSTANDER = BENCH / "_bystander.py"
#: Phases that measure memory growth get a fresh server (freed memory is reused, so growth
#: on a process that already grew reads low).
FRESH = ("3-no-read", "4-interrupts")
PHASES = ("0-quiet", "1-hostile", "2-info", "3-no-read", "3s-surrogate", "4-interrupts",
          "5a-reset", "5b-silent", "6-churn")


@dataclass
class Sizes:
    """How big each phase is (full run, or ``--quick``)."""

    quiet_s: float = 10.0
    hostile_frames: int = 120_000
    hostile_per_conn: int = 300
    hostile_concurrency: int = 16
    hostile_time: float = 90.0
    info_s: float = 10.0
    noread_calls: int = 20
    noread_prompts: int = 400
    interrupts: int = 200_000
    reset_calls: int = 300
    silent_calls: int = 200
    silent_hold_s: float = 65.0
    churn_cycles: int = 3000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(quiet_s=3.0, hostile_frames=20_000, hostile_per_conn=200, hostile_time=8.0,
                   info_s=3.0, noread_calls=5, noread_prompts=100, interrupts=50_000,
                   reset_calls=60, silent_calls=50, silent_hold_s=3.0, churn_cycles=300)


@dataclass
class Target:
    """A server under test, its bystander, and what they recorded."""

    name: str
    template: str
    auth_token: str
    values: dict[str, Any]
    server: ServerProcess | None = None
    restarts: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, float, str]] = field(default_factory=list)
    bystander: trio.Process | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.port}/ws"

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [("X-Twilio-Signature", twilio_signature(self.auth_token, self.url))]

    def alive(self) -> bool:
        return self.server is not None and self.server.proc is not None \
            and self.server.proc.poll() is None


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _health(port: int) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return json.loads(r.read()).get("conversations")
    except Exception:  # a figure, not a check
        return None


def snapshot(t: Target) -> dict[str, Any] | None:
    """Server RSS, fds, CPU, log size and live conversations, or None when it is down."""
    if not t.alive():
        return None
    assert t.server is not None
    pid = t.server.pid
    try:
        return {"rss_kb": rss_kb(pid), "fds": _fds(pid), "cpu_s": sched_cpu_seconds(pid),
                "log_bytes": t.server.log_path.stat().st_size,
                "conversations": _health(t.server.port)}
    except (OSError, RuntimeError):
        return None


async def _read_bystander(t: Target, proc: trio.Process) -> None:
    assert proc.stdout is not None
    buf = b""
    async for chunk in proc.stdout:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            kind, ts, rest = line.decode().split(" ", 2)
            t.events.append((kind, float(ts), rest))


async def start(t: Target, nursery: trio.Nursery, log_dir: Path, index: int) -> None:
    """Start a fresh server and its bystander (after stopping the previous ones)."""
    await stop(t)
    port = free_port()
    cmd = server_command(t.template, port=port, **t.values)
    t.server = ServerProcess(t.name, cmd, port, log_dir / f"soak-{t.name}-{index}.log",
                             env={"TWILIO_AUTH_TOKEN": t.auth_token})
    await trio.to_thread.run_sync(t.server.start)
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(BYSTANDER), "--url", t.url, "--auth-token", t.auth_token],
        stdout=subprocess.PIPE)
    t.bystander = proc
    nursery.start_soon(_read_bystander, t, proc)
    await trio.sleep(1.0)  # the bystander connects and warms up


async def stop(t: Target) -> int | None:
    """Stop the bystander and the server; return the server's exit code."""
    if t.bystander is not None:
        t.bystander.terminate()
        with trio.move_on_after(5):
            await t.bystander.wait()
        t.bystander.kill()
        t.bystander = None
    if t.server is None:
        return None
    server, t.server = t.server, None
    return await trio.to_thread.run_sync(server.stop)


def bystander_figures(t: Target, t0: float, t1: float) -> dict[str, Any]:
    """The bystander's turns sent in [t0, t1): latency summary, misses, reconnects."""
    lat = [float(r) for k, ts, r in t.events if k == "ok" and t0 <= ts < t1]
    misses = [r for k, ts, r in t.events if k == "miss" and t0 <= ts < t1]
    closed = [r for k, ts, r in t.events if k == "closed" and t0 <= ts < t1]
    return {"full_reply_ms": summarize_ms(lat), "missed": len(misses),
            "reconnects": len(closed), "closed_reasons": sorted(set(closed))}


def _last_log_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    errors = [ln for ln in lines if "Error" in ln or "exited" in ln]
    return (errors or lines or [""])[-1].strip()[:300]


async def run_phase(t: Target, name: str, attack: Callable[[], Awaitable[dict[str, Any]]],
                    nursery: trio.Nursery, log_dir: Path, counter: list[int]) -> dict[str, Any]:
    """One phase: snapshot, attack (peak RSS/fds sampled every 0.25 s), settle, snapshot."""
    restarted = False
    if not t.alive() or name in FRESH:
        counter[0] += 1
        await start(t, nursery, log_dir, counter[0])
        restarted = True
    assert t.server is not None
    log_path = t.server.log_path
    await trio.sleep(0.5)
    before = snapshot(t)
    peak = {"rss_kb": before["rss_kb"] if before else 0, "fds": before["fds"] if before else 0}

    async def sample() -> None:
        while True:
            s = snapshot(t)
            if s is not None:
                peak["rss_kb"] = max(peak["rss_kb"], s["rss_kb"])
                peak["fds"] = max(peak["fds"], s["fds"])
            await trio.sleep(0.25)

    t0 = time.monotonic()
    async with trio.open_nursery() as inner:
        inner.start_soon(sample)
        figures = await attack()
        inner.cancel_scope.cancel()
    t1 = time.monotonic()
    await trio.sleep(1.5)  # let closes and cleanup finish before the "after" reading
    after = snapshot(t)
    result: dict[str, Any] = {
        "phase": name, "duration_s": round(t1 - t0, 2), "attack": figures,
        "bystander": bystander_figures(t, t0, t1), "before": before, "after": after,
        "peak": peak, "server_started_fresh": restarted, "server_alive": after is not None,
    }
    if before and after:
        result["cpu_s"] = round(after["cpu_s"] - before["cpu_s"], 3)
        result["cpu_util"] = round(result["cpu_s"] / (t1 - t0), 3)
        result["log_growth_kb"] = round((after["log_bytes"] - before["log_bytes"]) / 1024, 1)
    if after is None:
        assert t.server is not None and t.server.proc is not None
        code = t.server.proc.poll()
        result["server_exit_code"] = code
        result["server_last_log_line"] = _last_log_line(log_path)
        t.restarts.append({"phase": name, "exit_code": code, "log": str(log_path)})
    return result


def _attacks_for(t: Target, s: Sizes) -> list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]]:
    def rss() -> int | None:
        return rss_kb(t.server.pid) if t.alive() and t.server else None

    return [
        ("0-quiet", lambda: _quiet(s.quiet_s)),
        ("1-hostile", lambda: _attacks.hostile_frames(
            t.url, t.headers, total=s.hostile_frames, per_conn=s.hostile_per_conn,
            concurrency=s.hostile_concurrency, time_limit=s.hostile_time)),
        ("2-info", lambda: _attacks.info_flood(t.url, t.headers, seconds=s.info_s)),
        ("3-no-read", lambda: _attacks.never_reading(
            t.url, t.headers, calls=s.noread_calls, prompts=s.noread_prompts, stall=1.0,
            hold=2.0, rss=rss)),
        ("3s-surrogate", lambda: _attacks.surrogate_backed_up(
            t.url, t.headers, prompts=s.noread_prompts, stall=1.0, read_for=20.0)),
        ("4-interrupts", lambda: _attacks.interrupt_flood(
            t.url, t.headers, count=s.interrupts, stall=2.0, hold=3.0, rss=rss)),
        ("5a-reset", lambda: _attacks.reset_mid_turn(
            t.url, t.headers, calls=s.reset_calls, concurrency=20)),
        ("5b-silent", lambda: _attacks.silent_peers(
            t.url, t.headers, calls=s.silent_calls, hold=s.silent_hold_s)),
        ("6-churn", lambda: _attacks.churn(t.url, t.headers, cycles=s.churn_cycles,
                                           concurrency=20)),
    ]


async def _quiet(seconds: float) -> dict[str, Any]:
    await trio.sleep(seconds)
    return {}


async def soak(t: Target, sizes: Sizes, phases: list[str], log_dir: Path) -> dict[str, Any]:
    """Run the phases against one server; return its document."""
    results: list[dict[str, Any]] = []
    counter = [0]
    async with trio.open_nursery() as nursery:
        await start(t, nursery, log_dir, 0)
        for name, attack in _attacks_for(t, sizes):
            if name in phases:
                print(f"  [{t.name}] phase {name} ...", file=sys.stderr, flush=True)
                results.append(await run_phase(t, name, attack, nursery, log_dir, counter))
        code = await stop(t)
        nursery.cancel_scope.cancel()
    quiet = next((r for r in results if r["phase"] == "0-quiet"), None)
    if quiet:
        q = quiet["bystander"]["full_reply_ms"]
        for r in results:
            b = r["bystander"]["full_reply_ms"]
            for k in ("p50", "p99"):
                r["bystander"][f"{k}_ratio"] = (round(b[k] / q[k], 2)
                                                if b[k] is not None and q[k] else None)
    return {"server": t.name, "command": t.template, "phases": results,
            "restarts": t.restarts, "final_exit_code": code}


def _attack_summary(r: dict[str, Any]) -> str:
    a, p = r["attack"], r["phase"]
    if p == "1-hostile":
        codes = " ".join(f"{k}:{v}" for k, v in sorted(a["close_codes"].items()))
        rate = a["frames_sent"] / r["duration_s"] if r["duration_s"] else 0
        return (f"{a['frames_sent']} frames ({rate:.0f}/s) over {a['connections']} conns; "
                f"closes {codes}")
    if p == "2-info":
        return f"{a.get('frames_sent')} info ({a.get('frames_per_s')}/s), close {a.get('close')}"
    if p == "3-no-read":
        held = a["rss_held_kb"]
        base = (r["before"] or {}).get("rss_kb")
        per = (f", +{(held - base) / a['calls'] / 1024:.1f} MB/call held"
               if held and base else "")
        return f"{a['prompts_sent']} x 60 KB over {a['calls']} calls{per}"
    if p == "3s-surrogate":
        return (f"{a['prompts_sent']} x 60 KB unread, then \\ud800; read {a.get('replies_read')}"
                f": {a['outcome']}")
    if p == "4-interrupts":
        held = a.get("rss_held_kb")
        base = (r["before"] or {}).get("rss_kb")
        grow = f", +{(held - base) / 1024:.1f} MB held" if held and base else ""
        return f"{a.get('sent')} sent ({a.get('outcome')}){grow}"
    if p == "5a-reset":
        return f"{a['calls_reset']} reset"
    if p == "5b-silent":
        return (f"{a['calls']} silent {a['held_s']:.0f} s: {a['closed_by_server']} closed by "
                f"server, {a['pings_received']} pings")
    if p == "6-churn":
        return " ".join(f"{k}:{v}" for k, v in a["outcomes"].items())
    return ""


def format_table(doc: dict[str, Any]) -> str:
    """One table per server: a row per phase."""
    lines = [f"soak  {doc['date']}  server={doc['server']}  {doc['command']}",
             f"  {'phase':<13} {'s':>5} {'turns':>5} {'p50 ms':>7} {'p99 ms':>7} {'x quiet':>11} "
             f"{'miss/rc':>7} {'RSS MB before→after (peak)':>27} {'fds b→a (pk)':>14} "
             f"{'cpu':>5} {'log KB':>8}  attack"]
    for r in doc["phases"]:
        b = r["bystander"]
        lat = b["full_reply_ms"]
        bf, af = r["before"] or {}, r["after"] or {}

        def mb(x: Any) -> str:
            return f"{x / 1024:.0f}" if x else "-"

        lines.append(
            f"  {r['phase']:<13} {r['duration_s']:>5.1f} {lat['n']:>5} {fmt(lat['p50']):>7} "
            f"{fmt(lat['p99']):>7} {fmt(b.get('p50_ratio')):>5}/{fmt(b.get('p99_ratio')):>5} "
            f"{b['missed']:>3}/{b['reconnects']:<3} "
            f"{mb(bf.get('rss_kb')):>9} → {mb(af.get('rss_kb')):>5} ({mb(r['peak']['rss_kb']):>5}) "
            f"{bf.get('fds', '-')!s:>4}→{af.get('fds', '-')!s:<4}({r['peak']['fds']!s:>4}) "
            f"{fmt(r.get('cpu_util')):>5} {fmt(r.get('log_growth_kb'), 0):>8}  "
            f"{_attack_summary(r)}")
        if not r["server_alive"]:
            lines.append(f"  !! server DIED in {r['phase']}: exit {r.get('server_exit_code')}; "
                         f"last log line: {r.get('server_last_log_line')}")
        if r["server_started_fresh"] and r["phase"] not in FRESH:
            lines.append(f"  (a fresh server was started for {r['phase']} after the crash)")
    lines.append("  turns = bystander replies in the phase (one every 20 ms at most); cpu = "
                 "server CPU / wall time of the phase (cores); miss/rc = bystander replies "
                 "missed / reconnects; " + ", ".join(FRESH) + " run on a fresh server")
    return "\n".join(lines)


def _parse_server(spec: str) -> tuple[str, str]:
    if "=" in spec:
        name, template = spec.split("=", 1)
        return name, template
    if spec not in SERVERS:
        raise SystemExit(f"unknown server {spec!r}: use one of {sorted(SERVERS)} or NAME=TEMPLATE")
    return spec, SERVERS[spec]


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", action="append", default=None,
                   help="ours | before | NAME=TEMPLATE (repeat for several; default ours)")
    p.add_argument("--before", default="/work/before",
                   help="checkout of the code before the isolation work ({before})")
    p.add_argument("--quick", action="store_true", help="small phases, about 30 s per server")
    p.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    p.add_argument("--hostile-concurrency", type=int, default=None,
                   help="hostile connections at a time in phase 1 (default 16)")
    p.add_argument("--auth-token", default="bench-auth-token")
    p.add_argument("--json", type=Path, default=None, help="write all figures here")
    p.add_argument("--log-dir", type=Path, default=BENCH / "results" / "logs")
    args = p.parse_args()
    raise_fd_limit()
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.hostile_concurrency:
        sizes.hostile_concurrency = args.hostile_concurrency
    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    values = {"python": sys.executable, "python_dir": str(Path(sys.executable).parent),
              "before": args.before, "auth_token": args.auth_token}
    docs = []
    for spec in args.server or ["ours"]:
        name, template = _parse_server(spec)
        t = Target(name, template, args.auth_token, values)
        doc = {"date": now_iso(), **await soak(t, sizes, phases, args.log_dir)}
        doc["command"] = " ".join(server_command(template, port="{port}", **values))
        docs.append(doc)
        print(format_table(doc), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            {"date": now_iso(), "machine": machine_info(), "quick": args.quick,
             "sizes": sizes.__dict__, "repo": str(REPO), "runs": docs}, indent=1))


if __name__ == "__main__":
    trio.run(main)
