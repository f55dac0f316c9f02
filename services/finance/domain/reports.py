"""Reports built from maintained balances: trial balance, budget against actual by POA."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.finance.domain.budgets import BudgetPosition
from services.finance.domain.chart import PoaCategory
from services.finance.domain.money import ZERO


@dataclass(frozen=True)
class TrialBalanceRow:
    account: str
    account_display_name: str
    cost_centre: str
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True)
class TrialBalance:
    ledger: str
    year: int
    through: int
    rows: tuple[TrialBalanceRow, ...]

    @property
    def total_debit(self) -> Decimal:
        return sum((r.debit for r in self.rows), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((r.credit for r in self.rows), ZERO)


def trial_balance(
    ledger: str,
    year: int,
    through: int,
    nets: Sequence[tuple[str, str, Decimal]],
    account_names: Mapping[str, str],
) -> TrialBalance:
    """Rows from (account, cost centre, net debit); nothing for a zero balance."""
    rows = tuple(
        TrialBalanceRow(
            account,
            account_names.get(account, ""),
            cost_centre,
            net if net > 0 else ZERO,
            -net if net < 0 else ZERO,
        )
        for account, cost_centre, net in nets
        if net != 0
    )
    return TrialBalance(ledger, year, through, rows)


@dataclass(frozen=True)
class BudgetReportRow:
    category: PoaCategory
    budget: Decimal
    actual: Decimal
    committed: Decimal

    @property
    def available(self) -> Decimal:
        return self.budget - self.actual - self.committed


def budget_by_poa(
    positions: Sequence[BudgetPosition], categories: Mapping[str, PoaCategory]
) -> list[BudgetReportRow]:
    totals: dict[PoaCategory, list[Decimal]] = {}
    for p in positions:
        category = categories[p.budget.cost_centre]
        t = totals.setdefault(category, [ZERO, ZERO, ZERO])
        t[0] += p.budget.amount
        t[1] += p.actual
        t[2] += p.budget.committed
    order = list(PoaCategory)
    return [BudgetReportRow(c, *totals[c]) for c in sorted(totals, key=order.index)]
