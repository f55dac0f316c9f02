"""Absence: annual leave (entitlement pro rata to FTE, requests and decisions, balances)
and sickness."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal

from libs.common.errors import FailedPrecondition, Violations
from libs.common.records import RecordInfo
from services.hr.domain.establishment import Assignment
from services.hr.domain.values import ZERO, Period, canonical, leave_year_of, parse_decimal

HALF = Decimal("0.5")
MAX_REASON = 100


class LeaveState(enum.Enum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def holds_days(self) -> bool:
        return self in (LeaveState.REQUESTED, LeaveState.APPROVED)


@dataclass(frozen=True)
class LeaveTerms:
    """A leave request as stated; `days` is canonical decimal text once checked."""

    person_id: str
    start_date: dt.date | None
    end_date: dt.date | None
    days: str
    note: str = ""

    @property
    def period(self) -> Period:
        assert self.start_date is not None and self.end_date is not None
        return Period(self.start_date, self.end_date)

    @property
    def day_count(self) -> Decimal:
        return Decimal(self.days)

    def checked(self, prefix: str = "leave_request") -> LeaveTerms:
        v = Violations()
        v.check(bool(self.person_id), f"{prefix}.person", "is required: organisations/{code}/people/{person}")
        v.check(self.start_date is not None, f"{prefix}.start_date", "is required")
        v.check(self.end_date is not None, f"{prefix}.end_date", "is required")
        calendar_days = None
        if self.start_date and self.end_date:
            if self.end_date < self.start_date:
                v.add(f"{prefix}.end_date", "must not be before the start date")
            elif leave_year_of(self.start_date) != leave_year_of(self.end_date):
                v.add(
                    f"{prefix}.end_date",
                    "must be in the same leave year (1 April to 31 March) as the start: make two requests",
                )
            else:
                calendar_days = (self.end_date - self.start_date).days + 1
        days = parse_decimal(
            self.days,
            f"{prefix}.days",
            v,
            places=1,
            above=ZERO,
            # A leave year has at most 366 days; the bound also keeps `days % HALF` exact.
            maximum=Decimal(366),
            describe="working days above 0 and at most 366, in half days",
        )
        if days is not None:
            if days % HALF != 0:
                v.add(f"{prefix}.days", "must be a multiple of 0.5")
            elif calendar_days is not None and days > calendar_days:
                v.add(f"{prefix}.days", f"must be at most the {calendar_days} calendar days requested")
        v.check(len(self.note) <= 500, f"{prefix}.note", "at most 500 characters")
        v.raise_if_any()
        return replace(self, days=canonical(days))


@dataclass(frozen=True)
class LeaveRequest:
    organisation: str
    id: str
    terms: LeaveTerms
    state: LeaveState
    decided_by: str
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/leaveRequests/{self.id}"

    def audit_view(self) -> dict[str, object]:
        t = self.terms
        return {
            "name": self.name,
            "person_id": t.person_id,
            "start_date": t.start_date.isoformat() if t.start_date else None,
            "end_date": t.end_date.isoformat() if t.end_date else None,
            "days": t.days,
            "note": t.note,
            "state": self.state.value,
            "decided_by": self.decided_by,
        }

    def decided(self, state: LeaveState, principal: str, note: str, info: RecordInfo) -> LeaveRequest:
        """The request moved to `state`, or FAILED_PRECONDITION if it may not go there."""
        if state in (LeaveState.APPROVED, LeaveState.REJECTED) and self.state is not LeaveState.REQUESTED:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value}: only a requested leave can be approved or rejected",
                reason="LEAVE_NOT_REQUESTED",
                metadata={"state": self.state.value},
            )
        if state is LeaveState.CANCELLED and not self.state.holds_days:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value} already and cannot be cancelled",
                reason="LEAVE_NOT_CANCELLABLE",
                metadata={"state": self.state.value},
            )
        terms = replace(self.terms, note=note.strip() or self.terms.note)
        return replace(self, terms=terms, state=state, decided_by=principal, info=info)


def entitlement(full_time_days: Decimal | None, assignments: Iterable[Assignment], year: Period) -> Decimal:
    """Full-time days x the person's average FTE over the leave year (a day out of post
    counts as 0), rounded up to the next half day."""
    if not full_time_days:
        return ZERO
    assert year.end is not None
    year_days = (year.end - year.start).days + 1
    fte_days = sum((a.fte * a.period.days_within(year.start, year.end) for a in assignments), ZERO)
    exact = full_time_days * fte_days / year_days
    return (exact / HALF).to_integral_value(rounding=ROUND_CEILING) * HALF


@dataclass(frozen=True)
class LeaveBalance:
    person_id: str
    year: Period
    entitlement: Decimal
    approved: Decimal
    requested: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(self.entitlement - self.approved - self.requested, ZERO)

    @property
    def unbooked(self) -> Decimal:
        return self.entitlement - self.approved - self.requested


def balance(
    person_id: str,
    full_time_days: Decimal | None,
    assignments: Sequence[Assignment],
    requests: Sequence[LeaveRequest],
    day: dt.date,
) -> LeaveBalance:
    year = leave_year_of(day)
    assert year.end is not None
    in_year = [r for r in requests if r.terms.start_date and year.contains(r.terms.start_date)]

    def total(state: LeaveState) -> Decimal:
        return sum((r.terms.day_count for r in in_year if r.state is state), ZERO)

    return LeaveBalance(
        person_id,
        year,
        entitlement(full_time_days, assignments, year),
        total(LeaveState.APPROVED),
        total(LeaveState.REQUESTED),
    )


def check_no_overlap(terms: LeaveTerms, others: Iterable[LeaveRequest]) -> None:
    for other in others:
        if other.state.holds_days and other.terms.period.overlaps(terms.period):
            raise FailedPrecondition(
                f"the leave overlaps {other.name} ({other.state.value})",
                reason="LEAVE_OVERLAPS",
                metadata={"leave_request": other.name},
            )


def check_balance(bal: LeaveBalance, extra: Decimal) -> None:
    """`extra` more days must fit in what is unbooked of the year's entitlement."""
    if extra > bal.unbooked:
        raise FailedPrecondition(
            f"{canonical(extra)} days exceed the {canonical(max(bal.unbooked, ZERO)) or '0'} days left of "
            f"the {canonical(bal.entitlement) or '0'}-day entitlement for the leave year from "
            f"{bal.year.start.isoformat()}",
            reason="INSUFFICIENT_LEAVE_BALANCE",
            metadata={
                "entitlement_days": canonical(bal.entitlement) or "0",
                "remaining_days": canonical(max(bal.unbooked, ZERO)) or "0",
            },
        )


