"""Where a purchase flow's server time goes, step by step: flows run one at a time against
the real suite, and the server's CPU is read before and after each RPC.

    python bench/flow_steps.py [--backend sqlite|postgres|both] [--flows 300] [--warmup 30]

The suite is started as bench/run.py starts it (its own process, migrated into a temporary
directory or a temporary PostgreSQL database dropped at the end), set up with the
`procurement.purchase_flow` scenario's fixture and driven with that scenario's own flow
(bench/workloads.py). A step's figure is the server process's CPU (every thread, read from
/proc in clock ticks, so it takes a few hundred flows to settle) from sending the RPC to
its answer, averaged over the flows. With one flow at a time, what the server does for an
RPC after answering it (nothing, today: the issuing call delivers its own event) would
fall into the next step. PostgreSQL's own CPU is not counted (bench/run.py's "db CPU").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable
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


async def _measure(
    addresses: dict[str, str], tokens: dict[str, str], pid: int, flows: int, warmup: int
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
        flow = purchase_flow(clients, await setup(clients), random.Random(1), step)
        for _ in range(warmup):
            await flow()
        cpu.clear()
        started, before = time.monotonic(), _cpu(pid)
        for _ in range(flows):
            await flow()
        total, wall = _cpu(pid) - before, time.monotonic() - started
    finally:
        for channel in clients.channels.values():
            await channel.close()
    for name, seconds in cpu.items():
        print(f"  {name:<24} {1000 * seconds / flows:8.2f} ms CPU", flush=True)
    whole = f"{1000 * total / flows:8.2f} ms CPU, {1000 * wall / flows:.1f} ms wall"
    print(f"  {'the flow':<24} {whole}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/flow_steps.py", description=__doc__)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--flows", type=int, default=300, help="flows measured")
    p.add_argument("--warmup", type=int, default=30, help="flows run first and not counted")
    p.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    args = p.parse_args(argv)
    if args.flows < 1 or args.warmup < 0:
        p.error("--flows must be at least 1 and --warmup at least 0")
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
                    asyncio.run(_measure(server.addresses, tokens, server.pid, args.flows, args.warmup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
