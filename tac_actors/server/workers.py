"""Several worker processes on one port: ``tac-actors serve APP --workers N``.

A worker is :func:`~tac_actors.server.serve` in a child process (``python -m tac_actors``
with the parent's own arguments, told by environment variables that it is worker ``i``).
Each worker runs its own runtime, actors and front door; a call stays on the worker whose
socket it arrived on. Whatever conversation store the app is configured with is used by
every worker alike: this module knows nothing of it.

How the port is shared (:class:`SharedPort`):

* ``reuseport`` (Linux): every worker binds its own listening socket with
  ``SO_REUSEPORT``; the kernel spreads new connections over them by a hash of the
  addresses. The parent keeps a socket bound to the port without listening on it: it
  reserves the port (an ephemeral ``--port 0`` is resolved once) and receives nothing.
* ``inherit`` (elsewhere: ``SO_REUSEPORT`` on macOS and the BSDs does not balance): the
  parent binds and listens once; the workers inherit that socket and all accept from it.

The parent (:class:`Parent`) is a small trio loop with no server in it: it starts the
workers, restarts one that dies (at most ``RestartLimit.restarts`` restarts in
``RestartLimit.window`` seconds over all workers; one more and it stops everything and
exits 1, logged), and forwards SIGINT/SIGTERM. Workers run in their own session, so a
Ctrl-C in the terminal reaches them once, through the parent. On the first signal every
worker drains as a single server does (stops accepting, running turns finish within
``shutdown_grace``, voice sockets close with 1001) and exits 0; a second signal is
forwarded as SIGINT, which stops a worker at once; workers still alive after the drain
deadline are killed. A worker whose parent disappears (even by SIGKILL) sees its stdin
pipe close and drains too.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Literal

import attrs
import trio

if TYPE_CHECKING:
    from tac_actors.tac import TAC

__all__ = ["Parent", "RestartBudget", "RestartLimit", "SharedPort", "bind_shared",
           "default_share", "serve_worker", "worker_count", "worker_socket"]

log = logging.getLogger("tac_actors.workers")

#: set in a worker's environment: its id (1..N); its presence makes ``serve`` a worker
WORKER_ID = "TAC_WORKER_ID"
#: set in a worker's environment: a folder the parent made for the workers to find each
#: other's private address (see :mod:`tac_actors.server.worker_metrics`)
WORKER_DIR = "TAC_WORKER_DIR"
#: set in a worker's environment: ``reuseport:PORT`` or ``fd:N`` (see :func:`worker_socket`)
WORKER_SOCKET = "TAC_WORKER_SOCKET"
#: the default of ``--workers``
WORKERS_ENV = "TAC_WORKERS"
BACKLOG = 4096
#: a setup error (bad configuration): restarting the worker would not help
SETUP_ERROR = 2

Share = Literal["reuseport", "inherit"]


def default_share() -> Share:
    """``reuseport`` where the kernel balances connections over such sockets (Linux)."""
    if sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT"):
        return "reuseport"
    return "inherit"


def worker_count(value: str | int | None) -> int:
    """``--workers``: a number, or ``0``/``auto`` for one per usable core. Raises
    :class:`ValueError` for anything else."""
    raw = str(value if value is not None else os.environ.get(WORKERS_ENV, "1")).strip()
    if raw.lower() in ("0", "auto"):
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    try:
        count = int(raw)
    except ValueError:
        raise ValueError(f"--workers takes a number or 'auto', got {raw!r}") from None
    if count < 0:
        raise ValueError(f"--workers cannot be negative, got {count}")
    return count


@attrs.frozen
class RestartLimit:
    """At most ``restarts`` worker restarts within ``window`` seconds (over all workers)."""

    restarts: int = 5
    window: float = 60.0


class RestartBudget:
    """The restart intensity of :class:`RestartLimit`, sans IO: :meth:`allow` is asked
    for each restart with the time now."""

    def __init__(self, limit: RestartLimit) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Whether one more restart fits the limit (if so, it is counted)."""
        while self._times and now - self._times[0] >= self.limit.window:
            self._times.popleft()
        if len(self._times) >= self.limit.restarts:
            return False
        self._times.append(now)
        return True


def _new_socket(family: int, share: Share) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share == "reuseport":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def _address(host: str, port: int) -> tuple[int, tuple[str, int]]:
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return family, (str(address[0]), int(address[1]))


