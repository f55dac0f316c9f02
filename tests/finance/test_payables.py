"""Supplier invoices, the three-way match, approval and posting, payment runs, and the
statutory figures and files built from them, against hand-computed fixtures."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import grpc
import pytest
from google.type import date_pb2, decimal_pb2, money_pb2

from backoffice.finance.v1 import budget_pb2, ledger_pb2, payables_pb2, reports_pb2
from backoffice.finance.v1 import finance_service_pb2 as pb
from libs.common.config import Settings
from libs.common.migrations import upgrade
from libs.common.proto_mapping import date_to_proto
from tests.finance.books import MAY, Books, amount, check_books_balance, gbp, reason_of, set_up_books
from tests.support import (
    SOUTH_YORKSHIRE,
    WEST_YORKSHIRE,
    Caller,
    Suite,
    downgrade,
    execute_as_owner,
    failure,
    running_suite,
    today,
)

NON_BUSINESS = payables_pb2.VAT_USE_NON_BUSINESS
EXEMPT = payables_pb2.VAT_USE_EXEMPT
SUPPLIER = f"organisations/{WEST_YORKSHIRE}/suppliers/s-acme"


def _line(
    qty: str = "10",
    price: str = "20.00",
    net: str = "200.00",
    vat: str = "40.00",
    *,
    use: payables_pb2.VatUse.ValueType = NON_BUSINESS,
    account: str = "5100",
    order_line: str = "",
    text: str = "Body armour",
) -> payables_pb2.InvoiceLine:
    return payables_pb2.InvoiceLine(
        account=account,
        cost_centre="LP100",
        description=text,
        quantity=decimal_pb2.Decimal(value=qty),
        unit_price=gbp(price),
        net=gbp(net),
        vat=gbp(vat),
        vat_use=use,
        order_line=order_line,
    )


def _capture(
    clerk: Caller,
    ledger: str,
    number: str,
    received: dt.date,
    *lines: payables_pb2.InvoiceLine,
    due: dt.date | None = None,
    po: str = "",
    commitment: str = "",
    supplier_name: str = "Acme Ltd",
) -> payables_pb2.Invoice:
    invoice = payables_pb2.Invoice(
        supplier=SUPPLIER,
        supplier_display_name=supplier_name,
        supplier_invoice_number=number,
        invoice_date=date_to_proto(received),
        received_date=date_to_proto(received),
        purchase_order=po,
        commitment=commitment,
        lines=list(lines) or [_line()],
    )
    if due:
        invoice.due_date.CopyFrom(date_to_proto(due))
    return clerk.finance.CreateInvoice(pb.CreateInvoiceRequest(parent=ledger, invoice=invoice))


def _approve(approver: Caller, invoice: str, day: dt.date) -> payables_pb2.Invoice:
    return approver.finance.ApproveInvoice(
        pb.ApproveInvoiceRequest(name=invoice, posting_date=date_to_proto(day))
    )


def _cancel(clerk: Caller, invoice: str, reason: str, etag: str = "") -> payables_pb2.Invoice:
    return clerk.finance.CancelInvoice(pb.CancelInvoiceRequest(name=invoice, reason=reason, etag=etag))


def _run(clerk: Caller, ledger: str, day: dt.date, due_by: dt.date | None = None) -> payables_pb2.PaymentRun:
    run = payables_pb2.PaymentRun(payment_date=date_to_proto(day))
    if due_by:
        run.due_by.CopyFrom(date_to_proto(due_by))
    return clerk.finance.CreatePaymentRun(pb.CreatePaymentRunRequest(parent=ledger, payment_run=run))


def _team(suite: Suite) -> tuple[Books, Caller, Caller]:
    books = set_up_books(suite, WEST_YORKSHIRE)
    clerk = suite.caller(WEST_YORKSHIRE, "finance.payables", subject="clerk")
    approver = suite.caller(WEST_YORKSHIRE, "finance.payables", subject="approver")
    return books, clerk, approver


def _lines_of(caller: Caller, journal: str) -> list[tuple[str, str, Decimal, Decimal]]:
    j = caller.finance.GetJournal(pb.GetJournalRequest(name=journal))
    return [(x.account, x.cost_centre, amount(x.debit), amount(x.credit)) for x in j.lines]


def test_capture_approve_post_and_pay(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    invoice = _capture(
        clerk,
        books.cc,
        "INV-001",
        MAY,
        _line(),
        _line("1", "100.00", "100.00", "20.00", use=EXEMPT, account="5500", text="Fuel card fees"),
    )
    assert invoice.state == payables_pb2.INVOICE_STATE_RECEIVED
    assert amount(invoice.gross_total) == Decimal("360.00")
    assert (invoice.due_date.month, invoice.due_date.day) == (6, 14)  # 30 days after receipt
    dup = failure(_capture, clerk, books.cc, "INV-001", MAY)
    assert dup.code is grpc.StatusCode.ALREADY_EXISTS and dup.reason == "DUPLICATE_INVOICE"
    # Nor again in the organisation's other ledger, where it would be paid a second time.
    other = failure(_capture, clerk, books.pcc, "INV-001", MAY)
    assert other.code is grpc.StatusCode.ALREADY_EXISTS and other.reason == "DUPLICATE_INVOICE"
    assert other.metadata == {"invoice": invoice.name}
    # Nor typed another way: the same number without its case, spaces or punctuation.
    for typed in ("inv-001", "INV001", " Inv 001.", "inv\u2013001"):
        retyped = failure(_capture, clerk, books.pcc, typed, MAY)
        assert retyped.code is grpc.StatusCode.ALREADY_EXISTS and retyped.reason == "DUPLICATE_INVOICE", typed
        assert retyped.metadata == {"invoice": invoice.name} and "number INV-001" in retyped.message
    # A different number that shares the characters in another order is another invoice.
    assert _capture(clerk, books.pcc, "INV-010", MAY).supplier_invoice_number == "INV-010"
    # A line's net is its quantity x price rounded to the penny (either way at a half), no more.
    over = failure(_capture, clerk, books.pcc, "INV-P1", MAY, _line("1", "10.00", "10.01", "2.00"))
    assert set(over.violations) == {"invoice.lines[0].net"}
    half = _capture(clerk, books.pcc, "INV-P2", MAY, _line("3", "0.335", "1.01", "0.20"))
    assert amount(half.lines[0].net) == Decimal("1.01")
    # Nor from the same supplier written another way: a supplier is named as procurement names it.
    for supplier in (SUPPLIER + " ", SUPPLIER.upper(), f"{SUPPLIER}/", "Acme Ltd"):
        copy = payables_pb2.Invoice(
            supplier=supplier,
            supplier_display_name="Acme Ltd",
            supplier_invoice_number="INV-001",
            invoice_date=date_to_proto(MAY),
            received_date=date_to_proto(MAY),
            lines=[_line()],
        )
        named = failure(clerk.finance.CreateInvoice, pb.CreateInvoiceRequest(parent=books.pcc, invoice=copy))
        assert named.code is grpc.StatusCode.INVALID_ARGUMENT, supplier
        assert set(named.violations) == {"invoice.supplier"}, supplier
    most = "60000000000000.00"  # each line within the largest amount, the invoice beyond it
    huge = failure(
        _capture, clerk, books.pcc, "INV-BIG", MAY, _line("1", most, most, "0"), _line("1", most, most, "0")
    )
    assert set(huge.violations) == {"invoice.lines"}
    marks = failure(_capture, clerk, books.pcc, " -/- ", MAY)
    assert marks.code is grpc.StatusCode.INVALID_ARGUMENT
    assert marks.violations == {"invoice.supplier_invoice_number": "must hold a letter or a digit"}
    own = failure(_approve, clerk, invoice.name, MAY)
    assert own.code is grpc.StatusCode.PERMISSION_DENIED and own.reason == "SEGREGATION_OF_DUTIES"
    approved = _approve(approver, invoice.name, MAY)
    assert approved.state == payables_pb2.INVOICE_STATE_APPROVED
    # Expenditure net (exempt VAT is a cost), recoverable VAT, the gross to creditors.
    assert _lines_of(books.officer, approved.journal) == [
        ("5100", "LP100", Decimal("200.00"), Decimal("0.00")),
        ("5500", "LP100", Decimal("120.00"), Decimal("0.00")),
        ("1200", "", Decimal("40.00"), Decimal("0.00")),
        ("2000", "", Decimal("0.00"), Decimal("360.00")),
    ]
    assert failure(_approve, approver, invoice.name, MAY).reason == "INVOICE_NOT_RECEIVED"
    nothing_due = _run(clerk, books.cc, MAY)
    assert list(nothing_due.invoices) == [] and nothing_due.journal == ""
    # Due by the run's cut-off, but its liability is posted after the payment date: it waits.
    before_posting = _run(clerk, books.cc, MAY - dt.timedelta(days=1), due_by=dt.date(2025, 6, 30))
    assert list(before_posting.invoices) == [] and before_posting.journal == ""
    run = _run(clerk, books.cc, dt.date(2025, 6, 14))
    assert list(run.invoices) == [invoice.name] and amount(run.total) == Decimal("360.00")
    assert _lines_of(books.officer, run.journal) == [
        ("2000", "", Decimal("360.00"), Decimal("0.00")),
        ("1000", "", Decimal("0.00"), Decimal("360.00")),
    ]
    paid = clerk.finance.GetInvoice(pb.GetInvoiceRequest(name=invoice.name))
    assert paid.state == payables_pb2.INVOICE_STATE_PAID and paid.payment_run == run.name
    assert (paid.paid_date.month, paid.paid_date.day) == (6, 14)
    again = _run(clerk, books.cc, dt.date(2025, 6, 30))
    assert list(again.invoices) == []  # paid once only
    # The invoice's and the run's journals are theirs: reversing one by hand would leave a
    # paid invoice with no liability behind it, so neither is reversed as a manual journal.
    for journal, document in ((approved.journal, invoice.name), (run.journal, run.name)):
        by_hand = failure(
            books.officer.finance.ReverseJournal,
            pb.ReverseJournalRequest(name=journal, posting_date=date_to_proto(MAY), reason="error"),
        )
        assert by_hand.code is grpc.StatusCode.FAILED_PRECONDITION, journal
        assert by_hand.reason == "NOT_A_MANUAL_JOURNAL" and by_hand.metadata["source_resource"] == document
    check_books_balance(suite, WEST_YORKSHIRE)


def test_an_invoice_captured_in_error_is_cancelled_and_its_number_captured_again(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    wrong = _capture(clerk, books.pcc, "INV-7", MAY)  # the chief constable's invoice
    refused = failure(_capture, clerk, books.cc, "INV-7", MAY)
    assert refused.reason == "DUPLICATE_INVOICE" and refused.metadata == {"invoice": wrong.name}
    blank = failure(_cancel, clerk, wrong.name, "  ")
    assert blank.code is grpc.StatusCode.INVALID_ARGUMENT and set(blank.violations) == {"reason"}
    malformed = failure(_cancel, clerk, "invoices/INV-7", "wrong ledger")
    assert malformed.code is grpc.StatusCode.INVALID_ARGUMENT and set(malformed.violations) == {"name"}
    # Another organisation's payables team cannot see it, let alone cancel it.
    outsider = suite.caller(SOUTH_YORKSHIRE, "finance.payables", subject="outsider")
    hidden = failure(_cancel, outsider, wrong.name, "not ours")
    assert hidden.code is grpc.StatusCode.NOT_FOUND
    stale = failure(_cancel, clerk, wrong.name, "wrong ledger", etag='W/"0"')
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    cancelled = _cancel(clerk, wrong.name, "captured in the PCC's ledger: the CC's invoice", wrong.etag)
    assert cancelled.state == payables_pb2.INVOICE_STATE_CANCELLED
    assert cancelled.cancellation_reason == "captured in the PCC's ledger: the CC's invoice"
    assert not cancelled.journal  # nothing was posted, so nothing is reversed
    # Its number is free again, where the invoice belongs.
    right = _capture(clerk, books.cc, "INV-7", MAY)
    assert _approve(approver, right.name, MAY).state == payables_pb2.INVOICE_STATE_APPROVED
    # A cancelled invoice is neither approved nor cancelled again, and an approved one is
    # posted: only a credit note would undo it.
    for call, name in ((_approve, wrong.name), (_cancel, wrong.name), (_cancel, right.name)):
        args = (MAY,) if call is _approve else ("again",)
        f = failure(call, approver if call is _approve else clerk, name, *args)
        assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "INVOICE_NOT_RECEIVED"
    listed = clerk.finance.ListInvoices(
        pb.ListInvoicesRequest(
            parent=f"organisations/{WEST_YORKSHIRE}", state=payables_pb2.INVOICE_STATE_CANCELLED
        )
    )
    assert [i.name for i in listed.invoices] == [wrong.name]
    check_books_balance(suite, WEST_YORKSHIRE)


def test_bad_invoices_list_every_bad_field(suite: Suite) -> None:
    books, clerk, _ = _team(suite)
    f = failure(
        clerk.finance.CreateInvoice,
        pb.CreateInvoiceRequest(
            parent=books.cc,
            invoice=payables_pb2.Invoice(
                supplier=SUPPLIER,
                received_date=date_to_proto(MAY),
                invoice_date=date_to_proto(MAY + dt.timedelta(days=1)),
                purchase_order="PO-9",
                lines=[
                    _line("10", "20.00", "201.00", "0.001"),
                    payables_pb2.InvoiceLine(
                        account="1000",
                        cost_centre="NOPE",
                        quantity=decimal_pb2.Decimal(value="0"),
                        unit_price=gbp("1"),
                        net=gbp("0"),
                    ),
                ],
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {
        "invoice.supplier_display_name",
        "invoice.supplier_invoice_number",
        "invoice.received_date",
        "invoice.lines[0].net",
        "invoice.lines[0].vat",
        "invoice.lines[0].order_line",
        "invoice.lines[1].account",
        "invoice.lines[1].cost_centre",
        "invoice.lines[1].description",
        "invoice.lines[1].quantity",
        "invoice.lines[1].vat_use",
        "invoice.lines[1].order_line",
    }
    f = failure(_capture, clerk, books.cc, "X", MAY, _line(qty="lots"))
    assert set(f.violations) == {"invoice.lines[0].quantity"}
    f = failure(
        clerk.finance.CreateInvoice,
        pb.CreateInvoiceRequest(
            parent=books.cc,
            invoice=payables_pb2.Invoice(
                supplier=SUPPLIER,
                received_date=date_pb2.Date(year=2026, month=2, day=30),
                lines=[
                    _line(qty="lots"),
                    payables_pb2.InvoiceLine(
                        account="5100",
                        quantity=decimal_pb2.Decimal(value="1"),
                        unit_price=money_pb2.Money(currency_code="USD", units=1),
                        net=gbp("1"),
                        vat=money_pb2.Money(currency_code="GBP", units=1, nanos=-1),
                    ),
                ],
            ),
        ),
    )
    assert set(f.violations) == {
        "invoice.received_date",
        "invoice.lines[0].quantity",
        "invoice.lines[1].unit_price.currency_code",
        "invoice.lines[1].vat",
    }
    # An invoice of nothing would post nothing at approval: it is not captured.
    nothing = failure(_capture, clerk, books.cc, "ZERO", MAY, _line("1", "0", "0.00", "0.00"))
    assert nothing.code is grpc.StatusCode.INVALID_ARGUMENT and set(nothing.violations) == {"invoice.lines"}


def test_three_way_match_inside_and_outside_tolerance(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    invoice = _capture(
        clerk,
        books.cc,
        "INV-PO",
        MAY,
        _line("10", "20.40", "204.00", "40.80", order_line="1"),
        _line("3", "499.00", "1497.00", "299.40", order_line="2"),
        po="PO-1001",
    )
    assert failure(_approve, approver, invoice.name, MAY).reason == "MATCH_REQUIRED"
    no_data = failure(clerk.finance.MatchInvoice, pb.MatchInvoiceRequest(name=invoice.name))
    assert no_data.code is grpc.StatusCode.FAILED_PRECONDITION and no_data.reason == "ORDER_DATA_UNAVAILABLE"

    def match(received_line_2: str, name: str = invoice.name) -> payables_pb2.Invoice:
        return clerk.finance.MatchInvoice(
            pb.MatchInvoiceRequest(
                name=name,
                match_data=pb.MatchData(
                    order_lines=[
                        pb.OrderLine(
                            line="1", quantity=decimal_pb2.Decimal(value="10"), unit_price=gbp("20.00")
                        ),
                        pb.OrderLine(
                            line="2", quantity=decimal_pb2.Decimal(value="5"), unit_price=gbp("500.00")
                        ),
                    ],
                    receipt_lines=[
                        pb.ReceiptLine(line="1", quantity=decimal_pb2.Decimal(value="10")),
                        pb.ReceiptLine(line="2", quantity=decimal_pb2.Decimal(value=received_line_2)),
                    ],
                ),
            )
        )

    outside = match("2")  # three billed, two received
    assert outside.match_state == payables_pb2.MATCH_STATE_OUT_OF_TOLERANCE
    assert [(d.line, d.code) for d in outside.discrepancies] == [(1, "QUANTITY_NOT_RECEIVED")]
    refused = failure(_approve, approver, invoice.name, MAY)
    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "MATCH_OUT_OF_TOLERANCE"
    inside = match("3")  # the third arrived; line 1 is 2% over the order price: within tolerance
    assert inside.match_state == payables_pb2.MATCH_STATE_MATCHED and not inside.discrepancies
    approved = _approve(approver, invoice.name, MAY)
    assert approved.state == payables_pb2.INVOICE_STATE_APPROVED
    # The same order cited another way is the same order: what was billed on it counts.
    again = _capture(
        clerk,
        books.cc,
        "INV-PO2",
        MAY,
        _line("10", "20.40", "204.00", "40.80", order_line="1"),
        po=" po 1001",
    )
    assert again.purchase_order == "po 1001"
    billed_twice = match("3", again.name)
    assert billed_twice.match_state == payables_pb2.MATCH_STATE_OUT_OF_TOLERANCE
    # A suite order is named exactly, and only the organisation's own: else the clerk's
    # own figures would stand in for procurement's receipts.
    for po in (
        f" organisations/{WEST_YORKSHIRE}/purchaseOrders/po 123",
        f"Organisations/{WEST_YORKSHIRE}/purchaseOrders/po-123",
        f"organisations/{SOUTH_YORKSHIRE}/purchaseOrders/po-123",
    ):
        named = failure(_capture, clerk, books.cc, "INV-SUITE", MAY, _line(order_line="1"), po=po)
        assert set(named.violations) == {"invoice.purchase_order"}, po
    no_po = _capture(clerk, books.cc, "INV-NOPO", MAY)
    assert (
        failure(clerk.finance.MatchInvoice, pb.MatchInvoiceRequest(name=no_po.name)).reason
        == "NO_PURCHASE_ORDER"
    )
    check_books_balance(suite, WEST_YORKSHIRE)


def test_approval_consumes_the_commitment(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    budget = books.officer.finance.CreateBudget(
        pb.CreateBudgetRequest(
            parent=books.cc,
            budget=budget_pb2.Budget(
                cost_centre="LP100", account="5100", period="2025-02", amount=gbp("1000.00")
            ),
        )
    )
    manager = suite.caller(WEST_YORKSHIRE, "finance.budget_manager")
    commitment = manager.finance.RaiseCommitment(
        pb.RaiseCommitmentRequest(
            parent=books.cc, commitment=budget_pb2.Commitment(budget=budget.name, amount=gbp("300.00"))
        )
    )
    invoice = _capture(clerk, books.cc, "INV-C", MAY, commitment=commitment.name)
    _approve(approver, invoice.name, MAY)
    c = manager.finance.GetCommitment(pb.GetCommitmentRequest(name=commitment.name))
    assert (amount(c.consumed), amount(c.open_amount)) == (Decimal("200.00"), Decimal("100.00"))
    b = manager.finance.GetBudget(pb.GetBudgetRequest(name=budget.name))
    assert (amount(b.actual), amount(b.committed), amount(b.available)) == (
        Decimal("200.00"),
        Decimal("100.00"),
        Decimal("700.00"),
    )
    bad = failure(_capture, clerk, books.cc, "INV-D", MAY, commitment=f"{books.pcc}/commitments/c-x")
    assert set(bad.violations) == {"invoice.commitment"}
    check_books_balance(suite, WEST_YORKSHIRE)


def test_an_invoice_is_not_paid_before_it_arrives_nor_captured_as_arriving_later(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    d = dt.date.fromisoformat
    early = _capture(clerk, books.pcc, "EARLY-1", d("2025-05-01"), due=d("2025-06-30"))
    late = _capture(clerk, books.pcc, "LATE-1", d("2025-05-20"), due=d("2025-06-30"))
    # Posted into the period of its invoice date, before it arrived: an accrual, allowed.
    for invoice in (early, late):
        _approve(approver, invoice.name, d("2025-05-10"))
    # A run dated before it arrived does not pay it: the days to pay would be negative.
    assert list(_run(clerk, books.pcc, d("2025-05-12"), d("2025-07-01")).invoices) == [early.name]
    assert list(_run(clerk, books.pcc, d("2025-05-20"), d("2025-07-01")).invoices) == [late.name]
    tomorrow = today() + dt.timedelta(days=1)
    f = failure(_capture, clerk, books.pcc, "FUTURE-1", tomorrow)
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and set(f.violations) == {"invoice.received_date"}


def test_payments_compliance_against_a_hand_computed_fixture(suite: Suite) -> None:
    """The fixture of tests/finance/test_domain.py, through the API: paid in the period A
    20 days, B 30, C 31, D 61, G 32 (mean 34.80; 40/40/20%); due in it 3000.00, of which
    E (never approved) and F (paid after 30 September) 1100.00 unpaid (36.67%)."""
    books, clerk, approver = _team(suite)
    d = dt.date.fromisoformat

    def gross(value: str) -> payables_pb2.InvoiceLine:
        return _line("1", value, value, "0.00")

    plan = {
        "A": ("2025-04-01", "2025-05-01", "1000.00"),
        "B": ("2025-04-10", "2025-05-10", "200.00"),
        "C": ("2025-05-01", "2025-05-31", "300.00"),
        "D": ("2025-06-01", "2025-07-01", "400.00"),
        "E": ("2025-09-01", "2025-09-25", "500.00"),
        "F": ("2025-09-10", "2025-09-30", "600.00"),
        "G": ("2025-03-01", "2025-03-31", "700.00"),
    }
    made = {
        key: _capture(clerk, books.pcc, key, d(received), gross(value), due=d(due))
        for key, (received, due, value) in plan.items()
    }
    for key in "ABCDFG":
        _approve(approver, made[key].name, d("2025-04-01"))
    # E is never approved: due in the period, and not paid in it.
    # The CC's invoice counts too: the figures are the organisation's.
    cc_invoice = _capture(clerk, books.cc, "CC-1", d("2025-04-01"), gross("100.00"), due=d("2025-04-30"))
    _approve(approver, cc_invoice.name, d("2025-04-01"))
    runs = [
        ("2025-04-02", "2025-03-31", ["G"]),
        ("2025-04-21", "2025-05-01", ["A"]),
        ("2025-05-10", "2025-05-10", ["B"]),
        ("2025-06-01", "2025-05-31", ["C"]),
        ("2025-08-01", "2025-07-01", ["D"]),
        ("2025-10-05", "2025-09-30", ["F"]),
    ]
    for day, due_by, expected in runs:
        run = _run(clerk, books.pcc, d(day), d(due_by))
        assert list(run.invoices) == [made[k].name for k in expected]
    _run(clerk, books.cc, d("2025-04-21"), d("2025-04-30"))  # CC-1: 20 days
    # An invoice captured in error and cancelled was never owed: it is not a sum due.
    wrong = _capture(clerk, books.cc, "H", d("2025-09-01"), gross("900.00"), due=d("2025-09-15"))
    _cancel(clerk, wrong.name, "not ours: sent to the wrong force")

    cfo = suite.caller(WEST_YORKSHIRE, "finance.cfo")
    f = cfo.finance.GetPaymentsCompliance(
        pb.GetPaymentsComplianceRequest(
            organisation=f"organisations/{WEST_YORKSHIRE}", period_end=date_to_proto(d("2025-09-30"))
        )
    )
    assert (f.period_start.year, f.period_start.month, f.period_start.day) == (2025, 4, 1)
    # Six payments: the five above and CC-1 (20 days): mean (174 + 20) / 6 = 32.33.
    assert f.payments == 6
    assert f.mean_days_to_pay.value == "32.33"
    assert (
        f.percent_within_30_days.value,
        f.percent_31_to_60_days.value,
        f.percent_61_days_or_more.value,
    ) == (
        "50.00",
        "33.33",
        "16.67",
    )
    assert (amount(f.sums_due), amount(f.sums_due_not_paid)) == (Decimal("3100.00"), Decimal("1100.00"))
    assert f.percent_due_not_paid.value == "35.48"
    bad = failure(
        cfo.finance.GetPaymentsCompliance,
        pb.GetPaymentsComplianceRequest(
            organisation=f"organisations/{WEST_YORKSHIRE}", period_end=date_to_proto(d("2025-06-30"))
        ),
    )
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT and set(bad.violations) == {"period_end"}
    check_books_balance(suite, WEST_YORKSHIRE)


def test_spend_over_500_files(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    d = dt.date.fromisoformat
    invoices = [
        ("X", "2025-05-02", _line("1", "500.00", "500.00", "100.00")),  # exactly £500: not over
        ("Y", "2025-05-01", _line("1", "500.01", "500.01", "100.00", text="Radios")),  # over
        (
            "Z",
            "2025-05-20",
            _line("1", "450.00", "450.00", "90.00", use=EXEMPT, text="Training venue"),
        ),  # 540
        ("W", "2025-06-03", _line("1", "1000.00", "1000.00", "200.00", text="Boots")),  # June
    ]
    for number, day, line in invoices:
        made = _capture(clerk, books.pcc, number, d(day), line, supplier_name=f"Supplier {number}")
        _approve(approver, made.name, d(day))
    # The chief constable's spend is in its own file.
    cc = _capture(clerk, books.cc, "CC", d("2025-05-05"), _line("1", "900.00", "900.00", "0.00"))
    _approve(approver, cc.name, d("2025-05-05"))
    cfo = suite.caller(WEST_YORKSHIRE, "finance.cfo")
    monthly = cfo.finance.ExportSpendOver500(
        pb.ExportSpendOver500Request(
            ledger=books.pcc,
            format=reports_pb2.SPEND_FILE_FORMAT_POLICE_MONTHLY,
            start_date=date_to_proto(d("2025-05-01")),
        )
    )
    rows = monthly.csv.split("\r\n")
    assert monthly.items == 2
    assert rows[0] == "Body,Date,Transaction number,Recipient,Expense type,Purpose,Amount"
    body = f"Police and Crime Commissioner ({WEST_YORKSHIRE})"
    assert [r.split(",")[0:2] + r.split(",")[3:] for r in rows[1:3]] == [
        [body, "01/05/2025", "Supplier Y", "Equipment", "Radios", "500.01"],
        [body, "20/05/2025", "Supplier Z", "Equipment", "Training venue", "540.00"],
    ]
    quarterly = cfo.finance.ExportSpendOver500(
        pb.ExportSpendOver500Request(
            ledger=books.pcc,
            format=reports_pb2.SPEND_FILE_FORMAT_LGTC_QUARTERLY,
            start_date=date_to_proto(d("2025-04-01")),
        )
    )
    assert quarterly.items == 3
    lines = quarterly.csv.split("\r\n")
    assert lines[0].startswith(
        "Body name,Date,Department,Beneficiary,Summary of purpose,Amount,Irrecoverable VAT"
    )
    z = next(line for line in lines if "Supplier Z" in line).split(",")
    assert z[1:8] == [
        "20/05/2025",
        "Leeds district response",
        "Supplier Z",
        "Training venue",
        "540.00",
        "90.00",
        "Supplies and services",
    ]
    cc_file = cfo.finance.ExportSpendOver500(
        pb.ExportSpendOver500Request(
            ledger=books.cc,
            format=reports_pb2.SPEND_FILE_FORMAT_POLICE_MONTHLY,
            start_date=date_to_proto(d("2025-05-01")),
        )
    )
    assert cc_file.items == 1 and "900.00" in cc_file.csv
    vat = cfo.finance.GetVatAnalysis(
        pb.GetVatAnalysisRequest(
            ledger=books.pcc,
            start_date=date_to_proto(d("2025-05-01")),
            end_date=date_to_proto(d("2025-05-31")),
        )
    )
    assert [(t.vat_use, amount(t.net), amount(t.vat)) for t in vat.totals] == [
        (NON_BUSINESS, Decimal("1000.01"), Decimal("200.00")),
        (payables_pb2.VAT_USE_BUSINESS, Decimal("0.00"), Decimal("0.00")),
        (EXEMPT, Decimal("450.00"), Decimal("90.00")),
    ]
    assert vat.exempt_percent.value == "31.03" and vat.exempt_insignificant  # £90 <= £625 a month
    bad_range = failure(
        cfo.finance.GetVatAnalysis,
        pb.GetVatAnalysisRequest(
            ledger=books.pcc,
            start_date=date_to_proto(d("2025-05-02")),
            end_date=date_to_proto(d("2025-05-31")),
        ),
    )
    assert set(bad_range.violations) == {"end_date"}
    bad = failure(
        cfo.finance.ExportSpendOver500,
        pb.ExportSpendOver500Request(ledger=books.pcc, start_date=date_to_proto(d("2025-05-02"))),
    )
    assert set(bad.violations) == {"format"}
    bad = failure(
        cfo.finance.ExportSpendOver500,
        pb.ExportSpendOver500Request(
            ledger=books.pcc,
            format=reports_pb2.SPEND_FILE_FORMAT_LGTC_QUARTERLY,
            start_date=date_to_proto(d("2025-05-01")),
        ),
    )
    assert set(bad.violations) == {"start_date"}
    # A day that is no day is reported with the request's other bad fields, not alone.
    bad = failure(
        cfo.finance.ExportSpendOver500,
        pb.ExportSpendOver500Request(ledger=books.pcc, start_date=date_pb2.Date(year=2025, month=2, day=30)),
    )
    assert set(bad.violations) == {"format", "start_date"}, bad
    assert "required" not in bad.violations["start_date"]
    bad = failure(
        cfo.finance.GetVatAnalysis,
        pb.GetVatAnalysisRequest(ledger=books.pcc, start_date=date_to_proto(d("3000-05-01"))),
    )
    assert bad.violations == {"start_date": bad.violations["start_date"], "end_date": "is required"}, bad
    assert "1900 to 2999" in bad.violations["start_date"]
    check_books_balance(suite, WEST_YORKSHIRE)


def test_days_at_the_ends_of_the_calendar_are_bad_fields_not_internal_errors(suite: Suite) -> None:
    """A google.type.Date may be any day of the years 1 to 9999, but a spend file's month
    after its start and a VAT analysis's day after its end fall off the calendar there:
    finance takes days in the years 1900 to 2999 and names the field otherwise."""
    books, _, _ = _team(suite)
    cfo = suite.caller(WEST_YORKSHIRE, "finance.cfo")
    last, first = date_pb2.Date(year=9999, month=12, day=1), date_pb2.Date(year=1, month=1, day=1)
    f = failure(
        cfo.finance.ExportSpendOver500,
        pb.ExportSpendOver500Request(
            ledger=books.pcc, format=reports_pb2.SPEND_FILE_FORMAT_POLICE_MONTHLY, start_date=last
        ),
    )
    assert (f.code, set(f.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {"start_date"}), f
    may = date_to_proto(dt.date(2025, 5, 1))
    for start, end, field in [
        (may, date_pb2.Date(year=9999, month=12, day=31), "end_date"),
        (first, may, "start_date"),
    ]:
        f = failure(
            cfo.finance.GetVatAnalysis,
            pb.GetVatAnalysisRequest(ledger=books.pcc, start_date=start, end_date=end),
        )
        assert (f.code, set(f.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {field}), f


def test_concurrent_approvals_and_payment_runs_post_once(suite: Suite) -> None:
    books, clerk, _ = _team(suite)
    invoice = _capture(clerk, books.cc, "INV-RACE", MAY)
    approvers = [suite.caller(WEST_YORKSHIRE, "finance.payables", subject=f"a{i}") for i in range(6)]

    def attempt(caller: Caller) -> str:
        try:
            _approve(caller, invoice.name, MAY)
        except grpc.RpcError as err:
            return reason_of(err)
        return "OK"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, approvers))
    assert outcomes.count("OK") == 1, outcomes
    assert set(outcomes) <= {"OK", "INVOICE_NOT_RECEIVED"}, outcomes

    def pay(i: int) -> int:
        return len(_run(approvers[i], books.cc, dt.date(2025, 6, 30)).invoices)

    with ThreadPoolExecutor(max_workers=4) as pool:
        paid = list(pool.map(pay, range(4)))
    assert sorted(paid) == [0, 0, 0, 1]
    tb = books.officer.finance.GetTrialBalance(
        pb.GetTrialBalanceRequest(ledger=books.cc, financial_year=2025)
    )
    assert {r.account: (amount(r.debit), amount(r.credit)) for r in tb.rows}["1000"] == (
        Decimal("0.00"),
        Decimal("240.00"),
    )
    check_books_balance(suite, WEST_YORKSHIRE)


def test_posting_paths_respect_closed_periods_and_control_accounts(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    invoice = _capture(clerk, books.cc, "INV-P", MAY)
    books.officer.finance.ClosePeriod(pb.ClosePeriodRequest(name=f"{books.cc}/periods/2025-02"))
    closed = failure(_approve, approver, invoice.name, MAY)
    assert closed.code is grpc.StatusCode.FAILED_PRECONDITION and closed.reason == "PERIOD_CLOSED"
    assert clerk.finance.GetInvoice(pb.GetInvoiceRequest(name=invoice.name)).state == (
        payables_pb2.INVOICE_STATE_RECEIVED
    )
    _approve(approver, invoice.name, dt.date(2025, 6, 1))
    # Paid in May it is not (its liability is posted in June); paid in June once June closes.
    books.officer.finance.ClosePeriod(pb.ClosePeriodRequest(name=f"{books.cc}/periods/2025-03"))
    run = failure(_run, clerk, books.cc, dt.date(2025, 6, 1), dt.date(2025, 12, 31))
    assert run.reason == "PERIOD_CLOSED"
    # A ledger without control accounts cannot post an invoice.
    books.officer.finance.CreateLedger(
        pb.CreateLedgerRequest(
            parent=books.parent,
            ledger_id="bare",
            ledger=ledger_pb2.Ledger(display_name="Bare", entity_kind=ledger_pb2.ENTITY_KIND_OTHER_BODY),
        )
    )
    books.officer.finance.OpenFinancialYear(
        pb.OpenFinancialYearRequest(ledger=f"{books.parent}/ledgers/bare", financial_year=2025)
    )
    bare = _capture(clerk, f"{books.parent}/ledgers/bare", "INV-B", MAY)
    missing = failure(_approve, approver, bare.name, dt.date(2025, 6, 1))
    assert missing.code is grpc.StatusCode.FAILED_PRECONDITION and missing.reason == "CONTROL_ACCOUNT_MISSING"
    check_books_balance(suite, WEST_YORKSHIRE)


def test_list_invoices_by_state_across_organisations(suite: Suite) -> None:
    books, clerk, approver = _team(suite)
    first = _capture(clerk, books.cc, "L-1", MAY)
    second = _capture(clerk, books.pcc, "L-2", MAY)
    _approve(approver, first.name, MAY)
    received = clerk.finance.ListInvoices(
        pb.ListInvoicesRequest(parent="organisations/-", state=payables_pb2.INVOICE_STATE_RECEIVED)
    )
    assert [i.name for i in received.invoices] == [second.name]
    both = clerk.finance.ListInvoices(
        pb.ListInvoicesRequest(parent=f"organisations/{WEST_YORKSHIRE}", page_size=1)
    )
    page_two = clerk.finance.ListInvoices(
        pb.ListInvoicesRequest(
            parent=f"organisations/{WEST_YORKSHIRE}", page_size=1, page_token=both.next_page_token
        )
    )
    assert {both.invoices[0].name, page_two.invoices[0].name} == {first.name, second.name}
    assert page_two.next_page_token == ""
    # A token is bound to its query.
    bad = failure(
        clerk.finance.ListInvoices,
        pb.ListInvoicesRequest(
            parent=f"organisations/{WEST_YORKSHIRE}",
            state=payables_pb2.INVOICE_STATE_PAID,
            page_token=both.next_page_token,
        ),
    )
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT
    # Another force sees none of them.
    other = suite.caller("E23000011", "finance.payables", subject="other")
    assert list(other.finance.ListInvoices(pb.ListInvoicesRequest(parent="organisations/-")).invoices) == []


def test_the_upgrade_to_invoice_number_keys_names_numbers_typed_two_ways(settings: Settings) -> None:
    with running_suite(settings, migrated=True) as suite:
        books, clerk, _ = _team(suite)
        first = _capture(clerk, books.cc, "INV-77", MAY)
        second = _capture(clerk, books.pcc, "INV-78", MAY)
    # Before numbers were compared by their key, "inv 77" could be captured beside "INV-77".
    downgrade(settings, "finance", "0007")
    execute_as_owner(
        settings,
        "finance",
        "UPDATE invoices SET supplier_invoice_number = 'inv 77', supplier = supplier || ' ' WHERE id = :id",
        id=second.name.rsplit("/", 1)[1],
    )
    url, role = settings.database_url_for("finance"), settings.app_role_for("finance")
    with pytest.raises(RuntimeError) as refused:
        upgrade("finance", url, app_role=role if settings.database_url else None)
    assert "'INV-77'" in str(refused.value) and "'inv 77'" in str(refused.value)
    # Nothing was half-done: the refused upgrade left the schema at 0007, the data as it was.
    assert execute_as_owner(settings, "finance", "SELECT version_num FROM alembic_version") == [("0007",)]
    numbers = "SELECT supplier_invoice_number FROM invoices ORDER BY supplier_invoice_number"
    assert execute_as_owner(settings, "finance", numbers) == [("INV-77",), ("inv 77",)]
    execute_as_owner(
        settings,
        "finance",
        "UPDATE invoices SET state = 'CANCELLED', cancellation_reason = 'duplicate' WHERE id = :id",
        id=second.name.rsplit("/", 1)[1],
    )
    upgrade("finance", url, app_role=role if settings.database_url else None)
    with running_suite(settings, migrated=True) as suite:
        clerk = suite.caller(WEST_YORKSHIRE, "finance.payables", subject="clerk")
        again = failure(_capture, clerk, books.pcc, "inv77", MAY)
        assert again.reason == "DUPLICATE_INVOICE" and again.metadata == {"invoice": first.name}
        # The cancelled one's number is free, as before.
        assert _capture(clerk, books.pcc, "INV-78", MAY).supplier_invoice_number == "INV-78"
    keys = "SELECT supplier_invoice_key, supplier FROM invoices ORDER BY supplier_invoice_key"
    assert execute_as_owner(settings, "finance", keys) == [
        ("inv77", SUPPLIER),
        ("inv77", SUPPLIER),
        ("inv78", SUPPLIER),
    ]
