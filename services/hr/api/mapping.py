"""Protobuf <-> HR domain values."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from backoffice.common.v1 import metadata_pb2
from backoffice.hr.v1 import (
    absence_pb2,
    compliance_pb2,
    establishment_pb2,
    person_pb2,
    reporting_pb2,
    transfer_pb2,
)
from libs.common.errors import InvalidArgument, Violations
from libs.common.names import ChildName
from libs.common.proto_mapping import (
    audit_metadata,
    business_date_from_proto,
    date_to_proto,
    money_from_proto,
    money_to_proto,
    timestamp,
)
from libs.common.records import RecordInfo
from services.hr.domain.absence import (
    LeaveBalance,
    LeaveRequest,
    LeaveState,
    LeaveTerms,
    SicknessAbsence,
    SicknessTerms,
)
from services.hr.domain.compliance import (
    TrainingRecord,
    TrainingTerms,
    VettingClearance,
    VettingLevel,
    VettingTerms,
)
from services.hr.domain.establishment import (
    Assignment,
    AssignmentTerms,
    EstablishmentLine,
    Grade,
    GradeDetails,
    OrgUnit,
    PayPoint,
    Post,
    PostDetails,
    Rank,
)
from services.hr.domain.paygap import PayGapReport, PayRecord, PayTerms
from services.hr.domain.person import Ethnicity, LeavingReason, Person, PersonDetails, Sex, WorkerType
from services.hr.domain.statistics import Breakdown, Figure
from services.hr.domain.transfer import Transfer, TransferKind, TransferTerms
from services.hr.domain.values import fte_text

E = TypeVar("E", bound=enum.Enum)


def enum_in(domain: type[E], proto_enum: Any, prefix: str, value: int) -> E | None:
    """The domain member named like the proto value (`SEX_MALE` -> `Sex.MALE`), or None."""
    try:
        name = proto_enum.Name(value).removeprefix(prefix)
    except ValueError:
        return None
    return domain.__members__.get(name)


def enum_out(proto_enum: Any, prefix: str, member: enum.Enum | None) -> Any:
    """The proto value named like the domain member; 0 (unspecified) for None."""
    return int(proto_enum.Value(prefix + member.name)) if member is not None else 0


def _child_id(v: Violations, value: str, collection: str, field_path: str, organisation: str) -> str:
    """`child_id` of an optional field, its problem kept in `v` (read as none)."""
    return v.parsed(child_id, value, collection, field_path, organisation, required=False) or ""


def child_id(
    value: str, collection: str, field_path: str, organisation: str, *, required: bool = True
) -> str:
    """The id of `organisations/{organisation}/{collection}/{id}`; other organisations'
    resources cannot be referred to."""
    if not value:
        if required:
            raise InvalidArgument.single(
                field_path, f"is required: organisations/{{code}}/{collection}/{{id}}"
            )
        return ""
    name = ChildName.parse(value, collection, field_path)
    if name.organisation != organisation:
        raise InvalidArgument.single(field_path, f"must be in organisations/{organisation}")
    return name.id


# People
#
# A batch maps 10,000 people each way, so these use lookup tables built once, not
# `enum_in`/`enum_out`'s name arithmetic, and set timestamps without `datetime` round trips.
# The messages are the same as the generic helpers make (tests/hr/test_bulk_import.py).


def _numbers_in(domain: type[E], proto_enum: Any, prefix: str) -> dict[int, E]:
    """`enum_in` as a table: proto number -> the domain member of that name."""
    found = {n: enum_in(domain, proto_enum, prefix, n) for n in proto_enum.values()}
    return {n: member for n, member in found.items() if member is not None}


def _numbers_out(domain: type[E], proto_enum: Any, prefix: str) -> dict[E, int]:
    """`enum_out` as a table, for the members the proto names."""
    names = set(proto_enum.keys())
    return {m: int(proto_enum.Value(prefix + m.name)) for m in domain if prefix + m.name in names}


_SEX_IN = _numbers_in(Sex, person_pb2.Sex, "SEX_")
_ETHNICITY_IN = _numbers_in(Ethnicity, person_pb2.Ethnicity, "ETHNICITY_")
_WORKER_TYPE_IN = _numbers_in(WorkerType, person_pb2.WorkerType, "WORKER_TYPE_")
_SEX_OUT = _numbers_out(Sex, person_pb2.Sex, "SEX_")
_ETHNICITY_OUT = _numbers_out(Ethnicity, person_pb2.Ethnicity, "ETHNICITY_")
_WORKER_TYPE_OUT = _numbers_out(WorkerType, person_pb2.WorkerType, "WORKER_TYPE_")
_LEAVING_REASON_OUT = _numbers_out(LeavingReason, person_pb2.LeavingReason, "LEAVING_REASON_")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _out(table: dict[E, int], proto_enum: Any, prefix: str, member: E | None) -> Any:
    if member is None:
        return 0
    number = table.get(member)
    # A member the proto lacks fails as `enum_out` does.
    return number if number is not None else enum_out(proto_enum, prefix, member)


def _set_date(msg: date_pb2.Date, day: dt.date) -> None:
    msg.year, msg.month, msg.day = day.year, day.month, day.day


def _set_timestamp(msg: timestamp_pb2.Timestamp, moment: dt.datetime) -> None:
    if moment.tzinfo is not dt.UTC:
        msg.CopyFrom(timestamp(moment))
        return
    since = moment - _EPOCH
    msg.seconds = since.days * 86_400 + since.seconds
    msg.nanos = since.microseconds * 1_000


def _set_audit(msg: metadata_pb2.AuditMetadata, info: RecordInfo) -> None:
    """`audit_metadata(info)`, written into the message in place."""
    msg.create_principal = info.create_principal
    msg.update_principal = info.update_principal
    msg.update_acting_organisation = info.update_acting_organisation or ""
    _set_timestamp(msg.create_time, info.create_time)
    _set_timestamp(msg.update_time, info.update_time)


def worker_type_in(value: int) -> WorkerType | None:
    return _WORKER_TYPE_IN.get(value)


def date_in(value: date_pb2.Date, field_path: str, problems: Violations | None = None) -> dt.date | None:
    """Every date HR reads from a request (`business_date_from_proto`). With `problems`, a
    bad date is added to them and read as none."""
    if problems is None:
        return business_date_from_proto(value, field_path)
    return problems.parsed(business_date_from_proto, value, field_path)


def person_details(
    msg: person_pb2.Person, prefix: str = "person", problems: Violations | None = None
) -> PersonDetails:
    """The details a message states. A birth date that is no date raises INVALID_ARGUMENT, or,
    with `problems`, is added to them and read as none (so that a batch reports every row)."""
    return PersonDetails(
        given_name=msg.given_name,
        family_name=msg.family_name,
        preferred_name=msg.preferred_name,
        collar_number=msg.collar_number,
        national_insurance_number=msg.national_insurance_number,
        birth_date=date_in(msg.birth_date, f"{prefix}.birth_date", problems),
        sex=_SEX_IN.get(msg.sex),
        ethnicity=_ETHNICITY_IN.get(msg.ethnicity),
        email=msg.email,
        phone=msg.phone,
        address_lines=tuple(msg.address_lines),
        postcode=msg.postcode,
        full_time_leave_days=msg.full_time_leave_days,
    )


def person_to_proto(p: Person) -> person_pb2.Person:
    d = p.details
    msg = person_pb2.Person(
        name=p.name,
        worker_type=_out(_WORKER_TYPE_OUT, person_pb2.WorkerType, "WORKER_TYPE_", p.worker_type),
        given_name=d.given_name,
        family_name=d.family_name,
        preferred_name=d.preferred_name,
        collar_number=d.collar_number,
        national_insurance_number=d.national_insurance_number,
        sex=_out(_SEX_OUT, person_pb2.Sex, "SEX_", d.sex),
        ethnicity=_out(_ETHNICITY_OUT, person_pb2.Ethnicity, "ETHNICITY_", d.ethnicity),
        ethnic_group=d.ethnicity.group if d.ethnicity else "",
        email=d.email,
        phone=d.phone,
        address_lines=d.address_lines,
        postcode=d.postcode,
        leaving_reason=_out(
            _LEAVING_REASON_OUT, person_pb2.LeavingReason, "LEAVING_REASON_", p.leaving_reason
        ),
        full_time_leave_days=d.full_time_leave_days,
        etag=p.info.etag,
    )
    _set_date(msg.join_date, p.join_date)
    if d.birth_date:
        _set_date(msg.birth_date, d.birth_date)
    if p.leaving_date:
        _set_date(msg.leaving_date, p.leaving_date)
    for e in p.prior_service:
        entry = msg.prior_service.add(
            organisation=e.organisation,
            post_display_name=e.post_display_name,
            grade_display_name=e.grade_display_name,
            fte=fte_text(e.fte),
        )
        _set_date(entry.start_date, e.start_date)
        _set_date(entry.end_date, e.end_date)
    _set_audit(msg.audit, p.info)
    return msg


def leaving_reason_in(value: int) -> LeavingReason | None:
    return enum_in(LeavingReason, person_pb2.LeavingReason, "LEAVING_REASON_", value)


# Establishment


def grade_details(msg: establishment_pb2.Grade) -> GradeDetails:
    v = Violations()
    points = []
    for i, p in enumerate(msg.pay_points):
        salary = v.parsed(money_from_proto, p.annual_salary, f"grade.pay_points[{i}].annual_salary")
        points.append(PayPoint(p.code, salary if salary is not None else Decimal(0)))
    v.raise_if_any()
    return GradeDetails(
        msg.display_name, enum_in(Rank, establishment_pb2.Rank, "RANK_", msg.rank), tuple(points)
    )


def grade_to_proto(g: Grade) -> establishment_pb2.Grade:
    return establishment_pb2.Grade(
        name=g.name,
        display_name=g.details.display_name,
        rank=enum_out(establishment_pb2.Rank, "RANK_", g.details.rank),
        pay_points=[
            establishment_pb2.PayPoint(code=p.code, annual_salary=money_to_proto(p.annual_salary))
            for p in g.details.pay_points
        ],
        audit=audit_metadata(g.info),
        etag=g.info.etag,
    )


def unit_to_proto(u: OrgUnit) -> establishment_pb2.OrgUnit:
    return establishment_pb2.OrgUnit(
        name=u.name,
        display_name=u.display_name,
        parent_unit=f"organisations/{u.organisation}/orgUnits/{u.parent_id}" if u.parent_id else "",
        audit=audit_metadata(u.info),
    )


def post_details(msg: establishment_pb2.Post, organisation: str) -> PostDetails:
    v = Violations()
    details = PostDetails(
        display_name=msg.display_name,
        org_unit_id=_child_id(v, msg.org_unit, "orgUnits", "post.org_unit", organisation),
        worker_type=worker_type_in(msg.worker_type),
        grade_id=_child_id(v, msg.grade, "grades", "post.grade", organisation),
        budgeted_fte=msg.budgeted_fte,
        start_date=date_in(msg.start_date, "post.start_date", v),
        end_date=date_in(msg.end_date, "post.end_date", v),
    )
    v.raise_with(details.checked)
    return details


def post_to_proto(p: Post) -> establishment_pb2.Post:
    d = p.details
    msg = establishment_pb2.Post(
        name=p.name,
        display_name=d.display_name,
        org_unit=f"organisations/{p.organisation}/orgUnits/{d.org_unit_id}",
        worker_type=enum_out(person_pb2.WorkerType, "WORKER_TYPE_", d.worker_type),
        grade=f"organisations/{p.organisation}/grades/{d.grade_id}" if d.grade_id else "",
        budgeted_fte=d.budgeted_fte,
        audit=audit_metadata(p.info),
        etag=p.info.etag,
    )
    if d.start_date:
        msg.start_date.CopyFrom(date_to_proto(d.start_date))
    if d.end_date:
        msg.end_date.CopyFrom(date_to_proto(d.end_date))
    return msg


def assignment_terms(msg: establishment_pb2.Assignment, organisation: str) -> AssignmentTerms:
    v = Violations()
    terms = AssignmentTerms(
        person_id=_child_id(v, msg.person, "people", "assignment.person", organisation),
        post_id=_child_id(v, msg.post, "posts", "assignment.post", organisation),
        fte=msg.fte,
        start_date=date_in(msg.start_date, "assignment.start_date", v),
        grade_id=_child_id(v, msg.grade, "grades", "assignment.grade", organisation),
        pay_point=msg.pay_point,
    )
    v.raise_with(terms.checked)
    return terms


def assignment_to_proto(a: Assignment, rank: Rank | None = None) -> establishment_pb2.Assignment:
    t = a.terms
    org = a.organisation
    msg = establishment_pb2.Assignment(
        name=a.name,
        person=f"organisations/{org}/people/{t.person_id}",
        post=f"organisations/{org}/posts/{t.post_id}",
        fte=t.fte,
        grade=f"organisations/{org}/grades/{t.grade_id}" if t.grade_id else "",
        rank=enum_out(establishment_pb2.Rank, "RANK_", rank),
        pay_point=t.pay_point,
        audit=audit_metadata(a.info),
        etag=a.info.etag,
    )
    if t.start_date:
        msg.start_date.CopyFrom(date_to_proto(t.start_date))
    if a.end_date:
        msg.end_date.CopyFrom(date_to_proto(a.end_date))
    return msg


def establishment_line(line: EstablishmentLine) -> establishment_pb2.EstablishmentLine:
    p = line.post
    return establishment_pb2.EstablishmentLine(
        post=p.name,
        post_display_name=p.details.display_name,
        org_unit=f"organisations/{p.organisation}/orgUnits/{p.details.org_unit_id}",
        worker_type=enum_out(person_pb2.WorkerType, "WORKER_TYPE_", p.details.worker_type),
        budgeted_fte=fte_text(p.details.budget),
        strength_fte=fte_text(line.strength),
        vacancy_fte=fte_text(line.vacancy),
        holders=[f"organisations/{p.organisation}/people/{h}" for h in line.holders],
    )


# Absence


def leave_terms(msg: absence_pb2.LeaveRequest, organisation: str) -> LeaveTerms:
    v = Violations()
    terms = LeaveTerms(
        person_id=_child_id(v, msg.person, "people", "leave_request.person", organisation),
        start_date=date_in(msg.start_date, "leave_request.start_date", v),
        end_date=date_in(msg.end_date, "leave_request.end_date", v),
        days=msg.days,
        note=msg.note,
    )
    v.raise_with(terms.checked)
    return terms


def leave_to_proto(r: LeaveRequest) -> absence_pb2.LeaveRequest:
    t = r.terms
    msg = absence_pb2.LeaveRequest(
        name=r.name,
        person=f"organisations/{r.organisation}/people/{t.person_id}",
        days=t.days,
        state=enum_out(absence_pb2.LeaveRequestState, "LEAVE_REQUEST_STATE_", r.state),
        decided_by=r.decided_by,
        note=t.note,
        audit=audit_metadata(r.info),
        etag=r.info.etag,
    )
    if t.start_date:
        msg.start_date.CopyFrom(date_to_proto(t.start_date))
    if t.end_date:
        msg.end_date.CopyFrom(date_to_proto(t.end_date))
    return msg


def balance_to_proto(organisation: str, b: LeaveBalance) -> absence_pb2.LeaveBalance:
    return absence_pb2.LeaveBalance(
        person=f"organisations/{organisation}/people/{b.person_id}",
        leave_year_start=date_to_proto(b.year.start),
        entitlement_days=fte_text(b.entitlement),
        approved_days=fte_text(b.approved),
        requested_days=fte_text(b.requested),
        remaining_days=fte_text(b.remaining),
    )


def sickness_terms(msg: absence_pb2.SicknessAbsence, organisation: str) -> SicknessTerms:
    v = Violations()
    terms = SicknessTerms(
        person_id=_child_id(v, msg.person, "people", "sickness_absence.person", organisation),
        start_date=date_in(msg.start_date, "sickness_absence.start_date", v),
        end_date=date_in(msg.end_date, "sickness_absence.end_date", v),
        reason=msg.reason,
        work_related=msg.work_related,
    )
    v.raise_with(terms.checked)
    return terms


def sickness_to_proto(s: SicknessAbsence) -> absence_pb2.SicknessAbsence:
    t = s.terms
    msg = absence_pb2.SicknessAbsence(
        name=s.name,
        person=f"organisations/{s.organisation}/people/{t.person_id}",
        reason=t.reason,
        work_related=t.work_related,
        audit=audit_metadata(s.info),
        etag=s.info.etag,
    )
    if t.start_date:
        msg.start_date.CopyFrom(date_to_proto(t.start_date))
    if t.end_date:
        msg.end_date.CopyFrom(date_to_proto(t.end_date))
    return msg


LEAVE_STATES = {LeaveState.APPROVED, LeaveState.REJECTED, LeaveState.CANCELLED}


# Training and vetting


def training_terms(msg: compliance_pb2.TrainingRecord, organisation: str) -> TrainingTerms:
    v = Violations()
    terms = TrainingTerms(
        person_id=_child_id(v, msg.person, "people", "training_record.person", organisation),
        course=msg.course,
        completed_date=date_in(msg.completed_date, "training_record.completed_date", v),
        expiry_date=date_in(msg.expiry_date, "training_record.expiry_date", v),
        accreditation=msg.accreditation,
    )
    v.raise_with(terms.checked)
    return terms


def training_to_proto(r: TrainingRecord) -> compliance_pb2.TrainingRecord:
    t = r.terms
    msg = compliance_pb2.TrainingRecord(
        name=r.name,
        person=f"organisations/{r.organisation}/people/{t.person_id}",
        course=t.course,
        accreditation=t.accreditation,
        audit=audit_metadata(r.info),
    )
    if t.completed_date:
        msg.completed_date.CopyFrom(date_to_proto(t.completed_date))
    if t.expiry_date:
        msg.expiry_date.CopyFrom(date_to_proto(t.expiry_date))
    return msg


def vetting_terms(msg: compliance_pb2.VettingClearance, organisation: str) -> VettingTerms:
    v = Violations()
    terms = VettingTerms(
        person_id=_child_id(v, msg.person, "people", "vetting_clearance.person", organisation),
        level=enum_in(VettingLevel, compliance_pb2.VettingLevel, "VETTING_LEVEL_", msg.level),
        granted_date=date_in(msg.granted_date, "vetting_clearance.granted_date", v),
        expiry_date=date_in(msg.expiry_date, "vetting_clearance.expiry_date", v),
        reference=msg.reference,
    )
    v.raise_with(terms.checked)
    return terms


def vetting_to_proto(v: VettingClearance) -> compliance_pb2.VettingClearance:
    t = v.terms
    msg = compliance_pb2.VettingClearance(
        name=v.name,
        person=f"organisations/{v.organisation}/people/{t.person_id}",
        level=enum_out(compliance_pb2.VettingLevel, "VETTING_LEVEL_", t.level),
        reference=t.reference,
        audit=audit_metadata(v.info),
    )
    if t.granted_date:
        msg.granted_date.CopyFrom(date_to_proto(t.granted_date))
    if t.expiry_date:
        msg.expiry_date.CopyFrom(date_to_proto(t.expiry_date))
    return msg


# Statistics and pay


def _figure(f: Figure) -> reporting_pb2.WorkforceFigure:
    return reporting_pb2.WorkforceFigure(
        worker_type=enum_out(person_pb2.WorkerType, "WORKER_TYPE_", f.worker_type),
        category=f.category,
        measure=reporting_pb2.MEASURE_FTE
        if f.worker_type.counted_in_fte
        else reporting_pb2.MEASURE_HEADCOUNT,
        headcount=f.headcount,
        fte=fte_text(f.fte),
    )


def breakdown_to_proto(b: Breakdown) -> reporting_pb2.WorkforceBreakdown:
    return reporting_pb2.WorkforceBreakdown(
        by_worker_type=[_figure(f) for f in b.by_worker_type],
        by_rank=[_figure(f) for f in b.by_rank],
        by_sex=[_figure(f) for f in b.by_sex],
        by_ethnic_group=[_figure(f) for f in b.by_ethnic_group],
    )


def pay_terms(msg: reporting_pb2.PayRecord, organisation: str) -> PayTerms:
    v = Violations()

    def money(field_name: str) -> Decimal:
        if not msg.HasField(field_name):  # type: ignore[arg-type]
            return Decimal(0)
        amount = v.parsed(money_from_proto, getattr(msg, field_name), f"pay_record.{field_name}")
        return amount if amount is not None else Decimal(0)

    terms = PayTerms(
        person_id=v.parsed(child_id, msg.person, "people", "pay_record.person", organisation, required=False)
        or "",
        snapshot_date=date_in(msg.snapshot_date, "pay_record.snapshot_date", v),
        ordinary_pay=money("ordinary_pay"),
        period_bonus_pay=money("period_bonus_pay"),
        pay_period_days=msg.pay_period_days,
        weekly_hours=msg.weekly_hours,
        annual_bonus_pay=money("annual_bonus_pay"),
        full_pay=msg.full_pay,
    )
    v.raise_if_any()
    return terms


def pay_to_proto(r: PayRecord) -> reporting_pb2.PayRecord:
    t = r.terms
    msg = reporting_pb2.PayRecord(
        name=r.name,
        person=f"organisations/{r.organisation}/people/{t.person_id}",
        ordinary_pay=money_to_proto(t.ordinary_pay),
        period_bonus_pay=money_to_proto(t.period_bonus_pay),
        pay_period_days=t.pay_period_days,
        weekly_hours=t.weekly_hours,
        annual_bonus_pay=money_to_proto(t.annual_bonus_pay),
        full_pay=t.full_pay,
        audit=audit_metadata(r.info),
    )
    if t.snapshot_date:
        msg.snapshot_date.CopyFrom(date_to_proto(t.snapshot_date))
    return msg


def _pct(value: Decimal | None) -> str:
    """A percentage to one decimal place, as published (`25.0`); empty when undefined."""
    return format(value, "f") if value is not None else ""


def pay_gap_to_proto(report: PayGapReport) -> reporting_pb2.GenderPayGapReport:
    return reporting_pb2.GenderPayGapReport(
        relevant_employees=report.relevant_employees,
        full_pay_relevant_employees=report.full_pay_relevant_employees,
        mean_hourly_pay_gap_percent=_pct(report.mean_hourly_gap),
        median_hourly_pay_gap_percent=_pct(report.median_hourly_gap),
        mean_bonus_gap_percent=_pct(report.mean_bonus_gap),
        median_bonus_gap_percent=_pct(report.median_bonus_gap),
        male_bonus_percent=_pct(report.male_bonus_percent),
        female_bonus_percent=_pct(report.female_bonus_percent),
        quartiles=[
            reporting_pb2.PayQuartile(
                quartile=q.number,
                headcount=q.headcount,
                male_percent=_pct(q.male_percent),
                female_percent=_pct(q.female_percent),
            )
            for q in report.quartiles
        ],
    )


# Transfers


def transfer_terms(msg: transfer_pb2.Transfer, organisation: str) -> TransferTerms:
    receiving = msg.receiving_organisation
    if receiving:
        from libs.common.names import OrganisationName

        receiving = OrganisationName.parse(receiving, "transfer.receiving_organisation").code
    v = Violations()
    terms = TransferTerms(
        kind=enum_in(TransferKind, transfer_pb2.TransferKind, "TRANSFER_KIND_", msg.kind),
        person_id=_child_id(v, msg.person, "people", "transfer.person", organisation),
        receiving_organisation=receiving,
        effective_date=date_in(msg.effective_date, "transfer.effective_date", v),
        end_date=date_in(msg.end_date, "transfer.end_date", v),
    )
    # Whom it may go to is checked in the transaction, against the reference organisations.
    v.raise_if_any()
    return terms


def transfer_to_proto(t: Transfer) -> transfer_pb2.Transfer:
    terms = t.terms
    msg = transfer_pb2.Transfer(
        name=t.name,
        kind=enum_out(transfer_pb2.TransferKind, "TRANSFER_KIND_", terms.kind),
        person=f"organisations/{t.organisation}/people/{terms.person_id}",
        receiving_organisation=f"organisations/{terms.receiving_organisation}",
        display_name=t.shared.display_name,
        worker_type=enum_out(person_pb2.WorkerType, "WORKER_TYPE_", t.shared.worker_type),
        grade_display_name=t.shared.grade_display_name,
        state=enum_out(transfer_pb2.TransferState, "TRANSFER_STATE_", t.state),
        receiving_person=(
            f"organisations/{terms.receiving_organisation}/people/{t.receiving_person_id}"
            if t.receiving_person_id
            else ""
        ),
        decline_reason=t.decline_reason,
        cancel_reason=t.cancel_reason,
        audit=audit_metadata(t.info),
        etag=t.info.etag,
    )
    if terms.effective_date:
        msg.effective_date.CopyFrom(date_to_proto(terms.effective_date))
    if terms.end_date:
        msg.end_date.CopyFrom(date_to_proto(terms.end_date))
    return msg
