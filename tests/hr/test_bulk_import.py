"""BatchCreatePeople, set-based: the same guarantees as person by person.

All rows or none; every bad field of every row at once; clashes with people already
recorded reported as ALREADY_EXISTS with the row; an audit record per person in an intact
chain; and the response's people exactly as the generic mapping made them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import grpc
import pytest

from backoffice.hr.v1 import hr_service_pb2 as pb
from backoffice.hr.v1 import person_pb2
from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.config import Settings
from libs.common.db import TenantScopeViolation
from libs.common.proto_mapping import audit_metadata, date_to_proto
from libs.common.records import RecordInfo
from services.hr.api.mapping import enum_out, person_to_proto
from services.hr.domain.person import (
    Ethnicity,
    LeavingReason,
    Person,
    PersonDetails,
    ServiceHistoryEntry,
    Sex,
    WorkerType,
)
from services.hr.domain.values import fte_text
from services.hr.persistence.repository import SqlPersonRepository
from services.suite.admin import verify_audit
from tests.hr.helpers import add_person, officer, staff
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Suite, failure

WEST = f"organisations/{WEST_YORKSHIRE}"


def _audit_records(suite: Suite) -> tuple[int, bool]:
    """West Yorkshire's HR audit chain: its number of records, and whether it is intact."""
    for _, report in verify_audit(suite.settings, ["hr"]):
        if report.organisation == WEST_YORKSHIRE:
            return report.records, report.intact
    return 0, True


def _people(suite: Suite) -> list[person_pb2.Person]:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    found: list[person_pb2.Person] = []
    token = ""
    while True:
        page = hr.hr.ListPeople(pb.ListPeopleRequest(parent=WEST, page_size=1000, page_token=token))
        found += page.people
        if not (token := page.next_page_token):
            return found


def _batch(suite: Suite, rows: list[pb.CreatePersonRequest]) -> pb.BatchCreatePeopleResponse:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    return hr.hr.BatchCreatePeople(pb.BatchCreatePeopleRequest(parent=WEST, requests=rows), timeout=120)


def _row(person: person_pb2.Person, person_id: str = "") -> pb.CreatePersonRequest:
    return pb.CreatePersonRequest(person=person, person_id=person_id)


@pytest.mark.parametrize(
    ("clash", "key", "value"),
    [
        (_row(staff("Again", national_insurance_number="CE111111A"), "p-kept"), "person_id", "p-kept"),
        (_row(officer("Again", collar="4321")), "collar_number", "4321"),
        (
            _row(staff("Again", national_insurance_number="ce 22 22 22 b")),
            "national_insurance_number",
            "CE222222B",
        ),
    ],
    ids=["person_id", "collar_number", "national_insurance_number"],
)
def test_a_clash_with_a_recorded_person_refuses_the_batch_whole(
    suite: Suite, clash: pb.CreatePersonRequest, key: str, value: str
) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    add_person(
        hr, WEST_YORKSHIRE, officer("Kept", collar="4321", national_insurance_number="CE222222B"), "p-kept"
    )
    records, _ = _audit_records(suite)
    rows = [_row(staff(f"New{n}")) for n in range(5)]
    rows.insert(3, clash)
    f = failure(_batch, suite, rows)
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.reason == "PERSON_ALREADY_EXISTS"
    assert f.metadata == {"row": "3", key: value}
    assert [p.family_name for p in _people(suite)] == ["Kept"]
    assert _audit_records(suite) == (records, True)


