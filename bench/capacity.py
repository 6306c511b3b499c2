#!/usr/bin/env python3
"""Capacity search: the largest number of paced calls a running server serves within target.

Repeated paced runs of voice_load.py (pace 2 s, 6 turns by default), each in its own
process, with N doubling from --start until a run fails, then bisection between the
last pass and the first failure down to --resolution. A run passes when every call
connected, every turn completed, there were no errors, and the p99 full-reply latency
is at most --p99-ms (50 ms).

    python bench/capacity.py --url ws://127.0.0.1:8080/ws --server-pid 1234 --max-calls 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _proc import machine_info, now_iso
from _servers import run_voice_load
from _stats import fmt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    p.add_argument("--server-pid", type=int, default=None)
    p.add_argument("--auth-token", default=None)
    p.add_argument("--max-calls", type=int, default=20000)
    p.add_argument("--start", type=int, default=250, help="first N tried")
    p.add_argument("--turns", type=int, default=6)
    p.add_argument("--pace", type=float, default=2.0)
    p.add_argument("--p99-ms", type=float, default=50.0, help="latency target (full reply p99)")
    p.add_argument(
        "--resolution", type=float, default=0.05, help="stop bisecting at this relative gap"
    )
    p.add_argument("--ramp-rate", type=float, default=0.0, help="passed to voice_load.py")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    p.add_argument("--json", dest="json_out", default=None)
    p.add_argument("--quiet", action="store_true", help="no line per run on stderr")
    return p.parse_args(argv)


def judge(doc: dict[str, Any], p99_ms: float) -> tuple[bool, str]:
    """Return whether a paced run meets the target, and why not."""
    f = doc["figures"]
    if f["errors"]["total"]:
        return False, f"{f['errors']['total']} errors"
    if f["connected"] < f["calls"] or f["turns_done"] < f["turns_expected"]:
        return False, "incomplete"
    p99 = f["full_reply_ms"]["p99"]
    if p99 is None or p99 > p99_ms:
        return False, f"p99 {p99} ms > {p99_ms} ms"
    return True, "ok"


def summary_row(n: int, doc: dict[str, Any], ok: bool, why: str) -> dict[str, Any]:
    """The figures of one run worth keeping in the capacity document."""
    f = doc["figures"]
    return {
        "calls": n,
        "pass": ok,
        "why": why,
        "turns_per_s": f["turns_per_s"],
        "full_reply_ms": f["full_reply_ms"],
        "first_token_ms": f["first_token_ms"],
        "errors": f["errors"]["total"],
        "server_cpu_ms_per_turn": f["server"]["cpu_ms_per_turn"],
        "server_cpu_util": f["server"]["cpu_util"],
        "client_cpu_util": f["client"]["cpu_util"],
        "connect_total_s": f["connect"]["total_s"],
        # set by workers_capacity.py: the workers' share of the run on / waiting for a CPU
        "workers_on_cpu": f["server"].get("workers_on_cpu"),
        "workers_waiting_for_cpu": f["server"].get("workers_waiting_for_cpu"),
    }


def search(args: argparse.Namespace) -> dict[str, Any]:
    """Run the doubling-then-bisection search; return the capacity document."""
    runs: list[dict[str, Any]] = []

    def trial(n: int) -> bool:
        load_args = [
            "--mode",
            "paced",
            "--calls",
            str(n),
            "--turns",
            str(args.turns),
            "--pace",
            str(args.pace),
            "--ramp-rate",
            str(args.ramp_rate),
        ]
        timeout = 120.0 + args.turns * args.pace * 3 + n / 50.0
        try:
            doc = run_voice_load(args.url, load_args, args.server_pid, args.auth_token, timeout)
            ok, why = judge(doc, args.p99_ms)
            row = summary_row(n, doc, ok, why)
        except Exception as exc:  # a crashed or hung run is a failed run
            ok, why = False, f"run failed: {exc}"[:300]
            row = {"calls": n, "pass": False, "why": why}
        runs.append(row)
        if not args.quiet:
            p99 = row.get("full_reply_ms", {}).get("p99")
            print(
                f"capacity: N={n:<6} {'PASS' if ok else 'FAIL'}  p99 {fmt(p99)} ms  {why}",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(args.pause)
        return ok

    best, worst = 0, None
    n = max(1, min(args.start, args.max_calls))
    while True:
        if trial(n):
            best = n
            if n >= args.max_calls:
                break
            n = min(n * 2, args.max_calls)
        else:
            worst = n
            break
    if worst is not None:
        while worst - best > max(1, int(args.resolution * max(best, 1))):
            mid = (best + worst) // 2
            if trial(mid):
                best = mid
            else:
                worst = mid
    return {
        "tool": "capacity",
        "date": now_iso(),
        "machine": machine_info(),
        "params": {
            "url": args.url,
            "server_pid": args.server_pid,
            "signed": bool(args.auth_token),
            "max_calls": args.max_calls,
            "start": args.start,
            "turns": args.turns,
            "pace_s": args.pace,
            "p99_target_ms": args.p99_ms,
            "resolution": args.resolution,
        },
        "capacity_calls": best,
        "first_failure_calls": worst,
        "hit_max_calls": worst is None,
        "runs": sorted(runs, key=lambda r: r["calls"]),
    }


def format_capacity(doc: dict[str, Any]) -> str:
    """A readable summary of a capacity document."""
    p = doc["params"]
    lines = [
        f"capacity  {doc['date']}  url={p['url']}  target p99 <= {p['p99_target_ms']} ms,"
        f" 0 errors  (paced {p['pace_s']} s x {p['turns']} turns)",
        f"  {'calls':>7} {'result':>6} {'p50 ms':>8} {'p99 ms':>8} {'turns/s':>8}"
        f" {'cpu/turn':>9} {'srv util':>8}  why",
    ]
    for r in doc["runs"]:
        lat = r.get("full_reply_ms") or {}
        lines.append(
            f"  {r['calls']:>7} {'PASS' if r['pass'] else 'FAIL':>6} {fmt(lat.get('p50')):>8}"
            f" {fmt(lat.get('p99')):>8} {fmt(r.get('turns_per_s'), 1):>8}"
            f" {fmt(r.get('server_cpu_ms_per_turn'), 3):>9} {fmt(r.get('server_cpu_util')):>8}"
            f"  {r['why']}"
        )
    more = " (the search hit --max-calls)" if doc["hit_max_calls"] else ""
    lines.append(f"  capacity: {doc['capacity_calls']} calls{more}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the search, print the summary, write JSON."""
    args = parse_args(argv)
    doc = search(args)
    print(format_capacity(doc))
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
