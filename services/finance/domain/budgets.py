"""Budgets and commitments: available = budget - actuals - open commitments."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from decimal import Decimal

from libs.common.errors import FailedPrecondition, PermissionDenied, Violations
from libs.common.records import RecordInfo
from services.finance.domain.money import ZERO, whole_pence
from services.finance.domain.periods import PeriodKey

MAX_REASON = 500


class CommitmentState(enum.Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


def check_amount(v: Violations, amount: Decimal, field_path: str, *, positive: bool) -> None:
    ok = (amount > 0 if positive else amount >= 0) and whole_pence(amount)
    v.check(ok, field_path, f"must be {'more than' if positive else 'at least'} zero, in whole pence")


def check_reason(v: Violations, reason: str, field_path: str) -> str:
    text = reason.strip()
    v.check(0 < len(text) <= MAX_REASON, field_path, f"is required, at most {MAX_REASON} characters")
    return text


@dataclass(frozen=True)
class Budget:
    organisation: str
    ledger: str
    id: str
    cost_centre: str
    account: str
    period: PeriodKey
    amount: Decimal
    committed: Decimal
    revisions: int
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/budgets/{self.id}"

    def audit_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "cost_centre": self.cost_centre,
            "account": self.account,
            "period": str(self.period),
            "amount": str(self.amount),
            "committed": str(self.committed),
            "revisions": self.revisions,
        }


@dataclass(frozen=True)
class BudgetPosition:
    """A budget with what has been spent against it."""

    budget: Budget
    actual: Decimal

    @property
    def available(self) -> Decimal:
        return self.budget.amount - self.actual - self.budget.committed


def check_commitment(
    position: BudgetPosition, amount: Decimal, override_reason: str, *, may_override: bool
) -> None:
    """Refuses a commitment the budget cannot hold, unless overridden with a reason by
    someone allowed to."""
    if override_reason and not may_override:
        raise PermissionDenied(
            "overriding a budget needs the permission finance.commitments.override",
            reason="OVERRIDE_NOT_PERMITTED",
            metadata={"permission": "finance.commitments.override"},
        )
    if amount > position.available and not override_reason:
        raise FailedPrecondition(
            f"{position.budget.name} has {position.available} available; {amount} cannot be committed",
            reason="BUDGET_EXCEEDED",
            metadata={"budget": position.budget.name, "available": str(position.available)},
        )


@dataclass(frozen=True)
class Commitment:
    organisation: str
    ledger: str
    id: str
    budget_id: str
    amount: Decimal
    consumed: Decimal
    released: Decimal
    reference: str
    override_reason: str
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/commitments/{self.id}"

    @property
    def budget_name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/budgets/{self.budget_id}"

    @property
    def open_amount(self) -> Decimal:
        return self.amount - self.consumed - self.released

    @property
    def state(self) -> CommitmentState:
        return CommitmentState.OPEN if self.open_amount > 0 else CommitmentState.CLOSED

    def audit_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "budget": self.budget_id,
            "amount": str(self.amount),
            "consumed": str(self.consumed),
            "released": str(self.released),
            "reference": self.reference,
            "override_reason": self.override_reason,
        }

    def _require_open(self) -> None:
        if self.state is CommitmentState.CLOSED:
            raise FailedPrecondition(f"{self.name} is closed", reason="COMMITMENT_CLOSED")

    def consuming(self, amount: Decimal, info: RecordInfo) -> Commitment:
        self._require_open()
        if amount > self.open_amount:
            raise FailedPrecondition(
                f"{self.name} has {self.open_amount} open; {amount} cannot be consumed",
                reason="EXCEEDS_OPEN_AMOUNT",
                metadata={"open_amount": str(self.open_amount)},
            )
        return replace(self, consumed=self.consumed + amount, info=info)

    def consuming_to(self, level: Decimal, info: RecordInfo) -> Commitment:
        """Consumed up to `level`, a cumulative sum (what invoices have billed of it so far):
        the consumed sum becomes at least `level`, within what is open. A level already
        reached (by earlier invoices, or by a goods receipt from before receipts stopped
        consuming), or a commitment closed meanwhile, changes nothing: never counted twice,
        and a repeat counts once."""
        used = min(max(level - self.consumed, ZERO), max(self.open_amount, ZERO))
        return self if used == 0 else replace(self, consumed=self.consumed + used, info=info)

    def releasing(self, info: RecordInfo, retain_to: Decimal = ZERO) -> Commitment:
        """Releases what is open, except what `retain_to` (the cumulative value of goods
        received so far) exceeds the consumed sum by: received but not yet invoiced, it
        stays open for the invoices to consume. Zero, or a sum already consumed, releases
        all; a release of nothing (all open is received) changes nothing."""
        self._require_open()
        kept = min(self.open_amount, max(retain_to - self.consumed, ZERO))
        released = self.open_amount - kept
        return self if released == 0 else replace(self, released=self.released + released, info=info)
