"""The server processes of a benchmark run, one per process:

- `echo`: the echo ceiling, a bare grpc.aio server (same SERVER_OPTIONS as the services)
  with one bytes-in/bytes-out unary method and nothing else;
- `insert`: the insert ceiling, the same bare server whose one method inserts and commits
  one row with SQLAlchemy Core through `libs.common.db.make_engine`, on a thread pool as
  `libs.common.service.ServiceKernel` does;
- `suite`: the real services, migrated and started by `services.suite.runtime` exactly as
  `backoffice serve` does (JSON logs to stderr, one line per call);
- `serve`: `backoffice serve --workers N` itself (N processes per service sharing each
  port with SO_REUSEPORT); `echo` with `workers` > 1 likewise runs N echo processes.

Run as `python -m bench.servers '<json spec>'`. When serving, the process prints one line
`BENCH-READY {"pid": ..., "addresses": {...}}` on stdout; SIGTERM stops it. With
BENCH_CPROFILE=<path> in the environment the event-loop thread runs under cProfile and
the stats are written there on exit (a fallback when py-spy is not installed).
"""

from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

READY = "BENCH-READY"
CEILING_SERVICE = "bench.Ceiling"
ECHO_METHOD = f"/{CEILING_SERVICE}/Echo"
INSERT_METHOD = f"/{CEILING_SERVICE}/Insert"
# As the services' default (Settings.db_pool_size): engine pool and worker threads.
CEILING_POOL_SIZE = 8


def _announce(addresses: dict[str, str]) -> None:
    print(f"{READY} {json.dumps({'pid': os.getpid(), 'addresses': addresses})}", flush=True)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve_bare(
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]], port: int = 0, reuse_port: bool = False
) -> grpc.aio.Server:
    from libs.common.server import SERVER_OPTIONS

    # As libs.common.server.create_server does for `backoffice serve --workers N`.
    options = [(k, 1 if k == "grpc.so_reuseport" and reuse_port else v) for k, v in SERVER_OPTIONS]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(CEILING_SERVICE, handlers),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if bound == 0:
        raise OSError("cannot listen on 127.0.0.1")
    await server.start()
    _announce({"ceiling": f"127.0.0.1:{bound}"})
    return server


def _start_echo_workers(count: int, port: int) -> list[subprocess.Popen[bytes]]:
    """Echo workers 1..count-1 on `port` (SO_REUSEPORT), each ready before this returns."""
    children = []
    for _ in range(1, count):
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.servers",
                json.dumps({"kind": "echo", "port": port, "reuse": True}),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        children.append(child)
        assert child.stdout is not None
        if not child.stdout.readline().decode().startswith(READY):
            raise OSError("an echo worker did not start")
    return children


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


async def serve_echo(workers: int = 1, port: int = 0, reuse: bool = False) -> None:
    async def echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    children: list[subprocess.Popen[bytes]] = []
    if workers > 1:
        port, reuse = free_port(), True
        children = _start_echo_workers(workers, port)
    try:
        server = await _serve_bare({"Echo": grpc.unary_unary_rpc_method_handler(echo)}, port, reuse)
        await _wait_for_signal()
        await server.stop(1)
    finally:
        _stop(children)


