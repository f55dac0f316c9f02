"""The establishment: grades and pay points, organisational units, budgeted posts, and the
effective-dated assignments of people to posts, from which strength and vacancies follow."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from libs.common.errors import FailedPrecondition, InvalidArgument, Violations
from libs.common.records import RecordInfo
from services.hr.domain.person import WorkerType
from services.hr.domain.values import FTE_PLACES, ONE, ZERO, Period, canonical, parse_decimal

MAX_NAME = 100


class Rank(enum.Enum):
    """Police officer ranks, in order of seniority."""

    CONSTABLE = "constable"
    SERGEANT = "sergeant"
    INSPECTOR = "inspector"
    CHIEF_INSPECTOR = "chief_inspector"
    SUPERINTENDENT = "superintendent"
    CHIEF_SUPERINTENDENT = "chief_superintendent"
    ASSISTANT_CHIEF_CONSTABLE = "assistant_chief_constable"
    DEPUTY_CHIEF_CONSTABLE = "deputy_chief_constable"
    CHIEF_CONSTABLE = "chief_constable"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").title()


RANK_ORDER = {r: i for i, r in enumerate(Rank)}


@dataclass(frozen=True)
class PayPoint:
    code: str
    annual_salary: Decimal


# What UpdateGrade changes; the rank stays (posts and assignments were checked against it).
GRADE_UPDATABLE = frozenset({"display_name", "pay_points"})


@dataclass(frozen=True)
class GradeDetails:
    display_name: str
    rank: Rank | None
    pay_points: tuple[PayPoint, ...]

    def with_changes(self, changes: GradeDetails, paths: frozenset[str]) -> GradeDetails:
        return replace(self, **{p: getattr(changes, p) for p in paths})

    def checked(self, prefix: str = "grade") -> GradeDetails:
        v = Violations()
        name = self.display_name.strip()
        v.check(
            0 < len(name) <= MAX_NAME, f"{prefix}.display_name", f"is required, at most {MAX_NAME} characters"
        )
        v.check(bool(self.pay_points), f"{prefix}.pay_points", "name at least one pay point")
        seen: set[str] = set()
        points = []
        for i, p in enumerate(self.pay_points):
            code = p.code.strip()
            path = f"{prefix}.pay_points[{i}]"
            if not 0 < len(code) <= 20:
                v.add(f"{path}.code", "is required, at most 20 characters")
            elif code in seen:
                v.add(f"{path}.code", f"repeats the point {code}")
            seen.add(code)
            v.check(
                p.annual_salary > 0 and p.annual_salary == p.annual_salary.quantize(Decimal("0.01")),
                f"{path}.annual_salary",
                "must be a positive amount in whole pence",
            )
            points.append(PayPoint(code, p.annual_salary))
        v.raise_if_any()
        return replace(self, display_name=name, pay_points=tuple(points))


@dataclass(frozen=True)
class Grade:
    organisation: str
    id: str
    details: GradeDetails
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/grades/{self.id}"

    def point(self, code: str) -> PayPoint | None:
        return next((p for p in self.details.pay_points if p.code == code), None)

    def dropped_points(self, details: GradeDetails) -> frozenset[str]:
        """The codes of this grade's pay points that `details` no longer has."""
        return frozenset(p.code for p in self.details.pay_points) - {p.code for p in details.pay_points}

    def audit_view(self) -> dict[str, object]:
        d = self.details
        return {
            "name": self.name,
            "display_name": d.display_name,
            "rank": d.rank.value if d.rank else None,
            "pay_points": [{"code": p.code, "annual_salary": str(p.annual_salary)} for p in d.pay_points],
        }


@dataclass(frozen=True)
class OrgUnit:
    organisation: str
    id: str
    display_name: str
    parent_id: str | None
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/orgUnits/{self.id}"

    def audit_view(self) -> dict[str, object]:
        return {"name": self.name, "display_name": self.display_name, "parent_id": self.parent_id}


def check_unit_name(display_name: str, prefix: str = "org_unit") -> str:
    name = display_name.strip()
    v = Violations()
    v.check(
        0 < len(name) <= MAX_NAME, f"{prefix}.display_name", f"is required, at most {MAX_NAME} characters"
    )
    v.raise_if_any()
    return name


