"""Recharges between organisations: both ledgers post and balance, linked, and exactly
the two organisations see them; allocation of a unit's costs by a driver."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import grpc
from google.type import decimal_pb2

from backoffice.finance.v1 import finance_service_pb2 as pb
from backoffice.finance.v1 import recharge_pb2
from libs.common.proto_mapping import date_to_proto
from tests.finance.books import FY, MAY, amount, check_books_balance, gbp, set_up_books
from tests.support import CUMBRIA, SOUTH_YORKSHIRE, UNIT, WEST_YORKSHIRE, Caller, Suite, failure


def _tb(caller: Caller, ledger: str) -> dict[str, tuple[Decimal, Decimal]]:
    tb = caller.finance.GetTrialBalance(pb.GetTrialBalanceRequest(ledger=ledger, financial_year=FY))
    return {r.account: (amount(r.debit), amount(r.credit)) for r in tb.rows}


def _names(caller: Caller, parent: str) -> list[str]:
    return [r.name for r in caller.finance.ListRecharges(pb.ListRechargesRequest(parent=parent)).recharges]


def test_mutual_aid_recharge_posts_in_both_ledgers_and_only_they_see_it(suite: Suite) -> None:
    west = set_up_books(suite, WEST_YORKSHIRE)
    south = set_up_books(suite, SOUTH_YORKSHIRE)
    cumbria = set_up_books(suite, CUMBRIA)
    raised = west.officer.finance.CreateRecharge(
        pb.CreateRechargeRequest(
            parent=west.parent,
            recharge=recharge_pb2.Recharge(
                ledger=west.cc,
                counterparty=south.parent,
                amount=gbp("12345.67"),
                description="Mutual aid, Op Nimbus, 40 officer shifts",
                posting_date=date_to_proto(MAY),
                income_account="8100",
                cost_centre="LP100",
            ),
        )
    )
    assert raised.state == recharge_pb2.RECHARGE_STATE_RAISED
    assert raised.name.startswith(f"{west.parent}/recharges/r-")
    assert _tb(west.officer, west.cc) == {
        "1300": (Decimal("12345.67"), Decimal("0.00")),
        "8100": (Decimal("0.00"), Decimal("12345.67")),
    }
    # Exactly the two organisations see it.
    assert south.officer.finance.GetRecharge(pb.GetRechargeRequest(name=raised.name)) == raised
    assert _names(south.officer, south.parent) == [raised.name]
    assert _names(west.officer, "organisations/-") == [raised.name]
    hidden = failure(cumbria.officer.finance.GetRecharge, pb.GetRechargeRequest(name=raised.name))
    assert hidden.code is grpc.StatusCode.NOT_FOUND
    assert _names(cumbria.officer, "organisations/-") == []
    assert _names(cumbria.officer, cumbria.parent) == []
    # Only the charged organisation accepts it, into its own books.
    accept = pb.AcceptRechargeRequest(
        name=raised.name,
        ledger=south.cc,
        expense_account="5900",
        cost_centre="LP100",
        posting_date=date_to_proto(MAY),
    )
    assert (
        failure(
            cumbria.officer.finance.AcceptRecharge,
            pb.AcceptRechargeRequest(
                name=raised.name,
                ledger=cumbria.cc,
                expense_account="5900",
                cost_centre="LP100",
                posting_date=date_to_proto(MAY),
            ),
        ).code
        is grpc.StatusCode.NOT_FOUND
    )
    assert (
        failure(
            west.officer.finance.AcceptRecharge,
            pb.AcceptRechargeRequest(
                name=raised.name,
                ledger=west.cc,
                expense_account="5900",
                cost_centre="LP100",
                posting_date=date_to_proto(MAY),
            ),
        ).code
        is grpc.StatusCode.NOT_FOUND
    )
    assert failure(cumbria.officer.finance.AcceptRecharge, accept).code is grpc.StatusCode.NOT_FOUND
    accepted = south.officer.finance.AcceptRecharge(accept)
    assert accepted.state == recharge_pb2.RECHARGE_STATE_ACCEPTED
    assert accepted.counterparty_ledger == south.cc
    assert accepted.counterparty_journal.startswith(f"{south.cc}/journals/")
    assert _tb(south.officer, south.cc) == {
        "1300": (Decimal("0.00"), Decimal("12345.67")),
        "5900": (Decimal("12345.67"), Decimal("0.00")),
    }
    # Linked: each side's journal names the recharge.
    for caller, journal in ((west.officer, accepted.journal), (south.officer, accepted.counterparty_journal)):
        assert caller.finance.GetJournal(pb.GetJournalRequest(name=journal)).source_resource == raised.name
    # The charging side reads the accepted state too.
    assert west.officer.finance.GetRecharge(pb.GetRechargeRequest(name=raised.name)).state == (
        recharge_pb2.RECHARGE_STATE_ACCEPTED
    )
    twice = failure(south.officer.finance.AcceptRecharge, accept)
    assert twice.code is grpc.StatusCode.FAILED_PRECONDITION and twice.reason == "RECHARGE_NOT_RAISED"
    bad = failure(
        west.officer.finance.CreateRecharge,
        pb.CreateRechargeRequest(
            parent=west.parent,
            recharge=recharge_pb2.Recharge(
                ledger=west.cc,
                counterparty=west.parent,
                amount=gbp("0"),
                income_account="5100",
                cost_centre="LP100",
            ),
        ),
    )
    assert set(bad.violations) == {
        "recharge.counterparty",
        "recharge.amount",
        "recharge.description",
        "recharge.posting_date",
        "recharge.income_account",
    }
    for org in (WEST_YORKSHIRE, SOUTH_YORKSHIRE, CUMBRIA):
        check_books_balance(suite, org)


def test_allocation_by_headcount_splits_to_the_penny(suite: Suite) -> None:
    unit = set_up_books(suite, UNIT)
    members = {org: set_up_books(suite, org) for org in (WEST_YORKSHIRE, SOUTH_YORKSHIRE, CUMBRIA)}
    response = unit.officer.finance.AllocateCosts(
        pb.AllocateCostsRequest(
            parent=unit.parent,
            ledger=unit.cc,
            amount=gbp("10000.00"),
            description="Payroll service, Q1 2025-26",
            posting_date=date_to_proto(MAY),
            income_account="8100",
            cost_centre="SF300",
            shares=[
                pb.AllocationShare(
                    organisation=f"organisations/{org}", driver=decimal_pb2.Decimal(value=count)
                )
                for org, count in ((WEST_YORKSHIRE, "3000"), (SOUTH_YORKSHIRE, "2000"), (CUMBRIA, "1000"))
            ],
        )
    )
    split = {r.counterparty: amount(r.amount) for r in response.recharges}
    assert split == {
        f"organisations/{WEST_YORKSHIRE}": Decimal("5000.00"),
        f"organisations/{SOUTH_YORKSHIRE}": Decimal("3333.33"),
        f"organisations/{CUMBRIA}": Decimal("1666.67"),
    }
    assert _tb(unit.officer, unit.cc)["8100"] == (Decimal("0.00"), Decimal("10000.00"))
    # Each member sees its own share only.
    for org, books in members.items():
        assert [
            r.counterparty
            for r in books.officer.finance.ListRecharges(
                pb.ListRechargesRequest(parent="organisations/-")
            ).recharges
        ] == [f"organisations/{org}"]
    bad = failure(
        unit.officer.finance.AllocateCosts,
        pb.AllocateCostsRequest(
            parent=unit.parent,
            ledger=unit.cc,
            amount=gbp("100.00"),
            description="x",
            posting_date=date_to_proto(MAY),
            income_account="8100",
            cost_centre="SF300",
            shares=[
                pb.AllocationShare(
                    organisation=f"organisations/{UNIT}", driver=decimal_pb2.Decimal(value="1")
                ),
                pb.AllocationShare(
                    organisation=f"organisations/{CUMBRIA}", driver=decimal_pb2.Decimal(value="-1")
                ),
                pb.AllocationShare(
                    organisation=f"organisations/{CUMBRIA}", driver=decimal_pb2.Decimal(value="1")
                ),
                # Past Decimal's arithmetic, and more places than any count or FTE.
                pb.AllocationShare(
                    organisation=f"organisations/{SOUTH_YORKSHIRE}",
                    driver=decimal_pb2.Decimal(value="1E+999999999"),
                ),
                pb.AllocationShare(
                    organisation=f"organisations/{WEST_YORKSHIRE}",
                    driver=decimal_pb2.Decimal(value="0.0000001"),
                ),
            ],
        ),
    )
    assert set(bad.violations) == {
        "shares[0].organisation",
        "shares[1].driver",
        "shares[2].organisation",
        "shares[3].driver",
        "shares[4].driver",
    }
    for org in (UNIT, WEST_YORKSHIRE, SOUTH_YORKSHIRE, CUMBRIA):
        check_books_balance(suite, org)


def test_a_declined_recharge_is_cancelled_by_reversing_the_charge(suite: Suite) -> None:
    west = set_up_books(suite, WEST_YORKSHIRE)
    south = set_up_books(suite, SOUTH_YORKSHIRE)
    cumbria = set_up_books(suite, CUMBRIA)

    def raise_one(text: str) -> recharge_pb2.Recharge:
        return west.officer.finance.CreateRecharge(
            pb.CreateRechargeRequest(
                parent=west.parent,
                recharge=recharge_pb2.Recharge(
                    ledger=west.cc,
                    counterparty=south.parent,
                    amount=gbp("900.00"),
                    description=text,
                    posting_date=date_to_proto(MAY),
                    income_account="8100",
                    cost_centre="LP100",
                ),
            )
        )

    def decline(
        c: Caller, name: str, reason: str = "not requested by us", **kw: str
    ) -> recharge_pb2.Recharge:
        return c.finance.DeclineRecharge(pb.DeclineRechargeRequest(name=name, reason=reason, **kw))

    def cancel(name: str, reason: str = "charged in error", **kw: str) -> recharge_pb2.Recharge:
        return west.officer.finance.CancelRecharge(
            pb.CancelRechargeRequest(name=name, reason=reason, posting_date=date_to_proto(MAY), **kw)
        )

    disputed = raise_one("Mutual aid, Op Nimbus")
    # Only the organisation charged declines it, with a reason; a third one does not see it.
    assert failure(decline, west.officer, disputed.name).reason == "NOT_CHARGED_ORGANISATION"
    assert set(failure(decline, south.officer, disputed.name, " ").violations) == {"reason"}
    assert failure(decline, cumbria.officer, disputed.name).code is grpc.StatusCode.NOT_FOUND
    stale = failure(decline, south.officer, disputed.name, etag='W/"999"')
    assert stale.code is grpc.StatusCode.ABORTED
    declined = decline(south.officer, disputed.name, etag=disputed.etag)
    assert declined.state == recharge_pb2.RECHARGE_STATE_DECLINED
    assert declined.decline_reason == "not requested by us"
    no_longer = failure(
        south.officer.finance.AcceptRecharge,
        pb.AcceptRechargeRequest(
            name=disputed.name,
            ledger=south.cc,
            expense_account="5900",
            cost_centre="LP100",
            posting_date=date_to_proto(MAY),
        ),
    )
    assert no_longer.reason == "RECHARGE_NOT_RAISED" and no_longer.metadata["state"] == "DECLINED"
    assert _tb(south.officer, south.cc) == {}  # the charged side never posted
    # Its charge journal is the recharge's: reversed only by cancelling the recharge.
    by_hand = failure(
        west.officer.finance.ReverseJournal,
        pb.ReverseJournalRequest(name=disputed.journal, posting_date=date_to_proto(MAY), reason="error"),
    )
    assert by_hand.code is grpc.StatusCode.FAILED_PRECONDITION and by_hand.reason == "NOT_A_MANUAL_JOURNAL"
    assert by_hand.metadata == {"source": "RECHARGE", "source_resource": disputed.name}
    # The charging organisation cancels it: its charge is reversed in its own ledger.
    assert set(failure(cancel, disputed.name, " ").violations) == {"reason"}
    # The organisation charged cannot cancel what it does not own.
    by_charged = failure(
        south.officer.finance.CancelRecharge,
        pb.CancelRechargeRequest(name=disputed.name, reason="x", posting_date=date_to_proto(MAY)),
    )
    assert by_charged.code is grpc.StatusCode.NOT_FOUND
    # Not dated before the charge: April's books never carried it.
    early = failure(
        west.officer.finance.CancelRecharge,
        pb.CancelRechargeRequest(
            name=disputed.name, reason="x", posting_date=date_to_proto(dt.date(2025, 4, 2))
        ),
    )
    assert early.code is grpc.StatusCode.INVALID_ARGUMENT and set(early.violations) == {"posting_date"}
    cancelled = cancel(disputed.name, etag=declined.etag)
    assert cancelled.state == recharge_pb2.RECHARGE_STATE_CANCELLED
    assert cancelled.cancel_reason == "charged in error"
    reversal = west.officer.finance.GetJournal(pb.GetJournalRequest(name=cancelled.cancellation_journal))
    assert reversal.reversal_of == disputed.journal
    assert _tb(west.officer, west.cc) == {}  # the charge and its reversal net to nothing
    assert south.officer.finance.GetRecharge(pb.GetRechargeRequest(name=disputed.name)) == cancelled
    assert failure(cancel, disputed.name).reason == "RECHARGE_NOT_CANCELLABLE"
    # A raised one is cancelled as well; an accepted one is not: both ledgers carry it.
    assert cancel(raise_one("Duplicate").name).state == recharge_pb2.RECHARGE_STATE_CANCELLED
    accepted = raise_one("Op Nimbus, second week")
    south.officer.finance.AcceptRecharge(
        pb.AcceptRechargeRequest(
            name=accepted.name,
            ledger=south.cc,
            expense_account="5900",
            cost_centre="LP100",
            posting_date=date_to_proto(MAY),
        )
    )
    refused = failure(cancel, accepted.name)
    assert refused.reason == "RECHARGE_NOT_CANCELLABLE" and refused.metadata["state"] == "ACCEPTED"
    assert failure(decline, south.officer, accepted.name).reason == "RECHARGE_NOT_RAISED"
    for org in (WEST_YORKSHIRE, SOUTH_YORKSHIRE):
        check_books_balance(suite, org)
