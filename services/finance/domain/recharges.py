"""Recharges between organisations: each side posts its own balanced journal, linked."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
from decimal import Decimal

from libs.common.errors import FailedPrecondition
from libs.common.records import RecordInfo
from services.finance.domain.journals import JournalLine


class RechargeState(enum.Enum):
    RAISED = "RAISED"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    CANCELLED = "CANCELLED"


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
    decline_reason: str = ""
    cancel_reason: str = ""
    cancellation_journal: str = ""

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
            "decline_reason": self.decline_reason,
            "cancel_reason": self.cancel_reason,
            "cancellation_journal": self.cancellation_journal,
        }

    def require_raised(self) -> None:
        if self.state is not RechargeState.RAISED:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value.lower()}, not raised",
                reason="RECHARGE_NOT_RAISED",
                metadata={"state": self.state.value},
            )

    def declined(self, acting_for: str, reason: str, info: RecordInfo) -> Recharge:
        """Refused by the organisation charged; the charging side's books are its own to
        correct (by cancelling)."""
        if acting_for != self.counterparty:
            raise FailedPrecondition(
                f"only the organisation charged, {self.counterparty}, declines {self.name}",
                reason="NOT_CHARGED_ORGANISATION",
            )
        self.require_raised()
        return replace(self, state=RechargeState.DECLINED, decline_reason=reason, info=info)

    def cancelled(self, reason: str, reversal: str, info: RecordInfo) -> Recharge:
        return replace(
            self,
            state=RechargeState.CANCELLED,
            cancel_reason=reason,
            cancellation_journal=reversal,
            info=info,
        )

    def require_cancellable(self) -> None:
        """Before the charged side posts: once accepted, both ledgers carry it, and a
        correction is a recharge the other way."""
        if self.state not in (RechargeState.RAISED, RechargeState.DECLINED):
            raise FailedPrecondition(
                f"{self.name} is {self.state.value.lower()}: only a raised or declined recharge is cancelled",
                reason="RECHARGE_NOT_CANCELLABLE",
                metadata={"state": self.state.value},
            )


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
