"""gRPC status to HTTP: the status code by google.rpc.Code's own mapping (AIP-193), and
the body the google.rpc.Status as JSON, details (ErrorInfo, BadRequest) included. The
statuses the gateway builds itself come from `libs.common.grpc_errors.reason_status`."""

from __future__ import annotations

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

# google/rpc/code.proto documents the HTTP mapping of every code.
HTTP_STATUS: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}


def http_status(code: int) -> int:
    return HTTP_STATUS.get(code, 500)


def status_json(status: status_pb2.Status) -> str:
    return json_format.MessageToJson(status, indent=None)