@dataclass(frozen=True)
class PostDetails:
    """A post as stated; `budgeted_fte` is canonical decimal text once checked."""

    display_name: str
    org_unit_id: str
    worker_type: WorkerType | None
    grade_id: str
    budgeted_fte: str
    start_date: dt.date | None
    end_date: dt.date | None = None

    @property
    def budget(self) -> Decimal:
        return Decimal(self.budgeted_fte)

    @property
    def period(self) -> Period:
        assert self.start_date is not None
        return Period(self.start_date, self.end_date)

    def checked(self, prefix: str = "post") -> PostDetails:
        v = Violations()
        name = self.display_name.strip()
        v.check(
            0 < len(name) <= MAX_NAME, f"{prefix}.display_name", f"is required, at most {MAX_NAME} characters"
        )
        v.check(
            bool(self.org_unit_id), f"{prefix}.org_unit", "is required: organisations/{code}/orgUnits/{unit}"
        )
        v.check(self.worker_type is not None, f"{prefix}.worker_type", "is required")
        budget = parse_decimal(
            self.budgeted_fte,
            f"{prefix}.budgeted_fte",
            v,
            places=FTE_PLACES,
            above=ZERO,
            maximum=Decimal(10000),
            describe="an FTE above 0 with at most four decimal places",
        )
        v.check(self.start_date is not None, f"{prefix}.start_date", "is required")
        if self.start_date and self.end_date:
            v.check(
                self.start_date <= self.end_date, f"{prefix}.end_date", "must not be before the start date"
            )
        if self.worker_type in (WorkerType.POLICE_OFFICER, WorkerType.POLICE_STAFF, WorkerType.PCSO) or (
            self.worker_type is WorkerType.DESIGNATED_OFFICER
        ):
            v.check(bool(self.grade_id), f"{prefix}.grade", "is required for a paid post")
        v.raise_if_any()
        return replace(self, display_name=name, budgeted_fte=canonical(budget))


def check_grade_suits(worker_type: WorkerType, grade: Grade | None) -> None:
    """An officer post needs a rank's scale; any other post a staff grade."""
    if grade is None:
        return
    if (worker_type is WorkerType.POLICE_OFFICER) != (grade.details.rank is not None):
        want = "an officer rank's pay scale" if worker_type is WorkerType.POLICE_OFFICER else "a staff grade"
        raise FailedPrecondition(
            f"{grade.name} does not suit a {worker_type.value} post: it needs {want}",
            reason="GRADE_MISMATCH",
            metadata={"grade": grade.name},
        )


@dataclass(frozen=True)
class Post:
    organisation: str
    id: str
    details: PostDetails
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/posts/{self.id}"

    def ending(self, last_day: dt.date, assignments: Iterable[Assignment]) -> PostDetails:
        """The post's details once it leaves the establishment after `last_day`. Nobody may
        hold it beyond that day: whoever would is moved or their assignment ended first."""
        d = self.details
        if d.start_date is not None and last_day < d.start_date:
            raise InvalidArgument.single("end_date", "must not be before the post's start date")
        if d.end_date is not None and d.end_date <= last_day:
            raise FailedPrecondition(f"{self.name} ends on {d.end_date.isoformat()}", reason="POST_ENDED")
        beyond = sorted(a.name for a in assignments if a.end_date is None or a.end_date > last_day)
        if beyond:
            raise FailedPrecondition(
                f"{self.name} is held after {last_day.isoformat()} by {len(beyond)} assignment(s), "
                f"first {beyond[0]}: end or move them first",
                reason="POST_OCCUPIED",
                metadata={"assignment": beyond[0], "assignments": str(len(beyond))},
            )
        return replace(d, end_date=last_day)

    def audit_view(self) -> dict[str, object]:
        d = self.details
        return {
            "name": self.name,
            "display_name": d.display_name,
            "org_unit_id": d.org_unit_id,
            "worker_type": d.worker_type.value if d.worker_type else None,
            "grade_id": d.grade_id,
            "budgeted_fte": d.budgeted_fte,
            "start_date": d.start_date.isoformat() if d.start_date else None,
            "end_date": d.end_date.isoformat() if d.end_date else None,
        }


