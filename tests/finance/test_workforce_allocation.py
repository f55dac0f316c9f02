"""A shared-service unit allocates its costs to the forces it serves by their headcount or
FTE as at a date, which finance reads from HR's API (as the finance service, on behalf of
the unit, under each member's `hr.headcount` agreement)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import grpc
from google.type import decimal_pb2

from backoffice.directory.v1 import agreement_pb2
from backoffice.directory.v1 import directory_service_pb2 as dpb
from backoffice.finance.v1 import finance_service_pb2 as pb
from backoffice.hr.v1 import hr_service_pb2 as hpb
from libs.common.context import PrincipalKind
from libs.common.proto_mapping import date_to_proto
from tests.finance.books import MAY, amount, check_books_balance, gbp, set_up_books
from tests.hr.helpers import D, add_person, assign, grade, officer, post, staff, unit
from tests.support import CUMBRIA, SOUTH_YORKSHIRE, UNIT, WEST_YORKSHIRE, Suite, failure, today

AS_AT = D(2025, 3, 31)


def _share_headcount(suite: Suite, member: str) -> None:
    """The member agrees to tell the unit its headcount (and nothing else)."""
    suite.caller(member, "directory.admin", subject=f"admin-{member}").directory.CreateAgreement(
        dpb.CreateAgreementRequest(
            agreement=agreement_pb2.Agreement(
                display_name="Headcount for the shared-service recharge",
                kind=agreement_pb2.AGREEMENT_KIND_DATA_SHARING,
                organisation=f"organisations/{member}",
                counterparty=f"organisations/{UNIT}",
                functions=["hr.headcount"],
                start_date=date_to_proto(today() - dt.timedelta(days=1)),
            )
        )
    )


def _workforce(suite: Suite, member: str, ftes: list[str], leavers: int = 0) -> None:
    hr = suite.caller(member, "hr.officer", subject=f"hr-{member}")
    response = unit(hr, member, "Response").name
    constable = grade(hr, member, "Constable", rank=1).name
    for i, fte in enumerate(ftes):
        person = add_person(hr, member, officer(family=f"Officer{i}", collar=str(1000 + i)))
        place = post(hr, member, response, constable, title=f"PC {i}")
        assign(hr, member, person.name, place.name, fte=fte)
    for i in range(leavers):  # joined after the date: not counted
        add_person(hr, member, staff(family=f"Later{i}", join_date=date_to_proto(D(2025, 6, 1))))


def _allocate(
    suite: Suite,
    basis: int,
    *members: str,
    extra_shares: tuple[pb.AllocationShare, ...] = (),
    request_id: str = "",
) -> pb.AllocateCostsResponse:
    books = suite.caller(UNIT, "finance.officer", subject=f"officer-{UNIT}")
    request = pb.AllocateCostsRequest(
        parent=f"organisations/{UNIT}",
        ledger=f"organisations/{UNIT}/ledgers/chief-constable",
        amount=gbp("10000.00"),
        description="Payroll service, Q1 2025-26",
        posting_date=date_to_proto(MAY),
        income_account="8100",
        cost_centre="SF300",
        basis=basis,  # type: ignore[arg-type]
        as_at_date=date_to_proto(AS_AT),
        request_id=request_id,
    )
    request.shares.extend([pb.AllocationShare(organisation=f"organisations/{m}") for m in members])
    for share in extra_shares:
        request.shares.append(share)
    response: pb.AllocateCostsResponse = books.finance.AllocateCosts(request)
    return response


def test_allocation_by_headcount_and_fte_from_hr(suite: Suite) -> None:
    set_up_books(suite, UNIT)
    members = (WEST_YORKSHIRE, SOUTH_YORKSHIRE, CUMBRIA)
    for member in members:
        set_up_books(suite, member)
    _workforce(suite, WEST_YORKSHIRE, ["1", "1", "1"], leavers=2)
    _workforce(suite, SOUTH_YORKSHIRE, ["1", "0.5"])
    _workforce(suite, CUMBRIA, ["0.5"])

    # Before the members agree, HR refuses the unit, and finance says which member.
    refused = failure(_allocate, suite, pb.ALLOCATION_BASIS_HEADCOUNT, *members)
    assert refused.code is grpc.StatusCode.PERMISSION_DENIED and refused.reason == "NO_AGREEMENT"
    assert refused.metadata["organisation"] in members and refused.metadata["organisation"] in refused.message
    for member in members:
        _share_headcount(suite, member)

    by_head = _allocate(suite, pb.ALLOCATION_BASIS_HEADCOUNT, *members)
    assert [(s.organisation, s.driver.value) for s in by_head.shares] == [
        (f"organisations/{WEST_YORKSHIRE}", "3"),
        (f"organisations/{SOUTH_YORKSHIRE}", "2"),
        (f"organisations/{CUMBRIA}", "1"),
    ]
    assert {r.counterparty: amount(r.amount) for r in by_head.recharges} == {
        f"organisations/{WEST_YORKSHIRE}": Decimal("5000.00"),
        f"organisations/{SOUTH_YORKSHIRE}": Decimal("3333.33"),
        f"organisations/{CUMBRIA}": Decimal("1666.67"),
    }
    by_fte = _allocate(suite, pb.ALLOCATION_BASIS_FTE, *members)
    assert [Decimal(s.driver.value) for s in by_fte.shares] == [Decimal(3), Decimal("1.5"), Decimal("0.5")]
    assert {r.counterparty: amount(r.amount) for r in by_fte.recharges} == {
        f"organisations/{WEST_YORKSHIRE}": Decimal("6000.00"),
        f"organisations/{SOUTH_YORKSHIRE}": Decimal("3000.00"),
        f"organisations/{CUMBRIA}": Decimal("1000.00"),
    }
    for org in (UNIT, *members):
        check_books_balance(suite, org)


def test_a_retried_allocation_is_answered_as_before_while_hr_is_down(suite: Suite) -> None:
    """HR is asked before the write; a retry of an answered allocation (same request_id)
    gets that answer back rather than UNAVAILABLE (review finding)."""
    set_up_books(suite, UNIT)
    set_up_books(suite, WEST_YORKSHIRE)
    _workforce(suite, WEST_YORKSHIRE, ["1"])
    _share_headcount(suite, WEST_YORKSHIRE)
    request_id = str(uuid.uuid4())
    first = _allocate(suite, pb.ALLOCATION_BASIS_HEADCOUNT, WEST_YORKSHIRE, request_id=request_id)
    hr = next(s for s in suite.servers if s.app.name == "hr")
    suite.run(hr.stop(1))
    assert _allocate(suite, pb.ALLOCATION_BASIS_HEADCOUNT, WEST_YORKSHIRE, request_id=request_id) == first
    f = failure(_allocate, suite, pb.ALLOCATION_BASIS_HEADCOUNT, WEST_YORKSHIRE, request_id=str(uuid.uuid4()))
    assert f.code is grpc.StatusCode.UNAVAILABLE, f
    check_books_balance(suite, UNIT)


def test_workforce_allocation_requests_are_checked(suite: Suite) -> None:
    set_up_books(suite, UNIT)
    bad = failure(
        _allocate,
        suite,
        pb.ALLOCATION_BASIS_FTE,
        extra_shares=(
            pb.AllocationShare(
                organisation=f"organisations/{WEST_YORKSHIRE}", driver=decimal_pb2.Decimal(value="3")
            ),
        ),
    )
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT and set(bad.violations) == {"shares[0].driver"}
    books = suite.caller(UNIT, "finance.officer", subject=f"officer-{UNIT}")
    undated = failure(
        books.finance.AllocateCosts,
        pb.AllocateCostsRequest(
            parent=f"organisations/{UNIT}",
            ledger=f"organisations/{UNIT}/ledgers/chief-constable",
            amount=gbp("100.00"),
            description="x",
            posting_date=date_to_proto(MAY),
            income_account="8100",
            cost_centre="SF300",
            shares=[pb.AllocationShare(organisation=f"organisations/{WEST_YORKSHIRE}")],
            basis=pb.ALLOCATION_BASIS_HEADCOUNT,
        ),
    )
    assert undated.code is grpc.StatusCode.INVALID_ARGUMENT and set(undated.violations) == {"as_at_date"}


def test_the_finance_service_sees_headcount_and_nothing_else(suite: Suite) -> None:
    _workforce(suite, WEST_YORKSHIRE, ["1"])
    token = suite.issuer.mint("finance", WEST_YORKSHIRE, ["service.finance"], kind=PrincipalKind.SERVICE)
    finance = suite.caller_with_token(token)
    parent = f"organisations/{WEST_YORKSHIRE}"
    got = finance.hr.GetHeadcount(hpb.GetHeadcountRequest(parent=parent, as_at_date=date_to_proto(AS_AT)))
    assert got.headcount == 1 and Decimal(got.fte.value) == 1
    for call, request in (
        (finance.hr.GetWorkforceStatistics, hpb.GetWorkforceStatisticsRequest(parent=parent)),
        (finance.hr.ListPeople, hpb.ListPeopleRequest(parent=parent)),
    ):
        denied = failure(call, request)
        assert denied.code is grpc.StatusCode.PERMISSION_DENIED and denied.reason == "MISSING_PERMISSION"
    # Acting for the unit, without the member's agreement, it sees nothing of the member.
    for_unit = suite.caller_with_token(
        suite.issuer.mint("finance", UNIT, ["service.finance"], kind=PrincipalKind.SERVICE)
    )
    f = failure(
        for_unit.hr.GetHeadcount, hpb.GetHeadcountRequest(parent=parent, as_at_date=date_to_proto(AS_AT))
    )
    assert f.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
