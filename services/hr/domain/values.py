"""Values every HR rule uses: exact decimals (FTE, days, hours), periods of days, leave years."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from libs.common.errors import Violations
from libs.common.money import has_places

ONE = Decimal(1)
ZERO = Decimal(0)
FTE_PLACES = 4


def parse_decimal(
    text: str,
    field_path: str,
    v: Violations,
    *,
    places: int,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
    above: Decimal | None = None,
    required: bool = True,
    describe: str = "a decimal",
) -> Decimal | None:
    """The decimal in `text`, or None (with a violation added when it is bad). Give a
    `maximum` whenever the caller computes with the value: it bounds its digits."""
    raw = text.strip()
    if not raw:
        if required:
            v.add(field_path, f"is required: {describe}")
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        v.add(field_path, f"must be {describe}, not {raw!r}")
        return None
    if not value.is_finite():
        v.add(field_path, f"must be {describe}, not {raw!r}")
        return None
    # Comparisons and has_places read the digits exactly; arithmetic (quantize, %,
    # normalize) rounds or raises past the context's 28 digits, so none is done here and a
    # caller's comes after the maximum has bounded the value.
    bad = (
        (maximum is not None and value > maximum)
        or (minimum is not None and value < minimum)
        or (above is not None and value <= above)
        or not has_places(value, places)
    )
    if bad:
        v.add(field_path, f"must be {describe}, not {raw}")
        return None
    return value


def canonical(value: Decimal | None) -> str:
    """`0.80` -> `0.8`, `1.0` -> `1`; empty for None."""
    if value is None:
        return ""
    return format(value.normalize(), "f")


def fte_text(value: Decimal) -> str:
    return canonical(value) or "0"


@dataclass(frozen=True)
class Period:
    """Days from `start` to `end` inclusive; `end` None runs on for ever."""

    start: dt.date
    end: dt.date | None = None

    def contains(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def overlaps(self, other: Period) -> bool:
        return (self.end is None or other.start <= self.end) and (
            other.end is None or self.start <= other.end
        )

    def days_within(self, start: dt.date, end: dt.date) -> int:
        """How many days of [start, end] fall in this period."""
        lo = max(start, self.start)
        hi = end if self.end is None else min(end, self.end)
        return max((hi - lo).days + 1, 0)


def leave_year_of(day: dt.date) -> Period:
    """The leave year (1 April to 31 March) that contains `day`."""
    first = dt.date(day.year if day.month >= 4 else day.year - 1, 4, 1)
    return Period(first, dt.date(first.year + 1, 3, 31))
