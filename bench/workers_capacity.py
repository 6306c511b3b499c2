#!/usr/bin/env python3
"""Paced voice capacity with ``tac-actors serve --workers 1`` and ``--workers 2``.

For each repeat and each worker count (alternating: 1, 2, 1, 2...), a fresh server
(``bench/agents.py:echo_tac``, signed upgrades) is started, every worker is seen answering
``/health``, then ``capacity.py``'s search runs against it (paced 2 s x 6 turns; the
largest N with p99 full reply <= 50 ms and 0 errors), with the same client
(``voice_load.py``, one process) and the same settings for both. The load average is
read before and after each search; each run records the client's own CPU use (it shares
the machine's cores with the workers).

    .venv/bin/python bench/workers_capacity.py --workers 1,2 --repeats 2 \\
        --json bench/results/2026-11-28-workers-capacity.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import capacity
from _proc import machine_info, now_iso
from _servers import REPO, ServerProcess, free_port

TOKEN = "bench-auth-token"
_RUN_VOICE_LOAD = capacity.run_voice_load


def schedstat(pids: list[int]) -> tuple[float, float]:
    """Seconds on a CPU and seconds runnable but waiting for one, over every thread of
    ``pids`` (``/proc/PID/task/*/schedstat``, fields 1 and 2)."""
    run = wait = 0
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    fields = f.read().split()
                run, wait = run + int(fields[0]), wait + int(fields[1])
            except (OSError, ValueError, IndexError):
                continue
    return run / 1e9, wait / 1e9


def measure_scheduling(pids: list[int]) -> None:
    """Record, for each capacity trial, the share of its wall time the workers (summed)
    spent on a CPU and waiting for one (another process had it)."""
    run_voice_load = _RUN_VOICE_LOAD

    def measured(*args: Any, **kwargs: Any) -> dict[str, Any]:
        run0, wait0 = schedstat(pids)
        started = time.monotonic()
        doc = run_voice_load(*args, **kwargs)
        run1, wait1 = schedstat(pids)
        wall = time.monotonic() - started
        doc["figures"]["server"]["workers_on_cpu"] = round((run1 - run0) / wall, 3)
        doc["figures"]["server"]["workers_waiting_for_cpu"] = round((wait1 - wait0) / wall, 3)
        return doc

    capacity.run_voice_load = measured  # type: ignore[assignment]


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def worker_pids(port: int, want: int, timeout: float = 60.0) -> list[int]:
    """Ask ``/health`` on fresh connections until ``want`` distinct workers answered."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < want:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {want} workers answered /health")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                doc = json.loads(r.read())
            seen.add(int(doc.get("pid", 0)))
        except OSError:
            time.sleep(0.1)
    return sorted(seen)


def one_search(workers: int, args: argparse.Namespace, index: int) -> dict[str, Any]:
    port = free_port()
    python_dir = Path(sys.executable).parent
    command = [str(python_dir / "tac-actors"), "serve", "bench/agents.py:echo_tac", "--host",
               "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log = REPO / "bench" / "results" / "logs" / f"workers-{workers}-run{index}.log"
    server = ServerProcess(f"workers={workers}", command, port, log,
                           env={"TWILIO_AUTH_TOKEN": TOKEN})
    server.start()
    try:
        pids = worker_pids(port, workers) if workers > 1 else [server.pid]
        search_args = capacity.parse_args([
            "--url", f"ws://127.0.0.1:{port}/ws", "--auth-token", TOKEN,
            "--server-pid", str(pids[0]), "--start", str(args.start),
            "--max-calls", str(args.max_calls), "--quiet"])
        measure_scheduling(pids)
        before = loadavg()
        started = time.monotonic()
        doc = capacity.search(search_args)
        doc["workers"] = workers
        doc["worker_pids"] = pids
        doc["loadavg_before"] = before
        doc["loadavg_after"] = loadavg()
        doc["search_s"] = round(time.monotonic() - started, 1)
    finally:
        code = server.stop()
    doc["server_exit"] = code
    best = next((r for r in doc["runs"] if r["calls"] == doc["capacity_calls"]), {})
    print(f"workers={workers} run {index}: capacity {doc['capacity_calls']} calls "
          f"(first failure {doc['first_failure_calls']}), p99 at capacity "
          f"{(best.get('full_reply_ms') or {}).get('p99')} ms, client CPU "
          f"{best.get('client_cpu_util')}, workers on / waiting for a CPU "
          f"{best.get('workers_on_cpu')} / {best.get('workers_waiting_for_cpu')}, "
          f"load {doc['loadavg_before']} -> {doc['loadavg_after']}", flush=True)
    return doc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--start", type=int, default=2500)
    p.add_argument("--max-calls", type=int, default=16000)
    p.add_argument("--first-run", type=int, default=1, help="number of the first repeat "
                   "(names the server logs)")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    searches = []
    for index in range(args.first_run, args.first_run + args.repeats):
        for workers in counts:
            searches.append(one_search(workers, args, index))
    result = {"tool": "workers_capacity", "date": now_iso(), "machine": machine_info(),
              "cores": len(os.sched_getaffinity(0)), "searches": searches}
    for workers in counts:
        found = [s["capacity_calls"] for s in searches if s["workers"] == workers]
        print(f"workers={workers}: capacity {found}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
