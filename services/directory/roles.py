"""Roles of the directory and the permissions they grant."""

from __future__ import annotations

from libs.common.operations import ROLES as OPERATIONS_ROLES

# Every signed-in caller may read the directory and the agreements its organisation is
# party to (the data layer shows only those).
EVERYONE = frozenset(
    {
        "directory.organisations.get",
        "directory.organisations.list",
        "directory.agreements.get",
        "directory.agreements.list",
    }
)

ROLES: dict[str, frozenset[str]] = {
    "directory.admin": frozenset({"directory.organisations.*", "directory.agreements.*"}),
    # The back-office services' own principals resolve agreements into grants.
    "service.grants_reader": frozenset({"directory.grants.list"}),
    # Shared-service operations staff and auditors: this service's outbox and audit log
    # (libs/common/operations.py).
    **OPERATIONS_ROLES,
}
