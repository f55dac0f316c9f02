"""Benchmark the back-office services against ceilings measured in the same run.

    python bench/run.py [--backend sqlite|postgres|both] [--duration 10] [--concurrency 32]
                        [--clients 1] [--scenarios NAME_OR_GLOB ...] [--out FILE.json]
                        [--profile SCENARIO] [--smoke]

Every server runs in a process of its own and the load comes from separate load-generator
processes (grpc.aio), all on 127.0.0.1. See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import importlib.metadata
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's own directory comes first on sys.path: drop it, so that the
# harness's modules are only ever imported as `bench.*`, and put the repo in its place.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
for _path in (ROOT / "gen" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import harness, procstat, profiling  # noqa: E402
from bench.harness import Backend, HarnessError, LoadSpec, ServerProcess  # noqa: E402
from bench.report import (  # noqa: E402
    DISTURBED_CORES,
    Run,
    attach_ceilings,
    disturbed,
    evaluate,
    merge,
    text_table,
    verdict_lines,
)
from bench.scenarios import REGISTRY, TARGETS, Scenario, TailTarget, WorkersTarget  # noqa: E402
from bench.seed import SCALES, Job, Seeder  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The workers target: server processes per service, and the load generators of its runs
# (several connections each, so that SO_REUSEPORT spreads them over the workers).
WORKERS = 2
WORKERS_CLIENTS = 2
WORKERS_CONNECTIONS = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python bench/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    p.add_argument("--concurrency", type=int, default=32, help="calls in flight, over all clients")
    p.add_argument("--clients", type=int, default=1, help="load-generator processes")
    p.add_argument(
        "--scenarios",
        nargs="+",
        metavar="NAME",
        help=f"names or globs (default: all): {', '.join(REGISTRY)}",
    )
    p.add_argument("--out", type=Path, help="results JSON (default: bench/results/<timestamp>.json)")
    p.add_argument(
        "--profile",
        metavar="SCENARIO",
        action="append",
        default=[],
        help="after the timed runs, run SCENARIO once more with py-spy on its server "
        "(cProfile of the event loop if py-spy is missing); not counted in the figures; repeatable",
    )
    p.add_argument(
        "--profile-all-threads",
        action="store_true",
        help="py-spy samples every running thread, not only the one holding the GIL",
    )
    p.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="full",
        help="data sizes: full is the issue's (1,000,000 suppliers, 5,000,000 journal lines, "
        "250,000 people), small for quick runs (the default of --smoke)",
    )
    p.add_argument(
        "--no-workers",
        action="store_true",
        help="skip the worker-process runs (ceiling.echo and the read target with 1 and 2 workers)",
    )
    p.add_argument("--smoke", action="store_true", help="every scenario ~1 s at concurrency 2, SQLite only")
    p.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target is NOT MET")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, SQLite files)")
    p.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("BACKOFFICE_TEST_POSTGRES", DEFAULT_ADMIN_URL),
        help="an owner login on the local PostgreSQL, to create and drop the run's databases",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.backend, args.duration, args.warmup, args.concurrency, args.clients = "sqlite", 1.0, 0.5, 2, 1
        args.scale = "small"
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1 or args.clients < 1:
        p.error("duration must be > 0, warmup >= 0, concurrency and clients >= 1")
    if args.clients > args.concurrency:
        p.error("--clients may not exceed --concurrency")
    for name in args.profile:
        if name not in REGISTRY or REGISTRY[name].server != "suite" or REGISTRY[name].job is not None:
            p.error(f"--profile takes a load scenario of the real services, not {name!r}")
    return args


def select(patterns: list[str] | None) -> list[Scenario]:
    if not patterns:
        return list(REGISTRY.values())
    chosen: list[Scenario] = []
    for pattern in patterns:
        matched = [s for name, s in REGISTRY.items() if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise SystemExit(f"no scenario matches {pattern!r}; choose from {', '.join(REGISTRY)}")
        chosen += [s for s in matched if s not in chosen]
    # The scenarios whose data a chosen one reads (registered before it).
    while needed := [REGISTRY[n] for s in chosen for n in s.needs if REGISTRY[n] not in chosen]:
        chosen += needed
    return [s for s in REGISTRY.values() if s in chosen]  # registry order


def versions(admin_url: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for package in ("grpcio", "protobuf", "SQLAlchemy", "psycopg", "structlog", "PyJWT"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    out["sqlite"] = sqlite3.sqlite_version
    if admin_url:
        out["postgresql"] = harness.postgres_version(admin_url)
    return out


def host_background_load(seconds: float = 1.0) -> float | None:
    """How busy the host is before the run, in per cent of all its CPUs."""
    before = procstat.host_cpu()
    time.sleep(seconds)
    after = procstat.host_cpu()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def scenario_tokens(s: Scenario, backend: Backend) -> dict[str, str]:
    """The scenario's own token (key "") and its other callers', by name."""
    from libs.common.auth import TokenIssuer
    from libs.common.config import Settings

    # The key the servers verify with: made here first, read by the server process.
    issuer = TokenIssuer.from_settings(Settings(data_dir=backend.data_dir))
    out = {}
    for name, i in [("", s.identity), *s.identities]:
        if i is not None:
            out[name] = issuer.mint(i.subject, i.organisation, i.roles, ttl=dt.timedelta(hours=2))
    out.setdefault("", "")
    return out


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.runs: list[Run] = []
        self.profiles: list[dict[str, Any]] = []
        self.failures: list[dict[str, str]] = []

    def measure(
        self,
        scenario: Scenario,
        backend: str,
        server: ServerProcess,
        *,
        token: str | None = None,
        fixture: Any = None,
        rate: float | None = None,
        db_process: str | None = None,
        label: str | None = None,
        tokens: dict[str, str] | None = None,
        clients: int | None = None,
        connections: int = 1,
        variant: str | None = None,
    ) -> Run:
        a = self.args
        concurrency = scenario.concurrency or a.concurrency
        spec = LoadSpec(
            scenario=scenario.name,
            addresses=server.addresses,
            concurrency=concurrency,
            duration=a.duration,
            warmup=a.warmup,
            clients=min(clients or a.clients, concurrency),
            rate=rate,
            token=token,
            fixture=fixture,
            server_pid=server.pid,
            db_process=db_process,
            tokens=tokens or {},
            connections=connections,
        )
        results = harness.run_load(spec, self.work)
        if not server.alive():
            raise HarnessError(
                f"the {server.kind} server died during {scenario.name} (log {server.log_path})"
            )
        run = merge(
            scenario.name,
            backend,
            results,
            concurrency=concurrency,
            duration=a.duration,
            warmup=a.warmup,
            rate=rate,
            label=label,
        )
        if variant:
            run.extra["variant"] = variant
        self.runs.append(run)
        errors = f", {run.errors} errors {run.errors_by_code}" if run.errors else ""
        print(
            f"  {run.label:<44} {backend:<8} {run.calls_per_s:>9,.0f} calls/s  "
            f"p50 {run.p50_ms or 0:7.2f} ms  p99 {run.p99_ms or 0:7.2f} ms{errors}",
            flush=True,
        )
        return run

    def ceiling(self, name: str, backend: Backend | None) -> None:
        scenario = REGISTRY[name]
        spec = {"kind": "echo"} if backend is None else backend.insert_spec()
        log = self.work / f"{name}-{backend.name if backend else 'any'}.log"
        with harness.serving(spec, log) as server:
            self.measure(
                scenario,
                backend.name if backend else "any",
                server,
                db_process=backend.db_process if backend else None,
            )

    def echo_workers(self) -> None:
        """The echo ceiling with 1 and with WORKERS worker processes, measured with the
        load generators the read target's worker runs use."""
        for workers in (1, WORKERS):
            log = self.work / f"ceiling.echo-workers-{workers}.log"
            with harness.serving({"kind": "echo", "workers": workers}, log) as server:
                self.measure(
                    REGISTRY["ceiling.echo"],
                    "any",
                    server,
                    label=f"ceiling.echo ({workers} worker{'s' if workers > 1 else ''})",
                    clients=WORKERS_CLIENTS,
                    connections=WORKERS_CONNECTIONS,
                    variant=f"workers={workers}",
                )

    def workers_suite(self, scenario: Scenario, backend: Backend) -> None:
        """`backoffice serve --workers N` (the real command) and the read on it; or a flow
        on it, with its most client processes (a figure shown, not held to a target)."""
        tokens = scenario_tokens(scenario, backend)
        clients = max(scenario.client_processes) if scenario.client_processes else WORKERS_CLIENTS
        log = self.work / f"serve-workers-{backend.name}.log"
        with harness.serving(backend.suite_spec(workers=WORKERS), log) as server:
            fixture = self.setup(scenario, server, tokens)
            self.measure(
                scenario,
                backend.name,
                server,
                token=tokens[""],
                tokens=tokens,
                fixture=fixture,
                db_process=backend.db_process,
                label=f"{scenario.name} ({WORKERS} workers)"
                + (f" x{clients} clients" if scenario.client_processes else ""),
                clients=clients,
                connections=WORKERS_CONNECTIONS,
                variant=f"workers={WORKERS}",
            )

    def setup(self, s: Scenario, server: ServerProcess, tokens: dict[str, str]) -> Any:
        if s.setup is None:
            return None
        started = time.monotonic()
        a = self.args
        fixture = harness.run_setup(
            LoadSpec(
                s.name,
                server.addresses,
                s.concurrency or a.concurrency,
                a.duration,
                a.warmup,
                clients=max(s.client_processes or (a.clients,)),
                token=tokens[""],
                tokens={k: v for k, v in tokens.items() if k},
            ),
            self.work,
        )
        print(f"  (setup of {s.name}: {time.monotonic() - started:.1f} s)", flush=True)
        return fixture

    def run_job(self, s: Scenario, backend: Backend, server: ServerProcess, tokens: dict[str, str]) -> None:
        """A scenario that is one job, not a load: the orchestrator runs it and reads the
        server's CPU, peak memory and the host's around it as a load generator would."""
        assert s.job is not None
        from bench.loadgen import Readings

        job = Job(
            backend.name,
            server.addresses,
            tokens[""],
            {k: v for k, v in tokens.items() if k},
            Path(tempfile.mkdtemp(prefix=f"job-{s.name}-", dir=self.work)),
            SCALES[self.args.scale],
        )
        edge = {"measure": True, "server_pid": server.pid, "db_process": backend.db_process}
        procstat.reset_tree_peak_rss(server.pid)
        children_before = os.times()
        a = Readings.take(edge)
        result = s.job(job, None)
        b = Readings.take(edge)
        children_after = os.times()
        extra = result.pop("extra", {})
        result["client_cpu_s"] = (children_after.children_user + children_after.children_system) - (
            children_before.children_user + children_before.children_system
        )
        if a.server_cpu is not None and b.server_cpu is not None:
            result["server_cpu_s"] = b.server_cpu - a.server_cpu
        if a.host and b.host and b.host[1] > a.host[1]:
            result["host_busy_fraction"] = (b.host[0] - a.host[0]) / (b.host[1] - a.host[1])
        if a.db_cpu is not None and b.db_cpu is not None:
            result["db_cpu_s"] = b.db_cpu - a.db_cpu
        result["server_peak_rss_mb"] = procstat.tree_peak_rss_mb(server.pid)
        run = merge(
            s.name, backend.name, [result], concurrency=1, duration=result["measured_seconds"], warmup=0.0
        )
        run.extra.update(extra)
        if "people_per_s" in extra:  # the import's figure is people a second; p50 is one file
            run.calls_per_s = float(extra["people_per_s"])
            run.label = f"{s.name} (people/s; latency = a file)"
        self.runs.append(run)
        errors = f", {run.errors} errors {run.errors_by_code}" if run.errors else ""
        print(f"  {run.label:<44} {backend.name:<8} {extra}{errors}", flush=True)

    def suite(self, scenarios: list[Scenario], backend: Backend) -> None:
        tokens: dict[str, dict[str, str]] = {}
        fixtures: dict[str, Any] = {}
        sizes = SCALES[self.args.scale]
        urls = {name: backend.service_database_url(name) for name in ("procurement", "finance", "hr")}
        seeder = Seeder(backend.name, urls, backend.data_dir, sizes)
        workers_reads = {t.scenario for t in TARGETS if isinstance(t, WorkersTarget)}

        log = self.work / f"suite-{backend.name}.log"
        with harness.serving(backend.suite_spec(), log) as server:
            for s in scenarios:
                tokens[s.name] = scenario_tokens(s, backend)
                try:
                    fixtures[s.name] = self.setup(s, server, tokens[s.name])
                    if s.prepare is not None:
                        started = time.monotonic()
                        fixtures[s.name] = s.prepare(seeder, fixtures[s.name])
                        print(f"  (bulk data of {s.name}: {time.monotonic() - started:.1f} s)", flush=True)
                    if s.job is not None:
                        self.run_job(s, backend, server, tokens[s.name])
                        continue
                except Exception as err:  # one scenario's data could not be made: go on without it
                    if not server.alive():
                        raise
                    message = f"{type(err).__name__}: {str(err).strip()[:2000]}"
                    self.failures.append({"scenario": s.name, "backend": backend.name, "error": message})
                    print(f"  {s.name} skipped: {message[:500]}", flush=True)
                    continue
                for processes in s.client_processes or (None,):
                    run = self.measure(
                        s,
                        backend.name,
                        server,
                        token=tokens[s.name][""],
                        tokens=tokens[s.name],
                        fixture=fixtures[s.name],
                        db_process=backend.db_process,
                        clients=processes,
                        label=f"{s.name} x{processes} clients" if processes else None,
                        variant=f"clients={processes}" if processes else None,
                    )
                    data = fixtures[s.name] if isinstance(fixtures[s.name], dict) else {}
                    run.extra.update({k: data[k] for k in ("rows", "journal_lines") if k in data})
                for target in TARGETS:
                    if isinstance(target, TailTarget) and target.scenario == s.name and run.calls_per_s:
                        rate = run.calls_per_s * target.rate_fraction
                        self.measure(
                            s,
                            backend.name,
                            server,
                            token=tokens[s.name][""],
                            tokens=tokens[s.name],
                            fixture=fixtures[s.name],
                            rate=rate,
                            db_process=backend.db_process,
                            label=f"{s.name} @{target.rate_fraction:.0%} rate",
                        )
                if s.name in workers_reads and not self.args.no_workers:
                    # The 1-worker baseline of the workers target, with its load generators.
                    self.measure(
                        s,
                        backend.name,
                        server,
                        token=tokens[s.name][""],
                        tokens=tokens[s.name],
                        fixture=fixtures[s.name],
                        db_process=backend.db_process,
                        label=f"{s.name} (1 worker)",
                        clients=WORKERS_CLIENTS,
                        connections=WORKERS_CONNECTIONS,
                        variant="workers=1",
                    )
            profiled = [s for s in scenarios if s.name in self.args.profile]
            if profiling.py_spy() is not None:
                for s in profiled:
                    self.profile_with_py_spy(s, backend, server, tokens[s.name], fixtures)
        if profiling.py_spy() is None:
            for s in profiled:
                self.profile_with_cprofile(s, backend, tokens[s.name], fixtures)
        if not self.args.no_workers:
            for s in scenarios:
                if s.name in workers_reads or s.client_processes:
                    self.workers_suite(s, backend)

    def profile_with_py_spy(
        self,
        s: Scenario,
        backend: Backend,
        server: ServerProcess,
        tokens: dict[str, str],
        fixtures: dict[str, Any],
    ) -> None:
        out = self.work / f"profile-{s.name}-{backend.name}.txt"
        spy = profiling.start_py_spy(
            server.pid,
            self.args.warmup + self.args.duration,
            out,
            out.with_suffix(".log"),
            gil_only=not self.args.profile_all_threads,
        )
        assert spy is not None
        time.sleep(0.5)  # let py-spy attach
        run = self.measure(
            s,
            backend.name,
            server,
            token=tokens[""],
            tokens=tokens,
            fixture=fixtures.get(s.name),
            db_process=backend.db_process,
            label=f"{s.name} (py-spy attached)",
        )
        run.extra["profiled"] = True
        spy.wait(60)
        if not out.exists():
            print(f"  py-spy wrote no profile (see {out.with_suffix('.log')})")
            return
        summary = profiling.summarise_raw(out)
        what = "every running thread" if self.args.profile_all_threads else "the thread holding the GIL"
        print(f"\nprofile of the {s.name} server on {backend.name} (py-spy, {what}):")
        print(summary.text())
        self.profiles.append(
            {
                "scenario": s.name,
                "backend": backend.name,
                "tool": "py-spy",
                "sampled": what,
                **summary.as_json(top=60),
            }
        )

    def profile_with_cprofile(
        self, s: Scenario, backend: Backend, tokens: dict[str, str], fixtures: dict[str, Any]
    ) -> None:
        stats = self.work / f"cprofile-{s.name}-{backend.name}.prof"
        log = self.work / f"suite-{backend.name}-cprofile.log"
        with harness.serving(backend.suite_spec(), log, env={"BENCH_CPROFILE": str(stats)}) as server:
            run = self.measure(
                s,
                backend.name,
                server,
                token=tokens[""],
                tokens=tokens,
                fixture=fixtures.get(s.name),
                db_process=backend.db_process,
                label=f"{s.name} (cProfile)",
            )
            run.extra["profiled"] = True
        text = profiling.summarise_cprofile(stats)
        print(f"\nprofile of the {s.name} server's event loop on {backend.name} (cProfile):\n{text}")
        self.profiles.append({"scenario": s.name, "backend": backend.name, "tool": "cProfile", "text": text})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for key in [k for k in os.environ if k.startswith("BACKOFFICE_") and k != "BACKOFFICE_TEST_POSTGRES"]:
        print(f"ignoring {key} from the environment: the harness configures the servers itself")
        del os.environ[key]
    scenarios = select(args.scenarios)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    uses_postgres = "postgres" in backends
    if uses_postgres:
        harness.check_loopback(args.postgres_admin_url)
        reason = harness.postgres_unreachable(args.postgres_admin_url)
        if reason:
            print(f"{reason}; start it, or run with --backend sqlite", file=sys.stderr)
            return 2
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or ROOT / "bench" / "results" / f"{'smoke-' if args.smoke else ''}{stamp}.json"
    machine = procstat.machine_info()
    print(
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}), Python {machine['python']}; "
        f"backends {', '.join(backends)}; {args.duration:g} s per scenario after {args.warmup:g} s "
        f"warm-up, {args.concurrency} in flight from {args.clients} client process(es)",
        flush=True,
    )
    background = host_background_load()
    if background is not None and background > 10:
        print(
            f"warning: the host is {background:.0f}% busy before the run starts; "
            "other work on this machine will distort the figures",
            flush=True,
        )
    needs_echo = any(s.name == "ceiling.echo" or s.ceiling == "ceiling.echo" for s in scenarios)
    needs_insert = any(s.name == "ceiling.insert" or s.ceiling == "ceiling.insert" for s in scenarios)
    suite_scenarios = [s for s in scenarios if s.server == "suite"]
    workers_reads = {t.scenario for t in TARGETS if isinstance(t, WorkersTarget)}
    needs_workers = not args.no_workers and any(s.name in workers_reads for s in scenarios)

    with harness.work_directory(args.keep) as work:
        bench = Bench(args, work)
        try:
            if needs_echo:
                bench.ceiling("ceiling.echo", None)
            if needs_workers:
                bench.echo_workers()
            for name in backends:
                with harness.backend(name, work, args.postgres_admin_url) as backend:
                    if needs_insert:
                        bench.ceiling("ceiling.insert", backend)
                    if suite_scenarios:
                        bench.suite(suite_scenarios, backend)
        except HarnessError as err:
            print(f"\nbenchmark failed: {err}", file=sys.stderr)
            return 1
    runs = bench.runs
    attach_ceilings(runs)
    verdicts = evaluate(TARGETS, runs, backends)
    print("\n" + text_table(runs))
    noisy = disturbed(runs)
    if noisy:
        print(
            f"\nwarning: other work on the host used more than {DISTURBED_CORES} cores during "
            f"{', '.join(f'{r.label} [{r.backend}]' for r in noisy)}: those figures are disturbed"
        )
    print("\ntargets:")
    for line in verdict_lines(verdicts):
        print(f"  {line}")
    elapsed = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    record: dict[str, Any] = {
        "harness": {
            "command": " ".join(["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
            "backends": backends,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "clients": args.clients,
            "scale": args.scale,
            "sizes": SCALES[args.scale],
            "smoke": args.smoke,
            "started": started.isoformat(timespec="seconds"),
            "elapsed_s": elapsed,
        },
        "machine": {**machine, "host_busy_pct_before_run": background},
        "versions": versions(args.postgres_admin_url if uses_postgres else None),
        "scenarios": {s.name: {"kind": s.kind, "server": s.server, "summary": s.summary} for s in scenarios},
        "runs": [r.as_json() for r in runs],
        "targets": [v.as_json() for v in verdicts],
        "disturbed_runs": [f"{r.label} [{r.backend}]" for r in noisy],
        "profiles": bench.profiles,
        "failed_scenarios": bench.failures,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nresults: {out} ({elapsed:.0f} s)")
    for failure in bench.failures:
        print(f"scenario {failure['scenario']} [{failure['backend']}] did not run: {failure['error'][:300]}")
    broken = [r for r in runs if r.errors or not r.calls or r.stuck_calls]
    if broken:
        print(
            f"{len(broken)} run(s) had errors, stuck calls or no calls: {', '.join(r.label for r in broken)}"
        )
    if (broken or bench.failures) and args.smoke:
        return 1
    if args.fail_on_miss and any(v.met is False for v in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
