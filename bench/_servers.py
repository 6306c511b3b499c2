"""Start, wait for, and stop a server under test as a subprocess; run voice_load.py against it."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VOICE_LOAD = BENCH / "voice_load.py"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A server under test, started from a command template."""

    name: str
    command: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _log: TextIO | None = None

    @property
    def pid(self) -> int:
        """The server's process id (the command is run without a shell)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        """Start the command and wait until its port accepts TCP connections."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            self.command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before listening; "
                    f"see {self.log_path}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on port {self.port} in {timeout} s")

    def stop(self) -> int | None:
        """Stop the server: SIGINT, then SIGTERM, then SIGKILL; return its exit code."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                self.proc.send_signal(sig)
                try:
                    code = self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        elif self.proc is not None:
            code = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


def server_command(template: str, **values: Any) -> list[str]:
    """Fill a command template (``{port}``, ``{agent}``, ``{auth_token}``, ...) and split it."""
    return shlex.split(template.format(**values))


def run_voice_load(
    url: str, args: list[str], server_pid: int | None, auth_token: str | None, timeout: float
) -> dict[str, Any]:
    """Run voice_load.py in its own process and return its JSON document."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(VOICE_LOAD), "--url", url, "--quiet", "--json", str(out), *args]
        if server_pid is not None:
            cmd += ["--server-pid", str(server_pid)]
        if auth_token:
            cmd += ["--auth-token", auth_token]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"voice_load failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}"
            )
        doc: dict[str, Any] = json.loads(out.read_text())
        return doc