def test_the_first_clashing_row_is_reported(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    add_person(
        hr, WEST_YORKSHIRE, officer("Kept", collar="77", national_insurance_number="CE333333C"), "p-kept"
    )
    rows = [
        _row(staff("One")),
        _row(staff("Two", national_insurance_number="CE333333C")),
        _row(staff("Three"), "p-kept"),
    ]
    f = failure(_batch, suite, rows)
    assert f.code is grpc.StatusCode.ALREADY_EXISTS
    assert f.metadata == {"row": "1", "national_insurance_number": "CE333333C"}


def test_repeats_within_the_batch_and_every_bad_field_are_reported_at_once(suite: Suite) -> None:
    records, _ = _audit_records(suite)
    rows = [
        _row(officer("A", collar="10", national_insurance_number="CE444444A"), "p-a"),
        _row(officer("B", collar="10")),
        _row(staff("C", national_insurance_number="CE444444A"), "p-a"),
        _row(staff("D", given_name="", birth_date=date_to_proto(dt.date(1850, 1, 1)))),
        _row(staff("E", join_date=person_pb2.Person().join_date, sex=0)),
        _row(staff("F", birth_date=date_to_proto(dt.date(2000, 1, 1)))),
    ]
    # Dates that are no dates (the client's slip) are reported with the rest, by row.
    rows[5].person.birth_date.month = 13
    rows[4].person.join_date.year, rows[4].person.join_date.month = 2020, 2
    f = failure(_batch, suite, rows)
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {
        "requests[1].person.collar_number",
        "requests[2].person.national_insurance_number",
        "requests[2].person.id",
        "requests[3].person.given_name",
        "requests[3].person.birth_date",
        "requests[4].person.join_date",
        "requests[4].person.sex",
        "requests[5].person.birth_date",
    }
    assert "full calendar date" in f.violations["requests[4].person.join_date"]
    assert not _people(suite)
    assert _audit_records(suite) == (records, True)


def test_two_thousand_people_in_one_batch(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    add_person(hr, WEST_YORKSHIRE, staff("Before"))
    records, _ = _audit_records(suite)
    kinds = (person_pb2.WORKER_TYPE_POLICE_OFFICER, person_pb2.WORKER_TYPE_POLICE_STAFF)
    rows = [
        _row(
            person_pb2.Person(
                worker_type=kinds[n % 2],
                given_name="Alex",
                family_name=f"Bulk{n}",
                collar_number=f"{9000 + n}" if n % 2 == 0 else "",
                national_insurance_number=f"AB{n:06d}C",
                sex=person_pb2.SEX_FEMALE,
                ethnicity=person_pb2.ETHNICITY_INDIAN,
                join_date=date_to_proto(dt.date(2010, 1, 1) + dt.timedelta(days=n)),
                full_time_leave_days="27.5",
            ),
            f"bulk-{n:04d}",
        )
        for n in range(2000)
    ]
    made = _batch(suite, rows)
    assert [p.name for p in made.people] == [f"{WEST}/people/bulk-{n:04d}" for n in range(2000)]
    assert made.people[0].collar_number == "9000" and made.people[1].collar_number == ""
    stored = {p.name: p for p in _people(suite)}
    assert len(stored) == 2001
    assert all(stored[p.name] == p for p in made.people)
    assert _audit_records(suite) == (records + 2000, True)
    # A second batch repeating one of them is refused whole, naming its row.
    again = [_row(staff("Fresh"), "fresh"), rows[1234]]
    f = failure(_batch, suite, again)
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.metadata == {"row": "1", "person_id": "bulk-1234"}
    assert len(_people(suite)) == 2001


def test_the_bulk_insert_keeps_to_the_scope(settings: Settings) -> None:
    """A Core insert passes no ORM flush: `add_many` makes the flush's tenancy check itself."""
    db = build_database("hr", settings)
    try:
        with (
            db.session(Scope.of(SOUTH_YORKSHIRE), write=True) as session,
            pytest.raises(TenantScopeViolation),
        ):
            SqlPersonRepository(session).add_many([_person(1), _person(2)])
    finally:
        db.dispose()


# The mapping's lookup tables against the generic helpers it replaces.


def _reference(p: Person) -> person_pb2.Person:
    d = p.details
    msg = person_pb2.Person(
        name=p.name,
        worker_type=enum_out(person_pb2.WorkerType, "WORKER_TYPE_", p.worker_type),
        given_name=d.given_name,
        family_name=d.family_name,
        preferred_name=d.preferred_name,
        collar_number=d.collar_number,
        national_insurance_number=d.national_insurance_number,
        sex=enum_out(person_pb2.Sex, "SEX_", d.sex),
        ethnicity=enum_out(person_pb2.Ethnicity, "ETHNICITY_", d.ethnicity),
        ethnic_group=d.ethnicity.group if d.ethnicity else "",
        email=d.email,
        phone=d.phone,
        address_lines=list(d.address_lines),
        postcode=d.postcode,
        join_date=date_to_proto(p.join_date),
        leaving_reason=enum_out(person_pb2.LeavingReason, "LEAVING_REASON_", p.leaving_reason),
        full_time_leave_days=d.full_time_leave_days,
        prior_service=[
            person_pb2.ServiceHistoryEntry(
                organisation=e.organisation,
                post_display_name=e.post_display_name,
                grade_display_name=e.grade_display_name,
                fte=fte_text(e.fte),
                start_date=date_to_proto(e.start_date),
                end_date=date_to_proto(e.end_date),
            )
            for e in p.prior_service
        ],
        audit=audit_metadata(p.info),
        etag=p.info.etag,
    )
    if d.birth_date:
        msg.birth_date.CopyFrom(date_to_proto(d.birth_date))
    if p.leaving_date:
        msg.leaving_date.CopyFrom(date_to_proto(p.leaving_date))
    return msg


def _person(n: int) -> Person:
    created = dt.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=dt.UTC) - dt.timedelta(days=400 * n)
    if n == 5:  # not in UTC: the mapping's general path
        created = created.astimezone(dt.timezone(dt.timedelta(hours=1)))
    info = RecordInfo.new(f"{WEST_YORKSHIRE}/p{n}", None, created)
    if n % 2:
        info = info.touched("X00000101/unit", "X00000101", created + dt.timedelta(seconds=n, microseconds=7))
    return Person(
        WEST_YORKSHIRE,
        f"p{n}",
        list(WorkerType)[n % len(WorkerType)],
        PersonDetails(
            given_name=f"Given{n}",
            family_name="Family",
            sex=None if n == 3 else list(Sex)[n % len(Sex)],
            ethnicity=None if n == 4 else list(Ethnicity)[n % len(Ethnicity)],
            preferred_name="Pref" if n % 3 else "",
            collar_number=f"C{n}" if n % 2 else "",
            national_insurance_number=f"AB{n:06d}C" if n % 4 else "",
            birth_date=dt.date(1970 + n, 1 + n % 12, 1) if n % 3 else None,
            email=f"p{n}@example.org" if n % 2 else "",
            phone="0113 000 000" if n % 5 else "",
            address_lines=tuple(f"line {i}" for i in range(n % 4)),
            postcode="LS1 1AA" if n % 2 else "",
            full_time_leave_days=f"{20 + n}.5" if n % 3 else "",
        ),
        dt.date(1990 + n, 1 + n % 12, 1 + n % 28),
        info,
        leaving_date=dt.date(2030, 1, 1) if n % 4 == 1 else None,
        leaving_reason=list(LeavingReason)[n % len(LeavingReason)] if n % 4 == 1 else None,
        prior_service=tuple(
            ServiceHistoryEntry(
                organisation="E23000011",
                post_display_name=f"Post {i}",
                grade_display_name="PC",
                fte=Decimal("0.5") + Decimal(i) / 10,
                start_date=dt.date(2000 + i, 1, 1),
                end_date=dt.date(2001 + i, 1, 1),
            )
            for i in range(n % 3)
        ),
    )


@pytest.mark.parametrize("n", range(12))
def test_person_to_proto_is_the_generic_mapping(n: int) -> None:
    person = _person(n)
    mapped, expected = person_to_proto(person), _reference(person)
    assert mapped == expected
    assert mapped.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
