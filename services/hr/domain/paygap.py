"""The gender pay gap (Equality Act 2010 (Gender Pay Gap Information) Regulations 2017,
SI 2017/353, as applied to public authorities): pay records of a snapshot date in, the six
measures out."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from libs.common.errors import Violations
from libs.common.records import RecordInfo
from services.hr.domain.person import Sex
from services.hr.domain.values import ZERO, canonical, parse_decimal

HUNDRED = Decimal(100)
ONE_PLACE = Decimal("0.1")


def snapshot_date_problem(day: dt.date) -> str | None:
    """A public authority's snapshot date is 31 March (SI 2017/353 Schedule 1): figures of another
    day are not the published measures."""
    if (day.month, day.day) != (3, 31):
        return "must be 31 March, the snapshot date of a public authority (SI 2017/353)"
    return None


@dataclass(frozen=True)
class PayTerms:
    """A person's pay in the pay period containing the snapshot date."""

    person_id: str
    snapshot_date: dt.date | None
    ordinary_pay: Decimal
    period_bonus_pay: Decimal
    pay_period_days: int
    weekly_hours: str
    annual_bonus_pay: Decimal
    full_pay: bool

    @property
    def hours(self) -> Decimal:
        return Decimal(self.weekly_hours)

    @property
    def hourly_pay(self) -> Decimal:
        """(ordinary pay + bonus pay in the period) x 7 / days in the period / weekly hours."""
        return (self.ordinary_pay + self.period_bonus_pay) * 7 / self.pay_period_days / self.hours

    def checked(self, prefix: str = "pay_record") -> PayTerms:
        v = Violations()
        v.check(bool(self.person_id), f"{prefix}.person", "is required: organisations/{code}/people/{person}")
        if self.snapshot_date is None:
            v.add(f"{prefix}.snapshot_date", "is required")
        elif problem := snapshot_date_problem(self.snapshot_date):
            v.add(f"{prefix}.snapshot_date", problem)
        for field_name in ("ordinary_pay", "period_bonus_pay", "annual_bonus_pay"):
            amount: Decimal = getattr(self, field_name)
            v.check(
                amount >= 0 and amount == amount.quantize(Decimal("0.01")),
                f"{prefix}.{field_name}",
                "must be an amount of GBP in whole pence, not negative",
            )
        v.check(self.ordinary_pay > 0, f"{prefix}.ordinary_pay", "is required: the pay in the pay period")
        v.check(1 <= self.pay_period_days <= 366, f"{prefix}.pay_period_days", "must be from 1 to 366")
        hours = parse_decimal(
            self.weekly_hours,
            f"{prefix}.weekly_hours",
            v,
            places=2,
            above=ZERO,
            maximum=Decimal(168),
            describe="hours above 0 and at most 168, at most two decimal places",
        )
        v.raise_if_any()
        return replace(self, weekly_hours=canonical(hours))


@dataclass(frozen=True)
class PayRecord:
    organisation: str
    id: str
    terms: PayTerms
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/payRecords/{self.id}"

    def audit_view(self) -> dict[str, object]:
        t = self.terms
        return {
            "name": self.name,
            "person_id": t.person_id,
            "snapshot_date": t.snapshot_date.isoformat() if t.snapshot_date else None,
            "ordinary_pay": str(t.ordinary_pay),
            "period_bonus_pay": str(t.period_bonus_pay),
            "pay_period_days": t.pay_period_days,
            "weekly_hours": t.weekly_hours,
            "annual_bonus_pay": str(t.annual_bonus_pay),
            "full_pay": t.full_pay,
        }


@dataclass(frozen=True)
class Quartile:
    number: int
    headcount: int
    male_percent: Decimal
    female_percent: Decimal


@dataclass(frozen=True)
class PayGapReport:
    relevant_employees: int
    full_pay_relevant_employees: int
    mean_hourly_gap: Decimal | None
    median_hourly_gap: Decimal | None
    mean_bonus_gap: Decimal | None
    median_bonus_gap: Decimal | None
    male_bonus_percent: Decimal | None
    female_bonus_percent: Decimal | None
    quartiles: tuple[Quartile, ...]


