"""The load generator: a process of its own that drives one scenario with grpc.aio.

Run as `python -m bench.loadgen <spec.json>`. Two modes:

- `setup`: run the scenario's setup once and write its fixture;
- `run`: connect, print `READY`, read the common start time (CLOCK_MONOTONIC, shared by
  every process on the host) from stdin, then keep `concurrency` calls in flight (or, with
  `rate`, start calls on a fixed schedule) until start + warm-up + duration. Figures count
  the calls that completed inside the measured window [start + warm-up, end).

The client with `measure: true` also reads, at the window's edges, the server's CPU time,
the host's CPU, and (on PostgreSQL) the database processes' CPU, and resets and reads the
server's peak RSS, so that every figure covers the same window. Everything is bounded:
time (the window plus a drain timeout), calls (`max_calls` per worker), and each call
(a deadline).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench import procstat
from bench.scenarios import REGISTRY, Clients

MAX_CALLS_PER_WORKER = 10_000_000
DRAIN_SECONDS = 30.0
CONNECT_SECONDS = 15.0


@dataclass
class Tally:
    latencies_us: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)
    calls_total: int = 0
    late_starts: int = 0
    # Calls that ended after the window (while draining): a call slower than the whole
    # window still says how long it took.
    after_window_us: list[int] = field(default_factory=list)

    def error(self, code: str, message: str, in_window: bool) -> None:
        if in_window:
            self.errors[code] = self.errors.get(code, 0) + 1
        self.error_samples.setdefault(code, message[:300])


@dataclass
class Readings:
    """Counters read at one edge of the window."""

    at: float
    client_cpu: float
    server_cpu: float | None = None
    host: tuple[int, int] | None = None
    db_cpu: float | None = None

    @classmethod
    def take(cls, spec: dict[str, Any]) -> Readings:
        times = os.times()
        if not spec.get("measure"):
            return cls(at=time.monotonic(), client_cpu=times.user + times.system)
        pid = spec.get("server_pid")
        db = spec.get("db_process")
        return cls(
            at=time.monotonic(),
            client_cpu=times.user + times.system,
            server_cpu=procstat.tree_cpu_seconds(pid) if pid else None,
            host=procstat.host_cpu(),
            db_cpu=procstat.command_cpu_seconds(db) if db else None,
        )


def _bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def clients_for(spec: dict[str, Any], *, own_connection: bool = False) -> Clients:
    """Channels to every server (on this machine only) and the spec's callers' credentials;
    with `own_connection`, channels that share no connection with the process's others (so
    that several of them spread over worker processes)."""
    for address in spec["addresses"].values():
        host = address.rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            raise SystemExit(f"refusing to send load to {address}: only the loopback is allowed")
    options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
    channels = {
        name: grpc.aio.insecure_channel(address, options=options)
        for name, address in spec["addresses"].items()
    }
    return Clients(
        channels,
        _bearer(spec.get("token")),
        callers={name: _bearer(token) for name, token in (spec.get("tokens") or {}).items()},
        process_index=spec.get("process_index", 0),
        processes=spec.get("processes", 1),
        planned_seconds=spec.get("warmup", 0.0) + spec.get("duration", 0.0),
    )


async def _connect(clients: Clients) -> None:
    await asyncio.gather(
        *(asyncio.wait_for(c.channel_ready(), CONNECT_SECONDS) for c in clients.channels.values())
    )


async def _setup(spec: dict[str, Any]) -> dict[str, Any]:
    scenario = REGISTRY[spec["scenario"]]
    clients = clients_for(spec)
    try:
        await _connect(clients)
        fixture = await scenario.setup(clients) if scenario.setup else None
    finally:
        for c in clients.channels.values():
            await c.close()
    return {"fixture": fixture}


async def _read_start_time() -> float:
    print("READY", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line.strip():
        raise SystemExit("no start time on stdin")
    return float(line)


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    scenario = REGISTRY[spec["scenario"]]
    connections = max(1, int(spec.get("connections") or 1))
    groups = [clients_for(spec, own_connection=connections > 1) for _ in range(connections)]
    concurrency: int = spec["concurrency"]
    rate: float | None = spec.get("rate")
    seed: int = spec.get("seed", 1)
    calls = [
        scenario.make_call(groups[i % connections], spec.get("fixture"), random.Random(seed * 1000 + i))
        for i in range(concurrency)
    ]
    await asyncio.gather(*(_connect(g) for g in groups))
    start = await _read_start_time()
    window_start = start + spec["warmup"]
    end = window_start + spec["duration"]
    measure = bool(spec.get("measure"))
    pid = spec.get("server_pid")
    tally = Tally()
    readings: dict[str, Readings] = {}
    slots = itertools.count()

    async def edges() -> None:
        if measure and pid:
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            procstat.reset_tree_peak_rss(pid)
        await asyncio.sleep(max(0.0, window_start - time.monotonic()))
        readings["start"] = Readings.take(spec)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        readings["end"] = Readings.take(spec)

    async def worker(call_index: int) -> None:
        call = calls[call_index]
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        for _ in range(MAX_CALLS_PER_WORKER):
            if rate:
                scheduled = start + next(slots) / rate
                if scheduled >= end:
                    return
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.001:
                    tally.late_starts += 1
            began = time.monotonic()
            if began >= end:
                return
            code, message = "OK", ""
            try:
                await call()
            except grpc.aio.AioRpcError as err:
                code, message = err.code().name, err.details() or ""
            except Exception as err:  # a failed check in the scenario, or a client bug
                code, message = f"CLIENT_{type(err).__name__}", str(err)
            finished = time.monotonic()
            tally.calls_total += 1
            in_window = window_start <= finished < end
            if code != "OK":
                tally.error(code, message, in_window)
            if in_window:
                tally.latencies_us.append(round((finished - began) * 1e6))
            elif finished >= end and code == "OK":
                tally.after_window_us.append(round((finished - began) * 1e6))

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    edge_task = asyncio.create_task(edges())
    budget = end - time.monotonic() + DRAIN_SECONDS
    done, pending = await asyncio.wait(tasks, timeout=max(budget, 1.0))
    for task in pending:
        task.cancel()
    await asyncio.wait_for(edge_task, timeout=max(end - time.monotonic(), 0.0) + 5.0)
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    for g in groups:
        for c in g.channels.values():
            await c.close(grace=None)

    result: dict[str, Any] = {
        "latencies_us": tally.latencies_us,
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "calls_total": tally.calls_total,
        "late_starts": tally.late_starts,
        "after_window_us": tally.after_window_us,
        "stuck_calls": len(pending),
        "window": [window_start, end],
    }
    a, b = readings["start"], readings["end"]
    result["measured_seconds"] = b.at - a.at
    result["client_cpu_s"] = b.client_cpu - a.client_cpu
    if measure:
        if a.server_cpu is not None and b.server_cpu is not None:
            result["server_cpu_s"] = b.server_cpu - a.server_cpu
        if a.host and b.host and b.host[1] > a.host[1]:
            result["host_busy_fraction"] = (b.host[0] - a.host[0]) / (b.host[1] - a.host[1])
        if a.db_cpu is not None and b.db_cpu is not None:
            result["db_cpu_s"] = b.db_cpu - a.db_cpu
        if pid:
            result["server_peak_rss_mb"] = procstat.tree_peak_rss_mb(pid)
    return result


def main(argv: list[str]) -> None:
    spec: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    out = Path(spec["result_path"])
    try:
        result = asyncio.run(_setup(spec) if spec["mode"] == "setup" else _run(spec))
    except BaseException as err:
        out.write_text(
            json.dumps({"failed": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()})
        )
        raise
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
