"""Profiling a server during one scenario with py-spy (pausing it briefly for each sample,
so that every stack is whole), and summarising the collapsed stacks it records.

When py-spy is not installed the harness falls back to cProfile of the server's event-loop
thread (BENCH_CPROFILE, see bench/servers.py), which cannot see the database threads.
"""

from __future__ import annotations

import pstats
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")

# Self time by the package of the innermost frame: the first pattern that matches wins.
CATEGORIES: list[tuple[str, str]] = [
    ("SQLAlchemy", r"(^|/)sqlalchemy/"),
    ("psycopg (PostgreSQL driver)", r"(^|/)psycopg"),
    ("sqlite3 (driver)", r"(^|/)sqlite3/"),
    ("gRPC (Python and Cython layers)", r"(^|/)grpc"),
    ("protobuf", r"(^|/)google/protobuf/"),
    ("structlog (logging)", r"(^|/)structlog/"),
    ("JWT verification (PyJWT, cryptography)", r"(^|/)(jwt|cryptography)/"),
    ("asyncio", r"(^|/)asyncio/"),
    ("thread pool (concurrent.futures, threading, queue)", r"(^|/)(concurrent/futures|threading|queue)\.?"),
    ("json", r"(^|/)json/"),
    ("libs/common (kernel)", r"(^|/)libs/common/"),
    ("services (servicers, domain, repositories)", r"(^|/)services/"),
    ("backoffice generated code", r"(^|/)backoffice/"),
]


# What part of a call a sample belongs to. First the operations, in this order: a sample
# with a matching frame anywhere in its stack belongs to the first that matches...
OPERATIONS: list[tuple[str, str]] = [
    ("token verification (JWT)", r"^TokenVerifier\.verify "),
    ("logging (structlog)", r"\(structlog/"),
    ("audit record", r"^AuditLog\.record "),
    ("idempotency (lookup, fingerprint, record)", r"^(IdempotencyStore\.|request_hash |check_request_id )"),
    ("commit", r"^Session\.commit "),
    ("session open/close (BEGIN, set_config, rollback)", r"^Database\.session "),
    ("response mapping (domain -> protobuf)", r"_to_proto "),
    (
        "use case and SQL (repository, ORM, driver)",
        r"^ServiceKernel\.(read|write)\.<locals>\.(work|attempt) ",
    ),
    (
        "access policy (scope)",
        r"^(AccessPolicy\.|ServiceKernel\.(scope_in|scope_of|require_in|scope_everywhere) )",
    ),
    ("paging and filters", r"\(libs/common/(paging|filtering)\.py\)"),
]
# ...then the others by where they are: the innermost frame that matches decides.
PLACES: list[tuple[str, str]] = [
    ("servicer (names, mapping requests)", r"\(services/"),
    ("interceptors (plumbing)", r"\(libs/common/interceptors\.py\)"),
    ("kernel (other)", r"\(libs/common/"),
    (
        "thread hand-off (executor, futures, queues)",
        r"\((concurrent/futures/|asyncio/futures\.py|threading\.py|queue\.py)",
    ),
    ("gRPC (Python layer)", r"\(grpc/"),
    ("asyncio event loop", r"\((asyncio/|selectors\.py)"),
]
EVENT_LOOP_C = "C code run by the event loop (gRPC Cython and core, asyncio tasks)"


def _phase(frames: list[str]) -> str:
    for name, pattern in OPERATIONS:
        if any(re.search(pattern, frame) for frame in frames):
            return name
    if frames[-1].startswith("Handle._run "):
        return EVENT_LOOP_C
    for frame in reversed(frames):
        for name, pattern in PLACES:
            if re.search(pattern, frame):
                return name
    return "other"


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


def start_py_spy(
    pid: int, seconds: float, output: Path, log: Path, *, gil_only: bool = False
) -> subprocess.Popen[bytes] | None:
    """Sample `pid` for `seconds`: every running thread, or with `gil_only` only the thread
    holding the GIL (where the interpreter's one core goes)."""
    exe = py_spy()
    if exe is None:
        return None
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                "100",
                "--format",
                "raw",
                "--nolineno",
                "--threads",
                "--output",
                str(output),
                *(["--gil"] if gil_only else []),
            ],
            stdout=out,
            stderr=out,
        )


def _parse(line: str) -> tuple[list[str], int] | None:
    stack, _, count = line.rpartition(" ")
    if not stack or not count.isdigit():
        return None
    return stack.split(";"), int(count)


def _category(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match.group("file") if match else frame
    for name, pattern in CATEGORIES:
        if re.search(pattern, path):
            return name
    return "other Python (stdlib, pydantic, ...)"


def _thread_kind(thread: str, frames: list[str]) -> str:
    """py-spy --threads labels each stack `thread (tid): name`; the name says what it is
    (the frames are a fallback: in non-blocking mode some stacks come back truncated)."""
    name = thread.partition(": ")[2]
    text = ";".join(frames)
    if name.endswith(tuple(f"-db_{i}" for i in range(100))) or "(concurrent/futures/thread.py)" in text:
        return "database threads (ThreadPoolExecutor)"
    if name == "MainThread" or "run_forever" in text:
        return "event-loop thread"
    return f"other threads ({name or 'unnamed'})"


@dataclass
class ProfileSummary:
    samples: int = 0
    by_thread: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_phase: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)

    def as_json(self, top: int = 30) -> dict[str, Any]:
        def share(counter: Counter[str], n: int | None = None) -> list[dict[str, Any]]:
            return [
                {"name": k, "samples": v, "pct": round(100 * v / self.samples, 1)}
                for k, v in counter.most_common(n)
            ]

        return {
            "samples": self.samples,
            "by_thread": share(self.by_thread),
            "by_phase": share(self.by_phase),
            "self_by_category": share(self.by_category),
            "inclusive_top": share(self.inclusive, top),
            "self_top": share(self.self_time, top),
        }

    def text(self, top: int = 20) -> str:
        data = self.as_json(top)
        out = [f"{self.samples} samples"]
        for title, key in (
            ("by thread", "by_thread"),
            ("by part of the call", "by_phase"),
            ("self time by package", "self_by_category"),
            ("inclusive (function and what it calls)", "inclusive_top"),
            ("self time by function", "self_top"),
        ):
            out.append(f"  {title}:")
            out += [f"    {row['pct']:5.1f}%  {row['name']}" for row in data[key]]
        return "\n".join(out)


def summarise_raw(path: Path) -> ProfileSummary:
    """Summarise py-spy's raw (collapsed stacks) output."""
    summary = ProfileSummary()
    for line in path.read_text(errors="replace").splitlines():
        parsed = _parse(line.strip())
        if parsed is None:
            continue
        frames, count = parsed
        thread = next((f for f in frames[:2] if f.startswith("thread ")), "")
        frames = [f for f in frames if not f.startswith(("thread ", "process "))]
        if not frames:
            continue
        summary.samples += count
        summary.by_thread[_thread_kind(thread, frames)] += count
        summary.by_category[_category(frames[-1])] += count
        summary.by_phase[_phase(frames)] += count
        summary.self_time[frames[-1]] += count
        for frame in set(frames):
            summary.inclusive[frame] += count
    return summary


def summarise_cprofile(path: Path, top: int = 25) -> str:
    stats = pstats.Stats(str(path))
    lines: list[str] = []

    class _Sink:
        def write(self, text: str) -> None:
            lines.append(text)

    stats.stream = _Sink()  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(top)
    return "".join(lines)