@dataclass(frozen=True)
class AssignmentTerms:
    """An assignment as stated; `fte` is canonical decimal text once checked."""

    person_id: str
    post_id: str
    fte: str
    start_date: dt.date | None
    grade_id: str = ""
    pay_point: str = ""

    def checked(
        self, prefix: str = "assignment", *, renamed: Mapping[str, str] | None = None
    ) -> AssignmentTerms:
        """The terms checked; violations name `prefix.field`, or, for a request that states
        them as fields of its own (MovePerson), the request's names (`prefix` "", and
        `renamed` e.g. {"start_date": "effective_date"})."""

        def at(name: str) -> str:
            name = (renamed or {}).get(name, name)
            return f"{prefix}.{name}" if prefix else name

        v = Violations()
        v.check(bool(self.person_id), at("person"), "is required: organisations/{code}/people/{person}")
        v.check(bool(self.post_id), at("post"), "is required: organisations/{code}/posts/{post}")
        fte = parse_decimal(
            self.fte,
            at("fte"),
            v,
            places=FTE_PLACES,
            above=ZERO,
            maximum=ONE,
            describe="an FTE above 0 and at most 1, with at most four decimal places",
        )
        v.check(self.start_date is not None, at("start_date"), "is required")
        v.raise_if_any()
        return replace(self, fte=canonical(fte), pay_point=self.pay_point.strip())


@dataclass(frozen=True)
class Assignment:
    organisation: str
    id: str
    terms: AssignmentTerms
    end_date: dt.date | None
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/assignments/{self.id}"

    @property
    def fte(self) -> Decimal:
        return Decimal(self.terms.fte)

    @property
    def period(self) -> Period:
        assert self.terms.start_date is not None
        return Period(self.terms.start_date, self.end_date)

    def active_on(self, day: dt.date) -> bool:
        return self.period.contains(day)

    def ended_by(self, last_day: dt.date | None) -> Assignment:
        """The assignment as it stands once its holder's service ended after `last_day`."""
        if last_day is None or (self.end_date is not None and self.end_date <= last_day):
            return self
        return replace(self, end_date=last_day)

    def audit_view(self) -> dict[str, object]:
        t = self.terms
        return {
            "name": self.name,
            "person_id": t.person_id,
            "post_id": t.post_id,
            "fte": t.fte,
            "grade_id": t.grade_id,
            "pay_point": t.pay_point,
            "start_date": t.start_date.isoformat() if t.start_date else None,
            "end_date": self.end_date.isoformat() if self.end_date else None,
        }


def fte_on(assignments: Iterable[Assignment], day: dt.date) -> Decimal:
    return sum((a.fte for a in assignments if a.active_on(day)), ZERO)


def check_fte_capacity(existing: Sequence[Assignment], new_fte: Decimal, period: Period) -> None:
    """A person's assignments add up to at most 1 FTE on every day: check each day where
    the total can change (the new period's start and every overlapping start)."""
    overlapping = [a for a in existing if a.period.overlaps(period)]
    days = {period.start, *(a.period.start for a in overlapping if period.contains(a.period.start))}
    for day in sorted(days):
        total = fte_on(overlapping, day) + new_fte
        if total > ONE:
            raise FailedPrecondition(
                f"the person's assignments would add up to {canonical(total)} FTE on {day.isoformat()}; "
                "end another assignment first or lower the FTE",
                reason="FTE_EXCEEDED",
                metadata={"date": day.isoformat(), "fte": canonical(total)},
            )


@dataclass(frozen=True)
class EstablishmentLine:
    post: Post
    strength: Decimal
    holders: tuple[str, ...]

    @property
    def vacancy(self) -> Decimal:
        return self.post.details.budget - self.strength


def establishment_on(
    posts: Sequence[Post], assignments: Sequence[Assignment], day: dt.date
) -> list[EstablishmentLine]:
    """Each post in the establishment on `day`, with the FTE and people assigned to it."""
    lines = []
    for post in sorted(posts, key=lambda p: p.id):
        if not post.details.period.contains(day):
            continue
        held = [a for a in assignments if a.terms.post_id == post.id and a.active_on(day)]
        lines.append(
            EstablishmentLine(
                post,
                sum((a.fte for a in held), ZERO),
                tuple(sorted({a.terms.person_id for a in held})),
            )
        )
    return lines
