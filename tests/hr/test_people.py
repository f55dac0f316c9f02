"""People end to end: create, read, list, update; bad input; isolation and authorisation."""

from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf import field_mask_pb2

from backoffice.directory.v1 import agreement_pb2
from backoffice.directory.v1 import directory_service_pb2 as dpb
from backoffice.hr.v1 import hr_service_pb2 as pb
from backoffice.hr.v1 import person_pb2
from libs.common.proto_mapping import date_to_proto
from tests.hr.helpers import add_person, officer, staff
from tests.support import SOUTH_YORKSHIRE, UNIT, WEST_YORKSHIRE, Suite, failure, today

WEST = f"organisations/{WEST_YORKSHIRE}"


def test_create_get_list_update(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer", subject="hofficer")
    created = add_person(
        hr, WEST_YORKSHIRE, officer(national_insurance_number="ab 12 34 56 c", collar="ws 1234"), "p-sam"
    )
    assert created.name == f"{WEST}/people/p-sam"
    assert created.national_insurance_number == "AB123456C"
    assert created.collar_number == "WS1234"
    assert created.ethnic_group == "White"
    assert created.audit.create_principal == f"{WEST_YORKSHIRE}/hofficer"
    assert hr.hr.GetPerson(pb.GetPersonRequest(name=created.name)) == created
    other = add_person(hr, WEST_YORKSHIRE, staff(ethnicity=person_pb2.ETHNICITY_PREFER_NOT_TO_SAY))
    assert other.ethnic_group == "Not stated"
    listed = hr.hr.ListPeople(pb.ListPeopleRequest(parent=WEST))
    assert {p.name for p in listed.people} == {created.name, other.name}
    only_staff = hr.hr.ListPeople(pb.ListPeopleRequest(parent=WEST, filter="worker_type = POLICE_STAFF"))
    assert [p.name for p in only_staff.people] == [other.name]
    updated = hr.hr.UpdatePerson(
        pb.UpdatePersonRequest(
            person=person_pb2.Person(name=created.name, family_name="Smyth", etag=created.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["family_name"]),
        )
    )
    assert updated.family_name == "Smyth" and updated.collar_number == "WS1234"
    stale = failure(
        hr.hr.UpdatePerson,
        pb.UpdatePersonRequest(
            person=person_pb2.Person(name=created.name, family_name="X", etag=created.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["family_name"]),
        ),
    )
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"


def test_bad_input_lists_every_bad_field(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    f = failure(
        hr.hr.CreatePerson,
        pb.CreatePersonRequest(
            parent=WEST,
            person=person_pb2.Person(
                worker_type=person_pb2.WORKER_TYPE_POLICE_OFFICER,
                given_name=" ",
                national_insurance_number="QQ123456C",
                email="not-an-email",
                full_time_leave_days="25.25",
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {
        "person.given_name",
        "person.family_name",
        "person.collar_number",
        "person.national_insurance_number",
        "person.sex",
        "person.ethnicity",
        "person.email",
        "person.full_time_leave_days",
        "person.join_date",
    }
    assert "prefix QQ" in f.violations["person.national_insurance_number"]
    # Staff carry no collar number; the GB prefix is never issued; no worker type at all.
    f = failure(hr.hr.CreatePerson, pb.CreatePersonRequest(parent=WEST, person=staff(collar_number="12")))
    assert set(f.violations) == {"person.collar_number"}
    f = failure(
        hr.hr.CreatePerson,
        pb.CreatePersonRequest(parent=WEST, person=staff(national_insurance_number="GB123456A")),
    )
    assert "never issues" in f.violations["person.national_insurance_number"]
    f = failure(
        hr.hr.CreatePerson, pb.CreatePersonRequest(parent=WEST, person=staff(worker_type=0), person_id="X!")
    )
    assert set(f.violations) == {"person.worker_type", "person_id"}
    f = failure(hr.hr.CreatePerson, pb.CreatePersonRequest(parent="forces/1", person=staff()))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "parent" in f.violations
    assert not hr.hr.ListPeople(pb.ListPeopleRequest(parent=WEST)).people


def test_a_decimal_of_more_digits_than_decimal_holds_is_a_bad_field(suite: Suite) -> None:
    """Past 28 significant digits, Decimal arithmetic raises: the field is judged by its digits."""
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    for days in ("123456789012345678901234567890.123", "1E+30", "25.0000000000000000000000000000001"):
        f = failure(add_person, west, WEST_YORKSHIRE, officer(full_time_leave_days=days))
        assert f.code is grpc.StatusCode.INVALID_ARGUMENT
        assert set(f.violations) == {"person.full_time_leave_days"}
    many_zeros = add_person(west, WEST_YORKSHIRE, officer(full_time_leave_days="25." + "0" * 40))
    assert many_zeros.full_time_leave_days == "25"


def test_collar_and_ni_numbers_are_unique_in_a_force(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    add_person(hr, WEST_YORKSHIRE, officer(collar="100", national_insurance_number="AB123456C"))
    f = failure(hr.hr.CreatePerson, pb.CreatePersonRequest(parent=WEST, person=officer(collar="100")))
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.reason == "PERSON_ALREADY_EXISTS"
    f = failure(
        hr.hr.CreatePerson,
        pb.CreatePersonRequest(parent=WEST, person=staff(national_insurance_number="AB123456C")),
    )
    assert f.code is grpc.StatusCode.ALREADY_EXISTS
    # Another force has its own numbering.
    add_person(south, SOUTH_YORKSHIRE, officer(collar="100", national_insurance_number="AB123456C"))


def test_another_force_sees_nothing(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    mine = add_person(west, WEST_YORKSHIRE, officer())
    f = failure(south.hr.GetPerson, pb.GetPersonRequest(name=mine.name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert not south.hr.ListPeople(pb.ListPeopleRequest(parent=WEST)).people
    assert not south.hr.ListPeople(pb.ListPeopleRequest(parent="organisations/-")).people
    f = failure(
        south.hr.UpdatePerson,
        pb.UpdatePersonRequest(
            person=person_pb2.Person(name=mine.name, family_name="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["family_name"]),
        ),
    )
    assert f.code is grpc.StatusCode.NOT_FOUND
    f = failure(south.hr.CreatePerson, pb.CreatePersonRequest(parent=WEST, person=officer(collar="9")))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"


def test_only_hr_roles_read_person_records(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = add_person(west, WEST_YORKSHIRE, officer())
    for role in ("hr.line_manager", "hr.workforce_planner", "procurement.commercial"):
        other = suite.caller(WEST_YORKSHIRE, role)
        f = failure(other.hr.GetPerson, pb.GetPersonRequest(name=person.name))
        assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "MISSING_PERMISSION", role
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")
    f = failure(planner.hr.CreatePerson, pb.CreatePersonRequest(parent=WEST, person=officer(collar="2")))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED


def test_shared_service_unit_acts_under_an_hr_records_agreement(suite: Suite) -> None:
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    unit = suite.caller(UNIT, "hr.shared_service", subject="unit-hr")
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = add_person(west, WEST_YORKSHIRE, officer())
    assert failure(unit.hr.GetPerson, pb.GetPersonRequest(name=person.name)).code is grpc.StatusCode.NOT_FOUND
    admin.directory.CreateAgreement(
        dpb.CreateAgreementRequest(
            agreement=agreement_pb2.Agreement(
                display_name="HR shared service",
                kind=agreement_pb2.AGREEMENT_KIND_SERVICE_PROVISION,
                organisation=WEST,
                counterparty=f"organisations/{UNIT}",
                functions=["hr.records"],
                start_date=date_to_proto(today() - dt.timedelta(days=1)),
            )
        )
    )
    assert unit.hr.GetPerson(pb.GetPersonRequest(name=person.name)).name == person.name
    made = add_person(unit, WEST_YORKSHIRE, staff())
    assert made.audit.update_acting_organisation == UNIT
    # hr.records opens records, not absence.
    f = failure(unit.hr.GetLeaveBalance, pb.GetLeaveBalanceRequest(person=person.name))
    assert f.code is grpc.StatusCode.NOT_FOUND


def test_batch_create_is_all_or_nothing(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    rows = [
        pb.CreatePersonRequest(person=officer(collar="1")),
        pb.CreatePersonRequest(person=officer(collar="1")),
        pb.CreatePersonRequest(person=staff(national_insurance_number="DA123456A")),
    ]
    f = failure(hr.hr.BatchCreatePeople, pb.BatchCreatePeopleRequest(parent=WEST, requests=rows))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {
        "requests[1].person.collar_number",
        "requests[2].person.national_insurance_number",
    }
    assert not hr.hr.ListPeople(pb.ListPeopleRequest(parent=WEST)).people
    del rows[1:]
    rows.append(pb.CreatePersonRequest(person=staff()))
    made = hr.hr.BatchCreatePeople(pb.BatchCreatePeopleRequest(parent=WEST, requests=rows))
    assert len(made.people) == 2
    clash = failure(
        hr.hr.BatchCreatePeople,
        pb.BatchCreatePeopleRequest(parent=WEST, requests=[pb.CreatePersonRequest(person=staff()), rows[0]]),
    )
    assert clash.code is grpc.StatusCode.ALREADY_EXISTS and clash.metadata["row"] == "1"
    assert len(hr.hr.ListPeople(pb.ListPeopleRequest(parent=WEST)).people) == 2
