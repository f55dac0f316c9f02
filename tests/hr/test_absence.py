"""Annual leave pro rata to FTE, with no overlaps and no negative balance; sickness."""

from __future__ import annotations

import grpc

from backoffice.hr.v1 import absence_pb2, person_pb2
from backoffice.hr.v1 import hr_service_pb2 as pb
from libs.common.proto_mapping import date_to_proto
from tests.hr.helpers import D, staff_member
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Caller, Suite, failure

WEST = f"organisations/{WEST_YORKSHIRE}"


def _leave(c: Caller, person: str, start: D, end: D, days: str) -> absence_pb2.LeaveRequest:
    return c.hr.CreateLeaveRequest(
        pb.CreateLeaveRequestRequest(
            parent=WEST,
            leave_request=absence_pb2.LeaveRequest(
                person=person, start_date=date_to_proto(start), end_date=date_to_proto(end), days=days
            ),
        )
    )


def _balance(c: Caller, person: str) -> tuple[str, str, str, str]:
    b = c.hr.GetLeaveBalance(pb.GetLeaveBalanceRequest(person=person, date=date_to_proto(D(2024, 6, 1))))
    return b.entitlement_days, b.approved_days, b.requested_days, b.remaining_days


def test_entitlement_is_pro_rata_to_fte_and_service(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    assert _balance(hr, staff_member(hr, "1", leave_days="27"))[0] == "27"
    assert _balance(hr, staff_member(hr, "0.6"))[0] == "15"
    # Joined 1 October 2024: 182 of the year's 365 days, 25 x 182 / 365 = 12.47 -> 12.5.
    late = staff_member(hr, "1", joined=D(2024, 10, 1))
    b = hr.hr.GetLeaveBalance(pb.GetLeaveBalanceRequest(person=late, date=date_to_proto(D(2024, 12, 1))))
    assert b.entitlement_days == "12.5" and b.leave_year_start.month == 4


def test_requests_overlaps_balance_and_decisions(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    manager = suite.caller(WEST_YORKSHIRE, "hr.line_manager", subject="sgt-manager")
    person = staff_member(hr, "0.6")  # 15 days
    first = _leave(manager, person, D(2024, 5, 1), D(2024, 5, 14), "10")
    assert first.state == absence_pb2.LEAVE_REQUEST_STATE_REQUESTED
    f = failure(_leave, manager, person, D(2024, 5, 10), D(2024, 5, 20), "1")
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "LEAVE_OVERLAPS"
    f = failure(_leave, manager, person, D(2024, 7, 1), D(2024, 7, 10), "6")
    assert f.reason == "INSUFFICIENT_LEAVE_BALANCE" and f.metadata["remaining_days"] == "5"
    second = _leave(manager, person, D(2024, 7, 1), D(2024, 7, 10), "5")
    assert _balance(manager, person) == ("15", "0", "15", "0")
    approved = manager.hr.ApproveLeaveRequest(pb.ApproveLeaveRequestRequest(name=first.name, etag=first.etag))
    assert approved.state == absence_pb2.LEAVE_REQUEST_STATE_APPROVED
    assert approved.decided_by == f"{WEST_YORKSHIRE}/sgt-manager"
    f = failure(manager.hr.ApproveLeaveRequest, pb.ApproveLeaveRequestRequest(name=first.name))
    assert f.reason == "LEAVE_NOT_REQUESTED"
    f = failure(
        manager.hr.RejectLeaveRequest, pb.RejectLeaveRequestRequest(name=second.name, etag=approved.etag)
    )
    assert f.reason == "ETAG_MISMATCH"
    manager.hr.RejectLeaveRequest(pb.RejectLeaveRequestRequest(name=second.name, note="short-staffed"))
    assert _balance(manager, person) == ("15", "10", "0", "5")
    manager.hr.CancelLeaveRequest(pb.CancelLeaveRequestRequest(name=first.name))
    assert _balance(manager, person) == ("15", "0", "0", "15")
    f = failure(manager.hr.CancelLeaveRequest, pb.CancelLeaveRequestRequest(name=second.name))
    assert f.reason == "LEAVE_NOT_CANCELLABLE"
    # The cancelled days are free again, and the dates too.
    _leave(manager, person, D(2024, 5, 1), D(2024, 5, 14), "10")
    listed = manager.hr.ListLeaveRequests(pb.ListLeaveRequestsRequest(parent=WEST, person=person))
    assert len(listed.leave_requests) == 3


def test_bad_leave_and_sickness_input(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = staff_member(hr, "1")
    f = failure(
        hr.hr.CreateLeaveRequest,
        pb.CreateLeaveRequestRequest(parent=WEST, leave_request=absence_pb2.LeaveRequest(days="0.3")),
    )
    assert set(f.violations) == {
        "leave_request.person",
        "leave_request.start_date",
        "leave_request.end_date",
        "leave_request.days",
    }
    f = failure(_leave, hr, person, D(2025, 3, 30), D(2025, 4, 2), "2")
    assert set(f.violations) == {"leave_request.end_date"}
    f = failure(_leave, hr, person, D(2024, 5, 1), D(2024, 5, 2), "3")
    assert "calendar days" in f.violations["leave_request.days"]
    for days in ("1E+30", "123456789012345678901234567890.5"):  # beyond Decimal's 28 digits
        f = failure(_leave, hr, person, D(2024, 5, 1), D(2024, 5, 2), days)
        assert f.code is grpc.StatusCode.INVALID_ARGUMENT and set(f.violations) == {"leave_request.days"}
    f = failure(
        hr.hr.CreateSicknessAbsence,
        pb.CreateSicknessAbsenceRequest(parent=WEST, sickness_absence=absence_pb2.SicknessAbsence()),
    )
    assert set(f.violations) == {
        "sickness_absence.person",
        "sickness_absence.start_date",
        "sickness_absence.reason",
    }


def test_sickness_records_do_not_overlap(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    manager = suite.caller(WEST_YORKSHIRE, "hr.line_manager")
    person = staff_member(hr, "1")

    def sick(start: D, end: D | None = None) -> absence_pb2.SicknessAbsence:
        record = absence_pb2.SicknessAbsence(
            person=person, start_date=date_to_proto(start), reason="back injury"
        )
        if end:
            record.end_date.CopyFrom(date_to_proto(end))
        return manager.hr.CreateSicknessAbsence(
            pb.CreateSicknessAbsenceRequest(parent=WEST, sickness_absence=record)
        )

    open_ended = sick(D(2024, 6, 1))
    f = failure(sick, D(2024, 7, 1), D(2024, 7, 2))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "SICKNESS_OVERLAPS"
    too_soon = failure(
        manager.hr.EndSicknessAbsence,
        pb.EndSicknessAbsenceRequest(name=open_ended.name, end_date=date_to_proto(D(2024, 5, 31))),
    )
    assert too_soon.code is grpc.StatusCode.INVALID_ARGUMENT and set(too_soon.violations) == {"end_date"}
    ended = manager.hr.EndSicknessAbsence(
        pb.EndSicknessAbsenceRequest(name=open_ended.name, end_date=date_to_proto(D(2024, 6, 10)))
    )
    assert ended.end_date.day == 10
    f = failure(
        manager.hr.EndSicknessAbsence,
        pb.EndSicknessAbsenceRequest(name=open_ended.name, end_date=date_to_proto(D(2024, 6, 12))),
    )
    assert f.reason == "SICKNESS_ENDED"
    sick(D(2024, 7, 1), D(2024, 7, 2))
    assert (
        len(manager.hr.ListSicknessAbsences(pb.ListSicknessAbsencesRequest(parent=WEST)).sickness_absences)
        == 2
    )
    south = suite.caller(SOUTH_YORKSHIRE, "hr.line_manager")
    assert not south.hr.ListSicknessAbsences(pb.ListSicknessAbsencesRequest(parent=WEST)).sickness_absences
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")
    f = failure(
        planner.hr.CreateSicknessAbsence,
        pb.CreateSicknessAbsenceRequest(parent=WEST, sickness_absence=absence_pb2.SicknessAbsence()),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED


def test_a_leaver_has_no_leave_or_sickness_past_the_last_day(suite: Suite) -> None:
    """RecordLeaver refuses while leave (requested or approved) or a sickness absence (open,
    or ending later) runs past the leaving date, naming it, and changes nothing: else the
    record shows an open absence, or leave held, after the person left (review finding)."""
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    manager = suite.caller(WEST_YORKSHIRE, "hr.line_manager", subject="sgt-manager")
    person = staff_member(hr, "1")
    before = _leave(manager, person, D(2024, 6, 3), D(2024, 6, 5), "3")
    holiday = _leave(manager, person, D(2024, 7, 1), D(2024, 7, 5), "3")
    manager.hr.ApproveLeaveRequest(pb.ApproveLeaveRequestRequest(name=holiday.name))
    sick = manager.hr.CreateSicknessAbsence(
        pb.CreateSicknessAbsenceRequest(
            parent=WEST,
            sickness_absence=absence_pb2.SicknessAbsence(
                person=person, start_date=date_to_proto(D(2024, 6, 10)), reason="back injury"
            ),
        )
    )

    def leave() -> person_pb2.Person:
        return hr.hr.RecordLeaver(
            pb.RecordLeaverRequest(
                name=person,
                leaving_date=date_to_proto(D(2024, 6, 30)),
                leaving_reason=person_pb2.LEAVING_REASON_RESIGNATION,
            )
        )

    f = failure(leave)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "LEAVE_AFTER_LEAVING"
    assert f.metadata["leave_request"] == holiday.name and "cancel or reject" in f.message
    assert not hr.hr.GetPerson(pb.GetPersonRequest(name=person)).HasField("leaving_date")
    manager.hr.CancelLeaveRequest(pb.CancelLeaveRequestRequest(name=holiday.name))
    f = failure(leave)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "SICKNESS_AFTER_LEAVING"
    assert f.metadata["sickness_absence"] == sick.name and "end it on or before" in f.message
    manager.hr.EndSicknessAbsence(
        pb.EndSicknessAbsenceRequest(name=sick.name, end_date=date_to_proto(D(2024, 6, 14)))
    )
    assert leave().leaving_date == date_to_proto(D(2024, 6, 30))
    # Leave inside the service is still decided after the leaver is recorded.
    approved = manager.hr.ApproveLeaveRequest(pb.ApproveLeaveRequestRequest(name=before.name))
    assert approved.state == absence_pb2.LEAVE_REQUEST_STATE_APPROVED
