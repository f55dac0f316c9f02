"""HR's repositories: rows <-> domain objects, one class per aggregate."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, Table, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.exc import StaleDataError

from libs.common.db import check_organisations_writable, owned_by_one_organisation
from libs.common.filtering import Comparison
from libs.common.paging import JsonKey
from libs.common.persistence import (
    apply_filter,
    keyset_after,
    read_by_key,
    record_info,
    record_values,
    update_by_key,
    values_of,
)
from services.hr.domain.absence import LeaveRequest, LeaveState, LeaveTerms, SicknessAbsence, SicknessTerms
from services.hr.domain.compliance import (
    ExpiryWindow,
    TrainingRecord,
    TrainingTerms,
    VettingClearance,
    VettingLevel,
    VettingTerms,
)
from services.hr.domain.establishment import (
    Assignment,
    AssignmentTerms,
    Grade,
    GradeDetails,
    OrgUnit,
    PayPoint,
    Post,
    PostDetails,
    Rank,
)
from services.hr.domain.paygap import PayRecord, PayTerms
from services.hr.domain.person import (
    Ethnicity,
    LeavingReason,
    Person,
    PersonDetails,
    ServiceHistoryEntry,
    Sex,
    WorkerType,
)
from services.hr.domain.transfer import SharedView, Transfer, TransferKind, TransferState, TransferTerms
from services.hr.persistence.last_day import last_day
from services.hr.persistence.models import (
    AssignmentRow,
    GradeRow,
    LeaveRequestRow,
    OrgUnitRow,
    PayRecordRow,
    PersonRow,
    PostRow,
    SicknessAbsenceRow,
    TrainingRecordRow,
    TransferRow,
    VettingClearanceRow,
)

FTE_UNIT = Decimal("0.0001")
TENTH = Decimal("0.1")
HUNDREDTH = Decimal("0.01")

T = TypeVar("T")


def _units(value: Decimal | str, unit: Decimal) -> int:
    return int(Decimal(value) / unit)


def _decimal(units: int, unit: Decimal) -> str:
    return format((Decimal(units) * unit).normalize(), "f")


def _pence(amount: Decimal) -> int:
    return int(amount * 100)


def _pounds(pence: int) -> Decimal:
    return Decimal(pence) / 100


def _active_on(start: Any, end: Any, day: dt.date) -> ColumnElement[bool]:
    return and_(start <= day, or_(end.is_(None), end >= day))


class _Rows(Generic[T]):
    """What every repository does the same way: load by key, add, save, keyset pages."""

    row_type: Any
    to_domain: Callable[[Any], T]

    def __init__(self, session: Session) -> None:
        self._session = session

    def _row(self, organisation: str, item_id: str) -> Any:
        return self._session.scalars(
            select(self.row_type).where(
                self.row_type.organisation_code == organisation, self.row_type.id == item_id
            )
        ).first()

    def get(self, organisation: str, item_id: str, *, lock: bool = False) -> T | None:
        if owned_by_one_organisation(self.row_type):
            row = read_by_key(
                self._session, self.row_type, {"organisation_code": organisation, "id": item_id}, lock=lock
            )
        else:
            assert not lock, "two-party rows are locked by `_save`"
            row = self._row(organisation, item_id)
        return type(self).to_domain(row) if row is not None else None

    def _add(self, organisation: str, item_id: str, values: dict[str, object]) -> None:
        self._session.add(self.row_type(organisation_code=organisation, id=item_id, **values))
        self._session.flush()

    def _save(self, organisation: str, item_id: str, values: dict[str, object]) -> None:
        """Writes the change of a record read earlier in the transaction, whose version the
        change moved on by one, only if the row is still at the version read: if another
        writer changed it since (on PostgreSQL two calls can read the same version and
        check their rules against it), the change is refused with `StaleDataError`
        (ABORTED), never written over the other's."""
        was_version = cast(int, values["version"]) - 1
        if owned_by_one_organisation(self.row_type):
            key = {"organisation_code": organisation, "id": item_id}
            update_by_key(self._session, self.row_type, key, values, was_version=was_version)
            return
        # A two-party row (a transfer) is written through the unit of work: read it again
        # locked, as it now stands, and compare.
        row = self._session.scalars(
            select(self.row_type)
            .where(self.row_type.organisation_code == organisation, self.row_type.id == item_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        assert row is not None
        if row.version != was_version:
            raise StaleDataError(f"{self.row_type.__tablename__} {item_id} changed since it was read")
        for name, value in values.items():
            setattr(row, name, value)
        self._session.flush()

    def _page(self, where: Sequence[Any], after: JsonKey | None, size: int) -> list[T]:
        values = values_of(self.row_type)
        stmt = values.select().where(*where)
        stmt = keyset_after(stmt, [self.row_type.organisation_code, self.row_type.id], after).limit(size)
        return [type(self).to_domain(r) for r in values.read(self._session, stmt)]

    def _all(self, *where: Any) -> list[T]:
        values = values_of(self.row_type)
        stmt = values.select().where(*where).order_by(self.row_type.organisation_code, self.row_type.id)
        return [type(self).to_domain(r) for r in values.read(self._session, stmt)]


# People


def _history(text: str) -> tuple[ServiceHistoryEntry, ...]:
    return tuple(
        ServiceHistoryEntry(
            organisation=e["organisation"],
            post_display_name=e["post_display_name"],
            grade_display_name=e["grade_display_name"],
            fte=Decimal(e["fte"]),
            start_date=dt.date.fromisoformat(e["start_date"]),
            end_date=dt.date.fromisoformat(e["end_date"]),
        )
        for e in json.loads(text or "[]")
    )


def history_json(entries: Sequence[ServiceHistoryEntry]) -> str:
    return json.dumps(
        [
            {
                "organisation": e.organisation,
                "post_display_name": e.post_display_name,
                "grade_display_name": e.grade_display_name,
                "fte": str(e.fte),
                "start_date": e.start_date.isoformat(),
                "end_date": e.end_date.isoformat(),
            }
            for e in entries
        ]
    )


def _person(row: PersonRow) -> Person:
    return Person(
        organisation=row.organisation_code,
        id=row.id,
        worker_type=WorkerType(row.worker_type),
        details=PersonDetails(
            given_name=row.given_name,
            family_name=row.family_name,
            preferred_name=row.preferred_name,
            collar_number=row.collar_number or "",
            national_insurance_number=row.national_insurance_number or "",
            birth_date=row.birth_date,
            sex=Sex(row.sex),
            ethnicity=Ethnicity(row.ethnicity),
            email=row.email,
            phone=row.phone,
            address_lines=tuple(row.address_lines.split("\n")) if row.address_lines else (),
            postcode=row.postcode,
            full_time_leave_days=(
                _decimal(row.full_time_leave_tenths, TENTH) if row.full_time_leave_tenths is not None else ""
            ),
        ),
        join_date=row.join_date,
        leaving_date=row.leaving_date,
        leaving_reason=LeavingReason(row.leaving_reason) if row.leaving_reason else None,
        prior_service=_history(row.prior_service),
        info=record_info(row),
    )


def _person_values(p: Person) -> dict[str, object]:
    d = p.details
    assert d.sex is not None and d.ethnicity is not None
    return {
        "worker_type": p.worker_type.value,
        "given_name": d.given_name,
        "family_name": d.family_name,
        "preferred_name": d.preferred_name,
        "collar_number": d.collar_number or None,
        "national_insurance_number": d.national_insurance_number or None,
        "birth_date": d.birth_date,
        "sex": d.sex.value,
        "ethnicity": d.ethnicity.value,
        "email": d.email,
        "phone": d.phone,
        "address_lines": "\n".join(d.address_lines),
        "postcode": d.postcode,
        "full_time_leave_tenths": _units(d.full_time_leave_days, TENTH) if d.full_time_leave_days else None,
        "join_date": p.join_date,
        "leaving_date": p.leaving_date,
        "leaving_reason": p.leaving_reason.value if p.leaving_reason else None,
        "prior_service": history_json(p.prior_service) if p.prior_service else "[]",
        **record_values(p.info),
    }


# The keys a person is unique by within an organisation.
PersonKey = Literal["id", "collar_number", "national_insurance_number"]


class PersonRepository(Protocol):
    def get(self, organisation: str, person_id: str, *, lock: bool = False) -> Person | None:
        """The person; with `lock`, held until the transaction ends, so that calls adding
        to the person's assignments or absences take turns (on PostgreSQL two could each
        pass an FTE, balance or overlap check that together they break)."""
        ...

    def by_collar_number(self, organisation: str, number: str) -> Person | None: ...
    def by_ni_number(self, organisation: str, number: str) -> Person | None: ...
    def recorded(self, organisation: str) -> dict[PersonKey, set[str]]: ...
    def add(self, person: Person) -> None: ...
    def add_many(self, people: Sequence[Person]) -> bool: ...
    def save(self, person: Person) -> None: ...
    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Person]: ...
    def all(self, organisation: str) -> list[Person]: ...


class SqlPersonRepository(_Rows[Person]):
    row_type = PersonRow
    to_domain = staticmethod(_person)
    FILTERS: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "family_name": PersonRow.family_name,
        "collar_number": PersonRow.collar_number,
        "national_insurance_number": PersonRow.national_insurance_number,
        "worker_type": PersonRow.worker_type,
        "join_date": PersonRow.join_date,
        "leaving_date": PersonRow.leaving_date,
    }

    def by_collar_number(self, organisation: str, number: str) -> Person | None:
        found = self._all(PersonRow.organisation_code == organisation, PersonRow.collar_number == number)
        return found[0] if found else None

    def by_ni_number(self, organisation: str, number: str) -> Person | None:
        found = self._all(
            PersonRow.organisation_code == organisation, PersonRow.national_insurance_number == number
        )
        return found[0] if found else None

    def recorded(self, organisation: str) -> dict[PersonKey, set[str]]:
        """Every id, collar number and NI number the organisation's people have: one pass over
        its rows. For explaining a refused `add_many`, so rarely; and a pass no plan can make
        worse, where lookups of many values can be (see `add_many`)."""
        found: dict[PersonKey, set[str]] = {
            "id": set(),
            "collar_number": set(),
            "national_insurance_number": set(),
        }
        query = select(PersonRow.id, PersonRow.collar_number, PersonRow.national_insurance_number).where(
            PersonRow.organisation_code == organisation
        )
        for person_id, collar_number, ni_number in self._session.execute(query):
            found["id"].add(person_id)
            if collar_number:
                found["collar_number"].add(collar_number)
            if ni_number:
                found["national_insurance_number"].add(ni_number)
        return found

    def add(self, person: Person) -> None:
        self._add(person.organisation, person.id, _person_values(person))

    def add_many(self, people: Sequence[Person]) -> bool:
        """Adds the rows `add` writes, in one executemany (psycopg pipelines it) instead of an
        ORM object and a flush each; a Core insert passes no flush, so the flush's tenancy
        guard is made here. False, and nothing added, when a unique constraint refuses a row:
        an id, collar number or NI number the organisation already has.

        The constraints check every row by an index probe. Asking first, with `IN` or `= ANY`
        over thousands of values, is at the planner's mercy: on a table without statistics
        (a first import; autovacuum off) PostgreSQL scans the organisation's rows for each
        lookup, and a generic plan of a prepared statement took over 50 s for 10,000 values
        against 110,000 people."""
        if not people:
            return True
        check_organisations_writable(self._session, PersonRow, {p.organisation for p in people})
        rows = [{"organisation_code": p.organisation, "id": p.id, **_person_values(p)} for p in people]
        savepoint = self._session.begin_nested()
        try:
            self._session.execute(insert(cast(Table, PersonRow.__table__)), rows)
        except IntegrityError:
            savepoint.rollback()
            return False
        savepoint.commit()
        return True

    def save(self, person: Person) -> None:
        self._save(person.organisation, person.id, _person_values(person))

    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Person]:
        stmt = values_of(PersonRow).select()
        filters: Mapping[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = self.FILTERS
        if any(c.field == "leaving_date" for c in comparisons):
            # Someone who left by transfer has a leaving date that is derived, not stored.
            last = last_day()
            stmt = stmt.outerjoin(last.moved, last.on)
            filters = {**self.FILTERS, "leaving_date": last.day}
        stmt = apply_filter(stmt, comparisons, filters)
        stmt = keyset_after(stmt, [PersonRow.organisation_code, PersonRow.id], after).limit(size)
        return [_person(r) for r in values_of(PersonRow).read(self._session, stmt)]

    def all(self, organisation: str) -> list[Person]:
        return self._all(PersonRow.organisation_code == organisation)


# Grades, units, posts, assignments


def _grade(row: GradeRow) -> Grade:
    points = tuple(PayPoint(p["code"], _pounds(p["annual_salary_pence"])) for p in json.loads(row.pay_points))
    return Grade(
        row.organisation_code,
        row.id,
        GradeDetails(row.display_name, Rank(row.rank) if row.rank else None, points),
        record_info(row),
    )


def _grade_values(grade: Grade) -> dict[str, object]:
    d = grade.details
    points = [{"code": p.code, "annual_salary_pence": _pence(p.annual_salary)} for p in d.pay_points]
    return {
        "display_name": d.display_name,
        "rank": d.rank.value if d.rank else None,
        "pay_points": json.dumps(points),
        **record_values(grade.info),
    }


class GradeRepository(Protocol):
    def get(self, organisation: str, grade_id: str, *, lock: bool = False) -> Grade | None: ...
    def by_display_name(self, organisation: str, display_name: str) -> Grade | None: ...
    def add(self, grade: Grade) -> None: ...
    def save(self, grade: Grade) -> None: ...
    def page(self, organisation: str, after: JsonKey | None, size: int) -> list[Grade]: ...
    def all(self, organisation: str) -> list[Grade]: ...


class SqlGradeRepository(_Rows[Grade]):
    row_type = GradeRow
    to_domain = staticmethod(_grade)

    def by_display_name(self, organisation: str, display_name: str) -> Grade | None:
        found = self._all(GradeRow.organisation_code == organisation, GradeRow.display_name == display_name)
        return found[0] if found else None

    def add(self, grade: Grade) -> None:
        self._add(grade.organisation, grade.id, _grade_values(grade))

    def save(self, grade: Grade) -> None:
        self._save(grade.organisation, grade.id, _grade_values(grade))

    def page(self, organisation: str, after: JsonKey | None, size: int) -> list[Grade]:
        return self._page([GradeRow.organisation_code == organisation], after, size)

    def all(self, organisation: str) -> list[Grade]:
        return self._all(GradeRow.organisation_code == organisation)


def _unit(row: OrgUnitRow) -> OrgUnit:
    return OrgUnit(row.organisation_code, row.id, row.display_name, row.parent_id, record_info(row))


class OrgUnitRepository(Protocol):
    def get(self, organisation: str, unit_id: str) -> OrgUnit | None: ...
    def add(self, unit: OrgUnit) -> None: ...
    def page(self, organisation: str, after: JsonKey | None, size: int) -> list[OrgUnit]: ...


class SqlOrgUnitRepository(_Rows[OrgUnit]):
    row_type = OrgUnitRow
    to_domain = staticmethod(_unit)

    def add(self, unit: OrgUnit) -> None:
        self._add(
            unit.organisation,
            unit.id,
            {"display_name": unit.display_name, "parent_id": unit.parent_id, **record_values(unit.info)},
        )

    def page(self, organisation: str, after: JsonKey | None, size: int) -> list[OrgUnit]:
        return self._page([OrgUnitRow.organisation_code == organisation], after, size)


def _post(row: PostRow) -> Post:
    return Post(
        row.organisation_code,
        row.id,
        PostDetails(
            display_name=row.display_name,
            org_unit_id=row.org_unit_id,
            worker_type=WorkerType(row.worker_type),
            grade_id=row.grade_id,
            budgeted_fte=_decimal(row.budgeted_fte_units, FTE_UNIT),
            start_date=row.start_date,
            end_date=row.end_date,
        ),
        record_info(row),
    )


def _post_values(post: Post) -> dict[str, object]:
    d = post.details
    assert d.worker_type is not None
    return {
        "display_name": d.display_name,
        "org_unit_id": d.org_unit_id,
        "worker_type": d.worker_type.value,
        "grade_id": d.grade_id,
        "budgeted_fte_units": _units(d.budgeted_fte, FTE_UNIT),
        "start_date": d.start_date,
        "end_date": d.end_date,
        **record_values(post.info),
    }


class PostRepository(Protocol):
    def get(self, organisation: str, post_id: str, *, lock: bool = False) -> Post | None: ...
    def add(self, post: Post) -> None: ...
    def save(self, post: Post) -> None: ...
    def page(
        self, organisation: str, as_at: dt.date | None, after: JsonKey | None, size: int
    ) -> list[Post]: ...
    def all(self, organisation: str, org_unit_id: str = "") -> list[Post]: ...


class SqlPostRepository(_Rows[Post]):
    row_type = PostRow
    to_domain = staticmethod(_post)

    def add(self, post: Post) -> None:
        self._add(post.organisation, post.id, _post_values(post))

    def save(self, post: Post) -> None:
        self._save(post.organisation, post.id, _post_values(post))

    def page(self, organisation: str, as_at: dt.date | None, after: JsonKey | None, size: int) -> list[Post]:
        where: list[Any] = [PostRow.organisation_code == organisation]
        if as_at is not None:
            where.append(_active_on(PostRow.start_date, PostRow.end_date, as_at))
        return self._page(where, after, size)

    def all(self, organisation: str, org_unit_id: str = "") -> list[Post]:
        where: list[Any] = [PostRow.organisation_code == organisation]
        if org_unit_id:
            where.append(PostRow.org_unit_id == org_unit_id)
        return self._all(*where)


def _assignment(row: AssignmentRow) -> Assignment:
    return Assignment(
        row.organisation_code,
        row.id,
        AssignmentTerms(
            person_id=row.person_id,
            post_id=row.post_id,
            fte=_decimal(row.fte_units, FTE_UNIT),
            start_date=row.start_date,
            grade_id=row.grade_id,
            pay_point=row.pay_point,
        ),
        row.end_date,
        record_info(row),
    )


def _assignment_values(a: Assignment) -> dict[str, object]:
    t = a.terms
    return {
        "person_id": t.person_id,
        "post_id": t.post_id,
        "fte_units": _units(t.fte, FTE_UNIT),
        "grade_id": t.grade_id,
        "pay_point": t.pay_point,
        "start_date": t.start_date,
        "end_date": a.end_date,
        **record_values(a.info),
    }


class AssignmentRepository(Protocol):
    def get(self, organisation: str, assignment_id: str) -> Assignment | None: ...
    def add(self, assignment: Assignment) -> None: ...
    def save(self, assignment: Assignment) -> None: ...
    def of_person(self, organisation: str, person_id: str) -> list[Assignment]: ...
    def of_post(self, organisation: str, post_id: str) -> list[Assignment]: ...
    def naming_pay_points(self, organisation: str, grade_id: str, codes: Iterable[str]) -> list[Assignment]:
        """The assignments, ended or not, on one of the grade's pay points `codes`."""
        ...

    def all(self, organisation: str) -> list[Assignment]: ...
    def page(
        self,
        organisation: str,
        *,
        person_id: str,
        post_id: str,
        as_at: dt.date | None,
        after: JsonKey | None,
        size: int,
    ) -> list[Assignment]: ...


class SqlAssignmentRepository(_Rows[Assignment]):
    row_type = AssignmentRow
    to_domain = staticmethod(_assignment)

    def add(self, assignment: Assignment) -> None:
        self._add(assignment.organisation, assignment.id, _assignment_values(assignment))

    def save(self, assignment: Assignment) -> None:
        self._save(assignment.organisation, assignment.id, _assignment_values(assignment))

    def of_person(self, organisation: str, person_id: str) -> list[Assignment]:
        return self._all(
            AssignmentRow.organisation_code == organisation, AssignmentRow.person_id == person_id
        )

    def of_post(self, organisation: str, post_id: str) -> list[Assignment]:
        return self._all(AssignmentRow.organisation_code == organisation, AssignmentRow.post_id == post_id)

    def naming_pay_points(self, organisation: str, grade_id: str, codes: Iterable[str]) -> list[Assignment]:
        return self._all(
            AssignmentRow.organisation_code == organisation,
            AssignmentRow.grade_id == grade_id,
            AssignmentRow.pay_point.in_(list(codes)),
        )

    def all(self, organisation: str) -> list[Assignment]:
        return self._all(AssignmentRow.organisation_code == organisation)

    def page(
        self,
        organisation: str,
        *,
        person_id: str,
        post_id: str,
        as_at: dt.date | None,
        after: JsonKey | None,
        size: int,
    ) -> list[Assignment]:
        where: list[Any] = [AssignmentRow.organisation_code == organisation]
        if person_id:
            where.append(AssignmentRow.person_id == person_id)
        if post_id:
            where.append(AssignmentRow.post_id == post_id)
        if as_at is not None:
            where.append(_active_on(AssignmentRow.start_date, AssignmentRow.end_date, as_at))
            # Nor held any more by someone who left by a transfer that had taken effect
            # (the service ends such assignments the day before, as it does their service).
            moved = select(TransferRow.id).where(
                TransferRow.organisation_code == organisation,
                TransferRow.person_id == AssignmentRow.person_id,
                TransferRow.kind == TransferKind.TRANSFER.value,
                TransferRow.state == TransferState.ACCEPTED.value,
                TransferRow.effective_date <= as_at,
            )
            where.append(~moved.exists())
        return self._page(where, after, size)


# Absence


def _leave(row: LeaveRequestRow) -> LeaveRequest:
    return LeaveRequest(
        row.organisation_code,
        row.id,
        LeaveTerms(row.person_id, row.start_date, row.end_date, _decimal(row.days_tenths, TENTH), row.note),
        LeaveState(row.state),
        row.decided_by,
        record_info(row),
    )


def _leave_values(r: LeaveRequest) -> dict[str, object]:
    t = r.terms
    return {
        "person_id": t.person_id,
        "start_date": t.start_date,
        "end_date": t.end_date,
        "days_tenths": _units(t.days, TENTH),
        "note": t.note,
        "state": r.state.value,
        "decided_by": r.decided_by,
        **record_values(r.info),
    }


class LeaveRequestRepository(Protocol):
    def get(self, organisation: str, request_id: str) -> LeaveRequest | None: ...
    def add(self, request: LeaveRequest) -> None: ...
    def save(self, request: LeaveRequest) -> None: ...
    def of_person(self, organisation: str, person_id: str) -> list[LeaveRequest]: ...
    def page(
        self, organisation: str, person_id: str, after: JsonKey | None, size: int
    ) -> list[LeaveRequest]: ...


class SqlLeaveRequestRepository(_Rows[LeaveRequest]):
    row_type = LeaveRequestRow
    to_domain = staticmethod(_leave)

    def add(self, request: LeaveRequest) -> None:
        self._add(request.organisation, request.id, _leave_values(request))

    def save(self, request: LeaveRequest) -> None:
        self._save(request.organisation, request.id, _leave_values(request))

    def of_person(self, organisation: str, person_id: str) -> list[LeaveRequest]:
        return self._all(
            LeaveRequestRow.organisation_code == organisation, LeaveRequestRow.person_id == person_id
        )

    def page(self, organisation: str, person_id: str, after: JsonKey | None, size: int) -> list[LeaveRequest]:
        where: list[Any] = [LeaveRequestRow.organisation_code == organisation]
        if person_id:
            where.append(LeaveRequestRow.person_id == person_id)
        return self._page(where, after, size)


def _sickness(row: SicknessAbsenceRow) -> SicknessAbsence:
    return SicknessAbsence(
        row.organisation_code,
        row.id,
        SicknessTerms(row.person_id, row.start_date, row.end_date, row.reason, row.work_related),
        record_info(row),
    )


def _sickness_values(s: SicknessAbsence) -> dict[str, object]:
    t = s.terms
    return {
        "person_id": t.person_id,
        "start_date": t.start_date,
        "end_date": t.end_date,
        "reason": t.reason,
        "work_related": t.work_related,
        **record_values(s.info),
    }


class SicknessRepository(Protocol):
    def get(self, organisation: str, absence_id: str) -> SicknessAbsence | None: ...
    def add(self, absence: SicknessAbsence) -> None: ...
    def save(self, absence: SicknessAbsence) -> None: ...
    def of_person(self, organisation: str, person_id: str) -> list[SicknessAbsence]: ...
    def page(
        self, organisation: str, person_id: str, after: JsonKey | None, size: int
    ) -> list[SicknessAbsence]: ...


class SqlSicknessRepository(_Rows[SicknessAbsence]):
    row_type = SicknessAbsenceRow
    to_domain = staticmethod(_sickness)

    def add(self, absence: SicknessAbsence) -> None:
        self._add(absence.organisation, absence.id, _sickness_values(absence))

    def save(self, absence: SicknessAbsence) -> None:
        self._save(absence.organisation, absence.id, _sickness_values(absence))

    def of_person(self, organisation: str, person_id: str) -> list[SicknessAbsence]:
        return self._all(
            SicknessAbsenceRow.organisation_code == organisation, SicknessAbsenceRow.person_id == person_id
        )

    def page(
        self, organisation: str, person_id: str, after: JsonKey | None, size: int
    ) -> list[SicknessAbsence]:
        where: list[Any] = [SicknessAbsenceRow.organisation_code == organisation]
        if person_id:
            where.append(SicknessAbsenceRow.person_id == person_id)
        return self._page(where, after, size)


# Training and vetting: pages in key order, or (for an expiry window) soonest expiry first.


def _training(row: TrainingRecordRow) -> TrainingRecord:
    return TrainingRecord(
        row.organisation_code,
        row.id,
        TrainingTerms(row.person_id, row.course, row.completed_date, row.expiry_date, row.accreditation),
        record_info(row),
    )


def _vetting(row: VettingClearanceRow) -> VettingClearance:
    return VettingClearance(
        row.organisation_code,
        row.id,
        VettingTerms(
            row.person_id, VettingLevel(row.level), row.granted_date, row.expiry_date, row.reference
        ),
        record_info(row),
    )


class TrainingRepository(Protocol):
    def add(self, record: TrainingRecord) -> None: ...
    def page(
        self, organisation: str, person_id: str, window: ExpiryWindow | None, after: JsonKey | None, size: int
    ) -> list[TrainingRecord]: ...


class VettingRepository(Protocol):
    def add(self, clearance: VettingClearance) -> None: ...
    def page(
        self, organisation: str, person_id: str, window: ExpiryWindow | None, after: JsonKey | None, size: int
    ) -> list[VettingClearance]: ...


class _Expiring(_Rows[T]):
    def page(
        self, organisation: str, person_id: str, window: ExpiryWindow | None, after: JsonKey | None, size: int
    ) -> list[T]:
        row = self.row_type
        stmt = select(row).where(row.organisation_code == organisation)
        if person_id:
            stmt = stmt.where(row.person_id == person_id)
        if window is None:
            stmt = keyset_after(stmt, [row.organisation_code, row.id], after)
        else:
            stmt = stmt.where(row.expiry_date >= window.start, row.expiry_date <= window.end)
            stmt = keyset_after(stmt, [row.expiry_date, row.organisation_code, row.id], _dated(after))
        return [type(self).to_domain(r) for r in self._session.scalars(stmt.limit(size))]


def _dated(after: JsonKey | None) -> Any:
    """Page keys carry the expiry date as text; compare it as a date."""
    if after is None:
        return None
    return (dt.date.fromisoformat(str(after[0])), *after[1:])


class SqlTrainingRepository(_Expiring[TrainingRecord]):
    row_type = TrainingRecordRow
    to_domain = staticmethod(_training)

    def add(self, record: TrainingRecord) -> None:
        t = record.terms
        self._add(
            record.organisation,
            record.id,
            {
                "person_id": t.person_id,
                "course": t.course,
                "accreditation": t.accreditation,
                "completed_date": t.completed_date,
                "expiry_date": t.expiry_date,
                **record_values(record.info),
            },
        )


class SqlVettingRepository(_Expiring[VettingClearance]):
    row_type = VettingClearanceRow
    to_domain = staticmethod(_vetting)

    def add(self, clearance: VettingClearance) -> None:
        t = clearance.terms
        assert t.level is not None
        self._add(
            clearance.organisation,
            clearance.id,
            {
                "person_id": t.person_id,
                "level": t.level.value,
                "granted_date": t.granted_date,
                "expiry_date": t.expiry_date,
                "reference": t.reference,
                **record_values(clearance.info),
            },
        )


# Pay records


def _pay(row: PayRecordRow) -> PayRecord:
    return PayRecord(
        row.organisation_code,
        row.id,
        PayTerms(
            person_id=row.person_id,
            snapshot_date=row.snapshot_date,
            ordinary_pay=_pounds(row.ordinary_pay_pence),
            period_bonus_pay=_pounds(row.period_bonus_pence),
            pay_period_days=row.pay_period_days,
            weekly_hours=_decimal(row.weekly_hours_hundredths, HUNDREDTH),
            annual_bonus_pay=_pounds(row.annual_bonus_pence),
            full_pay=row.full_pay,
        ),
        record_info(row),
    )


class PayRecordRepository(Protocol):
    def add(self, record: PayRecord) -> None: ...
    def find(self, organisation: str, person_id: str, snapshot: dt.date) -> PayRecord | None: ...
    def of_snapshot(self, organisation: str, snapshot: dt.date) -> list[PayRecord]: ...


class SqlPayRecordRepository(_Rows[PayRecord]):
    row_type = PayRecordRow
    to_domain = staticmethod(_pay)

    def add(self, record: PayRecord) -> None:
        t = record.terms
        self._add(
            record.organisation,
            record.id,
            {
                "person_id": t.person_id,
                "snapshot_date": t.snapshot_date,
                "ordinary_pay_pence": _pence(t.ordinary_pay),
                "period_bonus_pence": _pence(t.period_bonus_pay),
                "pay_period_days": t.pay_period_days,
                "weekly_hours_hundredths": _units(t.weekly_hours, HUNDREDTH),
                "annual_bonus_pence": _pence(t.annual_bonus_pay),
                "full_pay": t.full_pay,
                **record_values(record.info),
            },
        )

    def find(self, organisation: str, person_id: str, snapshot: dt.date) -> PayRecord | None:
        found = self._all(
            PayRecordRow.organisation_code == organisation,
            PayRecordRow.person_id == person_id,
            PayRecordRow.snapshot_date == snapshot,
        )
        return found[0] if found else None

    def of_snapshot(self, organisation: str, snapshot: dt.date) -> list[PayRecord]:
        return self._all(
            PayRecordRow.organisation_code == organisation, PayRecordRow.snapshot_date == snapshot
        )


# Transfers: rows both forces see.


def _transfer(row: TransferRow) -> Transfer:
    return Transfer(
        organisation=row.organisation_code,
        id=row.id,
        terms=TransferTerms(
            TransferKind(row.kind), row.person_id, row.counterparty_code, row.effective_date, row.end_date
        ),
        shared=SharedView(row.display_name, WorkerType(row.worker_type), row.grade_display_name),
        state=TransferState(row.state),
        receiving_person_id=row.receiving_person_id,
        decline_reason=row.decline_reason,
        info=record_info(row),
        package=json.loads(row.package),
        cancel_reason=row.cancel_reason,
    )


def _transfer_values(t: Transfer) -> dict[str, object]:
    assert t.terms.kind is not None
    return {
        "counterparty_code": t.terms.receiving_organisation,
        "kind": t.terms.kind.value,
        "person_id": t.terms.person_id,
        "effective_date": t.terms.effective_date,
        "end_date": t.terms.end_date,
        "display_name": t.shared.display_name,
        "worker_type": t.shared.worker_type.value,
        "grade_display_name": t.shared.grade_display_name,
        "state": t.state.value,
        "receiving_person_id": t.receiving_person_id,
        "decline_reason": t.decline_reason,
        "cancel_reason": t.cancel_reason,
        "package": json.dumps(t.package),
        **record_values(t.info),
    }


class TransferRepository(Protocol):
    def get_for(self, party: str, transfer_id: str) -> Transfer | None: ...
    def add(self, transfer: Transfer) -> None: ...
    def save(self, transfer: Transfer) -> None: ...
    def of_person(self, organisation: str, person_id: str) -> list[Transfer]: ...
    def accepted_out(self, organisation: str, person_ids: Collection[str] | None = None) -> list[Transfer]:
        """Accepted transfers out of `organisation` (of `person_ids` only, if given)."""
        ...

    def pending_out(self, organisation: str) -> list[Transfer]:
        """Offers `organisation` has made that are not yet decided."""
        ...

    def page(self, party: str, after: JsonKey | None, size: int) -> list[Transfer]: ...


class SqlTransferRepository(_Rows[Transfer]):
    row_type = TransferRow
    to_domain = staticmethod(_transfer)

    def get_for(self, party: str, transfer_id: str) -> Transfer | None:
        found = self._all(
            TransferRow.id == transfer_id,
            or_(TransferRow.organisation_code == party, TransferRow.counterparty_code == party),
        )
        return found[0] if found else None

    def add(self, transfer: Transfer) -> None:
        self._add(transfer.organisation, transfer.id, _transfer_values(transfer))

    def save(self, transfer: Transfer) -> None:
        self._save(transfer.organisation, transfer.id, _transfer_values(transfer))

    def of_person(self, organisation: str, person_id: str) -> list[Transfer]:
        return self._all(TransferRow.organisation_code == organisation, TransferRow.person_id == person_id)

    def accepted_out(self, organisation: str, person_ids: Collection[str] | None = None) -> list[Transfer]:
        where = [
            TransferRow.organisation_code == organisation,
            TransferRow.kind == TransferKind.TRANSFER.value,
            TransferRow.state == TransferState.ACCEPTED.value,
        ]
        if person_ids is not None:
            where.append(TransferRow.person_id.in_(list(person_ids)))
        return self._all(*where)

    def pending_out(self, organisation: str) -> list[Transfer]:
        return self._all(
            TransferRow.organisation_code == organisation,
            TransferRow.state == TransferState.PENDING.value,
        )

    def page(self, party: str, after: JsonKey | None, size: int) -> list[Transfer]:
        where = [or_(TransferRow.organisation_code == party, TransferRow.counterparty_code == party)]
        return self._page(where, after, size)
