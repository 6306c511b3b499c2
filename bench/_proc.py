"""Readers for /proc (server CPU time and resident memory) and machine facts."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import sys
from typing import Any

CLOCK_TICKS: int = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """Return utime + stime of process ``pid`` in clock ticks (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # The command name (field 2) may contain spaces: split after its closing paren.
    fields = data[data.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) process ``pid`` has used, in seconds."""
    return cpu_ticks(pid) / CLOCK_TICKS


def sched_cpu_seconds(pid: int) -> float:
    """Return the on-CPU time of all threads of ``pid`` in seconds, at ns resolution.

    Sums the first field of ``/proc/PID/task/*/schedstat``; finer than the clock ticks
    of ``/proc/PID/stat`` (10 ms), which matters for short runs. Threads that exited
    between two readings are missing from the second.
    """
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def rss_kb(pid: int) -> int:
    """Return VmRSS of process ``pid`` in KB (``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def own_cpu_seconds() -> float:
    """Return this process's CPU time (user + system) in seconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return int(soft)


def now_iso() -> str:
    """Return the current local time as an ISO 8601 string with offset, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def machine_info() -> dict[str, Any]:
    """Return facts about this machine worth keeping next to a measurement."""
    cpu_model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = None
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_kb": mem_kb,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