def one_place(value: Decimal) -> Decimal:
    return value.quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def _gap(men: Sequence[Decimal], women: Sequence[Decimal], average: str) -> Decimal | None:
    if not men or not women:
        return None
    pick = statistics.mean if average == "mean" else statistics.median
    m, w = Decimal(pick(men)), Decimal(pick(women))
    if m == 0:
        return None
    return one_place((m - w) / m * HUNDRED)


def _percent(part: int, whole: int) -> Decimal | None:
    return one_place(Decimal(part) / whole * HUNDRED) if whole else None


def _apportioned(count: int, slots: Sequence[int]) -> list[int]:
    """`count` spread over `slots` in proportion (largest remainder; a tie goes to the
    lower band), each share at most its slots."""
    total = sum(slots)
    exact = [Fraction(count * s, total) for s in slots]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(slots)), key=lambda k: (-(exact[k] - shares[k]), k))
    for k in by_remainder[: count - sum(shares)]:
        shares[k] += 1
    return shares


def quartiles(ranked: Sequence[tuple[Decimal, Sex]]) -> tuple[Quartile, ...]:
    """Full-pay relevant employees ranked by hourly pay, lowest first, cut into four parts as
    equal as possible (the lower quartiles take any extra one). Where people on the same
    hourly pay fall into more than one part, each part takes men and women of that pay in
    the same proportion as far as whole people allow (SI 2017/172 reg 13(2), and SI
    2017/353 for public authorities): the split does not depend on who was listed first."""
    by_rate: dict[Decimal, list[Sex]] = {}
    for rate, sex in ranked:
        if sex in (Sex.MALE, Sex.FEMALE):
            by_rate.setdefault(rate, []).append(sex)
    n = sum(len(group) for group in by_rate.values())
    sizes = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)]
    bands = [(sum(sizes[:i]), sum(sizes[: i + 1])) for i in range(4)]
    women_in = [0, 0, 0, 0]
    start = 0
    for rate in sorted(by_rate):
        group = by_rate[rate]
        end = start + len(group)
        slots = [max(0, min(end, hi) - max(start, lo)) for lo, hi in bands]
        women = sum(1 for s in group if s is Sex.FEMALE)
        for i, share in enumerate(_apportioned(women, slots)):
            women_in[i] += share
        start = end
    out = []
    for i, size in enumerate(sizes):
        males = size - women_in[i]
        male_pct, female_pct = _percent(males, size), _percent(women_in[i], size)
        out.append(
            Quartile(
                i + 1,
                size,
                male_pct if male_pct is not None else ZERO,
                female_pct if female_pct is not None else ZERO,
            )
        )
    return tuple(out)


def pay_gap(records: Sequence[tuple[Sex, PayTerms]]) -> PayGapReport:
    """The six measures over relevant employees' pay records (men and women only)."""
    relevant = [(s, t) for s, t in records if s in (Sex.MALE, Sex.FEMALE)]
    full = [(s, t) for s, t in relevant if t.full_pay]

    def hourly(sex: Sex) -> list[Decimal]:
        return [t.hourly_pay for s, t in full if s is sex]

    def bonuses(sex: Sex) -> list[Decimal]:
        return [t.annual_bonus_pay for s, t in relevant if s is sex and t.annual_bonus_pay > 0]

    def heads(sex: Sex) -> int:
        return sum(1 for s, _ in relevant if s is sex)

    return PayGapReport(
        relevant_employees=len(relevant),
        full_pay_relevant_employees=len(full),
        mean_hourly_gap=_gap(hourly(Sex.MALE), hourly(Sex.FEMALE), "mean"),
        median_hourly_gap=_gap(hourly(Sex.MALE), hourly(Sex.FEMALE), "median"),
        mean_bonus_gap=_gap(bonuses(Sex.MALE), bonuses(Sex.FEMALE), "mean"),
        median_bonus_gap=_gap(bonuses(Sex.MALE), bonuses(Sex.FEMALE), "median"),
        male_bonus_percent=_percent(len(bonuses(Sex.MALE)), heads(Sex.MALE)),
        female_bonus_percent=_percent(len(bonuses(Sex.FEMALE)), heads(Sex.FEMALE)),
        quartiles=quartiles([(t.hourly_pay, s) for s, t in full]) if full else (),
    )
