"""Domain errors to google.rpc.Status: the right code, one ErrorInfo with a stable
reason, BadRequest field violations for bad input (AIP-193)."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from libs.common.errors import ERROR_DOMAIN, DomainError, InvalidArgument
from libs.common.logging import get_logger

log = get_logger("backoffice.calls")


def domain_error_status(err: DomainError) -> grpc.Status:
    violations = (
        [(v.field, v.description) for v in err.violations] if isinstance(err, InvalidArgument) else None
    )
    return rpc_status.to_status(
        reason_status(code_pb2.Code.Value(err.code), err.reason, err.message, violations, err.metadata)
    )


def _pack(detail: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def reason_status(
    code: int,
    reason: str,
    message: str,
    violations: list[tuple[str, str]] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> status_pb2.Status:
    """A status with its code, an ErrorInfo with the reason (and metadata) and, when given,
    BadRequest field violations: what a service answers, and what a client of the services
    (the gateway, the console) builds itself."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))]
    if violations is not None:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                        for f, d in violations
                    ]
                )
            )
        )
    return status_pb2.Status(code=code, message=message, details=details)


def internal_status(request_id: str) -> grpc.Status:
    return rpc_status.to_status(
        reason_status(
            code_pb2.INTERNAL,
            "INTERNAL",
            f"internal error; the service operators can trace it by request id {request_id}",
            metadata={"request_id": request_id},
        )
    )


_DETAILS_KEY = "grpc-status-details-bin"


def status_of_rpc_error(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status the service sent (its details), or one built from the code."""
    code = err.code().value[0]
    for key, value in err.trailing_metadata() or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            if status.code == code:
                return status
    return status_pb2.Status(code=code, message=err.details() or "")


def refusal_details(status: status_pb2.Status) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """What a refusal says beyond its code: the reason and metadata of its ErrorInfo, and
    the fields its BadRequest names."""
    reason, metadata, violations = "", {}, []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return reason, metadata, violations


# A call that ended with one of these and no status the service built itself (no details)
# failed on the way: no connection, no answer in time. gRPC's own message then names the
# service's address inside the cluster ("connections to all backends failing; last error:
# ... ipv4:10.0.3.7:50052 ..."), which is for the log, not for the caller.
TRANSPORT_CODES = frozenset(
    {
        code_pb2.UNAVAILABLE,
        code_pb2.DEADLINE_EXCEEDED,
        code_pb2.UNKNOWN,
        code_pb2.INTERNAL,
        code_pb2.CANCELLED,
    }
)


def public_status(status: status_pb2.Status, method: str) -> status_pb2.Status:
    """What a client of the services (the gateway, the console) tells its own caller about
    a call to `method` that failed: the service's status as it came, or, when the call
    failed on the way, the same code with reason BACKEND_UNAVAILABLE in plain words (the
    transport's own message is logged)."""
    if status.details or status.code not in TRANSPORT_CODES:
        return status
    log.warning("backend_call_failed", method=method, code=status.code, detail=status.message)
    name = code_pb2.Code.Name(status.code)
    return reason_status(
        status.code, "BACKEND_UNAVAILABLE", f"the service did not answer ({name}); retry later"
    )
