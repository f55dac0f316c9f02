"""The server's interceptor and its stages, outermost first: logging, errors,
authentication.

Logging opens the call (request id, timing) and writes one line when it ends; errors
turns domain errors into statuses and anything unexpected into INTERNAL with the stack
trace in the log only; authentication verifies the bearer token and the method's
declared access rule (deny by default). `CallPipeline` is the one grpc.aio interceptor
that runs them.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import grpc
import structlog

from libs.common.access import AccessRule, RoleCatalogue, check_permission
from libs.common.auth import TokenVerifier
from libs.common.context import Call, current_call, reset_call, set_call
from libs.common.errors import DomainError, PermissionDenied, Unauthenticated
from libs.common.grpc_access import PUBLIC_SERVICES
from libs.common.grpc_errors import domain_error_status, internal_status
from libs.common.grpc_types import RpcContext
from libs.common.logging import get_logger
from libs.common.metrics import RpcMetrics
from libs.common.proto_mapping import check_text_storable
from libs.common.tracing import end_span, server_span

log = get_logger("backoffice.rpc")

Behaviour = Callable[[Any, RpcContext], Awaitable[Any]]

_CORRELATION_ID = re.compile(r"[!-~]{1,100}")  # printable ASCII, as long as the audit column


def _metadata(pairs: Any) -> dict[str, str]:
    return {str(k).lower(): v for k, v in pairs or () if isinstance(v, str)}


def _is_public(method: str) -> bool:
    return method.split("/")[1] in PUBLIC_SERVICES if method.count("/") == 2 else False


class CallPipeline(grpc.aio.ServerInterceptor):
    """The server's one interceptor: runs the stages, outermost first, around every unary
    call of our own services, and passes public services (health, reflection) through.

    grpc.aio asks the interceptor for the handler on every call. Each method's wrapped
    handler is built once and kept (the handler a service registered for a method does
    not change); the call's metadata is read from its context. Stacking the stages as three
    interceptors built three handlers and three closures per call.
    """

    def __init__(self, *stages: _UnaryInterceptor) -> None:
        self._stages = stages
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        method = details.method
        if handler is None or _is_public(method):
            return handler
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is None:
            for stage in reversed(self._stages):
                handler = stage.refuse_streaming(handler, method)
            if handler.unary_unary is None:
                return handler
        chain = _Link.chain(self._stages, cast(Behaviour, handler.unary_unary), method)

        async def behaviour(request: Any, context: RpcContext) -> Any:
            return await chain(request, context, _metadata(context.invocation_metadata()))

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class _Link:
    """One stage around the rest of the chain, for one method."""

    def __init__(self, stage: _UnaryInterceptor, rest: _Link | None, inner: Behaviour, method: str) -> None:
        self._stage, self._rest, self._inner, self._method = stage, rest, inner, method

    @staticmethod
    def chain(stages: tuple[_UnaryInterceptor, ...], inner: Behaviour, method: str) -> _Link:
        link: _Link | None = None
        for stage in reversed(stages):
            link = _Link(stage, link, inner, method)
        assert link is not None, "a pipeline needs a stage"
        return link

    async def __call__(self, request: Any, context: RpcContext, metadata: Mapping[str, str]) -> Any:
        rest = self._rest
        if rest is None:
            return await self._stage.around(self._inner, request, context, self._method, metadata)

        async def inner(request: Any, context: RpcContext) -> Any:
            return await rest(request, context, metadata)

        return await self._stage.around(inner, request, context, self._method, metadata)


class _UnaryInterceptor:
    """A stage of the pipeline, around one unary-unary call of our own services."""

    def refuse_streaming(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return handler

    async def around(
        self,
        inner: Behaviour,
        request: Any,
        context: RpcContext,
        method: str,
        metadata: Mapping[str, str],
    ) -> Any:
        raise NotImplementedError


class LoggingInterceptor(_UnaryInterceptor):
    """Also the call's metrics (count by code, latency) and, when tracing is on, its span."""

    def __init__(self, service: str = "") -> None:
        self._metrics = RpcMetrics(service) if service else None

    async def around(
        self,
        inner: Behaviour,
        request: Any,
        context: RpcContext,
        method: str,
        metadata: Mapping[str, str],
    ) -> Any:
        with server_span(method, metadata) as span:
            return await self._logged(inner, request, context, method, metadata, span=span)

    async def _logged(
        self,
        inner: Behaviour,
        request: Any,
        context: RpcContext,
        method: str,
        metadata: Mapping[str, str],
        *,
        span: Any,
    ) -> Any:
        given = metadata.get("x-request-id", "")
        # A caller's correlation id is kept (and audited) only if it fits the audit column
        # and a log line: else a new one, rather than every write failing on PostgreSQL.
        request_id = given if _CORRELATION_ID.fullmatch(given) else str(uuid.uuid4())
        call = Call(method=method, request_id=request_id)
        token = set_call(call)
        structlog.contextvars.bind_contextvars(method=method, request_id=request_id)
        started = time.perf_counter()
        code = "OK"
        try:
            return await inner(request, context)
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except BaseException:
            code = call.extra.get("code", "UNKNOWN")
            raise
        finally:
            elapsed = time.perf_counter() - started
            principal = call.principal
            log.info(
                "rpc",
                code=code,
                duration_ms=round(elapsed * 1000, 2),
                organisation=principal.organisation if principal else None,
                principal=principal.id if principal else None,
                acting_for=call.acting_for,
                reason=call.extra.get("reason"),
            )
            if self._metrics is not None:
                self._metrics.observe(method, code, elapsed)
            end_span(span, code)
            structlog.contextvars.clear_contextvars()
            reset_call(token)


class ErrorInterceptor(_UnaryInterceptor):
    async def around(
        self,
        inner: Behaviour,
        request: Any,
        context: RpcContext,
        method: str,
        metadata: Mapping[str, str],
    ) -> Any:
        call = current_call()
        try:
            return await inner(request, context)
        except DomainError as err:
            call.extra.update(code=err.code, reason=err.reason)
            await context.abort_with_status(domain_error_status(err))
        except grpc.aio.AbortError:
            raise
        except Exception:
            call.extra.update(code="INTERNAL", reason="INTERNAL")
            log.exception("unexpected error", method=method)
            await context.abort_with_status(internal_status(call.request_id))
        raise AssertionError("unreachable: abort_with_status raises")


class AuthInterceptor(_UnaryInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        rules: Mapping[str, AccessRule | None],
        catalogue: RoleCatalogue,
    ) -> None:
        self._verifier = verifier
        self._rules = dict(rules)
        self._catalogue = catalogue

    def refuse_streaming(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        async def refuse(request: Any, context: RpcContext) -> Any:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} declares no access rule")

        return grpc.unary_unary_rpc_method_handler(refuse)

    async def around(
        self,
        inner: Behaviour,
        request: Any,
        context: RpcContext,
        method: str,
        metadata: Mapping[str, str],
    ) -> Any:
        call = current_call()
        rule = self._rules.get(method)
        if rule is None:
            raise PermissionDenied(
                f"{method} declares no access rule, so nobody may call it",
                reason="NO_ACCESS_RULE",
            )
        header = metadata.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("send a bearer token in the authorization metadata", reason="TOKEN_MISSING")
        principal = self._verifier.verify(token.strip())
        call.principal = principal
        call.rule = rule
        structlog.contextvars.bind_contextvars(principal=principal.id)
        check_permission(principal, rule, self._catalogue)
        # After the caller is known, before any servicer: one rule for every method's text.
        check_text_storable(request)
        return await inner(request, context)
