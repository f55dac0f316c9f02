"""Budgets and commitments: available = budget - actuals - open commitments, never
overspent under concurrent requests; overrides need a role and a reason."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import grpc

from backoffice.finance.v1 import budget_pb2, ledger_pb2
from backoffice.finance.v1 import finance_service_pb2 as pb
from tests.finance.books import (
    FY,
    MAY,
    Books,
    amount,
    check_books_balance,
    cr,
    dr,
    gbp,
    reason_of,
    set_up_books,
)
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Caller, Suite, audit_after, failure


def _budget(books: Books, value: str, *, period: str = "2025-02", account: str = "5100") -> budget_pb2.Budget:
    return books.officer.finance.CreateBudget(
        pb.CreateBudgetRequest(
            parent=books.cc,
            budget=budget_pb2.Budget(cost_centre="LP100", account=account, period=period, amount=gbp(value)),
        )
    )


def _commit(caller: Caller, books: Books, budget: str, value: str, **kwargs: str) -> budget_pb2.Commitment:
    return caller.finance.RaiseCommitment(
        pb.RaiseCommitmentRequest(
            parent=books.cc,
            commitment=budget_pb2.Commitment(budget=budget, amount=gbp(value), reference="PO-1"),
            **kwargs,
        )
    )


def test_budget_actuals_commitments_and_available(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    holder = suite.caller(WEST_YORKSHIRE, "finance.budget_holder", subject="holder")
    budget = _budget(books, "1000.00")
    assert budget.name.startswith(f"{books.cc}/budgets/b-")
    books.journal(books.cc, MAY, dr("5100", "150.00", "LP100"), cr("1000", "150.00"))
    c = _commit(holder, books, budget.name, "400.00")
    assert c.state == budget_pb2.COMMITMENT_STATE_OPEN and amount(c.open_amount) == Decimal("400.00")
    got = holder.finance.GetBudget(pb.GetBudgetRequest(name=budget.name))
    assert (amount(got.actual), amount(got.committed), amount(got.available)) == (
        Decimal("150.00"),
        Decimal("400.00"),
        Decimal("450.00"),
    )
    refused = failure(_commit, holder, books, budget.name, "450.01")
    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "BUDGET_EXCEEDED"
    assert refused.metadata["available"] == "450.00"
    c = holder.finance.ConsumeCommitment(
        pb.ConsumeCommitmentRequest(name=c.name, amount=gbp("100.00"), etag=c.etag)
    )
    assert amount(c.consumed) == Decimal("100.00")
    too_much = failure(
        holder.finance.ConsumeCommitment, pb.ConsumeCommitmentRequest(name=c.name, amount=gbp("300.01"))
    )
    assert too_much.reason == "EXCEEDS_OPEN_AMOUNT"
    c = holder.finance.ReleaseCommitment(pb.ReleaseCommitmentRequest(name=c.name))
    assert c.state == budget_pb2.COMMITMENT_STATE_CLOSED and amount(c.released) == Decimal("300.00")
    closed = failure(holder.finance.ReleaseCommitment, pb.ReleaseCommitmentRequest(name=c.name))
    assert closed.reason == "COMMITMENT_CLOSED"
    got = holder.finance.GetBudget(pb.GetBudgetRequest(name=budget.name))
    assert (amount(got.committed), amount(got.available)) == (Decimal("0.00"), Decimal("850.00"))
    # The budget report by POA category.
    _budget(books, "200.00", period="2025-03")
    report = books.officer.finance.GetBudgetReport(
        pb.GetBudgetReportRequest(ledger=books.cc, financial_year=FY, through_period=3)
    )
    assert [
        (r.poa_category, amount(r.budget), amount(r.actual), amount(r.available)) for r in report.rows
    ] == [(ledger_pb2.POA_CATEGORY_LOCAL_POLICING, Decimal("1200.00"), Decimal("150.00"), Decimal("1050.00"))]
    check_books_balance(suite, WEST_YORKSHIRE)


def test_a_release_can_keep_what_was_received_and_not_yet_invoiced(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    holder = suite.caller(WEST_YORKSHIRE, "finance.budget_holder", subject="holder")
    budget = _budget(books, "1000.00")
    c = _commit(holder, books, budget.name, "600.00")
    c = holder.finance.ConsumeCommitment(pb.ConsumeCommitmentRequest(name=c.name, amount=gbp("100.00")))
    for bad in ("-0.01", "0.001"):
        refused = failure(
            holder.finance.ReleaseCommitment, pb.ReleaseCommitmentRequest(name=c.name, retain_to=gbp(bad))
        )
        assert refused.code is grpc.StatusCode.INVALID_ARGUMENT and set(refused.violations) == {"retain_to"}
    # All that is open was received (more, even): nothing is released, the call recorded.
    same = holder.finance.ReleaseCommitment(pb.ReleaseCommitmentRequest(name=c.name, retain_to=gbp("900.00")))
    assert same == c
    # 350.00 received, 100.00 of it invoiced: 250.00 kept open, 250.00 back to the budget.
    kept = holder.finance.ReleaseCommitment(
        pb.ReleaseCommitmentRequest(name=c.name, retain_to=gbp("350.00"), etag=c.etag)
    )
    assert kept.state == budget_pb2.COMMITMENT_STATE_OPEN
    assert (amount(kept.consumed), amount(kept.released), amount(kept.open_amount)) == (
        Decimal("100.00"),
        Decimal("250.00"),
        Decimal("250.00"),
    )
    got = holder.finance.GetBudget(pb.GetBudgetRequest(name=budget.name))
    assert (amount(got.committed), amount(got.available)) == (Decimal("250.00"), Decimal("750.00"))
    # Without retain_to (or with zero), all that is open goes.
    zero = holder.finance.ReleaseCommitment(pb.ReleaseCommitmentRequest(name=c.name, retain_to=gbp("0.00")))
    assert zero.state == budget_pb2.COMMITMENT_STATE_CLOSED and amount(zero.released) == Decimal("500.00")
    closed = failure(
        holder.finance.ReleaseCommitment, pb.ReleaseCommitmentRequest(name=c.name, retain_to=gbp("350.00"))
    )
    assert closed.reason == "COMMITMENT_CLOSED"
    got = holder.finance.GetBudget(pb.GetBudgetRequest(name=budget.name))
    assert (amount(got.committed), amount(got.available)) == (Decimal("0.00"), Decimal("1000.00"))
    assert len(audit_after(suite.settings, "finance", c.name)) == 5  # raised, consumed, three releases


def test_revisions_are_kept_and_audited(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    budget = _budget(books, "1000.00")
    revised = books.officer.finance.ReviseBudget(
        pb.ReviseBudgetRequest(
            name=budget.name, amount=gbp("1500.00"), reason="virement from IN200", etag=budget.etag
        )
    )
    assert (amount(revised.amount), revised.revisions) == (Decimal("1500.00"), 1)
    stale = failure(
        books.officer.finance.ReviseBudget,
        pb.ReviseBudgetRequest(name=budget.name, amount=gbp("1.00"), reason="x", etag=budget.etag),
    )
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    no_reason = failure(
        books.officer.finance.ReviseBudget, pb.ReviseBudgetRequest(name=budget.name, amount=gbp("-1.00"))
    )
    assert set(no_reason.violations) == {"amount", "reason"}
    twice = failure(_budget, books, "5.00")
    assert twice.code is grpc.StatusCode.ALREADY_EXISTS and twice.reason == "BUDGET_ALREADY_EXISTS"
    assert twice.metadata == {"budget": budget.name} and budget.name in twice.message
    bad = failure(
        books.officer.finance.CreateBudget,
        pb.CreateBudgetRequest(
            parent=books.cc,
            budget=budget_pb2.Budget(
                cost_centre="ZZ999", account="1000", period="2025-13", amount=gbp("0.001")
            ),
        ),
    )
    assert set(bad.violations) == {"budget.cost_centre", "budget.account", "budget.period", "budget.amount"}


def test_override_needs_the_role_and_a_reason(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    budget = _budget(books, "100.00")
    holder = suite.caller(WEST_YORKSHIRE, "finance.budget_holder")
    manager = suite.caller(WEST_YORKSHIRE, "finance.budget_manager", subject="manager")
    denied = failure(_commit, holder, books, budget.name, "500.00", override_reason="mutual aid, Op Nimbus")
    assert denied.code is grpc.StatusCode.PERMISSION_DENIED and denied.reason == "OVERRIDE_NOT_PERMITTED"
    assert failure(_commit, manager, books, budget.name, "500.00").reason == "BUDGET_EXCEEDED"
    c = _commit(manager, books, budget.name, "500.00", override_reason="mutual aid, Op Nimbus")
    assert c.override_reason == "mutual aid, Op Nimbus"
    got = books.officer.finance.GetBudget(pb.GetBudgetRequest(name=budget.name))
    assert amount(got.available) == Decimal("-400.00")
    # Budget holders cannot set budgets.
    f = failure(
        holder.finance.CreateBudget,
        pb.CreateBudgetRequest(
            parent=books.cc, budget=budget_pb2.Budget(cost_centre="LP100", account="5100", period="2025-04")
        ),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "MISSING_PERMISSION"


def test_concurrent_commitments_never_overspend(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    budget = _budget(books, "1000.00")
    books.journal(books.cc, MAY, dr("5100", "250.00", "LP100"), cr("1000", "250.00"))
    holders = [suite.caller(WEST_YORKSHIRE, "finance.budget_holder", subject=f"h{i}") for i in range(4)]

    def attempt(i: int) -> str:
        try:
            _commit(holders[i % len(holders)], books, budget.name, "100.00")
        except grpc.RpcError as err:
            return reason_of(err)
        return "OK"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(attempt, range(24)))
    assert outcomes.count("OK") == 7, outcomes
    assert set(outcomes) == {"OK", "BUDGET_EXCEEDED"}, outcomes
    got = books.officer.finance.GetBudget(pb.GetBudgetRequest(name=budget.name))
    assert amount(got.committed) == Decimal("700.00")
    assert amount(got.actual) + amount(got.committed) <= amount(got.amount)
    assert amount(got.available) == Decimal("50.00")
    check_books_balance(suite, WEST_YORKSHIRE)


def test_a_ledgers_budgets_and_commitments_are_listed_and_filtered(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    holder = suite.caller(WEST_YORKSHIRE, "finance.budget_holder", subject="holder")
    may = _budget(books, "1000.00")
    june = _budget(books, "200.00", period="2025-03")
    fuel = _budget(books, "300.00", account="5500")
    books.journal(books.cc, MAY, dr("5100", "150.00", "LP100"), cr("1000", "150.00"))
    kept = _commit(holder, books, may.name, "400.00")
    released = holder.finance.ReleaseCommitment(
        pb.ReleaseCommitmentRequest(name=_commit(holder, books, june.name, "50.00").name)
    )
    f = holder.finance

    every = f.ListBudgets(pb.ListBudgetsRequest(parent=books.cc)).budgets
    assert [b.name for b in every] == [may.name, june.name, fuel.name]  # in the order they were set
    assert every[0] == f.GetBudget(pb.GetBudgetRequest(name=may.name))  # the same sums as a Get
    assert (amount(every[0].actual), amount(every[0].committed), amount(every[0].available)) == (
        Decimal("150.00"),
        Decimal("400.00"),
        Decimal("450.00"),
    )
    # A page at a time, with the filter carried by the token.
    query = 'account = "5100" AND financial_year = 2025 AND cost_centre = "LP100"'
    first = f.ListBudgets(pb.ListBudgetsRequest(parent=books.cc, filter=query, page_size=1))
    second = f.ListBudgets(
        pb.ListBudgetsRequest(parent=books.cc, filter=query, page_size=1, page_token=first.next_page_token)
    )
    assert [b.name for b in [*first.budgets, *second.budgets]] == [may.name, june.name]
    assert not second.next_page_token
    assert not f.ListBudgets(pb.ListBudgetsRequest(parent=books.cc, filter="financial_year = 2024")).budgets

    def commitments(text: str) -> list[str]:
        return [
            c.name
            for c in f.ListCommitments(pb.ListCommitmentsRequest(parent=books.cc, filter=text)).commitments
        ]

    assert commitments("") == [kept.name, released.name]
    assert commitments(f'budget = "{may.name}"') == [kept.name]
    assert commitments(f'budget != "{may.name}"') == [released.name]
    assert commitments("state = OPEN") == [kept.name]
    assert commitments("state = CLOSED") == commitments("state != OPEN") == [released.name]
    assert commitments(f'budget = "{june.name}" AND state = OPEN') == []
    assert commitments('reference:"po-"') == [kept.name, released.name]
    assert not f.ListCommitments(pb.ListCommitmentsRequest(parent=books.pcc)).commitments

    # Refusals say what is wrong.
    for request, field in [
        (pb.ListBudgetsRequest(parent=books.cc, filter='colour = "red"'), "filter"),
        (pb.ListBudgetsRequest(parent=books.cc, filter='financial_year = "next"'), "filter"),
        (pb.ListBudgetsRequest(parent="organisations/E23000010"), "parent"),
    ]:
        refused = failure(f.ListBudgets, request)
        assert refused.code is grpc.StatusCode.INVALID_ARGUMENT and field in refused.violations, refused
    for text in [
        f'budget = "{books.pcc}/budgets/{may.name.rsplit("/", 1)[1]}"',
        "state = SHUT",
        'budget:"b-"',
    ]:
        refused = failure(f.ListCommitments, pb.ListCommitmentsRequest(parent=books.cc, filter=text))
        assert refused.code is grpc.StatusCode.INVALID_ARGUMENT and "filter" in refused.violations, text
    unknown = failure(f.ListBudgets, pb.ListBudgetsRequest(parent=f"{books.parent}/ledgers/nope"))
    assert unknown.code is grpc.StatusCode.NOT_FOUND


def test_another_organisations_budgets_are_not_listed(suite: Suite) -> None:
    west = set_up_books(suite, WEST_YORKSHIRE)
    south = set_up_books(suite, SOUTH_YORKSHIRE)
    _budget(west, "1000.00")
    f = south.officer.finance
    for list_ in (f.ListBudgets, f.ListCommitments):
        request_type = pb.ListBudgetsRequest if list_ is f.ListBudgets else pb.ListCommitmentsRequest
        refused = failure(list_, request_type(parent=west.cc))
        assert refused.code is grpc.StatusCode.NOT_FOUND, refused
    # A role without the permission is refused outright.
    payables = suite.caller(WEST_YORKSHIRE, "finance.payables", subject="ap")
    refused = failure(payables.finance.ListBudgets, pb.ListBudgetsRequest(parent=west.cc))
    assert refused.code is grpc.StatusCode.PERMISSION_DENIED
