"""The server processes of a benchmark run, one per process:

- `echo`: the echo ceiling, a bare grpc.aio server (same SERVER_OPTIONS as the services)
  with one bytes-in/bytes-out unary method and nothing else;
- `insert`: the insert ceiling, the same bare server whose one method inserts and commits
  one row with SQLAlchemy Core through `libs.common.db.make_engine`, on a thread pool as
  `libs.common.service.ServiceKernel` does;
- `suite`: the real services, migrated and started by `services.suite.runtime` exactly as
  `backoffice serve` does (JSON logs to stderr, one line per call).

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
import signal
import sys
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


async def _serve_bare(handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> grpc.aio.Server:
    from libs.common.server import SERVER_OPTIONS

    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(CEILING_SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise OSError("cannot listen on 127.0.0.1")
    await server.start()
    _announce({"ceiling": f"127.0.0.1:{port}"})
    return server


async def serve_echo() -> None:
    async def echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    server = await _serve_bare({"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    await _wait_for_signal()
    await server.stop(1)


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


def main(argv: list[str]) -> None:
    spec: dict[str, Any] = json.loads(argv[0])
    kind = spec["kind"]
    profile_path = os.environ.get("BENCH_CPROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        if kind == "echo":
            asyncio.run(serve_echo())
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
