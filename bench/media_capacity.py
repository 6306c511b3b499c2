"""How many speech-to-speech calls (Twilio Media Streams) one server process holds on time.

    .venv/bin/python bench/media_capacity.py --calls 50 100 200 300 400 \
        --calls-per-client 50 --seconds 20 [--json out.json]

For each N: a fresh ``tac-actors serve bench/media_agents.py:echo_model_tac`` (an
in-process echo model, so the server's CPU is the bridge's), then K = ceil(N / C)
``media_load.py`` processes at once, each with its share of the N calls (one client
process cannot drive 100 calls in real time). Their ``--raw`` results are merged:

- **reply latency** (the server's lateness): from sending the caller frame that makes
  the echo model answer to receiving the answer's first audio frame. The server sends
  the model's audio as it comes (no pacing), so this is how late its frames are.
- **send lateness** (the clients' own lag): how long after its 20 ms slot each caller
  frame left. Reply latency includes it; when it is not small the clients, not the
  server, are the limit.
- **server CPU**, from ``/proc/PID/stat``, per call per second of audio: over the
  steady window when all N calls are up, and over the whole run (handshakes included).
- **RSS per call**: the largest RSS seen during the run less the RSS before it, over N.
- **server waiting for a CPU**: the time the server was runnable but not running
  (``/proc/PID/task/*/schedstat``), over the wall time: high means the machine, not the
  server, was the limit.
- **other jobs' CPU**: the machine's busy time (``/proc/stat``) less the server's and the
  clients', over the run's wall time: what else on the machine competed for the cores.

A run is *on time* when all N calls connected, no call had an error, and the p99 reply
latency is at most ``--budget-ms`` (5). The largest on-time N is printed at the end.
The server and its clients share the machine: on 2 cores the clients' CPU counts against
the server's; the report gives both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _proc import CLOCK_TICKS, cpu_seconds, machine_info, now_iso, rss_kb
from _servers import REPO, ServerProcess, free_port
from _stats import summarize_ms

MEDIA_LOAD = Path(__file__).resolve().parent / "media_load.py"
AGENT = "bench/media_agents.py:echo_model_tac"


def machine_busy_seconds() -> float:
    """Return the CPU time all processes of this machine have used (``/proc/stat``), in s."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def runqueue_wait_seconds(pid: int) -> float:
    """Return how long the threads of ``pid`` have waited, runnable, for a CPU (schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def hist_percentile(hist: dict[int, int], q: float) -> float | None:
    """Return the ``q``-th percentile (nearest rank) of a 0.1 ms histogram, in ms."""
    total = sum(hist.values())
    if not total:
        return None
    rank = math.ceil(q / 100.0 * total)
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return bucket / 10
    return max(hist) / 10


def one_run(calls: int, per_client: int, seconds: float, ramp: float, budget_ms: float,
            logs: Path, client: str = "fast") -> dict[str, Any]:
    """Run N calls from K client processes against a fresh server; return the merged result."""
    clients = math.ceil(calls / per_client)
    port = free_port()
    server = ServerProcess(
        name=f"media-{calls}",
        command=[str(REPO / ".venv/bin/tac-actors"), "serve", AGENT, "--port", str(port)],
        port=port, log_path=logs / f"media-capacity-server-{calls}.log")
    server.start()
    try:
        time.sleep(1.0)  # let the server settle after its first accept
        pid = server.pid
        rss0 = rss_kb(pid)
        load0 = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            outs, procs = [], []
            wait0 = runqueue_wait_seconds(pid)
            cpu0, busy0, t0 = cpu_seconds(pid), machine_busy_seconds(), time.monotonic()
            for k in range(clients):
                share = calls // clients + (1 if k < calls % clients else 0)
                out = Path(tmp) / f"client{k}.json"
                outs.append(out)
                procs.append(subprocess.Popen(
                    [sys.executable, str(MEDIA_LOAD), "--url",
                     f"ws://127.0.0.1:{port}/media-stream", "--calls", str(share),
                     "--seconds", str(seconds), "--ramp", str(ramp), "--raw", "--quiet",
                     "--client", client, "--json", str(out)],
                    cwd=REPO, stdout=subprocess.DEVNULL,
                    stderr=open(Path(tmp) / f"client{k}.err", "w")))
            # Steady window: every call has started (ramp + process start-up) and none
            # has ended yet (the first call ends ``seconds`` after it started).
            steady_from, steady_to = ramp + 1.5, seconds - 0.5
            cpu_a = cpu_b = None
            rss_max = rss0
            while any(p.poll() is None for p in procs):
                elapsed = time.monotonic() - t0
                if cpu_a is None and elapsed >= steady_from:
                    cpu_a = (elapsed, cpu_seconds(pid))
                if cpu_b is None and elapsed >= steady_to:
                    cpu_b = (elapsed, cpu_seconds(pid))
                rss_max = max(rss_max, rss_kb(pid))
                time.sleep(0.1)
            wall = time.monotonic() - t0
            cpu_total = cpu_seconds(pid) - cpu0
            busy = machine_busy_seconds() - busy0
            waited = runqueue_wait_seconds(pid) - wait0
            docs = []
            for k, (proc, out) in enumerate(zip(procs, outs, strict=True)):
                stderr = (Path(tmp) / f"client{k}.err").read_text()
                if proc.returncode != 0 or not out.exists():
                    raise RuntimeError(f"media_load failed ({proc.returncode}): {stderr[-2000:]}")
                docs.append(json.loads(out.read_text()))
    finally:
        server.stop()
    latencies = [ms / 1000 for d in docs for ms in d["raw"]["reply_latency_ms"]]
    hist: dict[int, int] = {}
    for d in docs:
        for bucket, count in d["raw"]["send_lateness_hist_0.1ms"].items():
            hist[int(bucket)] = hist.get(int(bucket), 0) + count
    reply = summarize_ms(latencies)
    connected = sum(d["connected"] for d in docs)
    errors = sum(d["errors"] for d in docs)
    steady = None
    if cpu_a is not None and cpu_b is not None and cpu_b[0] > cpu_a[0]:
        steady = (cpu_b[1] - cpu_a[1]) / (cpu_b[0] - cpu_a[0])
    client_cpu = sum(d["client_cpu_percent"] * d["wall_s"] / 100 for d in docs)
    others = max(0.0, busy - cpu_total - client_cpu)
    on_time = (connected == calls and errors == 0 and reply["p99"] is not None
               and reply["p99"] <= budget_ms)
    return {
        "calls": calls, "clients": clients, "client": client, "seconds": seconds,
        "ramp": ramp,
        "load_avg_1m_before": round(load0, 2),
        "connected": connected, "errors": errors,
        "error_kinds": sorted({k for d in docs for k in d["error_kinds"]}),
        "frames_sent": sum(d["frames_sent"] for d in docs),
        "frames_sent_over_20ms_late": sum(d["late_frames"] for d in docs),
        "media_received": sum(d["media_received"] for d in docs),
        "marks": sum(d["marks"] for d in docs),
        "replies": reply["n"], "reply_latency": reply,
        "send_lateness": {"p50": hist_percentile(hist, 50), "p99": hist_percentile(hist, 99),
                          "max": hist_percentile(hist, 100)},
        "server": {
            "cpu_percent_steady": None if steady is None else round(100 * steady, 1),
            "cpu_ms_per_call_second_steady":
                None if steady is None else round(1000 * steady / calls, 3),
            "cpu_percent_whole_run": round(100 * cpu_total / wall, 1),
            "cpu_ms_per_call_second_whole_run": round(1000 * cpu_total / (calls * seconds), 3),
            "runqueue_wait_percent": round(100 * waited / wall, 1),
            "rss_kb_before": rss0, "rss_kb_max": rss_max,
            "rss_kb_per_call": round((rss_max - rss0) / calls, 1),
        },
        "client_cpu_percent_total": round(sum(d["client_cpu_percent"] for d in docs), 1),
        "machine_cpu_percent": round(100 * busy / wall, 1),
        "others_cpu_percent": round(100 * others / wall, 1),
        "wall_s": round(wall, 2), "on_time": on_time,
    }


def row(r: dict[str, Any]) -> str:
    s, lat, send = r["server"], r["reply_latency"], r["send_lateness"]
    return (f"| {r['calls']} | {r['clients']} | {r['connected']} | {r['errors']} | "
            f"{r['frames_sent']} | {r['frames_sent_over_20ms_late']} | {lat['p50']} | "
            f"{lat['p99']} | {lat['max']} | {send['p99']} | {s['cpu_percent_steady']} | "
            f"{s['runqueue_wait_percent']} | "
            f"{s['cpu_ms_per_call_second_steady']} | {s['cpu_ms_per_call_second_whole_run']} | "
            f"{s['rss_kb_per_call']} | {r['client_cpu_percent_total']} | "
            f"{r['others_cpu_percent']} | "
            f"{'yes' if r['on_time'] else 'no'} |")


HEADER = (
    "| calls | client procs | connected | errors | frames sent | sent >20 ms late | "
    "reply p50 ms | reply p99 ms | reply max ms | send lateness p99 ms | server CPU % | "
    "server waiting for a CPU % | "
    "server CPU ms per call-s (steady) | (whole run) | RSS KB/call | clients CPU % | "
    "other jobs CPU % | on time |\n"
    "|" + "---|" * 18)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, nargs="+", default=[50, 100, 200, 300, 400])
    p.add_argument("--calls-per-client", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--ramp", type=float, default=None,
                   help="seconds over which each client starts its calls (default N/100, ≥ 2)")
    p.add_argument("--client", choices=("fast", "trio-websocket"), default="fast")
    p.add_argument("--budget-ms", type=float, default=5.0)
    p.add_argument("--keep-going", action="store_true",
                   help="run every N even after one was not on time")
    p.add_argument("--logs", type=Path, default=REPO / "bench/results/logs")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    doc: dict[str, Any] = {"when": now_iso(), "machine": machine_info(), "args": sys.argv[1:],
                           "runs": []}
    print(HEADER, flush=True)
    for calls in args.calls:
        ramp = args.ramp if args.ramp is not None else max(2.0, calls / 100)
        result = one_run(calls, args.calls_per_client, args.seconds, ramp, args.budget_ms,
                         args.logs, args.client)
        doc["runs"].append(result)
        print(row(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(doc, indent=2))
        if not result["on_time"] and not args.keep_going:
            break
    good = [r["calls"] for r in doc["runs"] if r["on_time"]]
    doc["largest_on_time"] = max(good) if good else None
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    print(f"largest N on time (p99 reply latency <= {args.budget_ms} ms, 0 errors): "
          f"{doc['largest_on_time']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
