"""Prometheus metrics of every service, served over HTTP on the metrics port.

The logging interceptor counts every call (by method and status code) and observes its
latency: it already times the call, so the cost is one dictionary look-up and two
lock-free updates per call. Database pool use is read from SQLAlchemy when Prometheus
scrapes, not on every checkout. The outbox backlog gauge is registered now at zero.

    backoffice_rpc_calls_total{service, method, code}
    backoffice_rpc_duration_seconds{service, method}      (histogram)
    backoffice_db_pool_checked_out{service}               connections in use now
    backoffice_db_pool_size{service}                      configured pool size
    backoffice_outbox_backlog{service}                    events not yet delivered
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from libs.common.context import current_call

# Unary calls here are milliseconds; the tail that matters is up to the 5 s deadlines.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_CALLS = Counter(
    "backoffice_rpc_calls",
    "gRPC calls handled, by method and status code.",
    ["service", "method", "code"],
)
RPC_DURATION = Histogram(
    "backoffice_rpc_duration_seconds",
    "Time to handle a gRPC call, from the first interceptor to the response.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
OUTBOX_BACKLOG = Gauge(
    "backoffice_outbox_backlog",
    "Outbox events written but not yet delivered (pending or parked). Registered at 0 for "
    "every service; a service's outbox relay sets it on every pass.",
    ["service"],
)


class RpcMetrics:
    """One service's call metrics, with the label children cached per method."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._durations: dict[str, Any] = {}
        self._calls: dict[tuple[str, str], Any] = {}
        OUTBOX_BACKLOG.labels(service).set(0)

    def observe(self, method: str, code: str, seconds: float) -> None:
        histogram = self._durations.get(method)
        if histogram is None:
            histogram = self._durations[method] = RPC_DURATION.labels(self.service, method)
        counter = self._calls.get((method, code))
        if counter is None:
            counter = self._calls[(method, code)] = RPC_CALLS.labels(self.service, method, code)
        histogram.observe(seconds)
        counter.inc()


# --- database pools ------------------------------------------------------------------

_engines: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def _service_of_current_call() -> str | None:
    """`/backoffice.procurement.v1.ProcurementService/X` -> `procurement`."""
    try:
        call = current_call()
    except RuntimeError:
        return None
    parts = call.method.lstrip("/").split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "backoffice" else None


def _remember_engine(conn: Connection) -> None:
    engine = conn.engine
    known = _engines.get(engine)
    if known is not None and known != "unknown":
        return
    service = _service_of_current_call()
    if service is None:
        # Outside a call (start-up checks): name it after the SQLite file if there is one.
        database = engine.url.database or ""
        stem = database.rsplit("/", 1)[-1].removesuffix(".db")
        service = stem if engine.dialect.name == "sqlite" and stem else "unknown"
    with _engines_lock:
        _engines[engine] = service


class PoolCollector(Collector):
    """Reads each engine's pool when scraped; engines register on their first use."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        checked_out = GaugeMetricFamily(
            "backoffice_db_pool_checked_out",
            "Database connections checked out of the pool now.",
            labels=["service"],
        )
        size = GaugeMetricFamily(
            "backoffice_db_pool_size", "Configured size of the database pool.", labels=["service"]
        )
        totals: dict[str, tuple[int, int]] = {}
        with _engines_lock:
            engines = list(_engines.items())
        for engine, service in engines:
            pool = engine.pool
            out = int(getattr(pool, "checkedout", lambda: 0)())
            configured = int(getattr(pool, "size", lambda: 0)())
            before = totals.get(service, (0, 0))
            totals[service] = (before[0] + out, before[1] + configured)
        for service, (out, configured) in sorted(totals.items()):
            checked_out.add_metric([service], out)
            size.add_metric([service], configured)
        yield checked_out
        yield size


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Track every SQLAlchemy engine's pool (idempotent)."""
    global _installed  # noqa: PLW0603
    with _install_lock:
        if _installed:
            return
        event.listen(Engine, "engine_connect", _remember_engine)
        REGISTRY.register(PoolCollector())
        _installed = True


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:  # noqa: S104  # scraped from other pods
    """Start the /metrics HTTP endpoint in a daemon thread; returns the bound port."""
    install()
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)
