"""Roles of the finance service and the permissions they grant."""

from __future__ import annotations

from libs.common.operations import ROLES as OPERATIONS_ROLES

# Reading the chart, to code a journal, an invoice or a commitment.
_CHART_READ = frozenset({"finance.ledgers.list", "finance.accounts.list", "finance.cost_centres.list"})
# Every read of the service, for those who examine rather than change.
_READ_ALL = _CHART_READ | frozenset(
    {
        "finance.periods.list",
        "finance.journals.get",
        "finance.journals.list",
        "finance.budgets.get",
        "finance.budgets.list",
        "finance.commitments.get",
        "finance.commitments.list",
        "finance.invoices.get",
        "finance.invoices.list",
        "finance.recharges.get",
        "finance.recharges.list",
        "finance.reports.*",
    }
)
# Beyond the budget: the permission a RaiseCommitment override needs (not an RPC's own).
OVERRIDE_PERMISSION = "finance.commitments.override"

ROLES: dict[str, frozenset[str]] = {
    # A force's (or unit's) finance officer keeps the books: chart, periods, journals,
    # budgets, recharges, and reads every report.
    "finance.officer": _READ_ALL
    | frozenset(
        {
            "finance.ledgers.*",
            "finance.accounts.*",
            "finance.cost_centres.*",
            "finance.periods.*",
            "finance.journals.*",
            "finance.budgets.*",
            "finance.recharges.*",
        }
    ),
    # A budget holder commits, consumes and releases against the budgets they hold.
    "finance.budget_holder": _CHART_READ
    | frozenset(
        {
            "finance.budgets.get",
            "finance.budgets.list",
            "finance.commitments.raise",
            "finance.commitments.get",
            "finance.commitments.list",
            "finance.commitments.consume",
            "finance.commitments.release",
            "finance.reports.budget",
        }
    ),
    # A budget manager may also set and revise budgets and override the budget check.
    "finance.budget_manager": _CHART_READ
    | frozenset(
        {"finance.budgets.*", "finance.commitments.*", "finance.reports.budget", OVERRIDE_PERMISSION}
    ),
    # The accounts payable team (usually the shared-service unit's): invoices and payments.
    "finance.payables": _CHART_READ
    | frozenset({"finance.invoices.*", "finance.payments.run", "finance.commitments.get"}),
    # The chief finance officer prepares the returns: reads everything.
    "finance.cfo": _READ_ALL,
    # An auditor reads everything and changes nothing.
    "finance.auditor": _READ_ALL,
    # The procurement service's own calls (its outbox relay, on behalf of the organisation
    # whose order it is): raise, consume (as goods are received) and release commitments,
    # nothing else. The override permission is here because procurement decides who may
    # override (`procurement.orders.override_budget`) and passes the reason on.
    "service.procurement": frozenset(
        {
            "finance.commitments.raise",
            "finance.commitments.consume",
            "finance.commitments.release",
            OVERRIDE_PERMISSION,
        }
    ),
    # Shared-service operations staff and auditors: this service's outbox and audit log
    # (libs/common/operations.py).
    **OPERATIONS_ROLES,
}