@attrs.define
class SharedPort:
    """The parent's socket on the shared port (see the module docstring)."""

    sock: socket.socket
    share: Share
    host: str

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def url(self) -> str:
        host = str(self.sock.getsockname()[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def worker_env(self) -> dict[str, str]:
        """What tells a worker how to get its listening socket."""
        if self.share == "reuseport":
            return {WORKER_SOCKET: f"reuseport:{self.port}"}
        return {WORKER_SOCKET: f"fd:{self.sock.fileno()}"}

    def pass_fds(self) -> tuple[int, ...]:
        return (self.sock.fileno(),) if self.share == "inherit" else ()

    def close(self) -> None:
        self.sock.close()


def bind_shared(host: str, port: int, share: Share) -> SharedPort:
    """Bind the port in the parent (which fails here, once, if it is taken). Only the
    first address ``host`` resolves to is served."""
    family, address = _address(host, port)
    sock = _new_socket(family, share)
    try:
        sock.bind(address)
        if share == "inherit":
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return SharedPort(sock, share, host)


def worker_socket(host: str, environ: Mapping[str, str] = os.environ) -> socket.socket:
    """In a worker: the bound socket to serve on, as the parent said (``reuseport:PORT``:
    bind a new one with ``SO_REUSEPORT``; ``fd:N``: the inherited listening socket)."""
    how, _, value = environ[WORKER_SOCKET].partition(":")
    if how == "fd":
        sock = socket.socket(fileno=int(value))
        sock.setblocking(False)
        return sock
    family, address = _address(host, int(value))
    sock = _new_socket(family, "reuseport")
    try:
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Parent:
    """Runs ``count`` workers (``command`` with ``WORKER_ID`` set) until a signal or the
    restart limit stops them (see the module docstring). :meth:`run` returns the exit
    status: 0 after a drain in which every worker exited cleanly, 1 when the restart
    limit was hit or a worker had to be killed, 2 when a worker could not start (a setup
    error, which a restart would repeat), 130 when a second signal forced the stop."""

    def __init__(self, command: Sequence[str], count: int, port: SharedPort, *,
                 limit: RestartLimit = RestartLimit(), drain_timeout: float = 30.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.count = count
        self.port = port
        self.budget = RestartBudget(limit)
        #: after the first signal, how long workers get before they are killed
        self.drain_timeout = drain_timeout
        self.env = dict(os.environ if env is None else env)
        self.env.pop(WORKERS_ENV, None)
        self.env.update(port.worker_env())
        self.processes: dict[int, trio.Process] = {}
        self.status = 0
        self._stopping = False
        self._forced = False
        self._outer: trio.Nursery

    async def run(self) -> int:
        with tempfile.TemporaryDirectory(prefix="tac-workers-") as folder:
            self.env[WORKER_DIR] = folder  # where workers find each other (worker_metrics)
            async with trio.open_nursery() as outer:
                self._outer = outer
                outer.start_soon(self._watch_signals)
                async with trio.open_nursery() as nursery:
                    for worker in range(1, self.count + 1):
                        nursery.start_soon(self._keep, worker)
                outer.cancel_scope.cancel()  # the signal watcher, a pending kill
        log.info("all workers stopped (status %d)", self.status)
        return self.status

    async def _start(self, worker: int) -> trio.Process:
        env = dict(self.env)
        env[WORKER_ID] = str(worker)
        process = await trio.lowlevel.open_process(
            self.command, env=env, stdin=subprocess.PIPE, pass_fds=self.port.pass_fds(),
            start_new_session=True)
        log.info("worker %d started (pid %d)", worker, process.pid)
        return process

    async def _keep(self, worker: int) -> None:
        """Run worker ``worker``, restarting it while the budget allows."""
        while not self._stopping:
            process = await self._start(worker)
            self.processes[worker] = process
            if self._stopping:  # a signal came while it was starting
                process.send_signal(signal.SIGTERM)
            try:
                code = await process.wait()
            finally:
                del self.processes[worker]
                if process.stdin is not None:
                    await process.stdin.aclose()
            if self._stopping:
                log.info("worker %d (pid %d) %s", worker, process.pid, _describe(code))
                if code != 0 and not self._forced:
                    self.status = max(self.status, 1)
                return
            log.warning("worker %d (pid %d) %s", worker, process.pid, _describe(code))
            if code == SETUP_ERROR:
                log.error("worker %d could not start (a setup error, see above): stopping "
                          "every worker", worker)
                self._stop(status=SETUP_ERROR)
                return
            if not self.budget.allow(trio.current_time()):
                limit = self.budget.limit
                log.error("workers died more than %d times in %g s: stopping every worker",
                          limit.restarts, limit.window)
                self._stop(status=1)
                return
            log.warning("restarting worker %d", worker)

    def _stop(self, *, status: int = 0, how: signal.Signals = signal.SIGTERM) -> None:
        """Begin the drain: ``how`` to every worker, a kill after ``drain_timeout``."""
        if self._stopping:
            return
        self._stopping = True
        self.status = max(self.status, status)
        self._signal_all(how)
        self._outer.start_soon(self._kill_after, self.drain_timeout)

    def _signal_all(self, how: signal.Signals) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(how)

    async def _kill_after(self, delay: float) -> None:
        await trio.sleep(delay)
        if self.processes:
            log.error("%d worker(s) still running %g s after the stop: killing them",
                      len(self.processes), delay)
            self.status = max(self.status, 1)
            self._signal_all(signal.SIGKILL)

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for received in signals:
                name = signal.Signals(received).name
                if not self._stopping:
                    log.info("%s: draining %d worker(s)", name, len(self.processes))
                    self._stop(how=signal.Signals(received))
                elif not self._forced:
                    log.warning("second %s: stopping the workers now", name)
                    self._forced = True
                    self.status = 130
                    self._signal_all(signal.SIGINT)


async def serve_worker(tac: TAC, host: str, sock: socket.socket, *, worker: str,
                       engine: Literal["fast", "hypercorn"] = "fast") -> None:
    """Worker ``worker``'s life: serve ``tac`` on ``sock`` until SIGINT/SIGTERM or until
    the parent is gone (stdin closed), then drain as :func:`serve` does. A second SIGINT
    during the drain raises :class:`KeyboardInterrupt` (the forced stop)."""
    from tac_actors.server.runner import serve

    stop = trio.Event()

    async def on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for received in signals:
                log.info("%s: draining", signal.Signals(received).name)
                stop.set()
                return  # the receiver closes: a second SIGINT interrupts

    async def on_parent_gone() -> None:
        stdin = trio.lowlevel.FdStream(os.dup(0))
        async with stdin:
            while await stdin.receive_some():
                pass
        log.warning("the parent process is gone: draining")
        stop.set()

    async with trio.open_nursery() as watchers:
        watchers.start_soon(on_signal)
        watchers.start_soon(on_parent_gone)
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, host, 0, engine=engine,
                                                shutdown_trigger=stop.wait, sock=sock))
            log.info("worker %s (pid %d) serving on %s", worker, os.getpid(), binds[0])
        watchers.cancel_scope.cancel()
