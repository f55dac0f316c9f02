"""Roles of the procurement service and the permissions they grant."""

from __future__ import annotations

from libs.common.operations import ROLES as OPERATIONS_ROLES
from services.procurement.domain.policy import BUDGET_HOLDER, CHIEF_FINANCE_OFFICER, SENIOR_BUDGET_HOLDER

# Beyond the methods' own permissions: who may read OFFICIAL-SENSITIVE supplier bank details.
READ_BANK_DETAILS = "procurement.suppliers.bank_details"
# Beyond IssuePurchaseOrder's own permission: issuing beyond the budget, with a reason.
OVERRIDE_BUDGET = "procurement.orders.override_budget"

_READ_REGISTER = {"procurement.suppliers.get", "procurement.suppliers.list"}
_READ_ORDERING = {
    "procurement.requisitions.get",
    "procurement.requisitions.list",
    "procurement.orders.get",
    "procurement.orders.list",
    "procurement.contracts.get",
    "procurement.contracts.list",
    "procurement.policy.get",
    "procurement.demand.get",
}
_APPROVE = {"procurement.requisitions.decide", *_READ_REGISTER, *_READ_ORDERING}

ROLES: dict[str, frozenset[str]] = {
    # A force's requester raises requisitions.
    "procurement.requester": frozenset({"procurement.requisitions.create", *_READ_REGISTER, *_READ_ORDERING}),
    # A buyer also raises, issues and receives orders, and adds demand to aggregations.
    "procurement.buyer": frozenset(
        {
            "procurement.requisitions.create",
            "procurement.orders.create",
            "procurement.orders.issue",
            "procurement.receipts.create",
            "procurement.demand.add",
            *_READ_REGISTER,
            *_READ_ORDERING,
        }
    ),
    # Approvers under the scheme of delegation; which band each may approve is the policy's.
    BUDGET_HOLDER: frozenset(_APPROVE),
    SENIOR_BUDGET_HOLDER: frozenset(_APPROVE),
    CHIEF_FINANCE_OFFICER: frozenset({*_APPROVE, "procurement.policy.update", OVERRIDE_BUDGET}),
    # Commercial officers (usually the shared-service unit's) keep the register and the
    # contracts, lead collaborative buying and set the procurement policy.
    "procurement.commercial": frozenset(
        {
            # Explicit, not suppliers.*: bank details are finance's to read.
            "procurement.suppliers.create",
            "procurement.suppliers.update",
            "procurement.suppliers.debar",
            *_READ_REGISTER,
            "procurement.contracts.*",
            "procurement.demand.*",
            "procurement.policy.*",
            *_READ_ORDERING,
        }
    ),
    # Finance staff see the register with bank details, and the orders they pay.
    "finance.payables": frozenset({READ_BANK_DETAILS, *_READ_REGISTER, *_READ_ORDERING}),
    # The finance service's own calls (the three-way match, on behalf of the invoice's
    # organisation): it reads orders, with their lines and what was received, and no more.
    "service.finance": frozenset({"procurement.orders.get"}),
    # Shared-service operations staff and auditors: this service's outbox and audit log
    # (libs/common/operations.py).
    **OPERATIONS_ROLES,
}
