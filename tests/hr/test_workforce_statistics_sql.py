"""Workforce statistics counted by the database (services/hr/persistence/workforce.py)
against the same rules in Python (services/hr/domain/statistics.py, the reference), on
SQLite and PostgreSQL (as the service's unprivileged role, row-level security on).

Each example writes a random organisation: every worker type, joiners and leavers around the
days asked about, people in two posts at once at different ranks, ended assignments, grades
without a rank or missing, transfers out (accepted, pending, declined; secondments), and a
twin organisation with the same ids that must never be counted. The days fall within
SPAN days, so that joining, leaving, starting and ending on the very day asked about happen often."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

import hypothesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st

from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.config import Settings
from libs.common.db import Database
from libs.common.service import Transaction
from services.hr import service
from services.hr.domain import statistics
from services.hr.domain.establishment import Assignment, AssignmentTerms, Grade, GradeDetails, PayPoint, Rank
from services.hr.domain.person import Ethnicity, LeavingReason, Person, PersonDetails, Sex, WorkerType
from services.hr.domain.statistics import NOT_RECORDED, Figure
from services.hr.domain.transfer import SharedView, Transfer, TransferKind, TransferState, TransferTerms
from services.hr.domain.values import Period
from services.hr.persistence.models import KERNEL
from services.hr.service import HrUnitOfWork

T = TypeVar("T")
DAY0 = dt.date(2024, 3, 1)
SPAN = 10  # days from DAY0 that people join, leave, start and end on: a few, so they coincide
ELSEWHERE = "E23000099"  # where people transfer to
# Grades: one per rank, two without one; "" and "g-gone" are assignments' grades not found.
GRADE_IDS = [f"g-{r.value}" for r in Rank] + ["g-staff-a", "g-staff-b", "", "g-gone"]
_codes = itertools.count(1)


def _day(offset: int) -> dt.date:
    return DAY0 + dt.timedelta(days=offset)


@dataclass(frozen=True)
class PostHeld:
    start: int
    days: int | None  # None: open-ended
    fte_units: int
    grade: str


@dataclass(frozen=True)
class Move:
    kind: TransferKind
    state: TransferState
    effective: int


@dataclass(frozen=True)
class PersonSpec:
    worker_type: WorkerType
    sex: Sex
    ethnicity: Ethnicity
    join: int
    served: int | None  # days from joining to leaving; None: not left
    posts: tuple[PostHeld, ...]
    moves: tuple[Move, ...]


offsets = st.integers(min_value=0, max_value=SPAN)
people_specs = st.lists(
    st.builds(
        PersonSpec,
        worker_type=st.sampled_from(WorkerType),
        sex=st.sampled_from(Sex),
        ethnicity=st.sampled_from(Ethnicity),
        join=offsets,
        served=st.none() | st.integers(min_value=0, max_value=SPAN),
        posts=st.lists(
            st.builds(
                PostHeld,
                start=offsets,
                days=st.none() | st.integers(min_value=0, max_value=SPAN),
                fte_units=st.integers(min_value=1, max_value=10_000),
                grade=st.sampled_from(GRADE_IDS),
            ),
            max_size=3,
        ).map(tuple),
        moves=st.lists(
            st.builds(
                Move,
                # Mostly accepted transfers, the ones that count: now and then two of them.
                kind=st.sampled_from([TransferKind.TRANSFER, TransferKind.TRANSFER, TransferKind.SECONDMENT]),
                state=st.sampled_from([TransferState.ACCEPTED, TransferState.ACCEPTED, *TransferState]),
                effective=st.integers(min_value=0, max_value=SPAN + 1),
            ),
            max_size=2,
        ).map(tuple),
    ),
    max_size=25,
)
query_days = st.lists(st.integers(min_value=-1, max_value=SPAN + 1), min_size=1, max_size=6)
periods = st.tuples(offsets, st.integers(min_value=0, max_value=SPAN))


@contextmanager
def _uow(db: Database, *codes: str, write: bool = False) -> Iterator[HrUnitOfWork]:
    scope = Scope.of(*codes)
    with db.session(scope, write=write) as session:
        yield HrUnitOfWork(Transaction(session, AuditLog(session, KERNEL, None), scope, None, KERNEL))
        if write:
            session.commit()


def _write(uow: HrUnitOfWork, org: str, people: list[PersonSpec]) -> None:
    info = uow.new_info()
    pay = (PayPoint("1", Decimal(30000)),)
    for i, rank in enumerate(Rank):
        uow.grades.add(Grade(org, f"g-{rank.value}", GradeDetails(f"Rank {i}", rank, pay), info))
    for grade_id in ("g-staff-a", "g-staff-b"):
        uow.grades.add(Grade(org, grade_id, GradeDetails(grade_id, None, pay), info))
    for n, spec in enumerate(people):
        person_id = f"p-{n:03d}"
        leaving = None if spec.served is None else _day(spec.join + spec.served)
        details = PersonDetails("Sam", f"Person {n}", spec.sex, spec.ethnicity)
        uow.people.add(
            Person(
                org,
                person_id,
                spec.worker_type,
                details,
                _day(spec.join),
                info,
                leaving_date=leaving,
                leaving_reason=LeavingReason.RESIGNATION if leaving else None,
            )
        )
        for k, held in enumerate(spec.posts):
            fte = str(Decimal(held.fte_units).scaleb(-4))
            terms = AssignmentTerms(person_id, "post-1", fte, _day(held.start), held.grade, "1")
            end = None if held.days is None else _day(held.start + held.days)
            uow.assignments.add(Assignment(org, f"a-{n:03d}-{k}", terms, end, info))
        for k, move in enumerate(spec.moves):
            terms_t = TransferTerms(move.kind, person_id, ELSEWHERE, _day(move.effective))
            shared = SharedView("Sam", spec.worker_type, "")
            uow.transfers.add(Transfer(org, f"tr-{n:03d}-{k}", terms_t, shared, move.state, "", "", info, {}))


def _reference(uow: HrUnitOfWork, org: str, count: Callable[..., T], *args: object) -> T:
    """The rules in Python over every row, as the service computed them before SQL did."""
    people = service._departed(uow, org, uow.people.all(org))
    grades = {g.id: g for g in uow.grades.all(org)}
    return count(people, uow.assignments.all(org), grades, *args)


def _new_organisations() -> tuple[str, str]:
    n = next(_codes)
    return f"E23{n:06d}", f"W15{n:06d}"


def test_sql_counts_as_the_rules_in_python(settings: Settings) -> None:
    db = build_database("hr", settings)

    @given(people=people_specs, twin=people_specs, days=query_days, period=periods)
    @hypothesis.settings(
        max_examples=30,
        derandomize=True,
        # No shrinking: each try writes two organisations, and minutes of it help nobody.
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(
        people: list[PersonSpec], twin: list[PersonSpec], days: list[int], period: tuple[int, int]
    ) -> None:
        org, other = _new_organisations()
        with _uow(db, org, other, write=True) as uow:
            _write(uow, org, people)
            _write(uow, other, twin)  # the same ids: every join must keep to one organisation
        start, end = _day(period[0]), _day(period[0] + period[1])
        # A scope of both: only the queries' own filters keep the twin out.
        with _uow(db, org, other) as uow:
            for offset in days:
                day = _day(offset)
                expected = _reference(uow, org, statistics.strength_on, day)
                assert service.workforce_statistics(uow, org, day) == expected, day
            expected_moves = _reference(uow, org, statistics.joiners_and_leavers, Period(start, end))
            assert service.joiners_and_leavers(uow, org, start, end) == expected_moves
            joiners, leavers = _reference(uow, org, statistics.joiners_and_leavers, Period(start))
            assert statistics.breakdown_of_cells(uow.workforce.joiners(org, Period(start))) == joiners
            assert statistics.breakdown_of_cells(uow.workforce.leavers(org, Period(start))) == leavers

    try:
        check()
    finally:
        db.dispose()


def _figures(found: tuple[Figure, ...]) -> list[tuple[str, str, int, str]]:
    return [(f.worker_type.value, f.category, f.headcount, str(f.fte.normalize())) for f in found]


def test_a_force_counted_by_hand(settings: Settings) -> None:
    """The rules on a few people whose figures are known, so that a rule both sides got
    wrong alike would still show."""
    org, other = _new_organisations()
    officer, staff, special = WorkerType.POLICE_OFFICER, WorkerType.POLICE_STAFF, WorkerType.SPECIAL_CONSTABLE
    white, indian = Ethnicity.WHITE_BRITISH, Ethnicity.INDIAN

    def held(grade: str, fte: int, start: int = 0, days: int | None = None) -> PostHeld:
        return PostHeld(start, days, fte, grade)

    people = [
        # Acting inspector: two posts at once, counted once at the higher rank, FTE of both.
        PersonSpec(
            officer, Sex.MALE, white, 0, None, (held("g-constable", 6000), held("g-inspector", 4000)), ()
        ),
        # A sergeant whose earlier constable post ended on day 9.
        PersonSpec(
            officer,
            Sex.FEMALE,
            indian,
            0,
            None,
            (held("g-constable", 10_000, 0, 9), held("g-sergeant", 10_000, 10)),
            (),
        ),
        # An officer in a post whose grade has no rank.
        PersonSpec(
            officer, Sex.NOT_STATED, Ethnicity.PREFER_NOT_TO_SAY, 0, None, (held("g-staff-a", 5000),), ()
        ),
        # Transferred out on day 20: in service to day 19, a leaver on day 19.
        PersonSpec(
            staff,
            Sex.FEMALE,
            Ethnicity.CARIBBEAN,
            0,
            None,
            (held("g-staff-b", 8000),),
            (Move(TransferKind.TRANSFER, TransferState.ACCEPTED, 20),),
        ),
        # A secondment and a declined transfer change nothing.
        PersonSpec(
            staff,
            Sex.MALE,
            white,
            0,
            None,
            (held("", 10_000),),
            (
                Move(TransferKind.SECONDMENT, TransferState.ACCEPTED, 5),
                Move(TransferKind.TRANSFER, TransferState.DECLINED, 5),
            ),
        ),
        # A special constable joining on day 15, with no post: counted by heads, rank not recorded.
        PersonSpec(special, Sex.MALE, white, 15, None, (), ()),
    ]
    db = build_database("hr", settings)
    try:
        with _uow(db, org, other, write=True) as uow:
            _write(uow, org, people)
            _write(uow, other, people)
        with _uow(db, org) as uow:
            day15 = service.workforce_statistics(uow, org, _day(15))
            day20 = service.workforce_statistics(uow, org, _day(20))
            joiners, leavers = service.joiners_and_leavers(uow, org, _day(1), _day(30))
    finally:
        db.dispose()
    assert _figures(day15.by_worker_type) == [
        ("police_officer", "", 3, "2.5"),
        ("police_staff", "", 2, "1.8"),
        ("special_constable", "", 1, "0"),
    ]
    assert _figures(day15.by_rank) == [
        ("police_officer", "Sergeant", 1, "1"),
        ("police_officer", "Inspector", 1, "1"),
        ("police_officer", NOT_RECORDED, 1, "0.5"),
        ("special_constable", NOT_RECORDED, 1, "0"),
    ]
    assert _figures(day15.by_ethnic_group)[:2] == [
        ("police_officer", "Asian, Asian British or Asian Welsh", 1, "1"),
        ("police_officer", "Not stated", 1, "0.5"),
    ]
    assert day20.headcount == 5 and day20.fte == Decimal("3.5")
    assert _figures(joiners.by_worker_type) == [("special_constable", "", 1, "0")]
    assert _figures(leavers.by_sex) == [("police_staff", "Female", 1, "0.8")]
