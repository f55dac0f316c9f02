"""Workforce statistics in the shape of the Home Office police workforce tables: headcount
and FTE by worker type, rank, sex and ethnic group, as at a date, and joiners and leavers
over a period.

`strength_on` and `joiners_and_leavers` state the rules over every person, in Python: the
reference. The service has the database count instead (services/hr/persistence/workforce.py,
a few hundred `Cell`s for a whole force) and `breakdown_of_cells` makes the same figures."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.hr.domain.establishment import RANK_ORDER, Assignment, Grade, Rank
from services.hr.domain.person import Ethnicity, Person, Sex, WorkerType
from services.hr.domain.values import ZERO, Period

NOT_RECORDED = "Not recorded"
_WORKER_ORDER = {w: i for i, w in enumerate(WorkerType)}


@dataclass(frozen=True)
class Figure:
    worker_type: WorkerType
    category: str
    headcount: int
    fte: Decimal


@dataclass(frozen=True)
class Breakdown:
    by_worker_type: tuple[Figure, ...]
    by_rank: tuple[Figure, ...]
    by_sex: tuple[Figure, ...]
    by_ethnic_group: tuple[Figure, ...]

    @property
    def headcount(self) -> int:
        """Everyone counted, once: the worker-type figures partition them."""
        return sum(f.headcount for f in self.by_worker_type)

    @property
    def fte(self) -> Decimal:
        return sum((f.fte for f in self.by_worker_type), ZERO)


@dataclass(frozen=True)
class Counted:
    """One person counted on one day: what the tables break them down by."""

    worker_type: WorkerType
    rank: str
    sex: str
    ethnic_group: str
    fte: Decimal


def _rank_on(person_assignments: Sequence[Assignment], grades: Mapping[str, Grade], day: dt.date) -> str:
    ranks: list[Rank] = []
    for a in person_assignments:
        grade = grades.get(a.terms.grade_id)
        if a.active_on(day) and grade is not None and grade.details.rank is not None:
            ranks.append(grade.details.rank)
    # A person acting in two posts is counted once, at the higher rank.
    return max(ranks, key=lambda r: RANK_ORDER[r]).label if ranks else NOT_RECORDED


def counted(
    person: Person, person_assignments: Sequence[Assignment], grades: Mapping[str, Grade], day: dt.date
) -> Counted:
    assert person.details.sex is not None and person.details.ethnicity is not None
    return Counted(
        person.worker_type,
        _rank_on(person_assignments, grades, day) if person.worker_type.warranted else "",
        person.details.sex.label,
        person.details.ethnicity.group,
        sum((a.fte for a in person_assignments if a.active_on(day)), ZERO),
    )


@dataclass(frozen=True)
class Cell:
    """People counted alike on their day, already counted: what a store that groups in the
    database hands back (a few hundred of these, not one per person). `rank` is the highest
    rank of the assignments active that day, None when none has one; `fte` their total."""

    worker_type: WorkerType
    rank: Rank | None
    sex: Sex
    ethnicity: Ethnicity
    headcount: int
    fte: Decimal

    @property
    def counted(self) -> Counted:
        rank = (self.rank.label if self.rank else NOT_RECORDED) if self.worker_type.warranted else ""
        return Counted(self.worker_type, rank, self.sex.label, self.ethnicity.group, self.fte)


def _figures(people: Sequence[tuple[Counted, int]], key: Callable[[Counted], str]) -> tuple[Figure, ...]:
    """`people` are (counted, how many) pairs: one person each, or a cell of many."""
    cells: dict[tuple[WorkerType, str], tuple[int, Decimal]] = {}
    for c, heads in people:
        cell = (c.worker_type, key(c))
        headcount, fte = cells.get(cell, (0, ZERO))
        cells[cell] = (headcount + heads, fte + c.fte)
    rank_labels = {r.label: i for i, r in enumerate(Rank)}
    ordered = sorted(cells, key=lambda k: (_WORKER_ORDER[k[0]], rank_labels.get(k[1], 99), k[1]))
    return tuple(Figure(w, cat, *cells[(w, cat)]) for w, cat in ordered)


def _breakdown(people: Sequence[tuple[Counted, int]]) -> Breakdown:
    return Breakdown(
        by_worker_type=_figures(people, lambda c: ""),
        by_rank=_figures([p for p in people if p[0].worker_type.warranted], lambda c: c.rank),
        by_sex=_figures(people, lambda c: c.sex),
        by_ethnic_group=_figures(people, lambda c: c.ethnic_group),
    )


def breakdown(people: Sequence[Counted]) -> Breakdown:
    return _breakdown([(c, 1) for c in people])


def breakdown_of_cells(cells: Iterable[Cell]) -> Breakdown:
    """The same breakdown as `breakdown`, from people counted in the database."""
    return _breakdown([(c.counted, c.headcount) for c in cells])


def _by_person(assignments: Sequence[Assignment]) -> dict[str, list[Assignment]]:
    out: dict[str, list[Assignment]] = defaultdict(list)
    for a in assignments:
        out[a.terms.person_id].append(a)
    return out


def strength_on(
    people: Sequence[Person], assignments: Sequence[Assignment], grades: Mapping[str, Grade], day: dt.date
) -> Breakdown:
    """Everyone in service on `day`, with the FTE of their assignments that day."""
    mine = _by_person(assignments)
    return breakdown([counted(p, mine[p.id], grades, day) for p in people if p.in_service_on(day)])


def joiners_and_leavers(
    people: Sequence[Person], assignments: Sequence[Assignment], grades: Mapping[str, Grade], period: Period
) -> tuple[Breakdown, Breakdown]:
    """Joiners counted on their first day, leavers on their last."""
    mine = _by_person(assignments)
    joiners = [counted(p, mine[p.id], grades, p.join_date) for p in people if period.contains(p.join_date)]
    leavers = [
        counted(p, mine[p.id], grades, p.leaving_date)
        for p in people
        if p.leaving_date is not None and period.contains(p.leaving_date)
    ]
    return breakdown(joiners), breakdown(leavers)
