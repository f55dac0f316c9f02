"""Recharges between organisations: each side posts its own balanced journal, linked."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

from libs.common.errors import FailedPrecondition
from libs.common.records import RecordInfo
from services.finance.domain.journals import JournalLine


class RechargeState(enum.Enum):
    RAISED = "RAISED"
    ACCEPTED = "ACCEPTED"


@dataclass(frozen=True)
class Recharge:
    organisation: str
    id: str
    ledger: str
    counterparty: str
    amount: Decimal
    description: str
    posting_date: dt.date
    income_account: str
    cost_centre: str
    state: RechargeState
    journal: str
    info: RecordInfo
    counterparty_ledger: str = ""
    counterparty_journal: str = ""
    allocation: str = ""

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/recharges/{self.id}"

    def audit_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ledger": self.ledger,
            "counterparty": self.counterparty,
            "amount": str(self.amount),
            "description": self.description,
            "state": self.state.value,
            "journal": self.journal,
            "counterparty_ledger": self.counterparty_ledger,
            "counterparty_journal": self.counterparty_journal,
        }

    def require_raised(self) -> None:
        if self.state is not RechargeState.RAISED:
            raise FailedPrecondition(f"{self.name} was already accepted", reason="RECHARGE_NOT_RAISED")


def charging_lines(recharge: Recharge, recharges_account: str) -> list[JournalLine]:
    """The charging side: a debtor for the sum, and the income."""
    text = f"recharge to {recharge.counterparty}: {recharge.description}"
    return [
        JournalLine.dr(recharges_account, "", recharge.amount, text),
        JournalLine.cr(recharge.income_account, recharge.cost_centre, recharge.amount, text),
    ]


def charged_lines(
    recharge: Recharge, expense_account: str, cost_centre: str, recharges_account: str
) -> list[JournalLine]:
    """The charged side: the expenditure, and a creditor for the sum."""
    text = f"recharge from {recharge.organisation}: {recharge.description}"
    return [
        JournalLine.dr(expense_account, cost_centre, recharge.amount, text),
        JournalLine.cr(recharges_account, "", recharge.amount, text),
    ]
