"""Dates HR is given lie in the years 1900 to 2999: a day near the ends of the calendar is a
bad field, not an INTERNAL error where a leave year, an expiry window or a transfer's day
before is computed from it (review finding)."""

from __future__ import annotations

from pathlib import Path

import grpc
import typer
from google.type import date_pb2
from typer.testing import CliRunner

from backoffice.hr.v1 import absence_pb2, transfer_pb2
from backoffice.hr.v1 import hr_service_pb2 as pb
from libs.common.proto_mapping import date_to_proto
from services.hr.cli import app as hr_cli
from tests.hr.helpers import D, add_person, staff, staff_member
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Suite, failure

WEST = f"organisations/{WEST_YORKSHIRE}"


def test_dates_at_the_ends_of_the_calendar_are_bad_fields_not_internal_errors(suite: Suite) -> None:
    """A google.type.Date may be any day from 0001-01-01 to 9999-12-31; the leave year, an
    expiry window and a transfer's day before are computed from it. A day whose leave year or
    window falls off the calendar is INVALID_ARGUMENT on its field, not INTERNAL (nor a
    FAILED_PRECONDITION about an amount the database cannot hold)."""
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = staff_member(hr)
    last = date_pb2.Date(year=9999, month=6, day=1)  # leave year ends 31 March 10000
    first = date_pb2.Date(year=1, month=1, day=1)  # leave year starts 1 April 0000

    f = failure(hr.hr.GetLeaveBalance, pb.GetLeaveBalanceRequest(person=person, date=last))
    assert (f.code, set(f.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {"date"}), f
    assert "1900 to 2999" in f.violations["date"]
    f = failure(hr.hr.GetLeaveBalance, pb.GetLeaveBalanceRequest(person=person, date=first))
    assert (f.code, set(f.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {"date"}), f

    f = failure(
        hr.hr.CreateLeaveRequest,
        pb.CreateLeaveRequestRequest(
            parent=WEST,
            leave_request=absence_pb2.LeaveRequest(person=person, start_date=last, end_date=last, days="1"),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f
    assert "leave_request.start_date" in f.violations, f

    f = failure(
        hr.hr.ListVettingClearances,
        pb.ListVettingClearancesRequest(
            parent=WEST, as_at_date=date_pb2.Date(year=9999, month=12, day=30), expires_within_days=30
        ),
    )
    assert (f.code, set(f.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {"as_at_date"}), f

    f = failure(
        hr.hr.CreateTransfer,
        pb.CreateTransferRequest(
            parent=WEST,
            transfer=transfer_pb2.Transfer(
                kind=transfer_pb2.TRANSFER_KIND_TRANSFER,
                person=person,
                receiving_organisation=f"organisations/{SOUTH_YORKSHIRE}",
                effective_date=first,
            ),
        ),
    )
    assert f.code is not grpc.StatusCode.INTERNAL and f.reason != "AMOUNT_OUT_OF_RANGE", f
    assert (f.code, set(f.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {"transfer.effective_date"}), f

    # Every row of a batch is judged by the same rule, each on its own field.
    f = failure(
        hr.hr.BatchCreatePeople,
        pb.BatchCreatePeopleRequest(
            parent=WEST,
            requests=[
                pb.CreatePersonRequest(person=staff(join_date=date_to_proto(D(1899, 12, 31)))),
                pb.CreatePersonRequest(person=staff(birth_date=date_to_proto(D(3000, 1, 1)))),
            ],
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f
    assert set(f.violations) == {"requests[0].person.join_date", "requests[1].person.birth_date"}, f

    # The years' first and last days are kept (the leave year of the last ends in 3000).
    balance = hr.hr.GetLeaveBalance(
        pb.GetLeaveBalanceRequest(person=person, date=date_to_proto(D(2999, 12, 31)))
    )
    assert balance.entitlement_days
    early = add_person(hr, WEST_YORKSHIRE, staff(family="Early", join_date=date_to_proto(D(1900, 1, 1))))
    assert early.join_date == date_to_proto(D(1900, 1, 1))


def test_the_import_reports_a_day_outside_the_years_on_its_line(suite: Suite, tmp_path: Path) -> None:
    """The command's own checks are the service's: a join date in 1850 is a problem of its row,
    reported before anything is sent."""
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        "given_name,family_name,worker_type,sex,ethnicity,join_date\n"
        "Alex,Jones,police staff,female,indian,1850-09-01\n",
        encoding="utf-8",
    )
    root = typer.Typer()
    root.add_typer(hr_cli, name="hr")
    token = suite.token(WEST_YORKSHIRE, "hr.officer")
    args = ["hr", "import", str(csv_file), "--org", WEST_YORKSHIRE, "--token", token]
    result = CliRunner().invoke(root, [*args, "--target", suite.addresses["hr"]], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "join_date: 1850-09-01 must fall in the years 1900 to 2999" in result.output, result.output
    assert "nothing was imported" in result.output


def test_a_bad_date_does_not_hide_the_requests_other_bad_fields(suite: Suite) -> None:
    """One INVALID_ARGUMENT names every bad field: a date that is no day, or outside the
    years, is reported with the rest of the request's problems, each once and in its own
    words (review finding: the first bad date was the only field reported)."""
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = staff_member(hr)
    f = failure(
        hr.hr.CreateSicknessAbsence,
        pb.CreateSicknessAbsenceRequest(
            parent=WEST,
            sickness_absence=absence_pb2.SicknessAbsence(
                person=person,
                start_date=date_pb2.Date(year=2024, month=2, day=30),
                end_date=date_to_proto(D(3000, 1, 1)),
                reason="",
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f
    assert set(f.violations) == {
        "sickness_absence.start_date",
        "sickness_absence.end_date",
        "sickness_absence.reason",
    }, f
    assert "1900 to 2999" in f.violations["sickness_absence.end_date"]
    assert "required" not in f.violations["sickness_absence.start_date"]
    f = failure(
        hr.hr.CreateLeaveRequest,
        pb.CreateLeaveRequestRequest(
            parent=WEST,
            leave_request=absence_pb2.LeaveRequest(
                person=f"organisations/{SOUTH_YORKSHIRE}/people/x",
                start_date=date_to_proto(D(1899, 4, 1)),
                end_date=date_to_proto(D(2024, 6, 3)),
                days="0.3",
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f
    assert set(f.violations) == {
        "leave_request.person",
        "leave_request.start_date",
        "leave_request.days",
    }, f