@dataclass(frozen=True)
class SicknessTerms:
    person_id: str
    start_date: dt.date | None
    end_date: dt.date | None
    reason: str
    work_related: bool = False

    @property
    def period(self) -> Period:
        assert self.start_date is not None
        return Period(self.start_date, self.end_date)

    def checked(self, prefix: str = "sickness_absence") -> SicknessTerms:
        v = Violations()
        v.check(bool(self.person_id), f"{prefix}.person", "is required: organisations/{code}/people/{person}")
        v.check(self.start_date is not None, f"{prefix}.start_date", "is required")
        if self.start_date and self.end_date:
            v.check(
                self.start_date <= self.end_date, f"{prefix}.end_date", "must not be before the start date"
            )
        reason = self.reason.strip()
        v.check(
            0 < len(reason) <= MAX_REASON, f"{prefix}.reason", f"is required, at most {MAX_REASON} characters"
        )
        v.raise_if_any()
        return replace(self, reason=reason)


@dataclass(frozen=True)
class SicknessAbsence:
    organisation: str
    id: str
    terms: SicknessTerms
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/sicknessAbsences/{self.id}"

    def audit_view(self) -> dict[str, object]:
        t = self.terms
        return {
            "name": self.name,
            "person_id": t.person_id,
            "start_date": t.start_date.isoformat() if t.start_date else None,
            "end_date": t.end_date.isoformat() if t.end_date else None,
            "reason": t.reason,
            "work_related": t.work_related,
        }


def check_no_sickness_overlap(period: Period, others: Iterable[SicknessAbsence], own_id: str = "") -> None:
    for other in others:
        if other.id != own_id and other.terms.period.overlaps(period):
            raise FailedPrecondition(
                f"the person is already recorded as sick in {other.name}",
                reason="SICKNESS_OVERLAPS",
                metadata={"sickness_absence": other.name},
            )
