"""gRPC servicer of HR: protobuf in, use case, protobuf out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar

from google.type import date_pb2

from backoffice.hr.v1 import (
    absence_pb2,
    compliance_pb2,
    establishment_pb2,
    hr_service_pb2_grpc,
    person_pb2,
    reporting_pb2,
    transfer_pb2,
)
from backoffice.hr.v1 import hr_service_pb2 as pb
from libs.common.errors import InvalidArgument, Violations
from libs.common.filtering import Comparison, FieldType, parse_filter
from libs.common.grpc_types import RpcContext
from libs.common.names import ChildName, OrganisationName
from libs.common.paging import JsonKey, PageRequest
from libs.common.proto_mapping import date_to_proto, decimal_to_proto, mask_paths
from libs.common.service import ServiceKernel, Transaction
from services.hr import service
from services.hr.api import mapping as m
from services.hr.domain.absence import LeaveState
from services.hr.domain.compliance import ExpiryWindow, TrainingRecord, VettingClearance, expiry_window
from services.hr.domain.establishment import GRADE_UPDATABLE, Assignment, AssignmentTerms
from services.hr.domain.paygap import snapshot_date_problem
from services.hr.domain.person import UPDATABLE, WorkerType
from services.hr.domain.transfer import Transfer
from services.hr.domain.values import fte_text
from services.hr.service import HrUnitOfWork

T = TypeVar("T")

_PEOPLE_FILTERS = {
    "family_name": FieldType.STRING,
    "collar_number": FieldType.STRING,
    "national_insurance_number": FieldType.STRING,
    "worker_type": FieldType.ENUM,
    "join_date": FieldType.DATE,
    "leaving_date": FieldType.DATE,
}


def _assignment_key(assignment: establishment_pb2.Assignment) -> JsonKey:
    name = ChildName.parse(assignment.name, "assignments")
    return (name.organisation, name.id)


def _required_date(value: date_pb2.Date, field_path: str) -> dt.date:
    day = m.date_in(value, field_path)
    if day is None:
        raise InvalidArgument.single(field_path, "is required")
    return day


def _people_comparisons(text: str) -> list[Comparison]:
    """Worker types are written as the proto names them (`PCSO`) and stored as values."""
    out = []
    for c in parse_filter(text, _PEOPLE_FILTERS):
        if c.field != "worker_type":
            out.append(c)
            continue
        try:
            value = WorkerType[str(c.value)].value
        except KeyError:
            raise InvalidArgument.single(
                "filter", f"worker_type is one of {', '.join(w.name for w in WorkerType)}"
            ) from None
        out.append(Comparison(c.field, c.op, value))
    return out


class HrServicer(hr_service_pb2_grpc.HrServiceServicer):
    def __init__(self, kernel: ServiceKernel) -> None:
        self.k = kernel

    # People

    async def CreatePerson(self, request: pb.CreatePersonRequest, context: RpcContext) -> person_pb2.Person:
        parent = OrganisationName.parse(request.parent)
        details = m.person_details(request.person)
        join = m.date_in(request.person.join_date, "person.join_date")
        worker_type = m.worker_type_in(request.person.worker_type)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            person_pb2.Person,
            lambda tx: m.person_to_proto(
                service.create_person(
                    HrUnitOfWork(tx),
                    parent.code,
                    worker_type=worker_type,
                    details=details,
                    join_date=join,
                    person_id=request.person_id,
                )
            ),
        )

    async def BatchCreatePeople(
        self, request: pb.BatchCreatePeopleRequest, context: RpcContext
    ) -> pb.BatchCreatePeopleResponse:
        parent = OrganisationName.parse(request.parent)
        rows: list[service.NewPerson] = []
        # Dates that are no dates, reported with every other problem of every row.
        unreadable = Violations()
        for i, r in enumerate(request.requests):
            if r.parent and r.parent != request.parent:
                raise InvalidArgument.single(f"requests[{i}].parent", "must be empty or the batch's parent")
            person = r.person
            rows.append(
                (
                    m.worker_type_in(person.worker_type),
                    m.person_details(person, f"requests[{i}].person", unreadable),
                    m.date_in(person.join_date, f"requests[{i}].person.join_date", unreadable),
                    r.person_id,
                )
            )
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            pb.BatchCreatePeopleResponse,
            lambda tx: pb.BatchCreatePeopleResponse(
                people=[
                    m.person_to_proto(p)
                    for p in service.batch_create_people(
                        HrUnitOfWork(tx), parent.code, rows, unreadable.items
                    )
                ]
            ),
        )

    async def GetPerson(self, request: pb.GetPersonRequest, context: RpcContext) -> person_pb2.Person:
        name = ChildName.parse(request.name, "people")
        scope = await self.k.scope_of(request.name, name.organisation)
        found = await self.k.read(
            scope, lambda tx: service.get_person(HrUnitOfWork(tx), name.organisation, name.id)
        )
        return m.person_to_proto(found)

    async def ListPeople(self, request: pb.ListPeopleRequest, context: RpcContext) -> pb.ListPeopleResponse:
        parent = OrganisationName.parse(request.parent, allow_wildcard=True)
        comparisons = _people_comparisons(request.filter)
        fingerprint = self.k.pager.fingerprint("people", parent, request.filter)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await (self.k.scope_everywhere() if parent.is_wildcard else self.k.scope_in(parent.code))
        found = await self.k.read(
            scope,
            lambda tx: service.list_people(HrUnitOfWork(tx), comparisons, page.after, page.size + 1),
        )
        return pb.ListPeopleResponse(
            people=[m.person_to_proto(p) for p in found[: page.size]],
            next_page_token=self.k.pager.next_token(page, found, lambda p: (p.organisation, p.id)),
        )

    async def UpdatePerson(self, request: pb.UpdatePersonRequest, context: RpcContext) -> person_pb2.Person:
        name = ChildName.parse(request.person.name, "people", "person.name")
        paths = mask_paths(request.update_mask, UPDATABLE)
        changes = m.person_details(request.person)
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            person_pb2.Person,
            lambda tx: m.person_to_proto(
                service.update_person(
                    HrUnitOfWork(tx),
                    name.organisation,
                    person_id=name.id,
                    changes=changes,
                    paths=paths,
                    etag=request.person.etag,
                )
            ),
        )

    async def RecordLeaver(self, request: pb.RecordLeaverRequest, context: RpcContext) -> person_pb2.Person:
        name = ChildName.parse(request.name, "people")
        day = m.date_in(request.leaving_date, "leaving_date")
        reason = m.leaving_reason_in(request.leaving_reason)
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            person_pb2.Person,
            lambda tx: m.person_to_proto(
                service.record_leaver(
                    HrUnitOfWork(tx),
                    name.organisation,
                    name.id,
                    leaving_date=day,
                    reason=reason,
                    etag=request.etag,
                )
            ),
        )

    async def MovePerson(
        self, request: pb.MovePersonRequest, context: RpcContext
    ) -> establishment_pb2.Assignment:
        name = ChildName.parse(request.name, "people")
        org = name.organisation
        terms = AssignmentTerms(
            person_id=name.id,
            post_id=m.child_id(request.post, "posts", "post", org, required=False),
            fte=request.fte,
            start_date=m.date_in(request.effective_date, "effective_date"),
            grade_id=m.child_id(request.grade, "grades", "grade", org, required=False),
            pay_point=request.pay_point,
        )
        scope = await self.k.scope_of(request.name, org)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.Assignment,
            lambda tx: self._assignment(HrUnitOfWork(tx), service.move_person(HrUnitOfWork(tx), org, terms)),
        )

    # Grades, units, posts

    async def CreateGrade(
        self, request: pb.CreateGradeRequest, context: RpcContext
    ) -> establishment_pb2.Grade:
        parent = OrganisationName.parse(request.parent)
        details = m.grade_details(request.grade)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.Grade,
            lambda tx: m.grade_to_proto(
                service.create_grade(HrUnitOfWork(tx), parent.code, details, request.grade_id)
            ),
        )

    async def UpdateGrade(
        self, request: pb.UpdateGradeRequest, context: RpcContext
    ) -> establishment_pb2.Grade:
        name = ChildName.parse(request.grade.name, "grades", "grade.name")
        paths = mask_paths(request.update_mask, GRADE_UPDATABLE)
        changes = m.grade_details(request.grade)
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.Grade,
            lambda tx: m.grade_to_proto(
                service.update_grade(
                    HrUnitOfWork(tx),
                    name.organisation,
                    grade_id=name.id,
                    changes=changes,
                    paths=paths,
                    etag=request.grade.etag,
                )
            ),
        )

    async def GetGrade(self, request: pb.GetGradeRequest, context: RpcContext) -> establishment_pb2.Grade:
        name = ChildName.parse(request.name, "grades")
        scope = await self.k.scope_of(request.name, name.organisation)
        found = await self.k.read(
            scope, lambda tx: service.get_grade(HrUnitOfWork(tx), name.organisation, name.id)
        )
        return m.grade_to_proto(found)

    async def ListGrades(self, request: pb.ListGradesRequest, context: RpcContext) -> pb.ListGradesResponse:
        parent = OrganisationName.parse(request.parent)
        fingerprint = self.k.pager.fingerprint("grades", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope, lambda tx: service.list_grades(HrUnitOfWork(tx), parent.code, page.after, page.size + 1)
        )
        return pb.ListGradesResponse(
            grades=[m.grade_to_proto(g) for g in found[: page.size]],
            next_page_token=self.k.pager.next_token(page, found, lambda g: (g.organisation, g.id)),
        )

    async def CreateOrgUnit(
        self, request: pb.CreateOrgUnitRequest, context: RpcContext
    ) -> establishment_pb2.OrgUnit:
        parent = OrganisationName.parse(request.parent)
        parent_id = m.child_id(
            request.org_unit.parent_unit, "orgUnits", "org_unit.parent_unit", parent.code, required=False
        )
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.OrgUnit,
            lambda tx: m.unit_to_proto(
                service.create_org_unit(
                    HrUnitOfWork(tx),
                    parent.code,
                    request.org_unit.display_name,
                    parent_id,
                    request.org_unit_id,
                )
            ),
        )

    async def ListOrgUnits(
        self, request: pb.ListOrgUnitsRequest, context: RpcContext
    ) -> pb.ListOrgUnitsResponse:
        parent = OrganisationName.parse(request.parent)
        fingerprint = self.k.pager.fingerprint("orgUnits", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope, lambda tx: service.list_org_units(HrUnitOfWork(tx), parent.code, page.after, page.size + 1)
        )
        return pb.ListOrgUnitsResponse(
            org_units=[m.unit_to_proto(u) for u in found[: page.size]],
            next_page_token=self.k.pager.next_token(page, found, lambda u: (u.organisation, u.id)),
        )

    async def CreatePost(self, request: pb.CreatePostRequest, context: RpcContext) -> establishment_pb2.Post:
        parent = OrganisationName.parse(request.parent)
        details = m.post_details(request.post, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.Post,
            lambda tx: m.post_to_proto(
                service.create_post(HrUnitOfWork(tx), parent.code, details, request.post_id)
            ),
        )

    async def GetPost(self, request: pb.GetPostRequest, context: RpcContext) -> establishment_pb2.Post:
        name = ChildName.parse(request.name, "posts")
        scope = await self.k.scope_of(request.name, name.organisation)
        found = await self.k.read(
            scope, lambda tx: service.get_post(HrUnitOfWork(tx), name.organisation, name.id)
        )
        return m.post_to_proto(found)

    async def ListPosts(self, request: pb.ListPostsRequest, context: RpcContext) -> pb.ListPostsResponse:
        parent = OrganisationName.parse(request.parent)
        as_at = m.date_in(request.as_at_date, "as_at_date")
        fingerprint = self.k.pager.fingerprint("posts", parent, as_at)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_posts(HrUnitOfWork(tx), parent.code, as_at, page.after, page.size + 1),
        )
        return pb.ListPostsResponse(
            posts=[m.post_to_proto(p) for p in found[: page.size]],
            next_page_token=self.k.pager.next_token(page, found, lambda p: (p.organisation, p.id)),
        )

    async def GetEstablishment(
        self, request: pb.GetEstablishmentRequest, context: RpcContext
    ) -> establishment_pb2.Establishment:
        parent = OrganisationName.parse(request.parent)
        day = m.date_in(request.as_at_date, "as_at_date") or self.k.today()
        unit_id = m.child_id(request.org_unit, "orgUnits", "org_unit", parent.code, required=False)
        scope = await self.k.scope_of(str(parent), parent.code)
        lines = await self.k.read(
            scope, lambda tx: service.get_establishment(HrUnitOfWork(tx), parent.code, day, unit_id)
        )
        budget = sum((line.post.details.budget for line in lines), start=Decimal(0))
        strength = sum((line.strength for line in lines), start=Decimal(0))
        return establishment_pb2.Establishment(
            as_at_date=date_to_proto(day),
            lines=[m.establishment_line(line) for line in lines],
            budgeted_fte=fte_text(budget),
            strength_fte=fte_text(strength),
            vacancy_fte=fte_text(budget - strength),
        )

    # Assignments

    def _assignment(self, uow: HrUnitOfWork, a: Assignment) -> establishment_pb2.Assignment:
        grade = uow.grades.get(a.organisation, a.terms.grade_id) if a.terms.grade_id else None
        return m.assignment_to_proto(a, grade.details.rank if grade else None)

    async def CreateAssignment(
        self, request: pb.CreateAssignmentRequest, context: RpcContext
    ) -> establishment_pb2.Assignment:
        parent = OrganisationName.parse(request.parent)
        terms = m.assignment_terms(request.assignment, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.Assignment,
            lambda tx: self._assignment(
                HrUnitOfWork(tx), service.create_assignment(HrUnitOfWork(tx), parent.code, terms)
            ),
        )

    async def ListAssignments(
        self, request: pb.ListAssignmentsRequest, context: RpcContext
    ) -> pb.ListAssignmentsResponse:
        parent = OrganisationName.parse(request.parent)
        person_id = m.child_id(request.person, "people", "person", parent.code, required=False)
        post_id = m.child_id(request.post, "posts", "post", parent.code, required=False)
        as_at = m.date_in(request.as_at_date, "as_at_date")
        fingerprint = self.k.pager.fingerprint("assignments", parent, person_id, post_id, as_at)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)

        def work(tx: Transaction) -> list[establishment_pb2.Assignment]:
            uow = HrUnitOfWork(tx)
            found = service.list_assignments(
                uow,
                parent.code,
                person_id=person_id,
                post_id=post_id,
                as_at=as_at,
                after=page.after,
                size=page.size + 1,
            )
            return [self._assignment(uow, a) for a in found]

        found = await self.k.read(scope, work)
        token = self.k.pager.next_token(page, found, _assignment_key)
        return pb.ListAssignmentsResponse(assignments=found[: page.size], next_page_token=token)

    async def EndPost(self, request: pb.EndPostRequest, context: RpcContext) -> establishment_pb2.Post:
        name = ChildName.parse(request.name, "posts")
        day = m.date_in(request.end_date, "end_date")
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.Post,
            lambda tx: m.post_to_proto(
                service.end_post(HrUnitOfWork(tx), name.organisation, name.id, day, request.etag)
            ),
        )

    async def EndAssignment(
        self, request: pb.EndAssignmentRequest, context: RpcContext
    ) -> establishment_pb2.Assignment:
        name = ChildName.parse(request.name, "assignments")
        day = m.date_in(request.end_date, "end_date")
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            establishment_pb2.Assignment,
            lambda tx: self._assignment(
                HrUnitOfWork(tx),
                service.end_assignment(HrUnitOfWork(tx), name.organisation, name.id, day, request.etag),
            ),
        )

    # Absence

    async def CreateLeaveRequest(
        self, request: pb.CreateLeaveRequestRequest, context: RpcContext
    ) -> absence_pb2.LeaveRequest:
        parent = OrganisationName.parse(request.parent)
        terms = m.leave_terms(request.leave_request, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            absence_pb2.LeaveRequest,
            lambda tx: m.leave_to_proto(service.create_leave_request(HrUnitOfWork(tx), parent.code, terms)),
        )

    async def GetLeaveRequest(
        self, request: pb.GetLeaveRequestRequest, context: RpcContext
    ) -> absence_pb2.LeaveRequest:
        name = ChildName.parse(request.name, "leaveRequests")
        scope = await self.k.scope_of(request.name, name.organisation)
        found = await self.k.read(
            scope, lambda tx: service.get_leave_request(HrUnitOfWork(tx), name.organisation, name.id)
        )
        return m.leave_to_proto(found)

    async def ListLeaveRequests(
        self, request: pb.ListLeaveRequestsRequest, context: RpcContext
    ) -> pb.ListLeaveRequestsResponse:
        parent = OrganisationName.parse(request.parent)
        person_id = m.child_id(request.person, "people", "person", parent.code, required=False)
        fingerprint = self.k.pager.fingerprint("leaveRequests", parent, person_id)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_leave_requests(
                HrUnitOfWork(tx), parent.code, person_id, page.after, page.size + 1
            ),
        )
        return pb.ListLeaveRequestsResponse(
            leave_requests=[m.leave_to_proto(r) for r in found[: page.size]],
            next_page_token=self.k.pager.next_token(page, found, lambda r: (r.organisation, r.id)),
        )

    async def _decide(
        self,
        request: pb.ApproveLeaveRequestRequest | pb.RejectLeaveRequestRequest | pb.CancelLeaveRequestRequest,
        state: LeaveState,
        note: str,
    ) -> absence_pb2.LeaveRequest:
        name = ChildName.parse(request.name, "leaveRequests")
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            absence_pb2.LeaveRequest,
            lambda tx: m.leave_to_proto(
                service.decide_leave_request(
                    HrUnitOfWork(tx), name.organisation, name.id, state=state, note=note, etag=request.etag
                )
            ),
        )

    async def ApproveLeaveRequest(
        self, request: pb.ApproveLeaveRequestRequest, context: RpcContext
    ) -> absence_pb2.LeaveRequest:
        return await self._decide(request, LeaveState.APPROVED, request.note)

    async def RejectLeaveRequest(
        self, request: pb.RejectLeaveRequestRequest, context: RpcContext
    ) -> absence_pb2.LeaveRequest:
        return await self._decide(request, LeaveState.REJECTED, request.note)

    async def CancelLeaveRequest(
        self, request: pb.CancelLeaveRequestRequest, context: RpcContext
    ) -> absence_pb2.LeaveRequest:
        return await self._decide(request, LeaveState.CANCELLED, "")

    async def GetLeaveBalance(
        self, request: pb.GetLeaveBalanceRequest, context: RpcContext
    ) -> absence_pb2.LeaveBalance:
        name = ChildName.parse(request.person, "people", "person")
        day = m.date_in(request.date, "date") or self.k.today()
        scope = await self.k.scope_of(request.person, name.organisation)
        found = await self.k.read(
            scope, lambda tx: service.leave_balance(HrUnitOfWork(tx), name.organisation, name.id, day)
        )
        return m.balance_to_proto(name.organisation, found)

    async def CreateSicknessAbsence(
        self, request: pb.CreateSicknessAbsenceRequest, context: RpcContext
    ) -> absence_pb2.SicknessAbsence:
        parent = OrganisationName.parse(request.parent)
        terms = m.sickness_terms(request.sickness_absence, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            absence_pb2.SicknessAbsence,
            lambda tx: m.sickness_to_proto(service.create_sickness(HrUnitOfWork(tx), parent.code, terms)),
        )

    async def ListSicknessAbsences(
        self, request: pb.ListSicknessAbsencesRequest, context: RpcContext
    ) -> pb.ListSicknessAbsencesResponse:
        parent = OrganisationName.parse(request.parent)
        person_id = m.child_id(request.person, "people", "person", parent.code, required=False)
        fingerprint = self.k.pager.fingerprint("sicknessAbsences", parent, person_id)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_sickness(
                HrUnitOfWork(tx), parent.code, person_id, page.after, page.size + 1
            ),
        )
        return pb.ListSicknessAbsencesResponse(
            sickness_absences=[m.sickness_to_proto(s) for s in found[: page.size]],
            next_page_token=self.k.pager.next_token(page, found, lambda s: (s.organisation, s.id)),
        )

    async def EndSicknessAbsence(
        self, request: pb.EndSicknessAbsenceRequest, context: RpcContext
    ) -> absence_pb2.SicknessAbsence:
        name = ChildName.parse(request.name, "sicknessAbsences")
        day = m.date_in(request.end_date, "end_date")
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            absence_pb2.SicknessAbsence,
            lambda tx: m.sickness_to_proto(
                service.end_sickness(HrUnitOfWork(tx), name.organisation, name.id, day, request.etag)
            ),
        )

    # Training and vetting

    async def CreateTrainingRecord(
        self, request: pb.CreateTrainingRecordRequest, context: RpcContext
    ) -> compliance_pb2.TrainingRecord:
        parent = OrganisationName.parse(request.parent)
        terms = m.training_terms(request.training_record, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            compliance_pb2.TrainingRecord,
            lambda tx: m.training_to_proto(service.create_training(HrUnitOfWork(tx), parent.code, terms)),
        )

    def _expiring_page(
        self, collection: str, request: pb.ListTrainingRecordsRequest | pb.ListVettingClearancesRequest
    ) -> tuple[OrganisationName, str, ExpiryWindow | None, PageRequest]:
        parent = OrganisationName.parse(request.parent)
        person_id = m.child_id(request.person, "people", "person", parent.code, required=False)
        start = m.date_in(request.as_at_date, "as_at_date") or self.k.today()
        window = expiry_window(request.expires_within_days, start)
        fingerprint = self.k.pager.fingerprint(collection, parent, person_id, window)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        return parent, person_id, window, page

    def _expiring_token(
        self,
        page: PageRequest,
        found: Sequence[TrainingRecord | VettingClearance],
        window: ExpiryWindow | None,
    ) -> str:
        """Keys follow the page order: (organisation, id), or expiry first in a window."""

        def key(last: TrainingRecord | VettingClearance) -> JsonKey:
            if window is not None and last.terms.expiry_date is not None:
                return (last.terms.expiry_date.isoformat(), last.organisation, last.id)
            return (last.organisation, last.id)

        return self.k.pager.next_token(page, found, key)

    async def ListTrainingRecords(
        self, request: pb.ListTrainingRecordsRequest, context: RpcContext
    ) -> pb.ListTrainingRecordsResponse:
        parent, person_id, window, page = self._expiring_page("trainingRecords", request)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_training(
                HrUnitOfWork(tx),
                parent.code,
                person_id=person_id,
                window=window,
                after=page.after,
                size=page.size + 1,
            ),
        )
        return pb.ListTrainingRecordsResponse(
            training_records=[m.training_to_proto(r) for r in found[: page.size]],
            next_page_token=self._expiring_token(page, found, window),
        )

    async def CreateVettingClearance(
        self, request: pb.CreateVettingClearanceRequest, context: RpcContext
    ) -> compliance_pb2.VettingClearance:
        parent = OrganisationName.parse(request.parent)
        terms = m.vetting_terms(request.vetting_clearance, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            compliance_pb2.VettingClearance,
            lambda tx: m.vetting_to_proto(service.create_vetting(HrUnitOfWork(tx), parent.code, terms)),
        )

    async def ListVettingClearances(
        self, request: pb.ListVettingClearancesRequest, context: RpcContext
    ) -> pb.ListVettingClearancesResponse:
        parent, person_id, window, page = self._expiring_page("vettingClearances", request)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_vetting(
                HrUnitOfWork(tx),
                parent.code,
                person_id=person_id,
                window=window,
                after=page.after,
                size=page.size + 1,
            ),
        )
        return pb.ListVettingClearancesResponse(
            vetting_clearances=[m.vetting_to_proto(r) for r in found[: page.size]],
            next_page_token=self._expiring_token(page, found, window),
        )

    # Statistics and the gender pay gap

    async def GetHeadcount(
        self, request: pb.GetHeadcountRequest, context: RpcContext
    ) -> reporting_pb2.Headcount:
        parent = OrganisationName.parse(request.parent)
        day = _required_date(request.as_at_date, "as_at_date")
        # Organisations are public: a caller without the agreement learns why (NO_AGREEMENT).
        scope = await self.k.require_in(parent.code)
        found = await self.k.read(
            scope, lambda tx: service.workforce_statistics(HrUnitOfWork(tx), parent.code, day)
        )
        return reporting_pb2.Headcount(
            as_at_date=date_to_proto(day), headcount=found.headcount, fte=decimal_to_proto(found.fte)
        )

    async def GetWorkforceStatistics(
        self, request: pb.GetWorkforceStatisticsRequest, context: RpcContext
    ) -> reporting_pb2.WorkforceStatistics:
        parent = OrganisationName.parse(request.parent)
        day = _required_date(request.as_at_date, "as_at_date")
        scope = await self.k.scope_of(str(parent), parent.code)
        found = await self.k.read(
            scope, lambda tx: service.workforce_statistics(HrUnitOfWork(tx), parent.code, day)
        )
        return reporting_pb2.WorkforceStatistics(
            as_at_date=date_to_proto(day), strength=m.breakdown_to_proto(found)
        )

    async def GetJoinersAndLeavers(
        self, request: pb.GetJoinersAndLeaversRequest, context: RpcContext
    ) -> reporting_pb2.JoinersAndLeavers:
        parent = OrganisationName.parse(request.parent)
        start = m.date_in(request.start_date, "start_date")
        end = m.date_in(request.end_date, "end_date")
        scope = await self.k.scope_of(str(parent), parent.code)
        joiners, leavers = await self.k.read(
            scope, lambda tx: service.joiners_and_leavers(HrUnitOfWork(tx), parent.code, start, end)
        )
        assert start is not None and end is not None
        return reporting_pb2.JoinersAndLeavers(
            start_date=date_to_proto(start),
            end_date=date_to_proto(end),
            joiners=m.breakdown_to_proto(joiners),
            leavers=m.breakdown_to_proto(leavers),
        )

    async def CreatePayRecord(
        self, request: pb.CreatePayRecordRequest, context: RpcContext
    ) -> reporting_pb2.PayRecord:
        parent = OrganisationName.parse(request.parent)
        terms = m.pay_terms(request.pay_record, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            reporting_pb2.PayRecord,
            lambda tx: m.pay_to_proto(service.create_pay_record(HrUnitOfWork(tx), parent.code, terms)),
        )

    async def GetGenderPayGap(
        self, request: pb.GetGenderPayGapRequest, context: RpcContext
    ) -> reporting_pb2.GenderPayGapReport:
        parent = OrganisationName.parse(request.parent)
        day = _required_date(request.snapshot_date, "snapshot_date")
        if problem := snapshot_date_problem(day):
            raise InvalidArgument.single("snapshot_date", problem)
        scope = await self.k.scope_of(str(parent), parent.code)
        report = await self.k.read(
            scope, lambda tx: service.gender_pay_gap(HrUnitOfWork(tx), parent.code, day)
        )
        msg = m.pay_gap_to_proto(report)
        msg.snapshot_date.CopyFrom(date_to_proto(day))
        return msg

    # Transfers

    async def CreateTransfer(
        self, request: pb.CreateTransferRequest, context: RpcContext
    ) -> transfer_pb2.Transfer:
        parent = OrganisationName.parse(request.parent)
        terms = m.transfer_terms(request.transfer, parent.code)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            transfer_pb2.Transfer,
            lambda tx: m.transfer_to_proto(service.create_transfer(HrUnitOfWork(tx), parent.code, terms)),
        )

    async def GetTransfer(self, request: pb.GetTransferRequest, context: RpcContext) -> transfer_pb2.Transfer:
        name = ChildName.parse(request.name, "transfers")
        scope = await self.k.scope_of(request.name, name.organisation)
        found = await self.k.read(
            scope, lambda tx: service.get_transfer(HrUnitOfWork(tx), name.organisation, name.id)
        )
        return m.transfer_to_proto(found)

    async def ListTransfers(
        self, request: pb.ListTransfersRequest, context: RpcContext
    ) -> pb.ListTransfersResponse:
        parent = OrganisationName.parse(request.parent)
        fingerprint = self.k.pager.fingerprint("transfers", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope, lambda tx: service.list_transfers(HrUnitOfWork(tx), parent.code, page.after, page.size + 1)
        )
        return pb.ListTransfersResponse(
            transfers=[m.transfer_to_proto(t) for t in found[: page.size]],
            next_page_token=self.k.pager.next_token(page, found, lambda t: (t.organisation, t.id)),
        )

    async def AcceptTransfer(
        self, request: pb.AcceptTransferRequest, context: RpcContext
    ) -> transfer_pb2.Transfer:
        return await self._transfer_decision(
            request,
            lambda uow, party, transfer_id: service.accept_transfer(
                uow, party, transfer_id, request.etag, collar_number=request.collar_number
            ),
        )

    async def CancelTransfer(
        self, request: pb.CancelTransferRequest, context: RpcContext
    ) -> transfer_pb2.Transfer:
        return await self._transfer_decision(
            request,
            lambda uow, party, transfer_id: service.cancel_transfer(
                uow, party, transfer_id, request.reason, request.etag
            ),
        )

    async def DeclineTransfer(
        self, request: pb.DeclineTransferRequest, context: RpcContext
    ) -> transfer_pb2.Transfer:
        return await self._transfer_decision(
            request,
            lambda uow, party, transfer_id: service.decline_transfer(
                uow, party, transfer_id, request.reason, request.etag
            ),
        )

    async def _transfer_decision(
        self,
        request: pb.AcceptTransferRequest | pb.CancelTransferRequest | pb.DeclineTransferRequest,
        decide: Callable[[HrUnitOfWork, str, str], Transfer],
    ) -> transfer_pb2.Transfer:
        """A change of a transfer's state by one of its two forces, the one the name is under."""
        name = ChildName.parse(request.name, "transfers")
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            transfer_pb2.Transfer,
            lambda tx: m.transfer_to_proto(decide(HrUnitOfWork(tx), name.organisation, name.id)),
        )