async def serve_insert(database_url: str) -> None:
    from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table

    from libs.common.db import make_engine

    engine = make_engine(database_url, pool_size=CEILING_POOL_SIZE)
    metadata = MetaData()
    rows = Table(
        "ceiling_rows",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    metadata.create_all(engine)
    executor = ThreadPoolExecutor(max_workers=CEILING_POOL_SIZE, thread_name_prefix="ceiling-db")

    def insert_one(row_id: str, payload: bytes) -> None:
        with engine.connect() as conn:
            # As the services' writes do: BEGIN IMMEDIATE on SQLite (ignored on PostgreSQL).
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                conn.execute(
                    rows.insert().values(id=row_id, payload=payload, created_at=dt.datetime.now(dt.UTC))
                )

    async def insert(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        row_id = str(uuid.uuid4())
        await asyncio.get_running_loop().run_in_executor(executor, insert_one, row_id, request)
        return row_id.encode()

    server = await _serve_bare({"Insert": grpc.unary_unary_rpc_method_handler(insert)})
    try:
        await _wait_for_signal()
        await server.stop(1)
    finally:
        executor.shutdown(wait=True)
        engine.dispose()


async def serve_suite(spec: dict[str, Any]) -> None:
    from libs.common.config import Settings
    from libs.common.logging import configure_logging
    from libs.common.server import run_until_signal
    from services.suite.runtime import migrate, start_suite

    overrides: dict[str, Any] = {"data_dir": Path(spec["data_dir"]), "shutdown_grace_seconds": 5.0}
    if spec.get("database_url"):
        overrides["database_url"] = spec["database_url"]
    if spec.get("app_role_prefix"):
        overrides["app_role_prefix"] = spec["app_role_prefix"]
    settings = Settings(**overrides)
    # As `backoffice serve` does in production: JSON lines on stderr (a file here).
    configure_logging("json", settings.log_level)
    migrate(settings)
    servers = await start_suite(settings, ephemeral_ports=True)
    _announce({s.app.name: s.address for s in servers})
    await run_until_signal(servers, settings.shutdown_grace_seconds)


_SERVING = re.compile(r'"event":\s*"serving"')


def serve_cli(spec: dict[str, Any]) -> None:
    """`backoffice serve --workers N` itself, for every service (no gateway), on free ports;
    its JSON log lines pass through to this process's stderr. Ready when every worker of
    every service has logged that it is serving; SIGTERM is passed on."""
    from services.suite.registry import SERVICES

    workers = int(spec["workers"])
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "BACKOFFICE_DATA_DIR": spec["data_dir"],
        "BACKOFFICE_PORTS": json.dumps(ports),
        "BACKOFFICE_LOG_FORMAT": "json",
        "BACKOFFICE_SHUTDOWN_GRACE_SECONDS": "5",
    }
    if spec.get("database_url"):
        env["BACKOFFICE_DATABASE_URL"] = spec["database_url"]
    if spec.get("app_role_prefix"):
        env["BACKOFFICE_APP_ROLE_PREFIX"] = spec["app_role_prefix"]
    command = [sys.executable, "-c", "from services.suite.cli import main; main()", "serve"]
    command += ["--workers", str(workers), *(f"--service={name}" for name in SERVICES)]
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=subprocess.PIPE
    )
    serving = threading.Semaphore(0)

    def copy_log() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            sys.stderr.write(raw.decode(errors="replace"))
            if _SERVING.search(raw.decode(errors="replace")):
                serving.release()
        sys.stderr.flush()

    threading.Thread(target=copy_log, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for _ in range(workers * len(SERVICES)):
            if not serving.acquire(timeout=120) or proc.poll() is not None:
                raise SystemExit("backoffice serve did not start every worker")
        _announce({name: f"127.0.0.1:{port}" for name, port in ports.items()})
        while not stop.is_set() and proc.poll() is None:
            stop.wait(0.5)
    finally:
        _stop([proc])


def main(argv: list[str]) -> None:
    spec: dict[str, Any] = json.loads(argv[0])
    kind = spec["kind"]
    profile_path = os.environ.get("BENCH_CPROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        if kind == "echo":
            asyncio.run(serve_echo(spec.get("workers", 1), spec.get("port", 0), spec.get("reuse", False)))
        elif kind == "serve":
            serve_cli(spec)
        elif kind == "insert":
            asyncio.run(serve_insert(spec["database_url"]))
        elif kind == "suite":
            asyncio.run(serve_suite(spec))
        else:
            raise SystemExit(f"unknown server kind {kind!r}")
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)


if __name__ == "__main__":
    main(sys.argv[1:])
