"""Domain errors: plain Python, raised by domain and service code, mapped to gRPC statuses
(google.rpc.Status with ErrorInfo and BadRequest details) at the edge by `grpc_errors`.

Each error carries a stable UPPER_SNAKE_CASE reason (AIP-193) so that a caller's code can
branch on it, and a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

ERROR_DOMAIN = "backoffice.police.uk"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, named by its path (`supplier.vat_number`)."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error that the services report to callers on purpose."""

    code: ClassVar[str] = "UNKNOWN"
    default_reason: ClassVar[str] = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: list[FieldViolation],
        message: str | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        self.violations = list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or f"invalid request: {summary}", reason=reason)

    @classmethod
    def single(cls, field_path: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field_path, description)])


class NotFound(DomainError):
    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"

    def __init__(self, resource_name: str, message: str | None = None) -> None:
        super().__init__(
            message or f"{resource_name} does not exist or is not visible to you",
            metadata={"resource": resource_name},
        )
        self.resource_name = resource_name


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class Aborted(DomainError):
    code = "ABORTED"
    default_reason = "ABORTED"


class Unavailable(DomainError):
    """Another service this call depends on does not answer: retry later."""

    code = "UNAVAILABLE"
    default_reason = "DEPENDENCY_UNAVAILABLE"


class EtagMismatch(Aborted):
    default_reason = "ETAG_MISMATCH"

    def __init__(self, resource_name: str, current_etag: str) -> None:
        super().__init__(
            f"{resource_name} has changed since you read it; read it again and retry",
            metadata={"resource": resource_name, "current_etag": current_etag},
        )


@dataclass
class Violations:
    """Collects every bad field of a request so that one error reports all of them."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def check(self, ok: bool, field_path: str, description: str) -> bool:
        if not ok:
            self.add(field_path, description)
        return ok

    def extend(self, prefix: str, violations: list[FieldViolation]) -> None:
        for v in violations:
            self.add(f"{prefix}.{v.field}" if prefix else v.field, v.description)

    def parsed(self, parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """What `parse(*args)` returns, or None with its violations kept: one bad field
        of a request must not hide the next."""
        try:
            return parse(*args, **kwargs)
        except InvalidArgument as err:
            self.items.extend(err.violations)
            return None

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)

    def raise_with(self, check: Callable[[], object]) -> None:
        """If a field could not be read (kept here, and read as none), raise it with every
        other bad field `check` finds; a field kept here keeps its own description rather
        than `check`'s "is required"."""
        if not self.items:
            return
        try:
            check()
        except InvalidArgument as err:
            kept = {v.field for v in self.items}
            self.items.extend(v for v in err.violations if v.field not in kept)
        self.raise_if_any()

    def __bool__(self) -> bool:
        return bool(self.items)
