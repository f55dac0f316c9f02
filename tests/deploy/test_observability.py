"""Metrics scraped over HTTP from real servers after real calls, and one trace followed
from procurement to the directory with the SDK's in-memory exporter."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from libs.common.config import Settings
from libs.common.logging import add_trace_ids
from libs.common.metrics import serve_metrics
from libs.common.tracing import configure_tracing, shutdown_tracing
from tests.support import UNIT, WEST_YORKSHIRE, Suite, failure, running_suite

CREATE = "/backoffice.procurement.v1.ProcurementService/CreateSupplier"
LIST_GRANTS = "backoffice.directory.v1.DirectoryService/ListGrants"


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing(Settings(), "backoffice-test", processor=SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        shutdown_tracing()


@pytest.fixture(scope="module")
def suite(spans: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    data_dir: Path = tmp_path_factory.mktemp("observability")
    # No grants cache: every call outside the unit's own organisation asks the directory.
    with running_suite(Settings(data_dir=data_dir, grants_cache_seconds=0)) as running:
        yield running


def _create(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}",
            supplier=supplier_pb2.Supplier(display_name="Acme Ltd", vat_number="GB123456782"),
        )
    )
    # Another organisation: procurement asks the directory for the unit's agreements.
    refused = failure(
        officer.procurement.CreateSupplier,
        pb.CreateSupplierRequest(
            parent=f"organisations/{WEST_YORKSHIRE}",
            supplier=supplier_pb2.Supplier(display_name="Other Ltd", vat_number="GB123456782"),
        ),
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED


def _eventually(check: object, seconds: float = 5.0) -> None:
    """Interceptors finish (count, end the span) just after the client has its answer."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()  # type: ignore[operator]
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_metrics_endpoint_counts_calls_latency_pool_and_outbox(suite: Suite) -> None:
    port = serve_metrics(0, host="127.0.0.1")
    _create(suite)
    _eventually(lambda: _check_metrics(port))


def _check_metrics(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert _sample(text, "backoffice_rpc_calls_total", service="procurement", method=CREATE, code="OK") >= 1
    assert (
        _sample(
            text, "backoffice_rpc_calls_total", service="procurement", method=CREATE, code="PERMISSION_DENIED"
        )
        >= 1
    )
    assert (
        _sample(text, "backoffice_rpc_calls_total", service="directory", method="/" + LIST_GRANTS, code="OK")
        >= 1
    )
    assert _sample(text, "backoffice_rpc_duration_seconds_count", service="procurement", method=CREATE) >= 2
    assert (
        _sample(
            text, "backoffice_rpc_duration_seconds_bucket", service="procurement", method=CREATE, le="+Inf"
        )
        >= 2
    )
    assert _sample(text, "backoffice_db_pool_checked_out", service="procurement") == 0  # all returned
    assert _sample(text, "backoffice_db_pool_size", service="procurement") > 0
    for service in ("directory", "procurement", "hr", "finance"):
        assert _sample(text, "backoffice_outbox_backlog", service=service) == 0


def test_a_trace_follows_the_call_into_the_directory(suite: Suite, spans: InMemorySpanExporter) -> None:
    spans.clear()
    _create(suite)
    _eventually(lambda: _check_trace(spans))


def _check_trace(spans: InMemorySpanExporter) -> None:
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    refused = [s for s in finished if s.name == CREATE.lstrip("/") and s.kind == trace.SpanKind.SERVER]
    assert len(refused) == 2
    outgoing = [s for s in finished if s.name == LIST_GRANTS and s.kind == trace.SpanKind.CLIENT]
    incoming = [s for s in finished if s.name == LIST_GRANTS and s.kind == trace.SpanKind.SERVER]
    assert outgoing and incoming
    client, server = outgoing[0], incoming[0]
    assert client.context is not None and server.context is not None and server.parent is not None
    # One trace: procurement's server span -> its client call -> the directory's server span.
    assert server.context.trace_id == client.context.trace_id
    assert server.parent.span_id == client.context.span_id
    parent = next(
        s for s in refused if s.context is not None and s.context.trace_id == client.context.trace_id
    )
    assert client.parent is not None and parent.context is not None
    assert client.parent.span_id == parent.context.span_id
    assert server.attributes is not None and server.attributes["rpc.system"] == "grpc"


def test_log_lines_carry_the_trace_id(spans: InMemorySpanExporter) -> None:
    assert add_trace_ids(None, "info", {}) == {}
    tracer = trace.get_tracer("test", tracer_provider=None)
    from libs.common import tracing

    assert tracing._tracer is not None
    with tracing._tracer.start_as_current_span("work") as span:
        line = add_trace_ids(None, "info", {"event": "rpc"})
    assert tracer is not None
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")
