"""Transfers and secondments: the sending force offers, the receiving force accepts or
declines; the record continues with its history; nothing else crosses."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import field_mask_pb2

from backoffice.hr.v1 import absence_pb2, establishment_pb2, person_pb2, transfer_pb2
from backoffice.hr.v1 import hr_service_pb2 as pb
from libs.common.proto_mapping import date_to_proto
from tests.hr.helpers import D, add_person, assign, grade, officer, post, staff, unit
from tests.support import (
    CUMBRIA,
    LEEDS,
    SOUTH_YORKSHIRE,
    UNIT,
    WEST_YORKSHIRE,
    Caller,
    Suite,
    audit_after,
    failure,
)

WEST = f"organisations/{WEST_YORKSHIRE}"
SOUTH = f"organisations/{SOUTH_YORKSHIRE}"


def _offer(c: Caller, person: str, kind: int, end: D | None = None) -> transfer_pb2.Transfer:
    t = transfer_pb2.Transfer(
        kind=kind,  # type: ignore[arg-type]
        person=person,
        receiving_organisation=SOUTH,
        effective_date=date_to_proto(D(2024, 6, 1)),
    )
    if end:
        t.end_date.CopyFrom(date_to_proto(end))
    return c.hr.CreateTransfer(pb.CreateTransferRequest(parent=WEST, transfer=t))


def _serving_officer(west: Caller) -> str:
    g = grade(west, WEST_YORKSHIRE, "Sergeant", establishment_pb2.RANK_SERGEANT)
    p = post(west, WEST_YORKSHIRE, unit(west, WEST_YORKSHIRE).name, g.name, title="Custody Sergeant")
    person = add_person(west, WEST_YORKSHIRE, officer(collar="77", national_insurance_number="AB123456C"))
    assign(west, WEST_YORKSHIRE, person.name, p.name)
    return person.name


def test_accepted_transfer_continues_the_record_in_the_receiving_force(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    assert offered.state == transfer_pb2.TRANSFER_STATE_PENDING
    assert offered.grade_display_name == "Sergeant" and offered.display_name == "Sam Smith"
    # The receiving force sees the offer under its own name, but not the person behind it.
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"
    assert south.hr.GetTransfer(pb.GetTransferRequest(name=incoming)).name == offered.name
    assert [t.name for t in south.hr.ListTransfers(pb.ListTransfersRequest(parent=SOUTH)).transfers] == [
        offered.name
    ]
    assert failure(south.hr.GetPerson, pb.GetPersonRequest(name=person)).code is grpc.StatusCode.NOT_FOUND
    # Only the receiving force decides; a third force sees nothing.
    f = failure(west.hr.AcceptTransfer, pb.AcceptTransferRequest(name=offered.name))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "NOT_RECEIVING_FORCE"
    cumbria = suite.caller(CUMBRIA, "hr.officer")
    f = failure(cumbria.hr.GetTransfer, pb.GetTransferRequest(name=f"organisations/{CUMBRIA}/transfers/x"))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert not cumbria.hr.ListTransfers(pb.ListTransfersRequest(parent=f"organisations/{CUMBRIA}")).transfers

    accepted = south.hr.AcceptTransfer(pb.AcceptTransferRequest(name=incoming, etag=offered.etag))
    assert accepted.state == transfer_pb2.TRANSFER_STATE_ACCEPTED
    assert accepted.receiving_person.startswith(f"{SOUTH}/people/")
    arrived = south.hr.GetPerson(pb.GetPersonRequest(name=accepted.receiving_person))
    assert arrived.collar_number == "77" and arrived.national_insurance_number == "AB123456C"
    assert (arrived.join_date.year, arrived.join_date.month, arrived.join_date.day) == (2024, 6, 1)
    assert [(h.organisation, h.post_display_name, h.grade_display_name) for h in arrived.prior_service] == [
        (WEST, "Custody Sergeant", "Sergeant")
    ]
    assert arrived.prior_service[0].end_date.day == 31
    # In the sending force the person is a leaver the day before, by transfer.
    gone = west.hr.GetPerson(pb.GetPersonRequest(name=person))
    assert (gone.leaving_date.month, gone.leaving_date.day) == (5, 31)
    assert gone.leaving_reason == person_pb2.LEAVING_REASON_TRANSFER
    west_people = west.hr.ListPeople(pb.ListPeopleRequest(parent="organisations/-")).people
    assert [p.name for p in west_people] == [person]
    assert [p.name for p in south.hr.ListPeople(pb.ListPeopleRequest(parent="organisations/-")).people] == [
        arrived.name
    ]
    f = failure(south.hr.DeclineTransfer, pb.DeclineTransferRequest(name=incoming, reason="too late"))
    assert f.reason == "TRANSFER_NOT_PENDING"


def test_declined_transfer_changes_nothing_and_secondment_shares_only_itself(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    f = failure(_offer, west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    assert f.reason == "TRANSFER_ALREADY_PENDING"
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"
    f = failure(south.hr.DeclineTransfer, pb.DeclineTransferRequest(name=incoming, reason=" "))
    assert set(f.violations) == {"reason"}
    declined = south.hr.DeclineTransfer(pb.DeclineTransferRequest(name=incoming, reason="no vacancy"))
    assert declined.state == transfer_pb2.TRANSFER_STATE_DECLINED and declined.decline_reason == "no vacancy"
    assert not west.hr.GetPerson(pb.GetPersonRequest(name=person)).HasField("leaving_date")
    assert not south.hr.ListPeople(pb.ListPeopleRequest(parent=SOUTH)).people

    secondment = _offer(west, person, transfer_pb2.TRANSFER_KIND_SECONDMENT, end=D(2025, 5, 31))
    incoming = f"{SOUTH}/transfers/{secondment.name.rsplit('/', 1)[1]}"
    accepted = south.hr.AcceptTransfer(pb.AcceptTransferRequest(name=incoming))
    assert accepted.state == transfer_pb2.TRANSFER_STATE_ACCEPTED and not accepted.receiving_person
    # The person stays with the sending force; the host sees the secondment, not the record.
    assert not west.hr.GetPerson(pb.GetPersonRequest(name=person)).HasField("leaving_date")
    assert failure(south.hr.GetPerson, pb.GetPersonRequest(name=person)).code is grpc.StatusCode.NOT_FOUND
    assert not south.hr.ListPeople(pb.ListPeopleRequest(parent=SOUTH)).people


def test_bad_transfer_input(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    f = failure(
        west.hr.CreateTransfer, pb.CreateTransferRequest(parent=WEST, transfer=transfer_pb2.Transfer())
    )
    assert set(f.violations) == {
        "transfer.kind",
        "transfer.person",
        "transfer.receiving_organisation",
        "transfer.effective_date",
    }
    person = _serving_officer(west)
    f = failure(
        west.hr.CreateTransfer,
        pb.CreateTransferRequest(
            parent=WEST,
            transfer=transfer_pb2.Transfer(
                kind=transfer_pb2.TRANSFER_KIND_SECONDMENT,
                person=person,
                receiving_organisation=WEST,
                effective_date=date_to_proto(D(2024, 6, 1)),
            ),
        ),
    )
    assert set(f.violations) == {"transfer.receiving_organisation", "transfer.end_date"}
    f = failure(
        west.hr.CreateTransfer,
        pb.CreateTransferRequest(
            parent=WEST,
            transfer=transfer_pb2.Transfer(
                kind=transfer_pb2.TRANSFER_KIND_TRANSFER,
                person=f"{WEST}/people/p-nobody",
                receiving_organisation=SOUTH,
                effective_date=date_to_proto(D(2024, 6, 1)),
            ),
        ),
    )
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "PERSON_NOT_FOUND"


@pytest.mark.parametrize(
    ("kind", "receiving", "allowed"),
    [
        # A shared-service unit or a council would then hold the force's record.
        (transfer_pb2.TRANSFER_KIND_TRANSFER, f"organisations/{UNIT}", False),
        (transfer_pb2.TRANSFER_KIND_TRANSFER, f"organisations/{LEEDS}", False),
        (transfer_pb2.TRANSFER_KIND_TRANSFER, "organisations/E23999999", False),  # no such force
        (transfer_pb2.TRANSFER_KIND_TRANSFER, "organisations/X00000004", False),  # the NCA
        (transfer_pb2.TRANSFER_KIND_SECONDMENT, f"organisations/{UNIT}", False),
        (transfer_pb2.TRANSFER_KIND_SECONDMENT, "organisations/X00000004", True),
        (transfer_pb2.TRANSFER_KIND_TRANSFER, "organisations/X00000001", True),  # BTP
    ],
)
def test_people_move_to_forces_and_are_seconded_to_forces_or_national_bodies(
    suite: Suite, kind: int, receiving: str, allowed: bool
) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    transfer = transfer_pb2.Transfer(
        kind=kind,  # type: ignore[arg-type]
        person=_serving_officer(west),
        receiving_organisation=receiving,
        effective_date=date_to_proto(D(2024, 6, 1)),
    )
    if kind == transfer_pb2.TRANSFER_KIND_SECONDMENT:
        transfer.end_date.CopyFrom(date_to_proto(D(2025, 5, 31)))
    request = pb.CreateTransferRequest(parent=WEST, transfer=transfer)
    if allowed:
        assert west.hr.CreateTransfer(request).state == transfer_pb2.TRANSFER_STATE_PENDING
    else:
        f = failure(west.hr.CreateTransfer, request)
        assert f.code is grpc.StatusCode.INVALID_ARGUMENT
        assert set(f.violations) == {"transfer.receiving_organisation"}


def test_the_sending_force_withdraws_an_offer_until_it_is_decided(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"

    def cancel(
        c: Caller, name: str, reason: str = "the officer stays", etag: str = ""
    ) -> transfer_pb2.Transfer:
        return c.hr.CancelTransfer(pb.CancelTransferRequest(name=name, reason=reason, etag=etag))

    assert set(failure(cancel, west, offered.name, " ").violations) == {"reason"}
    f = failure(cancel, south, incoming)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "NOT_SENDING_FORCE"
    f = failure(cancel, west, offered.name, etag='W/"999"')
    assert f.code is grpc.StatusCode.ABORTED and f.reason == "ETAG_MISMATCH"
    withdrawn = cancel(west, offered.name, etag=offered.etag)
    assert withdrawn.state == transfer_pb2.TRANSFER_STATE_CANCELLED
    assert withdrawn.cancel_reason == "the officer stays" and not withdrawn.decline_reason
    # The receiving force sees it withdrawn and can no longer decide; nothing else changed.
    seen = south.hr.GetTransfer(pb.GetTransferRequest(name=incoming))
    assert seen.state == transfer_pb2.TRANSFER_STATE_CANCELLED
    f = failure(south.hr.AcceptTransfer, pb.AcceptTransferRequest(name=incoming))
    assert f.reason == "TRANSFER_NOT_PENDING" and f.metadata["state"] == "cancelled"
    assert failure(cancel, west, offered.name).reason == "TRANSFER_NOT_PENDING"
    assert not west.hr.GetPerson(pb.GetPersonRequest(name=person)).HasField("leaving_date")
    assert not south.hr.ListPeople(pb.ListPeopleRequest(parent=SOUTH)).people
    # The person may be offered again.
    again = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    assert again.state == transfer_pb2.TRANSFER_STATE_PENDING
    # A force that is neither party does not see it.
    cumbria = suite.caller(CUMBRIA, "hr.officer")
    assert failure(
        cancel, cumbria, f"organisations/{CUMBRIA}/transfers/{again.name.rsplit('/', 1)[1]}"
    ).code is (grpc.StatusCode.NOT_FOUND)


def test_a_leaver_and_a_transfer_do_not_overlap(suite: Suite) -> None:
    """While a transfer is pending the person is not recorded as leaving for another reason
    (else the receiving force could accept a leaver, and both forces count them); a person
    recorded as leaving is not offered."""
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)

    def leave(day: D) -> person_pb2.Person:
        return west.hr.RecordLeaver(
            pb.RecordLeaverRequest(
                name=person,
                leaving_date=date_to_proto(day),
                leaving_reason=person_pb2.LEAVING_REASON_RESIGNATION,
            )
        )

    pending = failure(leave, D(2024, 6, 30))
    assert pending.code is grpc.StatusCode.FAILED_PRECONDITION and pending.reason == "TRANSFER_PENDING"
    assert pending.metadata["transfer"] == offered.name
    assert not west.hr.GetPerson(pb.GetPersonRequest(name=person)).HasField("leaving_date")
    west.hr.CancelTransfer(pb.CancelTransferRequest(name=offered.name, reason="resigning instead"))
    assert leave(D(2024, 6, 30)).leaving_reason == person_pb2.LEAVING_REASON_RESIGNATION
    left = failure(_offer, west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    assert left.code is grpc.StatusCode.FAILED_PRECONDITION and left.reason == "PERSON_ALREADY_LEFT"
    assert left.metadata["leaving_date"] == "2024-06-30"


def _detective_inspector_post(west: Caller) -> str:
    g = grade(west, WEST_YORKSHIRE, "Inspector", establishment_pb2.RANK_INSPECTOR)
    return post(west, WEST_YORKSHIRE, unit(west, WEST_YORKSHIRE, "CID").name, g.name, title="DI").name


def _move(person: str, post_name: str, day: D) -> pb.MovePersonRequest:
    return pb.MovePersonRequest(
        name=person, post=post_name, fte="1", pay_point="1", effective_date=date_to_proto(day)
    )


def test_an_accepted_transfer_ends_what_the_person_held_in_the_sending_force(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    (held,) = west.hr.ListAssignments(pb.ListAssignmentsRequest(parent=WEST, person=person)).assignments
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    # While the offer stands, no move takes effect from the day it would, and the refused
    # move leaves the assignment it would have ended as it was.
    f = failure(west.hr.MovePerson, _move(person, _detective_inspector_post(west), D(2024, 6, 1)))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "TRANSFER_PENDING"
    assert f.metadata["transfer"] == offered.name
    assert list(
        west.hr.ListAssignments(pb.ListAssignmentsRequest(parent=WEST, person=person)).assignments
    ) == [held]
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"
    south.hr.AcceptTransfer(pb.AcceptTransferRequest(name=incoming))

    def held_on(day: D) -> list[str]:
        return [
            a.name
            for a in west.hr.ListAssignments(
                pb.ListAssignmentsRequest(parent=WEST, person=person, as_at_date=date_to_proto(day))
            ).assignments
        ]

    # The sending force's assignment ends with the person's service, the day before.
    assert held_on(D(2024, 5, 31)) == [held.name] and held_on(D(2024, 6, 1)) == []
    (ended,) = west.hr.ListAssignments(pb.ListAssignmentsRequest(parent=WEST, person=person)).assignments
    assert (ended.end_date.year, ended.end_date.month, ended.end_date.day) == (2024, 5, 31)
    f = failure(
        west.hr.EndAssignment, pb.EndAssignmentRequest(name=held.name, end_date=date_to_proto(D(2024, 8, 1)))
    )
    assert f.reason == "ASSIGNMENT_ENDED"
    # The post is free after that day, and the leave year's entitlement counts April and
    # May only: 25 days x 61 / 365 = 4.18, rounded up to the half day.
    west.hr.EndPost(pb.EndPostRequest(name=held.post, end_date=date_to_proto(D(2024, 5, 31))))
    b = west.hr.GetLeaveBalance(pb.GetLeaveBalanceRequest(person=person, date=date_to_proto(D(2024, 5, 1))))
    assert b.entitlement_days == "4.5"


def test_leave_and_sickness_end_with_service_in_the_sending_force(suite: Suite) -> None:
    """NOT_IN_SERVICE for "leave or sickness outside their service": after an accepted
    transfer (the sending force's record reads as a leaver the day before) leave running
    past that day is not approved, and an absence open then is ended on or before it."""
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    manager = suite.caller(WEST_YORKSHIRE, "hr.line_manager", subject="sgt-manager")
    person = _serving_officer(west)
    holiday = manager.hr.CreateLeaveRequest(
        pb.CreateLeaveRequestRequest(
            parent=WEST,
            leave_request=absence_pb2.LeaveRequest(
                person=person,
                start_date=date_to_proto(D(2024, 6, 10)),
                end_date=date_to_proto(D(2024, 6, 12)),
                days="3",
            ),
        )
    )
    sick = manager.hr.CreateSicknessAbsence(
        pb.CreateSicknessAbsenceRequest(
            parent=WEST,
            sickness_absence=absence_pb2.SicknessAbsence(
                person=person, start_date=date_to_proto(D(2024, 5, 1)), reason="back injury"
            ),
        )
    )
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    south.hr.AcceptTransfer(
        pb.AcceptTransferRequest(name=f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}")
    )
    f = failure(manager.hr.ApproveLeaveRequest, pb.ApproveLeaveRequestRequest(name=holiday.name))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "NOT_IN_SERVICE"
    assert holiday.name in f.message and "cannot be approved" in f.message
    unchanged = manager.hr.GetLeaveRequest(pb.GetLeaveRequestRequest(name=holiday.name))
    assert unchanged.state == absence_pb2.LEAVE_REQUEST_STATE_REQUESTED
    rejected = manager.hr.RejectLeaveRequest(pb.RejectLeaveRequestRequest(name=holiday.name, note="moved"))
    assert rejected.state == absence_pb2.LEAVE_REQUEST_STATE_REJECTED
    f = failure(
        manager.hr.EndSicknessAbsence,
        pb.EndSicknessAbsenceRequest(name=sick.name, end_date=date_to_proto(D(2024, 7, 31))),
    )
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "NOT_IN_SERVICE"
    assert sick.name in f.message and "last day" in f.message
    ended = manager.hr.EndSicknessAbsence(
        pb.EndSicknessAbsenceRequest(name=sick.name, end_date=date_to_proto(D(2024, 5, 31)))
    )
    assert ended.end_date == date_to_proto(D(2024, 5, 31))


def test_a_transfer_is_not_offered_over_an_assignment_starting_after_it(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    west.hr.MovePerson(_move(person, _detective_inspector_post(west), D(2024, 7, 1)))
    f = failure(_offer, west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "ASSIGNMENT_AFTER_LEAVING"
    # A secondment moves no record, so it may be offered.
    _offer(west, person, transfer_pb2.TRANSFER_KIND_SECONDMENT, end=D(2025, 5, 31))


def test_the_receiving_force_gives_a_transferred_officer_its_own_collar_number(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)  # collar number 77 in West Yorkshire
    add_person(south, SOUTH_YORKSHIRE, officer("Jones", collar="77"))
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"

    def accept(collar: str) -> transfer_pb2.Transfer:
        return south.hr.AcceptTransfer(pb.AcceptTransferRequest(name=incoming, collar_number=collar))

    # Kept, West Yorkshire's number clashes with South Yorkshire's own officer 77.
    f = failure(accept, "")
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.metadata == {"collar_number": "77"}
    assert set(failure(accept, "7 7!").violations) == {"collar_number"}
    pending = south.hr.GetTransfer(pb.GetTransferRequest(name=incoming))
    assert pending.state == transfer_pb2.TRANSFER_STATE_PENDING  # the refusals changed nothing
    accepted = accept("sy 4021")
    arrived = south.hr.GetPerson(pb.GetPersonRequest(name=accepted.receiving_person))
    assert arrived.collar_number == "SY4021"
    # A secondment moves no record, so there is no number to give.
    seconded = add_person(west, WEST_YORKSHIRE, officer("Brown", collar="78")).name
    secondment = _offer(west, seconded, transfer_pb2.TRANSFER_KIND_SECONDMENT, end=D(2025, 5, 31))
    f = failure(
        south.hr.AcceptTransfer,
        pb.AcceptTransferRequest(
            name=f"{SOUTH}/transfers/{secondment.name.rsplit('/', 1)[1]}", collar_number="SY4022"
        ),
    )
    assert set(f.violations) == {"collar_number"}
    # Nor for police staff, who have none.
    clerk = add_person(west, WEST_YORKSHIRE, staff("Green")).name
    to_south = _offer(west, clerk, transfer_pb2.TRANSFER_KIND_TRANSFER)
    f = failure(
        south.hr.AcceptTransfer,
        pb.AcceptTransferRequest(
            name=f"{SOUTH}/transfers/{to_south.name.rsplit('/', 1)[1]}", collar_number="SY4023"
        ),
    )
    assert set(f.violations) == {"collar_number"}


def test_an_offer_carries_the_record_as_the_sending_force_keeps_it_until_accepted(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    sergeant = grade(west, WEST_YORKSHIRE, "Sergeant", establishment_pb2.RANK_SERGEANT)
    custody = post(
        west, WEST_YORKSHIRE, unit(west, WEST_YORKSHIRE).name, sergeant.name, title="Custody Sergeant"
    )
    person = add_person(west, WEST_YORKSHIRE, officer(collar="77")).name
    held = assign(west, WEST_YORKSHIRE, person, custody.name)
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"
    # After the offer the sending force corrects the name and records a promotion.
    current = west.hr.GetPerson(pb.GetPersonRequest(name=person))
    west.hr.UpdatePerson(
        pb.UpdatePersonRequest(
            person=person_pb2.Person(name=person, family_name="Smyth", etag=current.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["family_name"]),
        )
    )
    g = grade(west, WEST_YORKSHIRE, "Inspector", establishment_pb2.RANK_INSPECTOR)
    acting = post(west, WEST_YORKSHIRE, unit(west, WEST_YORKSHIRE).name, g.name, title="Duty Inspector")
    west.hr.EndAssignment(pb.EndAssignmentRequest(name=held.name, end_date=date_to_proto(D(2024, 4, 30))))
    assign(west, WEST_YORKSHIRE, person, acting.name, start=D(2024, 5, 1))
    # The receiving force's view moves with it, and so does the offer's etag: an acceptance
    # of what it read before is refused rather than taking the older record.
    seen = south.hr.GetTransfer(pb.GetTransferRequest(name=incoming))
    assert (seen.display_name, seen.grade_display_name) == ("Sam Smyth", "Inspector")
    assert seen.etag != offered.etag
    stale = failure(south.hr.AcceptTransfer, pb.AcceptTransferRequest(name=incoming, etag=offered.etag))
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    accepted = south.hr.AcceptTransfer(pb.AcceptTransferRequest(name=incoming, etag=seen.etag))
    arrived = south.hr.GetPerson(pb.GetPersonRequest(name=accepted.receiving_person))
    assert arrived.family_name == "Smyth"
    assert sorted((h.post_display_name, h.grade_display_name) for h in arrived.prior_service) == [
        ("Custody Sergeant", "Sergeant"),
        ("Duty Inspector", "Inspector"),
    ]
    # The trail shows the offer changing with the record (by digest: the record itself is
    # in the person's own trail): offered, renamed, assignment ended, promoted, accepted.
    trail = [json.loads(entry) for entry in audit_after(suite.settings, "hr", offered.name)]
    assert [(e["display_name"], e["state"]) for e in trail] == [("Sam Smith", "pending")] + [
        ("Sam Smyth", "pending")
    ] * 3 + [("Sam Smyth", "accepted")]
    assert len({e["record_sha256"] for e in trail}) == 4 and "family_name" not in trail[0]


def test_a_renamed_grade_changes_a_pending_offer(suite: Suite) -> None:
    """The offer names the person's grade, and the record that crosses names the grades of
    their service: a grade renamed after the offer changes both, and the offer's etag
    (review finding: UpdateGrade left the offer naming the old grade)."""
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"
    assert offered.grade_display_name == "Sergeant"
    (held,) = west.hr.ListAssignments(pb.ListAssignmentsRequest(parent=WEST, person=person)).assignments
    sergeant = west.hr.GetGrade(pb.GetGradeRequest(name=held.grade))
    west.hr.UpdateGrade(
        pb.UpdateGradeRequest(
            grade=establishment_pb2.Grade(
                name=sergeant.name, etag=sergeant.etag, display_name="Police Sergeant"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
    )
    seen = south.hr.GetTransfer(pb.GetTransferRequest(name=incoming))
    assert seen.grade_display_name == "Police Sergeant" and seen.etag != offered.etag
    stale = failure(south.hr.AcceptTransfer, pb.AcceptTransferRequest(name=incoming, etag=offered.etag))
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    accepted = south.hr.AcceptTransfer(pb.AcceptTransferRequest(name=incoming, etag=seen.etag))
    arrived = south.hr.GetPerson(pb.GetPersonRequest(name=accepted.receiving_person))
    assert [h.grade_display_name for h in arrived.prior_service] == ["Police Sergeant"]


def test_leaving_date_filter_sees_a_transfer_leaver(suite: Suite) -> None:
    """A transfer leaver's leaving date (the day before the transfer took effect) is derived,
    never stored: the `leaving_date` filter compares it as GetPerson shows it."""
    west = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    person = _serving_officer(west)
    offered = _offer(west, person, transfer_pb2.TRANSFER_KIND_TRANSFER)
    incoming = f"{SOUTH}/transfers/{offered.name.rsplit('/', 1)[1]}"
    south.hr.AcceptTransfer(pb.AcceptTransferRequest(name=incoming, etag=offered.etag))
    gone = west.hr.GetPerson(pb.GetPersonRequest(name=person))
    assert (gone.leaving_date.year, gone.leaving_date.month, gone.leaving_date.day) == (2024, 5, 31)
    # Beside them: a leaver recorded with a date, someone still serving, and someone
    # seconded (an accepted secondment moves no record, so they have not left).
    resigned = add_person(west, WEST_YORKSHIRE, staff("Resigned")).name
    etag = west.hr.GetPerson(pb.GetPersonRequest(name=resigned)).etag
    west.hr.RecordLeaver(
        pb.RecordLeaverRequest(
            name=resigned,
            leaving_date=date_to_proto(D(2024, 3, 31)),
            leaving_reason=person_pb2.LEAVING_REASON_RESIGNATION,
            etag=etag,
        )
    )
    serving = add_person(west, WEST_YORKSHIRE, staff("Serving")).name
    seconded = add_person(west, WEST_YORKSHIRE, staff("Seconded")).name
    secondment = _offer(west, seconded, transfer_pb2.TRANSFER_KIND_SECONDMENT, end=D(2025, 5, 31))
    south.hr.AcceptTransfer(
        pb.AcceptTransferRequest(name=f"{SOUTH}/transfers/{secondment.name.rsplit('/', 1)[1]}")
    )

    def leavers(filter: str, parent: str = WEST) -> set[str]:
        found = west.hr.ListPeople(pb.ListPeopleRequest(parent=parent, filter=filter)).people
        return {p.name for p in found}

    assert leavers("leaving_date = 2024-05-31") == {person}
    assert leavers("leaving_date = 2024-05-31", parent="organisations/-") == {person}
    assert leavers("leaving_date < 2024-06-01") == {person, resigned}
    assert leavers("leaving_date <= 2024-05-30") == {resigned}
    assert leavers("leaving_date >= 2024-05-31") == {person}
    assert leavers("leaving_date > 2024-05-31") == set()
    assert leavers("leaving_date != 2024-05-31") == {resigned, serving, seconded}
    assert leavers("leaving_date >= 2024-01-01 AND family_name = Smith") == {person}
    # The person who arrived in the receiving force has not left it.
    assert not south.hr.ListPeople(
        pb.ListPeopleRequest(parent=SOUTH, filter="leaving_date < 2030-01-01")
    ).people
