#!/usr/bin/env python3
"""Run the same voice_load.py scenarios against our server and the reference TAC; compare.

For each server and scenario: start the server as a subprocess (fresh, so RSS per call
is not skewed by an earlier scenario), wait for its port, run voice_load.py with
--server-pid, stop it. Then a paced sweep over several N (one server start) for the
latency-vs-calls plot. Prints a comparison table (ratio = first server / second) and
writes ``bench/results/<date>.json``.

The reference runs in a scratch venv, ``bench/.ref-venv``, created here when missing
(``python3 -m venv`` + ``pip install 'twilio-agent-connect[server]==2.5.0'``).

Server commands are templates filled with {port}, {agent} (echo|stream), {auth_token},
{python} (this interpreter) and {ref_python}; the stream agent reads BENCH_STREAM_TOKENS and
BENCH_TOKEN_DELAY_MS from its environment, and every server gets TWILIO_AUTH_TOKEN.

    .venv/bin/python bench/side_by_side.py                       # ours vs reference
    .venv/bin/python bench/side_by_side.py --servers toy,ref --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _proc import machine_info, now_iso
from _servers import (
    BENCH,
    ServerProcess,
    free_port,
    run_voice_load,
    server_command,
)
from _stats import fmt

REF_VENV = BENCH / ".ref-venv"
REF_PACKAGE = "twilio-agent-connect[server]==2.5.0"
COMMANDS = {
    "ours": "{python_dir}/tac-actors serve bench/agents.py:{agent}_tac --port {port}",
    "ref": "{ref_python} bench/reference_server.py --agent {agent} --port {port}"
    " --auth-token {auth_token}",
    "toy": "{python} bench/toy_server.py --agent {agent} --port {port} --auth-token {auth_token}",
}


@dataclass
class Scenario:
    """One voice_load run: which agent the server runs, and the load arguments."""

    name: str
    agent: str
    calls: int
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def load_args(self, scale: float) -> list[str]:
        """voice_load.py arguments, with the number of calls scaled."""
        n = max(2, round(self.calls * scale))
        if self.name == "idle":
            return ["--idle-calls", str(n), *self.args]
        return ["--calls", str(n), *self.args]


SCENARIOS = [
    Scenario("closed", "echo", 1000, ["--mode", "closed", "--turns", "5"]),
    Scenario("paced", "echo", 2000, ["--mode", "paced", "--turns", "6", "--pace", "2"]),
    Scenario(
        "stream",
        "stream",
        200,
        ["--mode", "stream", "--turns", "5"],
        {"BENCH_STREAM_TOKENS": "30", "BENCH_TOKEN_DELAY_MS": "0"},
    ),
    Scenario(
        "bargein",
        "stream",
        200,
        ["--mode", "bargein", "--turns", "5", "--barge-after", "50", "--quiet-wait", "50"],
        {"BENCH_STREAM_TOKENS": "30", "BENCH_TOKEN_DELAY_MS": "20"},
    ),
    Scenario(
        "bargein100",
        "stream",
        100,
        ["--mode", "bargein", "--turns", "5", "--barge-after", "50", "--quiet-wait", "50"],
        {"BENCH_STREAM_TOKENS": "30", "BENCH_TOKEN_DELAY_MS": "20"},
    ),
    Scenario(
        "bargein1000",
        "stream",
        1000,
        ["--mode", "bargein", "--turns", "3", "--barge-after", "200", "--quiet-wait", "50"],
        {"BENCH_STREAM_TOKENS": "30", "BENCH_TOKEN_DELAY_MS": "50"},
    ),
    Scenario("idle", "echo", 2000, []),
]

# (scenario, label, path into figures, lower is better)
COMPARE: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("closed", "turns/s", ("turns_per_s",), False),
    ("closed", "server CPU ms/turn", ("server", "cpu_ms_per_turn"), True),
    ("closed", "  same, schedstat", ("server", "cpu_sched_ms_per_turn"), True),
    ("closed", "client CPU util", ("client", "cpu_util"), True),
    ("closed", "full reply p99 ms", ("full_reply_ms", "p99"), True),
    ("paced", "server CPU ms/turn", ("server", "cpu_ms_per_turn"), True),
    ("paced", "  same, schedstat", ("server", "cpu_sched_ms_per_turn"), True),
    ("paced", "full reply p50 ms", ("full_reply_ms", "p50"), True),
    ("paced", "full reply p99 ms", ("full_reply_ms", "p99"), True),
    ("paced", "errors", ("errors", "total"), True),
    ("stream", "tokens/s", ("tokens_per_s",), False),
    ("stream", "server CPU ms/turn", ("server", "cpu_ms_per_turn"), True),
    ("stream", "  same, schedstat", ("server", "cpu_sched_ms_per_turn"), True),
    ("stream", "client CPU util", ("client", "cpu_util"), True),
    ("stream", "first token p99 ms", ("first_token_ms", "p99"), True),
    ("stream", "full reply p99 ms", ("full_reply_ms", "p99"), True),
    ("bargein", "barge-in stop p50 ms", ("barge_stop_ms", "p50"), True),
    ("bargein", "barge-in stop p99 ms", ("barge_stop_ms", "p99"), True),
    ("bargein", "late tokens after ack", ("late_tokens",), True),
    ("bargein", "errors", ("errors", "total"), True),
    ("bargein100", "100 calls: barge-in stop p50 ms", ("barge_stop_ms", "p50"), True),
    ("bargein100", "100 calls: barge-in stop p99 ms", ("barge_stop_ms", "p99"), True),
    ("bargein100", "100 calls: late tokens", ("late_tokens",), True),
    ("bargein1000", "1,000 calls: barge-in stop p50 ms", ("barge_stop_ms", "p50"), True),
    ("bargein1000", "1,000 calls: barge-in stop p99 ms", ("barge_stop_ms", "p99"), True),
    ("bargein1000", "1,000 calls: late tokens", ("late_tokens",), True),
    ("bargein1000", "1,000 calls: server CPU ms/turn", ("server", "cpu_ms_per_turn"), True),
    ("idle", "RSS per idle call KB", ("server", "rss_per_call_kb"), True),
    ("idle", "connect all s", ("connect", "total_s"), True),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--servers", default="ours,ref", help="comma list of: ours, ref, toy")
    p.add_argument("--ours-cmd", default=COMMANDS["ours"], help="command template for ours")
    p.add_argument("--ref-cmd", default=COMMANDS["ref"], help="command template, reference")
    p.add_argument("--toy-cmd", default=COMMANDS["toy"], help="command template, toy server")
    p.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    p.add_argument("--scale", type=float, default=1.0, help="multiply every scenario's calls")
    p.add_argument(
        "--sweep",
        default="250,500,1000,2000",
        help="paced echo runs at these N for plot.py ('' to skip); scaled too",
    )
    p.add_argument("--auth-token", default="bench-auth-token")
    p.add_argument("--path", default="/ws", help="WebSocket path of every server")
    p.add_argument("--out", default=None, help="result JSON (default bench/results/<date>.json)")
    p.add_argument("--logs", default=str(BENCH / "results" / "logs"), help="server logs here")
    return p.parse_args(argv)


def ensure_ref_venv() -> Path:
    """Create the reference's scratch venv if missing; return its python."""
    python = REF_VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import tac, uvicorn"], capture_output=True)
        if probe.returncode == 0:
            return python
    print(f"side_by_side: creating {REF_VENV} with {REF_PACKAGE}", file=sys.stderr, flush=True)
    subprocess.run(["python3", "-m", "venv", str(REF_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", REF_PACKAGE], check=True)
    return python


def _dig(doc: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    cur: Any = doc["figures"] if doc else None
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


class Bench:
    """Runs scenarios against the servers and collects the documents."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
        self.templates = {"ours": args.ours_cmd, "ref": args.ref_cmd, "toy": args.toy_cmd}
        self.ref_python = ensure_ref_venv() if "ref" in self.servers else None
        self.results: dict[str, dict[str, Any]] = {s: {} for s in self.servers}
        self.sweeps: dict[str, list[dict[str, Any]]] = {s: [] for s in self.servers}
        self.failures: list[str] = []

    def _server(self, name: str, agent: str, env: dict[str, str], tag: str) -> ServerProcess:
        port = free_port()
        values = {
            "port": port,
            "agent": agent,
            "auth_token": self.args.auth_token,
            "python": sys.executable,
            "python_dir": str(Path(sys.executable).parent),
            "ref_python": str(self.ref_python or ""),
        }
        command = server_command(self.templates[name], **values)
        return ServerProcess(
            name=name,
            command=command,
            port=port,
            log_path=Path(self.args.logs) / f"{name}-{tag}.log",
            env={
                "TWILIO_AUTH_TOKEN": self.args.auth_token,
                "TAC_ANALYTICS_DISABLED": "true",
                **env,
            },
        )

    def _url(self, server: ServerProcess) -> str:
        return f"ws://127.0.0.1:{server.port}{self.args.path}"

    def run_scenario(self, name: str, sc: Scenario) -> None:
        """Run one scenario on a fresh server."""
        server = self._server(name, sc.agent, sc.env, sc.name)
        load = sc.load_args(self.args.scale)
        print(f"side_by_side: {name:<5} {sc.name:<8} {' '.join(load)}", file=sys.stderr, flush=True)
        try:
            server.start()
            time.sleep(0.5)
            doc = run_voice_load(
                self._url(server), load, server.pid, self.args.auth_token, timeout=900
            )
            doc["server_command"] = server.command
            self.results[name][sc.name] = doc
        except Exception as exc:
            self.failures.append(f"{name}/{sc.name}: {exc}")
            print(f"side_by_side: FAILED {name}/{sc.name}: {exc}", file=sys.stderr)
        finally:
            server.stop()

    def run_sweep(self, name: str, sizes: list[int]) -> None:
        """Paced echo runs at increasing N on one server start, for plot.py."""
        server = self._server(name, "echo", {}, "sweep")
        try:
            server.start()
            for n in sizes:
                print(f"side_by_side: {name:<5} sweep    N={n}", file=sys.stderr, flush=True)
                doc = run_voice_load(
                    self._url(server),
                    ["--mode", "paced", "--calls", str(n), "--turns", "6", "--pace", "2"],
                    server.pid,
                    self.args.auth_token,
                    timeout=900,
                )
                f = doc["figures"]
                self.sweeps[name].append(
                    {
                        "calls": n,
                        "full_reply_ms": f["full_reply_ms"],
                        "first_token_ms": f["first_token_ms"],
                        "errors": f["errors"]["total"],
                        "server_cpu_ms_per_turn": f["server"]["cpu_ms_per_turn"],
                    }
                )
                time.sleep(1.0)
        except Exception as exc:
            self.failures.append(f"{name}/sweep: {exc}")
            print(f"side_by_side: FAILED {name}/sweep: {exc}", file=sys.stderr)
        finally:
            server.stop()


def comparison(results: dict[str, dict[str, Any]], servers: list[str]) -> list[dict[str, Any]]:
    """Rows of (scenario, figure, value per server, ratio first/second)."""
    rows = []
    for scenario, label, path, lower_better in COMPARE:
        values = {s: _dig(results[s].get(scenario), path) for s in servers}
        ratio = None
        if len(servers) >= 2:
            a, b = values[servers[0]], values[servers[1]]
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                ratio = round(a / b, 3)
        rows.append(
            {
                "scenario": scenario,
                "figure": label,
                "values": values,
                "ratio": ratio,
                "lower_is_better": lower_better,
            }
        )
    return rows


def format_comparison(rows: list[dict[str, Any]], servers: list[str]) -> str:
    """The comparison table as text."""
    head = f"{'scenario':<9} {'figure':<24}" + "".join(f"{s:>12}" for s in servers)
    if len(servers) >= 2:
        head += f"{servers[0] + '/' + servers[1]:>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = f"{r['scenario']:<9} {r['figure']:<24}" + "".join(
            f"{fmt(r['values'][s], 3):>12}" for s in servers
        )
        if len(servers) >= 2:
            line += f"{fmt(r['ratio'], 2):>12}"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run everything, print the comparison, write the result JSON."""
    args = parse_args(argv)
    bench = Bench(args)
    wanted = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    sizes = [max(2, round(int(x) * args.scale)) for x in args.sweep.split(",") if x.strip()]
    started = now_iso()
    for name in bench.servers:
        for sc in SCENARIOS:
            if sc.name in wanted:
                bench.run_scenario(name, sc)
        if sizes:
            bench.run_sweep(name, sizes)
    rows = comparison(bench.results, bench.servers)
    print(format_comparison(rows, bench.servers))
    for failure in bench.failures:
        print(f"FAILED: {failure}")
    doc = {
        "tool": "side_by_side",
        "date": started,
        "finished": now_iso(),
        "machine": machine_info(),
        "params": {
            "servers": bench.servers,
            "templates": {s: bench.templates[s] for s in bench.servers},
            "scale": args.scale,
            "scenarios": sorted(wanted),
            "sweep": sizes,
            "auth_token_signed": True,
        },
        "comparison": rows,
        "sweeps": bench.sweeps,
        "results": bench.results,
        "failures": bench.failures,
    }
    out = (
        Path(args.out) if args.out else BENCH / "results" / f"{started[:19].replace(':', '')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
