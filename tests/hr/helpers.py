"""Builders for HR tests: a force with grades, units, posts and people."""

from __future__ import annotations

import datetime as dt

from google.type import money_pb2

from backoffice.hr.v1 import establishment_pb2, person_pb2
from backoffice.hr.v1 import hr_service_pb2 as pb
from libs.common.proto_mapping import date_to_proto
from tests.support import WEST_YORKSHIRE, Caller

D = dt.date
START = D(2020, 4, 1)


def officer(family: str = "Smith", collar: str = "1234", **kw: object) -> person_pb2.Person:
    fields: dict[str, object] = {
        "worker_type": person_pb2.WORKER_TYPE_POLICE_OFFICER,
        "given_name": "Sam",
        "family_name": family,
        "collar_number": collar,
        "sex": person_pb2.SEX_MALE,
        "ethnicity": person_pb2.ETHNICITY_WHITE_BRITISH,
        "join_date": date_to_proto(D(2020, 4, 1)),
        "full_time_leave_days": "25",
    }
    fields.update(kw)
    return person_pb2.Person(**fields)  # type: ignore[arg-type]


def staff(family: str = "Jones", **kw: object) -> person_pb2.Person:
    fields: dict[str, object] = {
        "worker_type": person_pb2.WORKER_TYPE_POLICE_STAFF,
        "given_name": "Alex",
        "family_name": family,
        "sex": person_pb2.SEX_FEMALE,
        "ethnicity": person_pb2.ETHNICITY_INDIAN,
        "join_date": date_to_proto(D(2020, 4, 1)),
        "full_time_leave_days": "27",
    }
    fields.update(kw)
    return person_pb2.Person(**fields)  # type: ignore[arg-type]


def add_person(c: Caller, org: str, person: person_pb2.Person, person_id: str = "") -> person_pb2.Person:
    return c.hr.CreatePerson(
        pb.CreatePersonRequest(parent=f"organisations/{org}", person=person, person_id=person_id)
    )


def gbp(pounds: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="GBP", units=pounds)


def grade(c: Caller, org: str, name: str, rank: int = 0, salary: int = 30000) -> establishment_pb2.Grade:
    return c.hr.CreateGrade(
        pb.CreateGradeRequest(
            parent=f"organisations/{org}",
            grade=establishment_pb2.Grade(
                display_name=name,
                rank=rank,  # type: ignore[arg-type]
                pay_points=[
                    establishment_pb2.PayPoint(code="1", annual_salary=gbp(salary)),
                    establishment_pb2.PayPoint(code="2", annual_salary=gbp(salary + 1500)),
                ],
            ),
        )
    )


def unit(c: Caller, org: str, name: str = "Response") -> establishment_pb2.OrgUnit:
    return c.hr.CreateOrgUnit(
        pb.CreateOrgUnitRequest(
            parent=f"organisations/{org}", org_unit=establishment_pb2.OrgUnit(display_name=name)
        )
    )


def post(
    c: Caller,
    org: str,
    unit_name: str,
    grade_name: str,
    *,
    title: str = "Response Constable",
    budget: str = "1",
    worker_type: int = person_pb2.WORKER_TYPE_POLICE_OFFICER,
    start: dt.date = START,
) -> establishment_pb2.Post:
    return c.hr.CreatePost(
        pb.CreatePostRequest(
            parent=f"organisations/{org}",
            post=establishment_pb2.Post(
                display_name=title,
                org_unit=unit_name,
                worker_type=worker_type,  # type: ignore[arg-type]
                grade=grade_name,
                budgeted_fte=budget,
                start_date=date_to_proto(start),
            ),
        )
    )


def assign(
    c: Caller,
    org: str,
    person: str,
    post_name: str,
    fte: str = "1",
    start: dt.date = START,
    pay_point: str = "1",
) -> establishment_pb2.Assignment:
    return c.hr.CreateAssignment(
        pb.CreateAssignmentRequest(
            parent=f"organisations/{org}",
            assignment=establishment_pb2.Assignment(
                person=person, post=post_name, fte=fte, start_date=date_to_proto(start), pay_point=pay_point
            ),
        )
    )


def staff_member(hr: Caller, fte: str = "1", joined: D = START, leave_days: str = "25") -> str:
    """A member of staff of West Yorkshire in a clerk's post of their own, from `joined`."""
    g = grade(hr, WEST_YORKSHIRE, f"Scale 6 {fte} {joined}")
    p = post(
        hr,
        WEST_YORKSHIRE,
        unit(hr, WEST_YORKSHIRE).name,
        g.name,
        title="Clerk",
        worker_type=person_pb2.WORKER_TYPE_POLICE_STAFF,
    )
    person = add_person(
        hr, WEST_YORKSHIRE, staff(join_date=date_to_proto(joined), full_time_leave_days=leave_days)
    )
    assign(hr, WEST_YORKSHIRE, person.name, p.name, fte=fte, start=joined)
    return person.name
