"""Access rules read from the `(backoffice.common.v1.access)` option of each method."""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from backoffice.common.v1 import access_pb2
from libs.common.access import AccessKind, AccessRule

# Infrastructure services every caller (and a Kubernetes probe) may use without a token.
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

_KINDS = {access_pb2.ACCESS_KIND_READ: AccessKind.READ, access_pb2.ACCESS_KIND_WRITE: AccessKind.WRITE}


def rule_of(method: object) -> AccessRule | None:
    options = method.GetOptions()  # type: ignore[attr-defined]
    if not options.HasExtension(access_pb2.access):
        return None
    declared = options.Extensions[access_pb2.access]
    kind = _KINDS.get(declared.kind)
    if not declared.permission or not declared.function or kind is None:
        return None
    return AccessRule(permission=declared.permission, function=declared.function, kind=kind)


def rules_of(*services: ServiceDescriptor) -> dict[str, AccessRule | None]:
    """`/package.Service/Method` -> its rule, or None where a method declares none."""
    return {
        f"/{service.full_name}/{method.name}": rule_of(method)
        for service in services
        for method in service.methods
    }
