"""OpenTelemetry tracing: off by default, one span per RPC when on, context carried across
services in the W3C `traceparent` metadata.

Configure with the environment (see `TracingSettings` in config.py):

    BACKOFFICE_TRACING__EXPORTER=otlp            # none (default) | otlp | console
    BACKOFFICE_TRACING__ENDPOINT=http://otel-collector.monitoring:4317
    BACKOFFICE_TRACING__SAMPLE_RATIO=0.1         # of new traces; a caller's decision is kept

The server side is in the logging interceptor (`server_span`), so the log line of a call
carries its trace id; the client side is `client_interceptors()` on the channels a service
opens to another (the directory, today). With tracing off neither adds any work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from libs.common.config import Settings

_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None


def _exporter(settings: Settings) -> SpanExporter:
    if settings.tracing.exporter == "console":
        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError as err:  # pragma: no cover - depends on the installed extra
        raise RuntimeError(
            "BACKOFFICE_TRACING__EXPORTER=otlp needs the OTLP exporter: pip install 'backoffice[otlp]'"
        ) from err
    # Without an endpoint the exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (or localhost:4317).
    if settings.tracing.endpoint:
        return OTLPSpanExporter(endpoint=settings.tracing.endpoint)
    return OTLPSpanExporter()


def configure_tracing(
    settings: Settings, service_name: str, *, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Turn tracing on as the settings say (or with `processor`, as tests do); None if off."""
    global _tracer, _provider  # noqa: PLW0603
    shutdown_tracing()
    if processor is None and settings.tracing.exporter == "none":
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name, "service.namespace": "backoffice"}),
        sampler=ParentBased(TraceIdRatioBased(settings.tracing.sample_ratio)),
    )
    provider.add_span_processor(processor or BatchSpanProcessor(_exporter(settings)))
    _provider = provider
    _tracer = provider.get_tracer("backoffice")
    return provider


def shutdown_tracing() -> None:
    """Flush and stop (at the end of a drain, or between tests)."""
    global _tracer, _provider  # noqa: PLW0603
    if _provider is not None:
        _provider.shutdown()
    _tracer = None
    _provider = None


def enabled() -> bool:
    return _tracer is not None


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


@contextmanager
def server_span(method: str, metadata: Mapping[str, str]) -> Iterator[Span | None]:
    """The span of one incoming call, child of the caller's span if it sent one."""
    if _tracer is None:
        yield None
        return
    parent = propagate.extract(metadata)
    with _tracer.start_as_current_span(
        method.lstrip("/"),
        context=parent,
        kind=SpanKind.SERVER,
        attributes=_rpc_attributes(method),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def end_span(span: Span | None, code: str) -> None:
    """Record the call's gRPC status on its span (errors are server faults only)."""
    if span is None:
        return
    span.set_attribute("rpc.grpc.status_code_name", code)
    if code in {"UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED", "UNIMPLEMENTED"}:
        span.set_status(Status(StatusCode.ERROR, code))


class _ClientTracing(grpc.aio.UnaryUnaryClientInterceptor):
    """A client span per outgoing call, its context injected as `traceparent`."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        tracer = _tracer
        if tracer is None:
            return await continuation(client_call_details, request)
        method = client_call_details.method
        method = method.decode() if isinstance(method, bytes) else str(method)
        with tracer.start_as_current_span(
            method.lstrip("/"), kind=SpanKind.CLIENT, attributes=_rpc_attributes(method)
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            metadata = grpc.aio.Metadata(*tuple(client_call_details.metadata or ()))
            for key, value in carrier.items():
                metadata.add(key, value)
            details = grpc.aio.ClientCallDetails(
                method=client_call_details.method,
                timeout=client_call_details.timeout,
                metadata=metadata,
                credentials=client_call_details.credentials,
                wait_for_ready=client_call_details.wait_for_ready,
            )
            call = await continuation(details, request)
            code = await call.code()
            span.set_attribute("rpc.grpc.status_code_name", code.name)
            if code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            return call


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for a channel to another service: none while tracing is off."""
    return [_ClientTracing()] if _tracer is not None else []
