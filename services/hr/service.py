"""HR's use cases: take a unit of work and plain values, return domain objects."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal

from libs.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Violations,
)
from libs.common.filtering import Comparison
from libs.common.names import check_resource_id, new_id
from libs.common.paging import JsonKey
from libs.common.records import RecordInfo, check_etag
from libs.common.reference import reference_codes
from libs.common.service import Transaction
from services.hr.domain import absence, establishment, statistics
from services.hr.domain.absence import LeaveRequest, LeaveState, LeaveTerms, SicknessAbsence, SicknessTerms
from services.hr.domain.compliance import (
    ExpiryWindow,
    TrainingRecord,
    TrainingTerms,
    VettingClearance,
    VettingTerms,
)
from services.hr.domain.establishment import (
    Assignment,
    AssignmentTerms,
    EstablishmentLine,
    Grade,
    GradeDetails,
    OrgUnit,
    Post,
    PostDetails,
)
from services.hr.domain.identifiers import normalise_collar_number
from services.hr.domain.paygap import PayGapReport, PayRecord, PayTerms, pay_gap
from services.hr.domain.person import (
    LeavingReason,
    Person,
    PersonDetails,
    ServiceHistoryEntry,
    WorkerType,
    check_new_person,
    collar_number_problem,
    person_name,
)
from services.hr.domain.transfer import SharedView, Transfer, TransferKind, TransferState, TransferTerms
from services.hr.domain.values import Period
from services.hr.persistence.repository import (
    AssignmentRepository,
    GradeRepository,
    LeaveRequestRepository,
    OrgUnitRepository,
    PayRecordRepository,
    PersonRepository,
    PostRepository,
    SicknessRepository,
    SqlAssignmentRepository,
    SqlGradeRepository,
    SqlLeaveRequestRepository,
    SqlOrgUnitRepository,
    SqlPayRecordRepository,
    SqlPersonRepository,
    SqlPostRepository,
    SqlSicknessRepository,
    SqlTrainingRepository,
    SqlTransferRepository,
    SqlVettingRepository,
    TrainingRepository,
    TransferRepository,
    VettingRepository,
)
from services.hr.persistence.workforce import SqlWorkforceView, WorkforceView

MAX_BATCH = 10_000
# Worker types that are not employees for the gender pay gap (SI 2017/353): volunteers.
NOT_EMPLOYEES = frozenset({WorkerType.SPECIAL_CONSTABLE, WorkerType.VOLUNTEER})


class HrUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        s = tx.session
        self.people: PersonRepository = SqlPersonRepository(s)
        self.grades: GradeRepository = SqlGradeRepository(s)
        self.units: OrgUnitRepository = SqlOrgUnitRepository(s)
        self.posts: PostRepository = SqlPostRepository(s)
        self.assignments: AssignmentRepository = SqlAssignmentRepository(s)
        self.leave: LeaveRequestRepository = SqlLeaveRequestRepository(s)
        self.sickness: SicknessRepository = SqlSicknessRepository(s)
        self.training: TrainingRepository = SqlTrainingRepository(s)
        self.vetting: VettingRepository = SqlVettingRepository(s)
        self.pay: PayRecordRepository = SqlPayRecordRepository(s)
        self.transfers: TransferRepository = SqlTransferRepository(s)
        self.workforce: WorkforceView = SqlWorkforceView(s)

    def new_info(self) -> RecordInfo:
        return RecordInfo.new(self.tx.principal_id, self.tx.acting_organisation, _now())

    def touched(self, info: RecordInfo) -> RecordInfo:
        return info.touched(self.tx.principal_id, self.tx.acting_organisation, _now())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _precondition_missing(kind: str, name: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{name} does not exist or is not visible to you",
        reason=f"{kind}_NOT_FOUND",
        metadata={"resource": name},
    )


# People


def _transferred_out(uow: HrUnitOfWork, organisation: str, person_ids: set[str]) -> dict[str, dt.date]:
    """The last day of service of those of `person_ids` who left by an accepted transfer:
    the day before it took effect (the last of them, were there several)."""
    if not person_ids:
        return {}
    # A long list is cheaper read whole than as a long IN list.
    wanted = person_ids if len(person_ids) <= 500 else None
    return {
        t.terms.person_id: t.terms.effective_date - dt.timedelta(days=1)
        for t in uow.transfers.accepted_out(organisation, wanted)
        if t.terms.effective_date is not None
    }


def _departed(uow: HrUnitOfWork, organisation: str, people: Sequence[Person]) -> list[Person]:
    """People who left by an accepted transfer show as leavers the day before it took effect
    (the receiving force accepts; the sending force's row is not its to write)."""
    last = _transferred_out(uow, organisation, {p.id for p in people})
    out = []
    for person in people:
        day = last.get(person.id)
        p = person
        if day is not None and p.leaving_date is None:
            p = replace(p, leaving_date=day, leaving_reason=LeavingReason.TRANSFER)
        out.append(p)
    return out


def _held(uow: HrUnitOfWork, organisation: str, assignments: Sequence[Assignment]) -> list[Assignment]:
    """Assignments as they stand: those of someone who left by an accepted transfer end on
    their last day of service, derived as their leaving date is, for the same reason."""
    last = _transferred_out(uow, organisation, {a.terms.person_id for a in assignments})
    return [a.ended_by(last.get(a.terms.person_id)) for a in assignments]


def _taken(organisation: str, what: str, value: str, row: int | None = None) -> AlreadyExists:
    metadata = {what: value}
    if row is not None:
        metadata["row"] = str(row)
    return AlreadyExists(
        f"a person with {what.replace('_', ' ')} {value} is already recorded in {organisation}",
        reason="PERSON_ALREADY_EXISTS",
        metadata=metadata,
    )


def _check_unique(uow: HrUnitOfWork, person: Person, row: int | None = None) -> None:
    d = person.details
    if d.collar_number:
        other = uow.people.by_collar_number(person.organisation, d.collar_number)
        if other is not None and other.id != person.id:
            raise _taken(person.organisation, "collar_number", d.collar_number, row)
    if d.national_insurance_number:
        other = uow.people.by_ni_number(person.organisation, d.national_insurance_number)
        if other is not None and other.id != person.id:
            raise _taken(person.organisation, "national_insurance_number", d.national_insurance_number, row)


def _new_person(
    uow: HrUnitOfWork,
    organisation: str,
    *,
    worker_type: WorkerType | None,
    details: PersonDetails,
    join_date: dt.date | None,
    person_id: str,
    prefix: str = "person",
) -> Person:
    v = Violations()
    if person_id:
        try:
            check_resource_id(person_id, prefix.removesuffix("person") + "person_id")
        except InvalidArgument as err:
            v.items.extend(err.violations)
    try:
        details = check_new_person(worker_type, details, join_date, prefix)
    except InvalidArgument as err:
        v.items.extend(err.violations)
    v.raise_if_any()
    assert worker_type is not None and join_date is not None
    return Person(organisation, person_id or new_id("p"), worker_type, details, join_date, uow.new_info())


def _add_person(uow: HrUnitOfWork, person: Person, row: int | None = None) -> None:
    if uow.people.get(person.organisation, person.id) is not None:
        raise AlreadyExists(
            f"{person.name} already exists",
            reason="PERSON_ALREADY_EXISTS",
            metadata={"person_id": person.id, **({"row": str(row)} if row is not None else {})},
        )
    _check_unique(uow, person, row)
    uow.people.add(person)
    uow.tx.audit.record(person.organisation, person.name, None, person.audit_view())


def _first_recorded(uow: HrUnitOfWork, organisation: str, people: Sequence[Person]) -> AlreadyExists | None:
    """What `_add_person` would say of the first of `people` whose id, collar number or NI
    number (in that order) a person of the organisation already has, with its row."""
    recorded = uow.people.recorded(organisation)
    ids, collars, ninos = recorded["id"], recorded["collar_number"], recorded["national_insurance_number"]
    for row, person in enumerate(people):
        d = person.details
        if person.id in ids:
            return AlreadyExists(
                f"{person.name} already exists",
                reason="PERSON_ALREADY_EXISTS",
                metadata={"person_id": person.id, "row": str(row)},
            )
        if d.collar_number in collars:
            return _taken(organisation, "collar_number", d.collar_number, row)
        if d.national_insurance_number in ninos:
            return _taken(organisation, "national_insurance_number", d.national_insurance_number, row)
    return None


def create_person(
    uow: HrUnitOfWork,
    organisation: str,
    *,
    worker_type: WorkerType | None,
    details: PersonDetails,
    join_date: dt.date | None,
    person_id: str = "",
) -> Person:
    person = _new_person(
        uow, organisation, worker_type=worker_type, details=details, join_date=join_date, person_id=person_id
    )
    _add_person(uow, person)
    return person


NewPerson = tuple[WorkerType | None, PersonDetails, dt.date | None, str]


def batch_create_people(
    uow: HrUnitOfWork,
    organisation: str,
    rows: Sequence[NewPerson],
    unreadable: Sequence[FieldViolation] = (),
) -> list[Person]:
    """All rows or none: every bad field of every row is reported at once, with `unreadable`
    (what reading the request found, such as a date that is no date; its fields read as
    unset, so what the checks say of them again is left out).

    Set-based: the rows are one executemany whose unique constraints find a person already
    recorded (only then are the organisation's keys read to name the row), and the audit
    records are appended together; a batch of 10,000 is a few statements, not eight a person."""
    if not 0 < len(rows) <= MAX_BATCH:
        raise InvalidArgument.single("requests", f"send 1 to {MAX_BATCH} people")
    v = Violations(list(unreadable))
    reported = {u.field for u in unreadable}
    people: list[Person] = []
    seen: dict[tuple[str, str], int] = {}
    for i, (worker_type, details, join_date, person_id) in enumerate(rows):
        prefix = f"requests[{i}].person"
        try:
            person = _new_person(
                uow,
                organisation,
                worker_type=worker_type,
                details=details,
                join_date=join_date,
                person_id=person_id,
                prefix=prefix,
            )
        except InvalidArgument as err:
            v.items.extend(e for e in err.violations if e.field not in reported)
            continue
        for what in ("collar_number", "national_insurance_number", "id"):
            value = person.id if what == "id" else getattr(person.details, what)
            if not value:
                continue
            if (what, value) in seen:
                v.add(f"{prefix}.{what}", f"repeats row {seen[(what, value)]} of this batch")
            seen[(what, value)] = i
        people.append(person)
    v.raise_if_any()
    if not uow.people.add_many(people):
        # The unique constraints refused a row: say which, as person by person would.
        raise _first_recorded(uow, organisation, people) or Aborted(
            "a concurrent change conflicted with this request; retry it", reason="CONCURRENT_CHANGE"
        )
    for person in people:
        uow.tx.audit.record(person.organisation, person.name, None, person.audit_view())
    return people


def get_person(uow: HrUnitOfWork, organisation: str, person_id: str, *, lock: bool = False) -> Person:
    person = uow.people.get(organisation, person_id, lock=lock)
    if person is None:
        raise NotFound(person_name(organisation, person_id))
    return _departed(uow, organisation, [person])[0]


def list_people(
    uow: HrUnitOfWork, comparisons: Sequence[Comparison], after: JsonKey | None, size: int
) -> list[Person]:
    found = uow.people.page(comparisons, after, size)
    out: list[Person] = []
    for org in dict.fromkeys(p.organisation for p in found):
        out += _departed(uow, org, [p for p in found if p.organisation == org])
    order = {(p.organisation, p.id): i for i, p in enumerate(found)}
    return sorted(out, key=lambda p: order[(p.organisation, p.id)])


def update_person(
    uow: HrUnitOfWork,
    organisation: str,
    *,
    person_id: str,
    changes: PersonDetails,
    paths: frozenset[str],
    etag: str,
) -> Person:
    current = get_person(uow, organisation, person_id)
    check_etag(current.name, etag, current.info)
    details = current.details.with_changes(changes, paths).checked(current.worker_type)
    updated = replace(current, details=details, info=uow.touched(current.info))
    _check_unique(uow, updated)
    uow.people.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    _refresh_offers(uow, updated)
    return updated


def record_leaver(
    uow: HrUnitOfWork,
    organisation: str,
    person_id: str,
    *,
    leaving_date: dt.date | None,
    reason: LeavingReason | None,
    etag: str,
) -> Person:
    v = Violations()
    v.check(leaving_date is not None, "leaving_date", "is required: the last day of service")
    v.check(
        reason is not None and reason is not LeavingReason.TRANSFER,
        "leaving_reason",
        "is required, and TRANSFER is recorded by accepting a transfer",
    )
    v.raise_if_any()
    assert leaving_date is not None
    # Locked, as an offer to another force and a new assignment lock the person: else one
    # could commit after this call checked for it, and the leaver be counted twice.
    current = get_person(uow, organisation, person_id, lock=True)
    check_etag(current.name, etag, current.info)
    if current.leaving_date is not None:
        raise FailedPrecondition(
            f"{current.name} left on {current.leaving_date.isoformat()}",
            reason="PERSON_ALREADY_LEFT",
            metadata={"leaving_date": current.leaving_date.isoformat()},
        )
    if leaving_date < current.join_date:
        raise InvalidArgument.single("leaving_date", "must not be before the join date")
    transfers = uow.transfers.of_person(organisation, person_id)
    pending = [t for t in transfers if t.state is TransferState.PENDING]
    if pending:
        # Else the receiving force could still accept someone recorded as leaving for
        # another reason, and both forces would count them in service.
        raise FailedPrecondition(
            f"{current.name} has a pending transfer or secondment, {pending[0].name}: cancel it first",
            reason="TRANSFER_PENDING",
            metadata={"transfer": pending[0].name},
        )
    assignments = uow.assignments.of_person(organisation, person_id)
    _check_none_start_after(assignments, leaving_date)
    _check_no_leave_after(uow.leave.of_person(organisation, person_id), leaving_date)
    _check_no_sickness_after(uow.sickness.of_person(organisation, person_id), leaving_date)
    for a in assignments:
        if a.end_date is None or a.end_date > leaving_date:
            _end_assignment(uow, a, leaving_date)
    updated = replace(
        current, leaving_date=leaving_date, leaving_reason=reason, info=uow.touched(current.info)
    )
    uow.people.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    return updated


def _check_none_start_after(assignments: Sequence[Assignment], last_day: dt.date) -> None:
    for a in assignments:
        if a.period.start > last_day:
            raise FailedPrecondition(
                f"{a.name} starts after {last_day.isoformat()}: end or correct it first",
                reason="ASSIGNMENT_AFTER_LEAVING",
                metadata={"assignment": a.name},
            )


def _check_no_leave_after(requests: Sequence[LeaveRequest], last_day: dt.date) -> None:
    # Leave past the last day is not taken: the request is cancelled or rejected by a
    # person, so that the balance paid in lieu is decided knowingly.
    for r in requests:
        if r.state.holds_days and r.terms.end_date is not None and r.terms.end_date > last_day:
            raise FailedPrecondition(
                f"{r.name} ({r.state.value}) runs past {last_day.isoformat()}: cancel or reject it first",
                reason="LEAVE_AFTER_LEAVING",
                metadata={"leave_request": r.name},
            )


def _check_no_sickness_after(absences: Sequence[SicknessAbsence], last_day: dt.date) -> None:
    # Not ended for them: only the manager knows whether the absence ended before the
    # last day, and an ended absence's dates are final.
    for s in absences:
        end = s.terms.end_date
        if end is None or end > last_day:
            fix = (
                "it starts after that day"
                if s.terms.period.start > last_day
                else "end it on or before that day first"
            )
            raise FailedPrecondition(
                f"{s.name} is open or runs past {last_day.isoformat()}: {fix}",
                reason="SICKNESS_AFTER_LEAVING",
                metadata={"sickness_absence": s.name},
            )


# Grades, units, posts


def _check_id(value: str, field_path: str) -> None:
    if value:
        check_resource_id(value, field_path)


def create_grade(uow: HrUnitOfWork, organisation: str, details: GradeDetails, grade_id: str = "") -> Grade:
    _check_id(grade_id, "grade_id")
    details = details.checked()
    if (grade_id and uow.grades.get(organisation, grade_id)) or uow.grades.by_display_name(
        organisation, details.display_name
    ):
        raise AlreadyExists(
            f"a grade {grade_id or details.display_name!r} already exists", reason="GRADE_ALREADY_EXISTS"
        )
    grade = Grade(organisation, grade_id or new_id("g"), details, uow.new_info())
    uow.grades.add(grade)
    uow.tx.audit.record(organisation, grade.name, None, grade.audit_view())
    return grade


def update_grade(
    uow: HrUnitOfWork,
    organisation: str,
    *,
    grade_id: str,
    changes: GradeDetails,
    paths: frozenset[str],
    etag: str,
) -> Grade:
    # Locked, as a new assignment locks its grade: a pay point it names is then seen in use.
    current = get_grade(uow, organisation, grade_id, lock=True)
    check_etag(current.name, etag, current.info)
    details = current.details.with_changes(changes, paths).checked()
    named = uow.grades.by_display_name(organisation, details.display_name)
    if named is not None and named.id != current.id:
        raise AlreadyExists(f"a grade {details.display_name!r} already exists", reason="GRADE_ALREADY_EXISTS")
    dropped = current.dropped_points(details)
    in_use = uow.assignments.naming_pay_points(organisation, current.id, dropped) if dropped else []
    if in_use:
        first = in_use[0]
        raise FailedPrecondition(
            f"pay point {first.terms.pay_point} of {current.name} is {first.name}'s: keep it",
            reason="PAY_POINT_IN_USE",
            metadata={"pay_point": first.terms.pay_point, "assignment": first.name},
        )
    updated = replace(current, details=details, info=uow.touched(current.info))
    uow.grades.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    # A pending offer names the grades its person holds and has held; a renamed grade
    # changes it (and its etag) as a change to the person would.
    for person_id in sorted({o.terms.person_id for o in uow.transfers.pending_out(organisation)}):
        person = uow.people.get(organisation, person_id)
        if person is not None:
            _refresh_offers(uow, person)
    return updated


def get_grade(uow: HrUnitOfWork, organisation: str, grade_id: str, *, lock: bool = False) -> Grade:
    grade = uow.grades.get(organisation, grade_id, lock=lock)
    if grade is None:
        raise NotFound(f"organisations/{organisation}/grades/{grade_id}")
    return grade


def list_grades(uow: HrUnitOfWork, organisation: str, after: JsonKey | None, size: int) -> list[Grade]:
    return uow.grades.page(organisation, after, size)


def create_org_unit(
    uow: HrUnitOfWork, organisation: str, display_name: str, parent_id: str, unit_id: str = ""
) -> OrgUnit:
    _check_id(unit_id, "org_unit_id")
    name = establishment.check_unit_name(display_name)
    if parent_id and uow.units.get(organisation, parent_id) is None:
        raise _precondition_missing("ORG_UNIT", f"organisations/{organisation}/orgUnits/{parent_id}")
    if unit_id and uow.units.get(organisation, unit_id):
        raise AlreadyExists(f"organisations/{organisation}/orgUnits/{unit_id} already exists")
    unit = OrgUnit(organisation, unit_id or new_id("u"), name, parent_id or None, uow.new_info())
    uow.units.add(unit)
    uow.tx.audit.record(organisation, unit.name, None, unit.audit_view())
    return unit


def list_org_units(uow: HrUnitOfWork, organisation: str, after: JsonKey | None, size: int) -> list[OrgUnit]:
    return uow.units.page(organisation, after, size)


def create_post(uow: HrUnitOfWork, organisation: str, details: PostDetails, post_id: str = "") -> Post:
    _check_id(post_id, "post_id")
    details = details.checked()
    assert details.worker_type is not None
    if uow.units.get(organisation, details.org_unit_id) is None:
        raise _precondition_missing(
            "ORG_UNIT", f"organisations/{organisation}/orgUnits/{details.org_unit_id}"
        )
    grade = _grade_or_none(uow, organisation, details.grade_id)
    establishment.check_grade_suits(details.worker_type, grade)
    if post_id and uow.posts.get(organisation, post_id):
        raise AlreadyExists(f"organisations/{organisation}/posts/{post_id} already exists")
    post = Post(organisation, post_id or new_id("post"), details, uow.new_info())
    uow.posts.add(post)
    uow.tx.audit.record(organisation, post.name, None, post.audit_view())
    return post


def _grade_or_none(
    uow: HrUnitOfWork, organisation: str, grade_id: str, *, lock: bool = False
) -> Grade | None:
    if not grade_id:
        return None
    grade = uow.grades.get(organisation, grade_id, lock=lock)
    if grade is None:
        raise _precondition_missing("GRADE", f"organisations/{organisation}/grades/{grade_id}")
    return grade


def get_post(uow: HrUnitOfWork, organisation: str, post_id: str, *, lock: bool = False) -> Post:
    post = uow.posts.get(organisation, post_id, lock=lock)
    if post is None:
        raise NotFound(f"organisations/{organisation}/posts/{post_id}")
    return post


def end_post(uow: HrUnitOfWork, organisation: str, post_id: str, last_day: dt.date | None, etag: str) -> Post:
    if last_day is None:
        raise InvalidArgument.single("end_date", "is required: the post's last day in the establishment")
    # Locked, as a new assignment locks its post: else one could start after this call
    # read the post's assignments, and run past the post's end.
    current = get_post(uow, organisation, post_id, lock=True)
    check_etag(current.name, etag, current.info)
    ended = replace(
        current,
        details=current.ending(
            last_day, _held(uow, organisation, uow.assignments.of_post(organisation, post_id))
        ),
        info=uow.touched(current.info),
    )
    uow.posts.save(ended)
    uow.tx.audit.record(organisation, ended.name, current.audit_view(), ended.audit_view())
    return ended


def list_posts(
    uow: HrUnitOfWork, organisation: str, as_at: dt.date | None, after: JsonKey | None, size: int
) -> list[Post]:
    return uow.posts.page(organisation, as_at, after, size)


def get_establishment(
    uow: HrUnitOfWork, organisation: str, day: dt.date, org_unit_id: str = ""
) -> list[EstablishmentLine]:
    people = {p.id: p for p in _departed(uow, organisation, uow.people.all(organisation))}
    current = [
        a
        for a in uow.assignments.all(organisation)
        if (p := people.get(a.terms.person_id)) is not None and p.in_service_on(day)
    ]
    return establishment.establishment_on(uow.posts.all(organisation, org_unit_id), current, day)


# Assignments: joiners, movers, leavers


def create_assignment(uow: HrUnitOfWork, organisation: str, terms: AssignmentTerms) -> Assignment:
    terms = terms.checked()
    assert terms.start_date is not None
    person = uow.people.get(organisation, terms.person_id, lock=True)  # FTE checks take turns
    if person is None:
        raise _precondition_missing("PERSON", person_name(organisation, terms.person_id))
    person = _departed(uow, organisation, [person])[0]
    # The post and the grade locked too (after the person, always in this order), so that
    # EndPost and UpdateGrade, which lock them, take turns with this call.
    post = uow.posts.get(organisation, terms.post_id, lock=True)
    if post is None:
        raise _precondition_missing("POST", f"organisations/{organisation}/posts/{terms.post_id}")
    if post.details.worker_type is not person.worker_type:
        raise FailedPrecondition(
            f"{post.name} is for a {post.details.worker_type.value if post.details.worker_type else '?'}, "
            f"and {person.name} is a {person.worker_type.value}",
            reason="WORKER_TYPE_MISMATCH",
        )
    if not person.in_service_on(terms.start_date):
        raise FailedPrecondition(
            f"{person.name} is not in service on {terms.start_date.isoformat()}",
            reason="NOT_IN_SERVICE",
            metadata={"date": terms.start_date.isoformat()},
        )
    offers = uow.transfers.of_person(organisation, person.id)
    for t in offers:
        effective = t.terms.effective_date
        pending = t.state is TransferState.PENDING and t.terms.kind is TransferKind.TRANSFER
        if pending and effective is not None and terms.start_date >= effective:
            raise FailedPrecondition(
                f"{person.name} is offered to another force from {effective.isoformat()} by {t.name}: "
                "cancel it first",
                reason="TRANSFER_PENDING",
                metadata={"transfer": t.name},
            )
    if not post.details.period.contains(terms.start_date):
        raise FailedPrecondition(
            f"{post.name} is not in the establishment on {terms.start_date.isoformat()}",
            reason="POST_NOT_IN_ESTABLISHMENT",
        )
    grade_id = terms.grade_id or post.details.grade_id
    grade = _grade_or_none(uow, organisation, grade_id, lock=True)
    if grade is not None:
        establishment.check_grade_suits(person.worker_type, grade)
        if terms.pay_point and grade.point(terms.pay_point) is None:
            raise FailedPrecondition(
                f"{grade.name} has no pay point {terms.pay_point!r}",
                reason="PAY_POINT_NOT_FOUND",
                metadata={"pay_point": terms.pay_point},
            )
    terms = replace(terms, grade_id=grade_id)
    # The assignment runs until the person leaves (or the post closes), whichever is first.
    ends = [d for d in (person.leaving_date, post.details.end_date) if d is not None]
    end = min(ends) if ends else None
    assert terms.start_date is not None
    period = Period(terms.start_date, end)
    # The period ends by the person's last day, transfers included: no need to end their
    # other assignments at it (`_held`) for this check.
    establishment.check_fte_capacity(
        uow.assignments.of_person(organisation, person.id), Decimal(terms.fte), period
    )
    assignment = Assignment(organisation, new_id("a"), terms, end, uow.new_info())
    uow.assignments.add(assignment)
    uow.tx.audit.record(organisation, assignment.name, None, assignment.audit_view())
    _refresh_offers(uow, person, offers)
    return assignment


def _end_assignment(uow: HrUnitOfWork, current: Assignment, end: dt.date) -> Assignment:
    updated = replace(current, end_date=end, info=uow.touched(current.info))
    uow.assignments.save(updated)
    uow.tx.audit.record(current.organisation, updated.name, current.audit_view(), updated.audit_view())
    return updated


def end_assignment(
    uow: HrUnitOfWork, organisation: str, assignment_id: str, end: dt.date | None, etag: str
) -> Assignment:
    if end is None:
        raise InvalidArgument.single("end_date", "is required: the last day in the post")
    found = uow.assignments.get(organisation, assignment_id)
    if found is None:
        raise NotFound(f"organisations/{organisation}/assignments/{assignment_id}")
    current = _held(uow, organisation, [found])[0]
    check_etag(current.name, etag, current.info)
    if current.end_date is not None and current.end_date <= end:
        raise FailedPrecondition(
            f"{current.name} ended on {current.end_date.isoformat()}", reason="ASSIGNMENT_ENDED"
        )
    if end < current.period.start:
        raise InvalidArgument.single("end_date", "must not be before the assignment's start date")
    ended = _end_assignment(uow, current, end)
    person = uow.people.get(organisation, current.terms.person_id)
    if person is not None:
        _refresh_offers(uow, person)
    return ended


def move_person(uow: HrUnitOfWork, organisation: str, terms: AssignmentTerms) -> Assignment:
    """A mover: what runs on the effective date ends the day before; the new one starts."""
    terms = terms.checked("", renamed={"person": "name", "start_date": "effective_date"})
    assert terms.start_date is not None
    if uow.people.get(organisation, terms.person_id, lock=True) is None:
        raise NotFound(person_name(organisation, terms.person_id))
    for a in _held(uow, organisation, uow.assignments.of_person(organisation, terms.person_id)):
        if a.active_on(terms.start_date):
            if a.period.start == terms.start_date:
                raise FailedPrecondition(
                    f"{a.name} starts on the effective date: end it instead",
                    reason="ASSIGNMENT_STARTS_SAME_DAY",
                )
            _end_assignment(uow, a, terms.start_date - dt.timedelta(days=1))
    return create_assignment(uow, organisation, terms)


def list_assignments(
    uow: HrUnitOfWork,
    organisation: str,
    *,
    person_id: str,
    post_id: str,
    as_at: dt.date | None,
    after: JsonKey | None,
    size: int,
) -> list[Assignment]:
    found = uow.assignments.page(
        organisation, person_id=person_id, post_id=post_id, as_at=as_at, after=after, size=size
    )
    return _held(uow, organisation, found)


# Absence


def _person_in_service(
    uow: HrUnitOfWork, organisation: str, person_id: str, period: Period, *, what: str = "the period"
) -> Person:
    # Locked: a new absence's balance and overlap checks take turns with the person's others,
    # and with RecordLeaver, which locks the person too.
    person = uow.people.get(organisation, person_id, lock=True)
    if person is None:
        raise _precondition_missing("PERSON", person_name(organisation, person_id))
    person = _departed(uow, organisation, [person])[0]
    last = period.end or period.start
    if not (person.in_service_on(period.start) and person.in_service_on(last)):
        raise FailedPrecondition(
            f"{person.name} is not in service for the whole of {what}", reason="NOT_IN_SERVICE"
        )
    return person


def leave_balance(uow: HrUnitOfWork, organisation: str, person_id: str, day: dt.date) -> absence.LeaveBalance:
    person = get_person(uow, organisation, person_id)
    return absence.balance(
        person_id,
        person.details.leave_days,
        _held(uow, organisation, uow.assignments.of_person(organisation, person_id)),
        uow.leave.of_person(organisation, person_id),
        day,
    )


def create_leave_request(uow: HrUnitOfWork, organisation: str, terms: LeaveTerms) -> LeaveRequest:
    terms = terms.checked()
    _person_in_service(uow, organisation, terms.person_id, terms.period)
    absence.check_no_overlap(terms, uow.leave.of_person(organisation, terms.person_id))
    assert terms.start_date is not None
    absence.check_balance(
        leave_balance(uow, organisation, terms.person_id, terms.start_date), terms.day_count
    )
    request = LeaveRequest(organisation, new_id("l"), terms, LeaveState.REQUESTED, "", uow.new_info())
    uow.leave.add(request)
    uow.tx.audit.record(organisation, request.name, None, request.audit_view())
    return request


def get_leave_request(uow: HrUnitOfWork, organisation: str, request_id: str) -> LeaveRequest:
    found = uow.leave.get(organisation, request_id)
    if found is None:
        raise NotFound(f"organisations/{organisation}/leaveRequests/{request_id}")
    return found


def list_leave_requests(
    uow: HrUnitOfWork, organisation: str, person_id: str, after: JsonKey | None, size: int
) -> list[LeaveRequest]:
    return uow.leave.page(organisation, person_id, after, size)


def decide_leave_request(
    uow: HrUnitOfWork, organisation: str, request_id: str, *, state: LeaveState, note: str, etag: str
) -> LeaveRequest:
    current = get_leave_request(uow, organisation, request_id)
    check_etag(current.name, etag, current.info)
    updated = current.decided(state, uow.tx.principal_id, note, uow.touched(current.info))
    if state is LeaveState.APPROVED:
        # The person may have left since the request (RecordLeaver, an accepted transfer):
        # leave after the last day of service is not approved. Declining needs no check.
        terms = current.terms
        assert terms.start_date is not None and terms.end_date is not None
        _person_in_service(
            uow,
            organisation,
            terms.person_id,
            terms.period,
            what=f"{current.name} ({terms.start_date.isoformat()} to {terms.end_date.isoformat()}),"
            " so it cannot be approved: reject or cancel it",
        )
        # The entitlement may have fallen since the request (a lower FTE): check again.
        bal = leave_balance(uow, organisation, terms.person_id, terms.start_date)
        absence.check_balance(bal, Decimal(0))
    uow.leave.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    return updated


def create_sickness(uow: HrUnitOfWork, organisation: str, terms: SicknessTerms) -> SicknessAbsence:
    terms = terms.checked()
    _person_in_service(uow, organisation, terms.person_id, terms.period)
    absence.check_no_sickness_overlap(terms.period, uow.sickness.of_person(organisation, terms.person_id))
    record = SicknessAbsence(organisation, new_id("sa"), terms, uow.new_info())
    uow.sickness.add(record)
    uow.tx.audit.record(organisation, record.name, None, record.audit_view())
    return record


def list_sickness(
    uow: HrUnitOfWork, organisation: str, person_id: str, after: JsonKey | None, size: int
) -> list[SicknessAbsence]:
    return uow.sickness.page(organisation, person_id, after, size)


def end_sickness(
    uow: HrUnitOfWork, organisation: str, absence_id: str, end: dt.date | None, etag: str
) -> SicknessAbsence:
    if end is None:
        raise InvalidArgument.single("end_date", "is required: the last day of absence")
    current = uow.sickness.get(organisation, absence_id)
    if current is None:
        raise NotFound(f"organisations/{organisation}/sicknessAbsences/{absence_id}")
    check_etag(current.name, etag, current.info)
    if current.terms.end_date is not None:
        raise FailedPrecondition(f"{current.name} has ended already", reason="SICKNESS_ENDED")
    if current.terms.start_date is not None and end < current.terms.start_date:
        raise InvalidArgument.single("end_date", "must not be before the absence's first day")
    terms = replace(current.terms, end_date=end).checked()
    # The person may have left since the absence began (RecordLeaver, an accepted transfer
    # out): it ends on or before their last day. Locked, as for a new absence.
    _person_in_service(
        uow,
        organisation,
        terms.person_id,
        terms.period,
        what=f"{current.name} ({terms.period.start.isoformat()} to {end.isoformat()}):"
        " end it on or before their last day",
    )
    absence.check_no_sickness_overlap(
        terms.period, uow.sickness.of_person(organisation, terms.person_id), own_id=current.id
    )
    updated = replace(current, terms=terms, info=uow.touched(current.info))
    uow.sickness.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    return updated


# Training and vetting


def _known_person(uow: HrUnitOfWork, organisation: str, person_id: str) -> None:
    if uow.people.get(organisation, person_id) is None:
        raise _precondition_missing("PERSON", person_name(organisation, person_id))


def create_training(uow: HrUnitOfWork, organisation: str, terms: TrainingTerms) -> TrainingRecord:
    terms = terms.checked()
    _known_person(uow, organisation, terms.person_id)
    record = TrainingRecord(organisation, new_id("t"), terms, uow.new_info())
    uow.training.add(record)
    uow.tx.audit.record(organisation, record.name, None, record.audit_view())
    return record


def list_training(
    uow: HrUnitOfWork,
    organisation: str,
    *,
    person_id: str,
    window: ExpiryWindow | None,
    after: JsonKey | None,
    size: int,
) -> list[TrainingRecord]:
    return uow.training.page(organisation, person_id, window, after, size)


def create_vetting(uow: HrUnitOfWork, organisation: str, terms: VettingTerms) -> VettingClearance:
    terms = terms.checked()
    _known_person(uow, organisation, terms.person_id)
    record = VettingClearance(organisation, new_id("v"), terms, uow.new_info())
    uow.vetting.add(record)
    uow.tx.audit.record(organisation, record.name, None, record.audit_view())
    return record


def list_vetting(
    uow: HrUnitOfWork,
    organisation: str,
    *,
    person_id: str,
    window: ExpiryWindow | None,
    after: JsonKey | None,
    size: int,
) -> list[VettingClearance]:
    return uow.vetting.page(organisation, person_id, window, after, size)


# Statistics and the gender pay gap


def workforce_statistics(uow: HrUnitOfWork, organisation: str, day: dt.date) -> statistics.Breakdown:
    """Counted by the database (`statistics.strength_on` is the same rule in Python)."""
    return statistics.breakdown_of_cells(uow.workforce.strength_on(organisation, day))


def joiners_and_leavers(
    uow: HrUnitOfWork, organisation: str, start: dt.date | None, end: dt.date | None
) -> tuple[statistics.Breakdown, statistics.Breakdown]:
    v = Violations()
    v.check(start is not None, "start_date", "is required")
    v.check(end is not None, "end_date", "is required")
    if start and end:
        v.check(start <= end, "end_date", "must not be before the start date")
    v.raise_if_any()
    assert start is not None and end is not None
    # Counted by the database (`statistics.joiners_and_leavers` is the same rule in Python).
    period = Period(start, end)
    return (
        statistics.breakdown_of_cells(uow.workforce.joiners(organisation, period)),
        statistics.breakdown_of_cells(uow.workforce.leavers(organisation, period)),
    )


def create_pay_record(uow: HrUnitOfWork, organisation: str, terms: PayTerms) -> PayRecord:
    terms = terms.checked()
    assert terms.snapshot_date is not None
    # A relevant employee is one employed on the snapshot date (SI 2017/172 reg 1).
    person = uow.people.get(organisation, terms.person_id)
    if person is None:
        raise _precondition_missing("PERSON", person_name(organisation, terms.person_id))
    person = _departed(uow, organisation, [person])[0]
    if not person.in_service_on(terms.snapshot_date):
        raise FailedPrecondition(
            f"{person.name} is not in service on the snapshot date {terms.snapshot_date.isoformat()}: "
            "only relevant employees have pay records",
            reason="NOT_IN_SERVICE",
            metadata={"date": terms.snapshot_date.isoformat()},
        )
    if uow.pay.find(organisation, terms.person_id, terms.snapshot_date) is not None:
        raise AlreadyExists(
            f"{person_name(organisation, terms.person_id)} already has a pay record for "
            f"{terms.snapshot_date.isoformat()}",
            reason="PAY_RECORD_EXISTS",
        )
    record = PayRecord(organisation, new_id("pay"), terms, uow.new_info())
    uow.pay.add(record)
    uow.tx.audit.record(organisation, record.name, None, record.audit_view())
    return record


def gender_pay_gap(uow: HrUnitOfWork, organisation: str, snapshot: dt.date) -> PayGapReport:
    # As they stand (a transfer out makes a leaver): someone who left before the snapshot
    # date, or joined after it, is not a relevant employee even if a record was kept.
    people = {p.id: p for p in _departed(uow, organisation, uow.people.all(organisation))}
    rows = []
    for record in uow.pay.of_snapshot(organisation, snapshot):
        person = people.get(record.terms.person_id)
        if person is None or person.worker_type in NOT_EMPLOYEES or person.details.sex is None:
            continue
        if not person.in_service_on(snapshot):
            continue
        rows.append((person.details.sex, record.terms))
    return pay_gap(rows)


# Transfers and secondments


def _grade_label(
    uow: HrUnitOfWork, organisation: str, assignments: Sequence[Assignment], day: dt.date
) -> str:
    for a in assignments:
        if a.active_on(day) and a.terms.grade_id:
            grade = uow.grades.get(organisation, a.terms.grade_id)
            if grade is not None:
                return grade.details.display_name
    return ""


def _shared_view(
    uow: HrUnitOfWork, person: Person, assignments: Sequence[Assignment], effective: dt.date
) -> SharedView:
    day_before = effective - dt.timedelta(days=1)
    grade = _grade_label(uow, person.organisation, assignments, day_before)
    return SharedView(person.display_name, person.worker_type, grade)


def _refresh_offers(uow: HrUnitOfWork, person: Person, offers: Sequence[Transfer] | None = None) -> None:
    """A pending offer carries the person's record as the sending force keeps it, so that
    the receiving force accepts what is true on the day, not what was true at the offer.
    The offer's etag moves with it: an acceptance of the older record is refused (ABORTED)
    and read again."""
    if offers is None:
        offers = uow.transfers.of_person(person.organisation, person.id)
    pending = [o for o in offers if o.state is TransferState.PENDING and o.terms.effective_date is not None]
    if not pending:
        return
    assignments = uow.assignments.of_person(person.organisation, person.id)
    for offer in pending:
        assert offer.terms.effective_date is not None
        shared = _shared_view(uow, person, assignments, offer.terms.effective_date)
        package = _package(uow, person) if offer.terms.kind is TransferKind.TRANSFER else {}
        if shared == offer.shared and package == offer.package:
            continue
        updated = offer.with_record(shared, package, uow.touched(offer.info))
        uow.transfers.save(updated)
        uow.tx.audit.record(person.organisation, updated.name, offer.audit_view(), updated.audit_view())


def _package(uow: HrUnitOfWork, person: Person) -> dict[str, object]:
    """The person's record as it crosses: details and service history, plain JSON."""
    history: list[dict[str, object]] = [
        {
            **dataclasses.asdict(e),
            "fte": str(e.fte),
            "start_date": e.start_date.isoformat(),
            "end_date": e.end_date.isoformat(),
        }
        for e in person.prior_service
    ]
    for a in uow.assignments.of_person(person.organisation, person.id):
        post = uow.posts.get(person.organisation, a.terms.post_id)
        grade = uow.grades.get(person.organisation, a.terms.grade_id) if a.terms.grade_id else None
        history.append(
            {
                "organisation": f"organisations/{person.organisation}",
                "post_display_name": post.details.display_name if post else "",
                "grade_display_name": grade.details.display_name if grade else "",
                "fte": a.terms.fte,
                "start_date": a.period.start.isoformat(),
                "end_date": (a.end_date or dt.date.max).isoformat(),
            }
        )
    view = person.audit_view()
    return {"worker_type": person.worker_type.value, "details": view, "history": history}


def create_transfer(uow: HrUnitOfWork, organisation: str, terms: TransferTerms) -> Transfer:
    terms = terms.checked(
        organisation,
        forces=reference_codes("FORCE"),
        national_bodies=reference_codes("NATIONAL_BODY"),
    )
    assert terms.effective_date is not None and terms.kind is not None
    # Locked: an assignment being added for the person waits, then sees this offer.
    person = uow.people.get(organisation, terms.person_id, lock=True)
    if person is None:
        raise _precondition_missing("PERSON", person_name(organisation, terms.person_id))
    person = _departed(uow, organisation, [person])[0]
    if not person.in_service_on(terms.effective_date - dt.timedelta(days=1)):
        raise FailedPrecondition(
            f"{person.name} is not in service the day before {terms.effective_date.isoformat()}",
            reason="NOT_IN_SERVICE",
        )
    if person.leaving_date is not None:
        raise FailedPrecondition(
            f"{person.name} is recorded as leaving on {person.leaving_date.isoformat()}: a leaver is "
            "not offered to another force",
            reason="PERSON_ALREADY_LEFT",
            metadata={"leaving_date": person.leaving_date.isoformat()},
        )
    if any(t.state is TransferState.PENDING for t in uow.transfers.of_person(organisation, person.id)):
        raise FailedPrecondition(
            f"{person.name} already has a pending transfer or secondment", reason="TRANSFER_ALREADY_PENDING"
        )
    assignments = uow.assignments.of_person(organisation, person.id)
    if terms.kind is TransferKind.TRANSFER:
        # Accepted, the transfer ends every assignment the day before it takes effect, so
        # none may start later (as for a leaver).
        _check_none_start_after(assignments, terms.effective_date - dt.timedelta(days=1))
    shared = _shared_view(uow, person, assignments, terms.effective_date)
    package = _package(uow, person) if terms.kind is TransferKind.TRANSFER else {}
    transfer = Transfer(
        organisation, new_id("tr"), terms, shared, TransferState.PENDING, "", "", uow.new_info(), package
    )
    uow.transfers.add(transfer)
    uow.tx.audit.record(organisation, transfer.name, None, transfer.audit_view())
    return transfer


def get_transfer(uow: HrUnitOfWork, party: str, transfer_id: str) -> Transfer:
    found = uow.transfers.get_for(party, transfer_id)
    if found is None:
        raise NotFound(f"organisations/{party}/transfers/{transfer_id}")
    return found


def list_transfers(uow: HrUnitOfWork, party: str, after: JsonKey | None, size: int) -> list[Transfer]:
    return uow.transfers.page(party, after, size)


def _received_person(organisation: str, transfer: Transfer, info: RecordInfo) -> Person:
    from services.hr.domain.person import Ethnicity, Sex

    d = transfer.package["details"]
    assert isinstance(d, dict)
    raw_history = transfer.package["history"]
    assert isinstance(raw_history, list)
    assert transfer.terms.effective_date is not None
    details = PersonDetails(
        given_name=str(d["given_name"]),
        family_name=str(d["family_name"]),
        preferred_name=str(d["preferred_name"]),
        collar_number=str(d["collar_number"]),
        national_insurance_number=str(d["national_insurance_number"]),
        birth_date=dt.date.fromisoformat(str(d["birth_date"])) if d.get("birth_date") else None,
        sex=Sex(d["sex"]),
        ethnicity=Ethnicity(d["ethnicity"]),
        email="",
        phone=str(d["phone"]),
        address_lines=tuple(str(x) for x in d["address_lines"]),
        postcode=str(d["postcode"]),
        full_time_leave_days=str(d["full_time_leave_days"]),
    )
    effective = transfer.terms.effective_date
    history = tuple(
        ServiceHistoryEntry(
            organisation=str(e["organisation"]),
            post_display_name=str(e["post_display_name"]),
            grade_display_name=str(e["grade_display_name"]),
            fte=Decimal(str(e["fte"])),
            start_date=dt.date.fromisoformat(str(e["start_date"])),
            end_date=min(dt.date.fromisoformat(str(e["end_date"])), effective - dt.timedelta(days=1)),
        )
        for e in raw_history
        if isinstance(e, dict)
    )
    return Person(
        organisation,
        new_id("p"),
        WorkerType(transfer.package["worker_type"]),
        details,
        effective,
        info,
        prior_service=history,
    )


def accept_transfer(
    uow: HrUnitOfWork, organisation: str, transfer_id: str, etag: str, *, collar_number: str = ""
) -> Transfer:
    def accepted(current: Transfer, info: RecordInfo) -> Transfer:
        person_id = ""
        if collar_number and current.terms.kind is not TransferKind.TRANSFER:
            raise InvalidArgument.single(
                "collar_number", "is only for a transfer: a secondment moves no record"
            )
        if current.terms.kind is TransferKind.TRANSFER:
            current.decided(TransferState.ACCEPTED, organisation, current.info)  # checks before creating
            person = _received_person(organisation, current, uow.new_info())
            if collar_number:
                person = replace(person, details=_new_collar_number(person, collar_number))
            _add_person(uow, person)
            person_id = person.id
        return current.decided(TransferState.ACCEPTED, organisation, info, person_id=person_id)

    return _change_transfer(uow, organisation, transfer_id, etag, accepted)


def _new_collar_number(person: Person, collar_number: str) -> PersonDetails:
    collar = normalise_collar_number(collar_number)
    if problem := collar_number_problem(person.worker_type, collar):
        raise InvalidArgument.single("collar_number", problem)
    return replace(person.details, collar_number=collar)


def cancel_transfer(
    uow: HrUnitOfWork, organisation: str, transfer_id: str, reason: str, etag: str
) -> Transfer:
    reason = _transfer_reason(reason)
    return _change_transfer(
        uow,
        organisation,
        transfer_id,
        etag,
        lambda current, info: current.cancelled(organisation, info, reason),
    )


def decline_transfer(
    uow: HrUnitOfWork, organisation: str, transfer_id: str, reason: str, etag: str
) -> Transfer:
    reason = _transfer_reason(reason)
    return _change_transfer(
        uow,
        organisation,
        transfer_id,
        etag,
        lambda current, info: current.decided(TransferState.DECLINED, organisation, info, reason=reason),
    )


def _change_transfer(
    uow: HrUnitOfWork,
    organisation: str,
    transfer_id: str,
    etag: str,
    change: Callable[[Transfer, RecordInfo], Transfer],
) -> Transfer:
    """One force's change of a transfer's state, kept and audited in that force's chain."""
    current = get_transfer(uow, organisation, transfer_id)
    check_etag(current.name, etag, current.info)
    updated = change(current, uow.touched(current.info))
    uow.transfers.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    return updated


def _transfer_reason(reason: str) -> str:
    reason = reason.strip()
    if not 0 < len(reason) <= 500:
        raise InvalidArgument.single("reason", "is required, at most 500 characters")
    return reason
