"""Accounting periods: the UK public-sector financial year, April to March, in twelve."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, replace

from libs.common.errors import FailedPrecondition, InvalidArgument
from libs.common.records import RecordInfo

PERIODS_PER_YEAR = 12
FIRST_YEAR, LAST_YEAR = 2000, 2100
_PERIOD_ID = re.compile(r"^(\d{4})-(\d{2})\Z")


class PeriodState(enum.Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    LOCKED = "LOCKED"


@dataclass(frozen=True, order=True)
class PeriodKey:
    """Financial year (the calendar year it starts in) and period number (1 = April)."""

    year: int
    number: int

    def __str__(self) -> str:
        return f"{self.year}-{self.number:02d}"

    @property
    def start(self) -> dt.date:
        month = (self.number + 2) % 12 + 1
        return dt.date(self.year + (1 if month < 4 else 0), month, 1)

    @property
    def end(self) -> dt.date:
        start = self.start
        following = dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
        return following - dt.timedelta(days=1)

    @classmethod
    def of(cls, day: dt.date) -> PeriodKey:
        year = day.year if day.month >= 4 else day.year - 1
        return cls(year, (day.month - 4) % 12 + 1)

    @classmethod
    def parse(cls, value: str, field_path: str) -> PeriodKey:
        match = _PERIOD_ID.match(value)
        if not match or not 1 <= int(match.group(2)) <= PERIODS_PER_YEAR:
            raise InvalidArgument.single(
                field_path, "must be {yyyy}-{nn}, with nn from 01 (April) to 12 (March)"
            )
        key = cls(int(match.group(1)), int(match.group(2)))
        check_year(key.year, field_path)
        return key


def check_year(year: int, field_path: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidArgument.single(field_path, f"must be a year from {FIRST_YEAR} to {LAST_YEAR}")


def check_through_period(value: int, field_path: str = "through_period") -> int:
    if value == 0:
        return PERIODS_PER_YEAR
    if not 1 <= value <= PERIODS_PER_YEAR:
        raise InvalidArgument.single(field_path, "must be from 1 to 12 (0 means 12)")
    return value


@dataclass(frozen=True)
class Period:
    organisation: str
    ledger: str
    key: PeriodKey
    state: PeriodState
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/periods/{self.key}"

    def audit_view(self) -> dict[str, object]:
        return {"name": self.name, "state": self.state.value, "version": self.info.version}

    def closed(self, info: RecordInfo) -> Period:
        if self.state is not PeriodState.OPEN:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value.lower()}, not open", reason="PERIOD_NOT_OPEN"
            )
        return replace(self, state=PeriodState.CLOSED, info=info)

    def reopened(self, info: RecordInfo) -> Period:
        if self.state is PeriodState.LOCKED:
            raise FailedPrecondition(f"{self.name} is locked and never reopens", reason="PERIOD_LOCKED")
        if self.state is not PeriodState.CLOSED:
            raise FailedPrecondition(f"{self.name} is not closed", reason="PERIOD_NOT_CLOSED")
        return replace(self, state=PeriodState.OPEN, info=info)

    def locked(self, info: RecordInfo) -> Period:
        if self.state is not PeriodState.CLOSED:
            raise FailedPrecondition(
                f"{self.name} must be closed before it is locked", reason="PERIOD_NOT_CLOSED"
            )
        return replace(self, state=PeriodState.LOCKED, info=info)


def year_periods(organisation: str, ledger: str, year: int, info: RecordInfo) -> list[Period]:
    return [
        Period(organisation, ledger, PeriodKey(year, n), PeriodState.OPEN, info)
        for n in range(1, PERIODS_PER_YEAR + 1)
    ]


def check_postable(period: Period | None, ledger_name: str, day: dt.date) -> PeriodKey:
    """The period a posting dated `day` goes into; refused unless it is open."""
    key = PeriodKey.of(day)
    if period is None:
        raise FailedPrecondition(
            f"{ledger_name} has no period for {day.isoformat()}: open financial year {key.year} first",
            reason="NO_OPEN_PERIOD",
            metadata={"period": str(key)},
        )
    if period.state is not PeriodState.OPEN:
        raise FailedPrecondition(
            f"period {key} of {ledger_name} is {period.state.value.lower()}: nothing posts into it",
            reason="PERIOD_CLOSED",
            metadata={"period": period.name},
        )
    return key
