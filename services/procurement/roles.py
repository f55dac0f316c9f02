"""Roles of the procurement service and the permissions they grant."""

from __future__ import annotations

ROLES: dict[str, frozenset[str]] = {
    # A force's buyer reads the register to raise requisitions and orders.
    "procurement.buyer": frozenset({"procurement.suppliers.get", "procurement.suppliers.list"}),
    # A budget holder approves spending; reads suppliers to know who is paid.
    "procurement.budget_holder": frozenset({"procurement.suppliers.get", "procurement.suppliers.list"}),
    # Commercial officers (usually the shared-service unit's) keep the register.
    "procurement.commercial": frozenset({"procurement.suppliers.*"}),
}
