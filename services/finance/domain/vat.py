"""VAT on purchases by use, for a police body's or council's VAT Act 1994 s33 claim.

Non-business VAT is refunded under s33; business VAT is input tax; exempt-input VAT is
recoverable too while it is "insignificant": at most £625 a month on average over the
period, or under 5% of all the VAT incurred in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from libs.common.errors import InvalidArgument
from services.finance.domain.invoices import InvoiceLine, VatUse
from services.finance.domain.money import ZERO

MONTHLY_LIMIT = Decimal("625.00")
PERCENT_LIMIT = Decimal("5")


@dataclass(frozen=True)
class VatByUse:
    use: VatUse
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class VatAnalysis:
    start: dt.date
    end: dt.date
    rows: tuple[VatByUse, ...]
    months: int

    @property
    def total_vat(self) -> Decimal:
        return sum((r.vat for r in self.rows), ZERO)

    @property
    def exempt_vat(self) -> Decimal:
        return sum((r.vat for r in self.rows if r.use is VatUse.EXEMPT), ZERO)

    @property
    def exempt_percent(self) -> Decimal:
        if not self.total_vat:
            return Decimal("0.00")
        return (self.exempt_vat * 100 / self.total_vat).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def exempt_insignificant(self) -> bool:
        # The share compared unrounded: 4.996% is under 5%, though it shows as 5.00.
        under_share = self.exempt_vat * 100 < PERCENT_LIMIT * self.total_vat
        return self.exempt_vat <= MONTHLY_LIMIT * self.months or under_share


def months_between(start: dt.date, end: dt.date, field_path: str = "end_date") -> int:
    """Whole calendar months from the first of `start`'s month to the end of `end`'s."""
    following = end + dt.timedelta(days=1)
    if start.day != 1 or following.day != 1 or end < start:
        raise InvalidArgument.single(
            field_path, "the range must run from the first of a month to the last of one"
        )
    return (following.year - start.year) * 12 + following.month - start.month


def vat_analysis(lines: Sequence[InvoiceLine], start: dt.date, end: dt.date) -> VatAnalysis:
    months = months_between(start, end)
    rows = []
    for use in VatUse:
        chosen = [line for line in lines if line.vat_use is use]
        rows.append(VatByUse(use, sum((x.net for x in chosen), ZERO), sum((x.vat for x in chosen), ZERO)))
    return VatAnalysis(start, end, tuple(rows), months)
