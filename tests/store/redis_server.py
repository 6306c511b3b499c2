"""A real ``redis-server`` for the tests, on a free loopback port, without persistence.

Tests that need one skip with a clear reason where ``redis-server`` is missing on a
developer's machine; under CI (``CI=true``) a missing server fails them instead (``.ci/run``
installs Debian's ``redis-server`` first)."""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import IO

import pytest

__all__ = ["RedisServer", "require_redis_server"]


def require_redis_server() -> str:
    """The path of ``redis-server``; skips the test (fails it under CI) without one."""
    found = shutil.which("redis-server")
    if found is None:
        reason = ("redis-server is not installed (Debian: apt-get install redis-server); "
                  "the shared-store tests need a real Redis")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process; :meth:`start` again after :meth:`kill` restarts it
    on the same port, empty (no persistence: what a failover to a stale replica or a
    restart without AOF loses)."""

    def __init__(self) -> None:
        self.binary = require_redis_server()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="tac-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and return once it says it accepts connections (its own log line,
        read from its output: no polling; at most 10 s). Its output is drained by a
        thread from then on, so it never blocks on a full pipe."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = self.process.stdout
        assert out is not None
        seen = b""
        with selectors.DefaultSelector() as selector:
            selector.register(out, selectors.EVENT_READ)
            deadline = time.monotonic() + 10
            while b"Ready to accept connections" not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise RuntimeError(f"redis-server did not start on port {self.port}")
                chunk = os.read(out.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"redis-server exited: {seen[-500:]!r}")
                seen += chunk
        threading.Thread(target=_drain, args=(out,), daemon=True).start()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            if self.process.stdout is not None:
                self.process.stdout.close()  # the drain thread sees the end
            self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _drain(out: IO[bytes]) -> None:
    try:
        while out.read(65536):
            pass
    except (OSError, ValueError):  # closed by kill(): the server is gone
        pass
