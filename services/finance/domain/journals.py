"""Journals: balanced to the penny, immutable, corrected only by reversal."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from libs.common.errors import Violations
from libs.common.money import MAX_AMOUNT
from libs.common.records import RecordInfo
from services.finance.domain.chart import Account
from services.finance.domain.money import ZERO, whole_pence
from services.finance.domain.periods import PeriodKey

MAX_LINES = 1000
MAX_DESCRIPTION = 500


class JournalSource(enum.Enum):
    MANUAL = "MANUAL"
    REVERSAL = "REVERSAL"
    INVOICE = "INVOICE"
    PAYMENT = "PAYMENT"
    RECHARGE = "RECHARGE"


@dataclass(frozen=True)
class LineInput:
    """A line as a caller states it: exactly one of debit and credit."""

    account: str
    cost_centre: str
    debit: Decimal | None
    credit: Decimal | None
    description: str = ""
    counterparty_ledger: str = ""


@dataclass(frozen=True)
class JournalLine:
    account: str
    cost_centre: str
    debit: Decimal
    credit: Decimal
    description: str = ""
    counterparty_ledger: str = ""

    @classmethod
    def dr(cls, account: str, cost_centre: str, amount: Decimal, description: str = "") -> JournalLine:
        return cls(account, cost_centre, amount, ZERO, description)

    @classmethod
    def cr(cls, account: str, cost_centre: str, amount: Decimal, description: str = "") -> JournalLine:
        return cls(account, cost_centre, ZERO, amount, description)

    def reversed(self) -> JournalLine:
        return JournalLine(
            self.account,
            self.cost_centre,
            self.credit,
            self.debit,
            self.description,
            self.counterparty_ledger,
        )


@dataclass(frozen=True)
class ChartView:
    """What line checks need to know of an organisation's chart and ledgers."""

    accounts: Mapping[str, Account]
    cost_centres: frozenset[str]
    ledgers: frozenset[str]


def checked_lines(
    lines: Sequence[LineInput], chart: ChartView, own_ledger: str, prefix: str = "journal.lines"
) -> tuple[JournalLine, ...]:
    """Every line checked against the chart, and the whole balanced; every problem is
    reported at once."""
    v = Violations()
    if len(lines) < 2 or len(lines) > MAX_LINES:
        v.add(prefix, f"a journal has from 2 to {MAX_LINES} lines")
    result: list[JournalLine] = []
    debits = credits = ZERO
    for i, line in enumerate(lines):
        at = f"{prefix}[{i}]"
        account = chart.accounts.get(line.account)
        if account is None:
            v.add(f"{at}.account", f"{line.account!r} is not an account of the chart")
        if line.cost_centre:
            v.check(
                line.cost_centre in chart.cost_centres,
                f"{at}.cost_centre",
                f"{line.cost_centre!r} is not a cost centre of the organisation",
            )
        elif account is not None and account.type.is_revenue:
            v.add(f"{at}.cost_centre", f"is required on {account.type.value.lower()} account {account.code}")
        if line.counterparty_ledger:
            v.check(
                line.counterparty_ledger in chart.ledgers and line.counterparty_ledger != own_ledger,
                f"{at}.counterparty_ledger",
                "must be another ledger of the same organisation",
            )
        v.check(len(line.description) <= MAX_DESCRIPTION, f"{at}.description", "is too long")
        if (line.debit is None) == (line.credit is None):
            v.add(at, "set exactly one of debit and credit")
            continue
        amount = line.debit if line.debit is not None else line.credit
        assert amount is not None
        side = "debit" if line.debit is not None else "credit"
        if not (amount > 0 and whole_pence(amount)):
            v.add(f"{at}.{side}", "must be more than zero, in whole pence")
            continue
        if line.debit is not None:
            debits += amount
            result.append(
                JournalLine(
                    line.account, line.cost_centre, amount, ZERO, line.description, line.counterparty_ledger
                )
            )
        else:
            credits += amount
            result.append(
                JournalLine(
                    line.account, line.cost_centre, ZERO, amount, line.description, line.counterparty_ledger
                )
            )
    if not v and debits != credits:
        v.add(prefix, f"debits ({debits}) must equal credits ({credits}) to the penny")
    # Each line is within MAX_AMOUNT; their sum, which balances and payment runs add up,
    # is held to it too.
    if not v and debits > MAX_AMOUNT:
        v.add(prefix, f"total more than the largest amount a journal may carry ({MAX_AMOUNT:,})")
    v.raise_if_any()
    return tuple(result)


def balanced(lines: Sequence[JournalLine]) -> bool:
    return sum((line.debit for line in lines), ZERO) == sum((line.credit for line in lines), ZERO)


@dataclass(frozen=True)
class Journal:
    organisation: str
    ledger: str
    id: str
    posting_date: dt.date
    period: PeriodKey
    description: str
    source: JournalSource
    lines: tuple[JournalLine, ...]
    info: RecordInfo
    source_resource: str = ""
    reversal_of: str = ""
    reversed_by: str = ""

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/journals/{self.id}"

    @property
    def ledger_name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}"

    @property
    def total(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    def audit_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "posting_date": self.posting_date.isoformat(),
            "period": str(self.period),
            "description": self.description,
            "source": self.source.value,
            "source_resource": self.source_resource,
            "reversal_of": self.reversal_of,
            "lines": [
                [line.account, line.cost_centre, str(line.debit), str(line.credit), line.counterparty_ledger]
                for line in self.lines
            ],
        }


def check_description(v: Violations, value: str, field_path: str) -> str:
    text = value.strip()
    v.check(
        0 < len(text) <= MAX_DESCRIPTION, field_path, f"is required, at most {MAX_DESCRIPTION} characters"
    )
    return text
