"""Smoke test of the bench tools: voice_load.py against the toy server, closed and bargein
with the default (fast) client, closed with the trio-websocket one."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
FIGURE_KEYS = {
    "calls",
    "connected",
    "turns_expected",
    "turns_done",
    "duration_s",
    "turns_per_s",
    "first_token_ms",
    "full_reply_ms",
    "barge_stop_ms",
    "late_tokens",
    "tokens",
    "connect",
    "errors",
    "server",
    "client",
    "client_cpu_ms_per_turn",
}
TOKEN = "smoke-token"


def _wait_for_url(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("listening on "):
                return line.split()[-1]
        assert proc.poll() is None, "toy server exited early"
    raise AssertionError("toy server did not start listening")


def test_voice_load_against_toy_server(tmp_path: Path) -> None:
    server_cmd = [
        sys.executable,
        str(BENCH / "toy_server.py"),
        "--port",
        "0",
        "--agent",
        "stream",
        "--tokens",
        "10",
        "--token-delay-ms",
        "2",
        "--auth-token",
        TOKEN,
    ]
    with subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True) as server:
        try:
            url = _wait_for_url(server)
            for mode, client in (
                ("closed", "fast"),
                ("bargein", "fast"),
                ("closed", "trio-websocket"),
            ):
                out = tmp_path / f"{mode}-{client}.json"
                done = subprocess.run(
                    [
                        sys.executable,
                        str(BENCH / "voice_load.py"),
                        "--url",
                        url,
                        "--calls",
                        "5",
                        "--turns",
                        "3",
                        "--mode",
                        mode,
                        *(["--client", client] if client != "fast" else []),
                        "--settle",
                        "0.1",
                        "--auth-token",
                        TOKEN,
                        "--server-pid",
                        str(server.pid),
                        "--quiet",
                        "--json",
                        str(out),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
                assert done.returncode == 0, done.stderr
                doc = json.loads(out.read_text())
                assert {"date", "machine", "params", "figures"} <= doc.keys()
                assert doc["params"]["mode"] == mode
                assert doc["params"]["client"] == client
                figures = doc["figures"]
                assert FIGURE_KEYS <= figures.keys()
                assert figures["connected"] == 5
                assert figures["errors"]["total"] == 0
                assert figures["turns_done"] == 15
                assert figures["client"]["transport"] == client
                assert figures["client_cpu_ms_per_turn"] is not None
                assert set(figures["full_reply_ms"]) >= {"p50", "p90", "p99", "max"}
                if mode == "bargein":
                    assert figures["barge_stop_ms"]["n"] == 15
        finally:
            server.terminate()
            server.wait(10)
