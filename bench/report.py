"""Figures of a run: merging load generators' results, the table, and the targets."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.harness import percentile
from bench.scenarios import (
    REGISTRY,
    DurationTarget,
    FlatnessTarget,
    FlowTarget,
    LatencyTarget,
    RatioTarget,
    TailTarget,
    Target,
    WorkersTarget,
)


@dataclass
class Run:
    """One timed run of one scenario on one backend: what the table and the JSON show."""

    scenario: str
    backend: str
    label: str
    kind: str
    concurrency: int
    clients: int
    duration_s: float
    warmup_s: float
    rate_limit: float | None
    calls: int
    calls_per_s: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    errors: int
    errors_by_code: dict[str, int]
    error_samples: dict[str, str]
    server_cpu_s: float | None
    server_cpu_s_per_1k: float | None
    server_cpu_cores: float | None
    db_cpu_s_per_1k: float | None
    client_cpu_cores: float | None
    host_busy_pct: float | None
    other_cores: float | None
    server_peak_rss_mb: float | None
    late_starts: int
    stuck_calls: int
    ceiling: str | None = None
    ceiling_calls_per_s: float | None = None
    ratio_to_ceiling: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def merge(
    scenario: str,
    backend: str,
    results: list[dict[str, Any]],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    rate: float | None = None,
    label: str | None = None,
) -> Run:
    latencies = sorted(v for r in results for v in r["latencies_us"])
    errors_by_code: dict[str, int] = {}
    samples: dict[str, str] = {}
    for r in results:
        for code, n in r["errors"].items():
            errors_by_code[code] = errors_by_code.get(code, 0) + n
        for code, message in r["error_samples"].items():
            samples.setdefault(code, message)
    first = results[0]
    seconds = first.get("measured_seconds") or duration
    calls = len(latencies)
    server_cpu = first.get("server_cpu_s")
    db_cpu = first.get("db_cpu_s")
    client_cpu = sum(r.get("client_cpu_s") or 0.0 for r in results)
    busy = first.get("host_busy_fraction")
    other = None
    if busy is not None and server_cpu is not None:
        # CPU the host spent on anything but this run's server, clients and database:
        # other work on the machine (and a little kernel time): a disturbed run shows here.
        used = server_cpu + client_cpu + (db_cpu or 0.0)
        other = round(busy * (os.cpu_count() or 1) - used / seconds, 2)

    def per_1k(cpu: float | None) -> float | None:
        return None if cpu is None or not calls else round(cpu / calls * 1000, 4)

    return _with_slow_calls(
        Run(
            scenario=scenario,
            backend=backend,
            label=label or scenario,
            kind=REGISTRY[scenario].kind,
            concurrency=concurrency,
            clients=len(results),
            duration_s=duration,
            warmup_s=warmup,
            rate_limit=round(rate, 1) if rate else None,
            calls=calls,
            calls_per_s=round(calls / seconds, 1),
            p50_ms=_ms(percentile(latencies, 0.50)),
            p90_ms=_ms(percentile(latencies, 0.90)),
            p99_ms=_ms(percentile(latencies, 0.99)),
            p999_ms=_ms(percentile(latencies, 0.999)),
            max_ms=_ms(float(latencies[-1])) if latencies else None,
            mean_ms=_ms(sum(latencies) / calls) if calls else None,
            errors=sum(errors_by_code.values()),
            errors_by_code=errors_by_code,
            error_samples=samples,
            server_cpu_s=round(server_cpu, 3) if server_cpu is not None else None,
            server_cpu_s_per_1k=per_1k(server_cpu),
            server_cpu_cores=round(server_cpu / seconds, 2) if server_cpu is not None else None,
            db_cpu_s_per_1k=per_1k(db_cpu),
            client_cpu_cores=round(client_cpu / seconds, 2),
            host_busy_pct=round(busy * 100, 1) if busy is not None else None,
            other_cores=other,
            server_peak_rss_mb=round(first["server_peak_rss_mb"], 1)
            if first.get("server_peak_rss_mb")
            else None,
            late_starts=sum(r.get("late_starts", 0) for r in results),
            stuck_calls=sum(r.get("stuck_calls", 0) for r in results),
        ),
        results,
    )


def _with_slow_calls(run: Run, results: list[dict[str, Any]]) -> Run:
    slow = sorted(v for r in results for v in r.get("after_window_us", []))
    if slow:
        run.extra["after_window_ms"] = [_ms(v) for v in slow[:20]]
    return run


def attach_ceilings(runs: list[Run]) -> None:
    """Ratio of each real scenario's throughput to its ceiling's, on the same backend
    (the echo ceiling does not touch a database, so it serves every backend). A run with
    N worker processes is compared with the ceiling served by N workers."""
    ceilings: dict[tuple[str, str, str | None], Run] = {}
    for r in runs:
        if r.kind == "ceiling" and r.rate_limit is None:
            ceilings.setdefault((r.scenario, r.backend, r.extra.get("variant")), r)
    for r in runs:
        name = REGISTRY[r.scenario].ceiling
        if name is None or r.rate_limit is not None:
            continue
        variant = r.extra.get("variant")
        variant = variant if variant and variant.startswith("workers=") else None
        ceiling = ceilings.get((name, r.backend, variant)) or ceilings.get((name, "any", variant))
        if ceiling is None or not ceiling.calls_per_s:
            continue
        r.ceiling = name
        r.ceiling_calls_per_s = ceiling.calls_per_s
        r.ratio_to_ceiling = round(r.calls_per_s / ceiling.calls_per_s, 3)


@dataclass
class Verdict:
    target: str
    backend: str
    figure: str
    met: bool | None  # None: not measured in this run

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(targets: list[Target], runs: list[Run], backends: list[str]) -> list[Verdict]:
    verdicts = []
    for target in targets:
        only = getattr(target, "backends", ())
        for backend in backends:
            if only and backend not in only:
                continue
            figure, met = _judge(target, runs, backend)
            verdicts.append(Verdict(target.describe(), backend, figure, met))
    return verdicts


def _judge(target: Target, runs: list[Run], backend: str) -> tuple[str, bool | None]:
    missing = ("not measured", None)
    if isinstance(target, RatioTarget):
        run = _find(runs, target.scenario, backend, rate_limited=False)
        if run is None or run.ratio_to_ceiling is None:
            return missing
        figure = (
            f"{run.calls_per_s:,.0f} vs {run.ceiling_calls_per_s:,.0f} calls/s = {run.ratio_to_ceiling:.0%}"
        )
        if run.errors:
            figure += f", {run.errors} errors"
        return figure, run.ratio_to_ceiling >= target.min_ratio and run.errors == 0
    if isinstance(target, TailTarget):
        run = _find(runs, target.scenario, backend, rate_limited=True)
        if run is None or not run.p50_ms or run.p99_ms is None:
            return missing
        ratio = run.p99_ms / run.p50_ms
        figure = (
            f"at {run.rate_limit:,.0f} calls/s: p50 {run.p50_ms:.2f} ms, "
            f"p99 {run.p99_ms:.2f} ms = {ratio:.1f} x p50"
        )
        return figure, ratio <= target.max_p99_over_p50 and run.errors == 0
    if isinstance(target, LatencyTarget):
        run = _find(runs, target.scenario, backend, rate_limited=False)
        if run is None:
            return missing
        if run.p50_ms is None:  # not one call ended inside the window: each took longer
            slow = run.extra.get("after_window_ms") or []
            figure = f"no call ended within the {run.duration_s:g} s window"
            if slow:
                figure += f"; a call took {slow[0] / 1000:,.1f} s"
            if run.error_samples:
                figure += f"; {', '.join(run.error_samples)}"
            return figure, False
        figure = (
            f"p50 {run.p50_ms:,.1f} ms, p99 {run.p99_ms or 0:,.1f} ms "
            f"({run.calls} calls, {run.concurrency} in flight)"
        )
        if run.errors:
            figure += f", {run.errors} errors"
        return figure, run.p50_ms <= target.max_ms and run.errors == 0
    if isinstance(target, FlatnessTarget):
        large = _find(runs, target.large, backend, rate_limited=False)
        small = _find(runs, target.small, backend, rate_limited=False)
        if large is None or small is None or not large.p50_ms or not small.p50_ms:
            return missing
        factor = large.p50_ms / small.p50_ms
        figure = (
            f"p50 {large.p50_ms:.2f} ms at {large.extra.get('rows', 0):,} rows vs "
            f"{small.p50_ms:.2f} ms at {small.extra.get('rows', 0):,} = {factor:.2f} x"
        )
        return figure, factor <= target.max_factor and large.errors == 0 and small.errors == 0
    if isinstance(target, DurationTarget):
        run = _find(runs, target.scenario, backend, rate_limited=False)
        if run is None or "seconds" not in run.extra:
            return missing
        seconds = float(run.extra["seconds"])
        people, done = run.extra.get("people", 0), run.extra.get("people_imported", 0)
        figure = (
            f"{done:,} of {people:,} people in {seconds:,.1f} s ({run.extra.get('people_per_s', 0):,.0f}/s)"
        )
        if done < people and run.extra.get("seconds_for_all_at_this_rate"):
            figure += f"; all of them would take {run.extra['seconds_for_all_at_this_rate']:,.0f} s"
        if run.errors or run.stuck_calls:
            figure += f", {run.errors} failed files, {run.stuck_calls} stopped"
        met = done >= people and seconds <= target.max_seconds and run.errors == 0 and run.stuck_calls == 0
        return figure, met
    if isinstance(target, FlowTarget):
        by_clients = {
            int(r.extra["variant"].split("=")[1]): r
            for r in runs
            if r.scenario == target.scenario
            and r.backend == backend
            and str(r.extra.get("variant", "")).startswith("clients=")
        }
        if not by_clients:
            return missing
        fewest, most = by_clients[min(by_clients)], by_clients[max(by_clients)]
        best = max(r.calls_per_s for r in by_clients.values())
        figure = ", ".join(f"{r.calls_per_s:,.0f}/s with {n}" for n, r in sorted(by_clients.items()))
        errors = sum(r.errors for r in by_clients.values())
        if errors:
            figure += f", {errors} errors"
        ok = best >= target.min_per_s and most.calls_per_s > fewest.calls_per_s and errors == 0
        return figure, ok
    if isinstance(target, WorkersTarget):
        read = {w: _variant(runs, target.scenario, backend, f"workers={w}") for w in (1, target.workers)}
        echo = {w: _variant(runs, "ceiling.echo", "any", f"workers={w}") for w in (1, target.workers)}
        if any(r is None or not r.calls_per_s for r in (*read.values(), *echo.values())):
            return missing
        r1, rn = read[1].calls_per_s, read[target.workers].calls_per_s  # type: ignore[union-attr]
        e1, en = echo[1].calls_per_s, echo[target.workers].calls_per_s  # type: ignore[union-attr]
        share = (rn / r1) / (en / e1)
        figure = (
            f"read {r1:,.0f} -> {rn:,.0f} calls/s (x{rn / r1:.2f}), echo {e1:,.0f} -> {en:,.0f} "
            f"(x{en / e1:.2f}): {share:.0%} of echo's gain; "
            f"read/echo at {target.workers} workers {rn / en:.0%}"
        )
        return figure, share >= target.min_share
    return missing


def _variant(runs: list[Run], scenario: str, backend: str, variant: str) -> Run | None:
    for r in runs:
        if r.scenario == scenario and r.backend == backend and r.extra.get("variant") == variant:
            return r
    return None


def _find(runs: list[Run], scenario: str, backend: str, *, rate_limited: bool) -> Run | None:
    for r in runs:
        if (
            r.scenario == scenario
            and r.backend == backend
            and (r.rate_limit is not None) == rate_limited
            and not r.extra.get("profiled")
            and not r.extra.get("variant")
        ):
            return r
    return None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = (
    ("scenario", "<"),
    ("backend", "<"),
    ("calls/s", ">"),
    ("p50 ms", ">"),
    ("p99 ms", ">"),
    ("errors", ">"),
    ("srv CPU s/1k", ">"),
    ("srv cores", ">"),
    ("srv peak MB", ">"),
    ("db CPU s/1k", ">"),
    ("client cores", ">"),
    ("host busy %", ">"),
    ("other cores", ">"),
    ("ceiling calls/s", ">"),
    ("ratio", ">"),
)


def table_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for r in runs:
        rows.append(
            [
                r.label,
                r.backend,
                _fmt(r.calls_per_s, ",.0f"),
                _fmt(r.p50_ms, ".2f"),
                _fmt(r.p99_ms, ".2f"),
                str(r.errors),
                _fmt(r.server_cpu_s_per_1k, ".3f"),
                _fmt(r.server_cpu_cores, ".2f"),
                _fmt(r.server_peak_rss_mb, ".0f"),
                _fmt(r.db_cpu_s_per_1k, ".3f"),
                _fmt(r.client_cpu_cores, ".2f"),
                _fmt(r.host_busy_pct, ".0f"),
                _fmt(r.other_cores, ".2f"),
                f"{r.ceiling_calls_per_s:,.0f} ({r.ceiling})" if r.ceiling_calls_per_s else "-",
                _fmt(r.ratio_to_ceiling * 100 if r.ratio_to_ceiling is not None else None, ".0f")
                + ("%" if r.ratio_to_ceiling is not None else ""),
            ]
        )
    return rows


def text_table(runs: list[Run]) -> str:
    header = [c[0] for c in COLUMNS]
    rows = table_rows(runs)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if align == "<" else cell.rjust(w)
            for cell, w, (_, align) in zip(cells, widths, COLUMNS, strict=True)
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(runs: list[Run]) -> str:
    header = [c[0] for c in COLUMNS]
    aligns = ["---" if a == "<" else "---:" for _, a in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(runs)]
    return "\n".join(lines)


def verdict_lines(verdicts: list[Verdict]) -> list[str]:
    out = []
    for v in verdicts:
        status = "MET" if v.met else ("NOT MET" if v.met is False else "NOT MEASURED")
        out.append(f"{status:<12} [{v.backend}] {v.target}: {v.figure}")
    return out


DISTURBED_CORES = 0.2


def disturbed(runs: list[Run]) -> list[Run]:
    """Runs during which other work on the host used more than DISTURBED_CORES."""
    return [r for r in runs if r.other_cores is not None and r.other_cores > DISTURBED_CORES]
