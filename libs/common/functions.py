"""The business functions an agreement can open, in the users' words. Every access rule
in the protos names one of these (a test holds them in step)."""

from __future__ import annotations

BUSINESS_FUNCTIONS: dict[str, str] = {
    "directory.organisations": "read and onboard organisations",
    "directory.agreements": "record and end agreements on the organisation's behalf",
    "directory.grants": "resolve agreements into grants (the services themselves)",
    "procurement.suppliers": "keep and read the supplier register",
    "procurement.ordering": "requisitions, purchase orders and goods receipts",
    "procurement.contracts": "frameworks and contracts",
    "hr.records": "people, posts and the establishment",
    "hr.absence": "leave and sickness",
    "hr.training": "training and accreditation records",
    "hr.vetting": "vetting clearances",
    "hr.statistics": "workforce statistics and the gender pay gap",
    "hr.headcount": "headcount and FTE as at a date, to allocate shared costs by",
    "finance.ledger": "chart of accounts, journals and periods",
    "finance.budgets": "budgets and commitments",
    "finance.payables": "supplier invoices and payments",
    "finance.reporting": "statutory and management reports",
    "operations.outbox": "see, retry and discard parked cross-service events",
    "operations.audit": "verify the audit log",
}

# Functions a shared-service unit or partner may be given by an agreement.
AGREEABLE_FUNCTIONS = frozenset(f for f in BUSINESS_FUNCTIONS if f != "directory.grants")
