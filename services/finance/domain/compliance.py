"""Payments compliance figures: Procurement Act 2023 s69, SI 2024/692 regulation 38.

Six-month periods end on 31 March and 30 September. Days to pay count from the day after
the invoice was received (so payment on the day after receipt is day 1; a payment on the
day of receipt, day 0, is counted in the 1-30 band). A payment is made when the supplier
receives it: the payment run's payment date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from libs.common.errors import InvalidArgument
from services.finance.domain.money import ZERO

HUNDREDTH = Decimal("0.01")


def six_month_period(period_end: dt.date, field_path: str = "period_end") -> tuple[dt.date, dt.date]:
    if (period_end.month, period_end.day) == (9, 30):
        return dt.date(period_end.year, 4, 1), period_end
    if (period_end.month, period_end.day) == (3, 31):
        return dt.date(period_end.year - 1, 10, 1), period_end
    raise InvalidArgument.single(
        field_path, "must be 30 September or 31 March (the end of a six-month period)"
    )


@dataclass(frozen=True)
class PaymentFact:
    """One invoice as the figures see it."""

    received: dt.date
    due: dt.date
    gross: Decimal
    paid: dt.date | None


@dataclass(frozen=True)
class ComplianceFigures:
    start: dt.date
    end: dt.date
    payments: int
    mean_days: Decimal
    percent_within_30: Decimal
    percent_31_to_60: Decimal
    percent_61_or_more: Decimal
    sums_due: Decimal
    sums_due_not_paid: Decimal
    percent_due_not_paid: Decimal


def _percent(part: Decimal | int, whole: Decimal | int) -> Decimal:
    if not whole:
        return Decimal("0.00")
    return (Decimal(part) * 100 / Decimal(whole)).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)


def compliance_figures(facts: Sequence[PaymentFact], start: dt.date, end: dt.date) -> ComplianceFigures:
    paid_in = [f for f in facts if f.paid is not None and start <= f.paid <= end]
    days = [(f.paid - f.received).days for f in paid_in if f.paid is not None]
    count = len(days)
    mean = (
        (Decimal(sum(days)) / count).quantize(HUNDREDTH, rounding=ROUND_HALF_UP) if count else Decimal("0.00")
    )
    due_in = [f for f in facts if start <= f.due <= end]
    sums_due = sum((f.gross for f in due_in), ZERO)
    not_paid = sum((f.gross for f in due_in if f.paid is None or f.paid > end), ZERO)
    return ComplianceFigures(
        start=start,
        end=end,
        payments=count,
        mean_days=mean,
        percent_within_30=_percent(sum(1 for d in days if d <= 30), count),
        percent_31_to_60=_percent(sum(1 for d in days if 31 <= d <= 60), count),
        percent_61_or_more=_percent(sum(1 for d in days if d >= 61), count),
        sums_due=sums_due,
        sums_due_not_paid=not_paid,
        percent_due_not_paid=_percent(not_paid, sums_due),
    )
