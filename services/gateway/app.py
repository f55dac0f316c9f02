"""The HTTP/JSON gateway: a small ASGI application (Starlette) that matches a request to
an RPC by its `google.api.http` rule, transcodes it, calls the service over gRPC with the
caller's bearer token unchanged, and transcodes the answer or the google.rpc.Status back.

It decides no access: the services do, from the token it forwards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from libs.common.asgi import AsgiServing, serve_asgi
from libs.common.grpc_errors import public_status, reason_status, status_of_rpc_error
from libs.common.logging import get_logger
from services.gateway.errors import http_status, status_json
from services.gateway.openapi import openapi_document
from services.gateway.routes import HTTP_METHODS, Route, routes_of
from services.gateway.transcode import BadHttpRequest, build_request, response_json

log = get_logger("backoffice.gateway")

JSON = "application/json"
# Headers passed to the services as gRPC metadata, unchanged.
FORWARDED_HEADERS = ("authorization", "x-request-id", "traceparent", "tracestate")
DEFAULT_TIMEOUT_SECONDS = 30.0


def _status_response(
    status: status_pb2.Status, http: int | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        status_json(status), status_code=http or http_status(status.code), media_type=JSON, headers=headers
    )


@dataclass(frozen=True)
class _Binding:
    route: Route
    call: grpc.aio.UnaryUnaryMultiCallable[Message, Message]
    request_class: type[Message]


class Gateway:
    """Routes and gRPC channels for a set of services, reachable at `targets` (by full
    service name)."""

    def __init__(
        self,
        descriptors: Sequence[ServiceDescriptor],
        targets: Mapping[str, str],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.routes = routes_of(descriptors)
        self.document = openapi_document(self.routes)
        self._document_json = json.dumps(self.document)
        self._timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._bindings: dict[str, list[_Binding]] = {m: [] for m in HTTP_METHODS}
        for route in self.routes:
            target = targets[route.service.full_name]
            channel = self._channels.get(target)
            if channel is None:
                channel = grpc.aio.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")])
                self._channels[target] = channel
            request_class = message_factory.GetMessageClass(route.method.input_type)
            response_class = message_factory.GetMessageClass(route.method.output_type)
            call = channel.unary_unary(
                route.rpc_path,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            self._bindings[route.http_method].append(_Binding(route, call, request_class))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    def asgi(self) -> Starlette:
        # Every other request goes to `dispatch`, which matches the HTTP rules itself
        # (Starlette's path parameters would not match every decoded path, e.g. one with %0A).
        return Starlette(
            routes=[
                StarletteRoute("/openapi.json", self.openapi, methods=["GET"]),
                StarletteRoute("/healthz", self.health, methods=["GET"]),
            ],
            exception_handlers={404: self._unrouted, 405: self._unrouted},
        )

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        return await self.dispatch(request)

    async def openapi(self, request: Request) -> Response:
        return Response(self._document_json, media_type=JSON)

    async def health(self, request: Request) -> Response:
        return Response('{"status": "SERVING"}', media_type=JSON)

    def _match(self, method: str, path: str) -> tuple[_Binding, dict[str, str]] | None:
        for binding in self._bindings.get(method, ()):
            values = binding.route.template.match(path)
            if values is not None:
                return binding, values
        return None

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        found = self._match(request.method.lower(), path)
        if found is None:
            allowed = [m.upper() for m in HTTP_METHODS if self._match(m, path)]
            said = f"no method {request.method} {path} in this API"
            if allowed:
                return _status_response(
                    reason_status(code_pb2.UNIMPLEMENTED, "METHOD_NOT_ALLOWED", said),
                    http=405,
                    headers={"Allow": ", ".join(allowed)},
                )
            return _status_response(reason_status(code_pb2.NOT_FOUND, "NO_SUCH_PATH", said))
        binding, values = found
        try:
            message = build_request(
                binding.route,
                binding.request_class,
                values,
                request.query_params.multi_items(),
                await request.body(),
            )
        except BadHttpRequest as bad:
            return _status_response(
                reason_status(
                    code_pb2.INVALID_ARGUMENT,
                    "BAD_HTTP_REQUEST",
                    f"the request does not fit {binding.route.method.full_name}: {bad}",
                    [(bad.field, bad.description)],
                )
            )
        metadata = [(h, v) for h in FORWARDED_HEADERS if (v := request.headers.get(h)) is not None]
        try:
            response = await binding.call(message, metadata=metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            return _status_response(public_status(status_of_rpc_error(err), binding.route.method.full_name))
        return Response(response_json(binding.route, response), media_type=JSON)


def service_targets(addresses: Mapping[str, str]) -> dict[str, str]:
    """Full service name -> gRPC target, from service (app) name -> address."""
    from services.suite.registry import SERVICE_APPS

    targets: dict[str, str] = {}
    for module in SERVICE_APPS:
        if module.NAME in addresses:
            for descriptor in module.DESCRIPTORS:
                targets[descriptor.full_name] = addresses[module.NAME]
    return targets


def suite_descriptors(names: Sequence[str] | None = None) -> list[ServiceDescriptor]:
    from services.suite.registry import SERVICE_APPS

    return [d for m in SERVICE_APPS if names is None or m.NAME in names for d in m.DESCRIPTORS]


@dataclass
class RunningGateway(AsgiServing):
    gateway: Gateway = field(kw_only=True)

    async def stop(self, grace: float = 0) -> None:
        await self.shutdown(grace)
        await self.gateway.close()


async def start_gateway(
    addresses: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    call_timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> RunningGateway:
    """Serve the gateway for the services at `addresses` (service name -> gRPC address)."""
    targets = service_targets(addresses)
    gateway = Gateway(suite_descriptors(list(addresses)), targets, timeout=call_timeout)
    try:
        serving = await serve_asgi(gateway.asgi(), host=host, port=port, what="gateway")
    except BaseException:
        await gateway.close()
        raise
    address = serving.address
    log.info("serving", service="gateway", address=address, routes=len(gateway.routes))
    return RunningGateway(serving.server, serving.task, serving.port, address, gateway=gateway)
