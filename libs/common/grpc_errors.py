"""Domain errors to google.rpc.Status: the right code, one ErrorInfo with a stable
reason, BadRequest field violations for bad input (AIP-193)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from libs.common.errors import ERROR_DOMAIN, DomainError, InvalidArgument


def domain_error_status(err: DomainError) -> grpc.Status:
    details: list[any_pb2.Any] = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=ERROR_DOMAIN, metadata=err.metadata))
    details.append(info)
    if isinstance(err, InvalidArgument):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in err.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    status = status_pb2.Status(code=code_pb2.Code.Value(err.code), message=err.message, details=details)
    return rpc_status.to_status(status)


def internal_status(request_id: str) -> grpc.Status:
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"request_id": request_id}
        )
    )
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; the service operators can trace it by request id {request_id}",
        details=[info],
    )
    return rpc_status.to_status(status)
