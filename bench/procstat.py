"""What /proc says about a process and the host: CPU seconds, peak RSS, machine facts.

Linux only; every reader returns None (or an empty value) where /proc does not answer, so
a figure is missing rather than wrong.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    start, end = text.find("("), text.rfind(")")
    return [text[start + 1 : end], *text[end + 2 :].split()]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of every thread of `pid` so far."""
    split = user_system_seconds(pid)
    return None if split is None else sum(split)


def user_system_seconds(pid: int) -> tuple[float, float] | None:
    """User and system CPU seconds of every thread of `pid` so far, apart."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # fields[0] is the name; fields[1] is field 3 (state), so utime (14) is fields[12].
    return int(fields[12]) / _TICKS, int(fields[13]) / _TICKS


def context_switches(pid: int) -> tuple[int, int] | None:
    """Voluntary (a thread waited: for a lock, a socket, the interpreter) and involuntary
    (the kernel took the core away) context switches of every thread of `pid` so far."""
    voluntary = involuntary = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:
            continue  # the thread ended meanwhile
        for line in lines:
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (a server with worker processes), from
    /proc/<pid>/task/<tid>/children; [pid] where /proc does not say."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of `pid` and its descendants (children that ended are not counted)."""
    values = [cpu_seconds(p) for p in descendants(pid)]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _status_kb(pid: int, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident set since it started or since `reset_peak_rss`."""
    kb = _status_kb(pid, "VmHWM")
    return kb / 1024 if kb is not None else None


def tree_peak_rss_mb(pid: int) -> float | None:
    """The sum of the peaks of `pid` and its descendants (each worker's own peak)."""
    values = [peak_rss_mb(p) for p in descendants(pid)]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return kb / 1024 if kb is not None else None


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, needs the right to write clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def reset_tree_peak_rss(pid: int) -> bool:
    results = [reset_peak_rss(p) for p in descendants(pid)]  # every one, even after a failure
    return all(results)


def host_cpu() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole host, from the first line of /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def command_cpu_seconds(command: str) -> float:
    """CPU seconds of every process whose name is `command` (e.g. the PostgreSQL backends);
    processes that ended since the last reading are not counted."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is not None and fields[0] == command:
            total += (int(fields[12]) + int(fields[13])) / _TICKS
    return total


def machine_info() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = None
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        mem_kb = int(match.group(1)) if match else None
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
