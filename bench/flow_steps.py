"""Where a purchase flow's server time goes, step by step: flows run one at a time against
the real suite, and the server's CPU is read before and after each RPC.

    python bench/flow_steps.py [--backend sqlite|postgres|both] [--flows 300] [--warmup 30]
                               [--in-flight 1,8,32]

The suite is started as bench/run.py starts it (its own process, migrated into a temporary
directory or a temporary PostgreSQL database dropped at the end), set up with the
`procurement.purchase_flow` scenario's fixture and driven with that scenario's own flow
(bench/workloads.py). A step's figure is the server process's CPU (every thread, read from
/proc in clock ticks, so it takes a few hundred flows to settle) from sending the RPC to
its answer, averaged over the flows. With one flow at a time, what the server does for an
RPC after answering it (nothing, today: the issuing call delivers its own event) would
fall into the next step. PostgreSQL's own CPU is not counted (bench/run.py's "db CPU").

With `--in-flight`, as many flows again run with N at a time, and each N's line gives the
server's user and system CPU a flow and its threads' context switches a flow: what
overlapping flows cost beyond the flows themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
for _path in (ROOT / "gen" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import harness, procstat  # noqa: E402
from bench.loadgen import clients_for  # noqa: E402
from bench.run import DEFAULT_ADMIN_URL, scenario_tokens  # noqa: E402
from bench.scenarios import REGISTRY  # noqa: E402
from bench.workloads import purchase_flow  # noqa: E402

SCENARIO = "procurement.purchase_flow"


def _cpu(pid: int) -> float:
    seconds = procstat.tree_cpu_seconds(pid)
    if seconds is None:
        raise SystemExit("the server's CPU is read from /proc, which this machine does not have")
    return seconds


def _server_counters(pid: int) -> tuple[float, float, int, int]:
    """User and system CPU seconds and voluntary and involuntary context switches of the
    server and its worker processes."""
    user = system = 0.0
    voluntary = involuntary = 0
    for process in procstat.descendants(pid):
        split, switches = procstat.user_system_seconds(process), procstat.context_switches(process)
        if split is None or switches is None:
            raise SystemExit("the server's CPU is read from /proc, which this machine does not have")
        user, system = user + split[0], system + split[1]
        voluntary, involuntary = voluntary + switches[0], involuntary + switches[1]
    return user, system, voluntary, involuntary


async def _under_load(flow: Callable[[], Awaitable[Any]], pid: int, flows: int, in_flight: int) -> None:
    """`flows` flows with `in_flight` at a time: what the server spends on one when flows
    overlap (its threads then wait on each other: the interpreter's lock, the database)."""
    left = flows

    async def one_after_another() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await flow()

    before, started = _server_counters(pid), time.monotonic()
    await asyncio.gather(*(one_after_another() for _ in range(in_flight)))
    after, wall = _server_counters(pid), time.monotonic() - started
    user, system, voluntary, involuntary = (
        1000 * (a - b) / flows for a, b in zip(after, before, strict=True)
    )
    print(
        f"  {in_flight:>3} in flight: {flows / wall:6.1f} flows/s; a flow {user:6.2f} ms user + "
        f"{system:5.2f} ms system CPU, {voluntary / 1000:5.0f} voluntary and {involuntary / 1000:4.0f} "
        "involuntary context switches",
        flush=True,
    )


async def _measure(
    addresses: dict[str, str],
    tokens: dict[str, str],
    pid: int,
    flows: int,
    warmup: int,
    in_flight: list[int],
) -> None:
    others = {name: token for name, token in tokens.items() if name}
    clients = clients_for({"addresses": addresses, "token": tokens[""], "tokens": others})
    cpu: dict[str, float] = {}

    async def step(name: str, rpc: Awaitable[Any]) -> Any:
        before = _cpu(pid)
        answer = await rpc
        cpu[name] = cpu.get(name, 0.0) + _cpu(pid) - before
        return answer

    try:
        setup = REGISTRY[SCENARIO].setup
        assert setup is not None
        fixture = await setup(clients)
        flow = purchase_flow(clients, fixture, random.Random(1), step)
        for _ in range(warmup):
            await flow()
        cpu.clear()
        started, before = time.monotonic(), _cpu(pid)
        for _ in range(flows):
            await flow()
        total, wall = _cpu(pid) - before, time.monotonic() - started
        for name, seconds in cpu.items():
            print(f"  {name:<24} {1000 * seconds / flows:8.2f} ms CPU", flush=True)
        whole = f"{1000 * total / flows:8.2f} ms CPU, {1000 * wall / flows:.1f} ms wall"
        print(f"  {'the flow':<24} {whole}", flush=True)
        if in_flight:
            unmeasured = purchase_flow(clients, fixture, random.Random(2), _unmeasured)
            for n in in_flight:
                await _under_load(unmeasured, pid, flows, n)
    finally:
        for channel in clients.channels.values():
            await channel.close()


async def _unmeasured(name: str, rpc: Awaitable[Any]) -> Any:
    return await rpc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/flow_steps.py", description=__doc__)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--flows", type=int, default=300, help="flows measured")
    p.add_argument("--warmup", type=int, default=30, help="flows run first and not counted")
    p.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    p.add_argument(
        "--in-flight",
        default="",
        help="then as many flows again with N at a time, for each N of a comma-separated list "
        "(e.g. 1,8,32): the server's user and system CPU and context switches a flow",
    )
    args = p.parse_args(argv)
    try:
        in_flight = [int(n) for n in args.in_flight.split(",") if n.strip()]
    except ValueError:
        p.error("--in-flight takes whole numbers separated by commas, e.g. 1,8,32")
    if args.flows < 1 or args.warmup < 0 or any(not 1 <= n <= 256 for n in in_flight):
        p.error("--flows must be at least 1, --warmup at least 0 and --in-flight from 1 to 256")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in backends:
        harness.check_loopback(args.postgres_admin_url)
        reason = harness.postgres_unreachable(args.postgres_admin_url)
        if reason:
            print(reason, file=sys.stderr)
            return 2
    with harness.work_directory(keep=False) as work:
        for name in backends:
            with harness.backend(name, work, args.postgres_admin_url) as backend:
                tokens = scenario_tokens(REGISTRY[SCENARIO], backend)
                with harness.serving(backend.suite_spec(), work / f"suite-{name}.log") as server:
                    print(f"{name}: server CPU per step, {args.flows} flows one at a time", flush=True)
                    asyncio.run(
                        _measure(server.addresses, tokens, server.pid, args.flows, args.warmup, in_flight)
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
