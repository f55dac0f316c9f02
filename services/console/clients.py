"""The console's only way to the data: the services' gRPC APIs, called like any client
with the signed-in user's bearer token (as the gateway forwards it). The services decide
access; a refusal comes back as a `Refusal` carrying their google.rpc.Status, decoded. A call
that failed on the way (no connection, no answer in time) is shown as the gateway shows it:
BACKEND_UNAVAILABLE in plain words, gRPC's own message (which names addresses inside the
cluster) only in the log (`libs.common.grpc_errors.public_status`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2

from backoffice.directory.v1 import directory_service_pb2_grpc
from backoffice.finance.v1 import finance_service_pb2_grpc
from backoffice.hr.v1 import hr_service_pb2_grpc
from backoffice.operations.v1 import operations_service_pb2_grpc
from backoffice.procurement.v1 import procurement_service_pb2_grpc
from libs.common.grpc_errors import public_status, refusal_details, status_of_rpc_error
from services.gateway.errors import http_status

SERVICES = ("directory", "procurement", "finance", "hr")
DEFAULT_TIMEOUT_SECONDS = 30.0
R = TypeVar("R", bound=Message)


@dataclass
class Refusal(Exception):
    """A service's answer other than OK, readably: code, message, reason, field violations."""

    code: str
    message: str
    reason: str = ""
    violations: list[tuple[str, str]] = field(default_factory=list)
    http_status: int = 500
    service: str = ""

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code}{reason}: {self.message}"

    @classmethod
    def of(cls, err: grpc.aio.AioRpcError, service: str = "", method: str = "") -> Refusal:
        status = public_status(status_of_rpc_error(err), method or service)
        reason, _, violations = refusal_details(status)
        return cls(
            code=code_pb2.Code.Name(status.code),
            message=status.message,
            reason=reason,
            violations=violations,
            http_status=http_status(status.code),
            service=service,
        )


class Backends:
    """One channel per service address, shared by every request; stubs per service."""

    def __init__(self, targets: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._channels = {
            name: grpc.aio.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")])
            for name, target in targets.items()
        }
        self.directory = directory_service_pb2_grpc.DirectoryServiceStub(self._channels["directory"])
        self.procurement = procurement_service_pb2_grpc.ProcurementServiceStub(self._channels["procurement"])
        self.finance = finance_service_pb2_grpc.FinanceServiceStub(self._channels["finance"])
        self.hr = hr_service_pb2_grpc.HrServiceStub(self._channels["hr"])
        self.operations = {
            name: operations_service_pb2_grpc.OperationsServiceStub(channel)
            for name, channel in self._channels.items()
        }

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    def session(self, token: str, request_id: str = "") -> Session:
        return Session(self, token, request_id)


class Session:
    """Calls made for one signed-in user: each carries `authorization: Bearer <token>`."""

    def __init__(self, backends: Backends, token: str, request_id: str = "") -> None:
        self.backends = backends
        self._metadata: list[tuple[str, str]] = [("authorization", f"Bearer {token}")]
        if request_id:
            self._metadata.append(("x-request-id", request_id))

    async def call(self, method: Callable[..., Awaitable[R]], request: Message, service: str = "") -> R:
        try:
            return await method(request, metadata=self._metadata, timeout=self.backends.timeout)
        except grpc.aio.AioRpcError as err:
            raise Refusal.of(err, service, request.DESCRIPTOR.full_name) from err

    @property
    def b(self) -> Backends:
        return self.backends

    def stub(self, name: str) -> Any:
        return getattr(self.backends, name)
