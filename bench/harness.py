"""Processes of a run: server processes, load-generator processes, and the databases
(SQLite files in a temporary directory; on PostgreSQL, databases and roles created for the
run and dropped at its end, as tests/conftest.py does)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
READY_SECONDS = 120.0  # PostgreSQL migrations included
SETUP_SECONDS = 300.0


class HarnessError(RuntimeError):
    """A process of the run failed: the message says which and where its log is."""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: the repo importable, no BACKOFFICE_* overrides
    (the harness sets what the servers need explicitly), unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKOFFICE_")}
    paths = [str(ROOT), str(ROOT / "gen" / "python")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _read_line(stream: IO[bytes], deadline: float) -> str | None:
    """One line from a child's stdout, or None at EOF; HarnessError past the deadline."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not sel.select(remaining):
            raise TimeoutError
    line = stream.readline()
    return line.decode(errors="replace").strip() if line else None


class ServerProcess:
    """One server (`python -m bench.servers`), its stderr in a log file."""

    def __init__(self, spec: dict[str, Any], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.kind: str = spec["kind"]
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", json.dumps(spec)],
            cwd=ROOT,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.pid = self.proc.pid
        self.addresses: dict[str, str] = {}

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        from bench.servers import READY

        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            while (line := _read_line(self.proc.stdout, deadline)) is not None:
                if line.startswith(READY):
                    info = json.loads(line[len(READY) :])
                    self.addresses = info["addresses"]
                    return
        except TimeoutError:
            pass
        self.stop()
        raise HarnessError(
            f"the {self.kind} server did not start (log {self.log_path}):\n{_tail(self.log_path)}"
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@contextlib.contextmanager
def serving(
    spec: dict[str, Any], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(spec, log_path, env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@dataclass
class LoadSpec:
    """One timed run of one scenario against one server."""

    scenario: str
    addresses: dict[str, str]
    concurrency: int
    duration: float
    warmup: float
    clients: int = 1
    rate: float | None = None
    token: str | None = None
    fixture: Any = None
    server_pid: int | None = None
    db_process: str | None = None
    seed: int = 1
    # Tokens of the scenario's other callers (`Scenario.identities`), by name.
    tokens: dict[str, str] = field(default_factory=dict)
    # Connections per load-generator process (more than one spreads them over workers).
    connections: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_setup(spec: LoadSpec, work: Path) -> Any:
    """Run the scenario's setup once in a load-generator process; its fixture."""
    spec_path = work / f"setup-{spec.scenario}-{secrets.token_hex(3)}.json"
    result_path = spec_path.with_suffix(".result.json")
    log_path = spec_path.with_suffix(".log")
    body = {
        "mode": "setup",
        "scenario": spec.scenario,
        "addresses": spec.addresses,
        "token": spec.token,
        "tokens": spec.tokens,
        # What the setup prepares for (e.g. a pool of drafts big enough for the run).
        "warmup": spec.warmup,
        "duration": spec.duration,
        "concurrency": spec.concurrency,
        "processes": spec.clients,
        "result_path": str(result_path),
        **spec.extra,
    }
    spec_path.write_text(json.dumps(body))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", str(spec_path)],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            code = proc.wait(SETUP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            code = -1
    if code != 0 or not result_path.exists():
        raise HarnessError(f"setup of {spec.scenario} failed (log {log_path}):\n{_tail(log_path)}")
    return json.loads(result_path.read_text())["fixture"]


def run_load(spec: LoadSpec, work: Path) -> list[dict[str, Any]]:
    """Start `spec.clients` load-generator processes, release them at one start time,
    and return each one's raw result (the first also measured the server and the host)."""
    procs: list[tuple[subprocess.Popen[bytes], Path, Path, IO[bytes]]] = []
    concurrencies = [c for c in _split(spec.concurrency, spec.clients) if c > 0]
    tag = f"{spec.scenario}-{secrets.token_hex(3)}"
    try:
        for i, concurrency in enumerate(concurrencies):
            spec_path = work / f"load-{tag}-{i}.json"
            result_path = spec_path.with_suffix(".result.json")
            log_path = spec_path.with_suffix(".log")
            body = {
                "mode": "run",
                "scenario": spec.scenario,
                "addresses": spec.addresses,
                "token": spec.token,
                "tokens": spec.tokens,
                "connections": spec.connections,
                "process_index": i,
                "processes": len(concurrencies),
                "fixture": spec.fixture,
                "concurrency": concurrency,
                "rate": spec.rate * concurrency / spec.concurrency if spec.rate else None,
                "warmup": spec.warmup,
                "duration": spec.duration,
                "measure": i == 0,
                "server_pid": spec.server_pid,
                "db_process": spec.db_process,
                "seed": spec.seed * 100 + i,
                "result_path": str(result_path),
                **spec.extra,
            }
            spec_path.write_text(json.dumps(body))
            log = log_path.open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen", str(spec_path)],
                cwd=ROOT,
                env=child_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
            procs.append((proc, result_path, log_path, log))
        deadline = time.monotonic() + 60.0
        for proc, _, log_path, _ in procs:
            assert proc.stdout is not None
            try:
                line = _read_line(proc.stdout, deadline)
            except TimeoutError:
                line = None
            if line != "READY":
                raise HarnessError(
                    f"a load generator of {spec.scenario} did not get ready (log {log_path}):\n"
                    f"{_tail(log_path)}"
                )
        start = time.monotonic() + 0.2
        for proc, *_ in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start!r}\n".encode())
            proc.stdin.close()
        results = []
        budget = spec.warmup + spec.duration + 60.0
        for proc, result_path, log_path, _ in procs:
            try:
                code = proc.wait(max(start + budget - time.monotonic(), 1.0))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = -1
            if code != 0 or not result_path.exists():
                raise HarnessError(
                    f"a load generator of {spec.scenario} failed (log {log_path}):\n{_tail(log_path)}"
                )
            results.append(json.loads(result_path.read_text()))
        return results
    finally:
        for proc, _, _, log_file in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
            log_file.close()


# ---------------------------------------------------------------------------------------
# Backends.


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise HarnessError(f"the benchmark only talks to this machine; {host!r} is not the loopback")


def postgres_unreachable(admin_url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"PostgreSQL at {admin_url} is unreachable ({str(err).strip().splitlines()[0]})"
    return None


def postgres_version(admin_url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


@dataclass
class Backend:
    """Where one backend's data lives for the run, and how to reach it."""

    name: str
    work: Path
    suite_database_url: str | None = None
    ceiling_database_url: str = ""
    app_role_prefix: str | None = None
    db_process: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    def suite_spec(self, workers: int = 1) -> dict[str, Any]:
        """The real services: in one process as `start_suite`, or with `workers` > 1 through
        `backoffice serve --workers N` itself (worker processes sharing each port)."""
        return {
            "kind": "suite" if workers == 1 else "serve",
            "workers": workers,
            "data_dir": str(self.data_dir),
            "database_url": self.suite_database_url,
            "app_role_prefix": self.app_role_prefix,
        }

    def service_database_url(self, service: str) -> str:
        """Where a service keeps its data, for bulk seeding as the owner (PostgreSQL: the
        run's database, the service's schema; SQLite: its file)."""
        if self.suite_database_url:
            return self.suite_database_url
        return f"sqlite:///{self.data_dir / f'{service}.db'}"

    def insert_spec(self) -> dict[str, Any]:
        return {"kind": "insert", "database_url": self.ceiling_database_url}


def _pg_url(admin_url: str, dbname: str) -> str:
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{dbname}".replace("postgresql://", "postgresql+psycopg://", 1)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


@contextlib.contextmanager
def backend(name: str, work_root: Path, admin_url: str) -> Iterator[Backend]:
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work_root))
    (work / "data").mkdir()
    if name == "sqlite":
        yield Backend(name, work, ceiling_database_url=f"sqlite:///{work / 'ceiling.db'}")
        return
    import psycopg
    from psycopg import sql

    check_loopback(admin_url)
    prefix = f"bo_bench_{secrets.token_hex(4)}"
    suite_db, ceiling_db = prefix, f"{prefix}_ceiling"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            for db in (suite_db, ceiling_db):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        yield Backend(
            name,
            work,
            suite_database_url=_pg_url(admin_url, suite_db),
            ceiling_database_url=_pg_url(admin_url, ceiling_db),
            app_role_prefix=f"{prefix}_app",
            db_process="postgres",
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            pattern = _like_prefix(prefix)
            names = [
                str(r[0])
                for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))
            ]
            for db in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            roles = [
                str(r[0])
                for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (pattern,))
            ]
            for role in roles:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@contextlib.contextmanager
def work_directory(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bo-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"logs and data kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def percentile(sorted_values: list[int], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])
