"""Finance's rules on their own: periods, journals, money splits, budgets, the three-way
match, the payments compliance figures and the spend files, against hand-computed
figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from libs.common.records import RecordInfo
from services.finance.domain.budgets import Budget, BudgetPosition, Commitment, check_commitment
from services.finance.domain.chart import Account, AccountType, SubjectiveHeading
from services.finance.domain.compliance import PaymentFact, compliance_figures, six_month_period
from services.finance.domain.invoices import InvoiceLine, VatUse
from services.finance.domain.journals import ChartView, LineInput, balanced, checked_lines
from services.finance.domain.matching import (
    NOT_ON_ORDER,
    PRICE_OUT_OF_TOLERANCE,
    QUANTITY_NOT_RECEIVED,
    QUANTITY_OVER_ORDERED,
    BilledLine,
    CallerOrderSource,
    OrderEvidence,
    OrderLine,
    ReceiptLine,
    SuppliedOrderSource,
    Tolerance,
    three_way_match,
)
from services.finance.domain.money import split_by_drivers
from services.finance.domain.periods import Period, PeriodKey, PeriodState, check_postable
from services.finance.domain.spend import SpendFileFormat, SpendItem, file_range, over_threshold, spend_csv
from services.finance.domain.vat import vat_analysis

INFO = RecordInfo.new("t", None, dt.datetime(2025, 4, 1, tzinfo=dt.UTC))
D = Decimal


def test_periods_run_april_to_march() -> None:
    assert PeriodKey.of(dt.date(2025, 4, 1)) == PeriodKey(2025, 1)
    assert PeriodKey.of(dt.date(2025, 12, 31)) == PeriodKey(2025, 9)
    assert PeriodKey.of(dt.date(2026, 3, 31)) == PeriodKey(2025, 12)
    assert PeriodKey.of(dt.date(2026, 4, 1)) == PeriodKey(2026, 1)
    assert (PeriodKey(2025, 11).start, PeriodKey(2025, 11).end) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert PeriodKey(2027, 11).end == dt.date(2028, 2, 29)  # a leap year
    assert PeriodKey(2025, 9).end == dt.date(2025, 12, 31)
    assert str(PeriodKey(2025, 3)) == "2025-03"
    assert PeriodKey.parse("2025-03", "p") == PeriodKey(2025, 3)
    for bad in ("2025-13", "2025-00", "25-01", "2025/01", "1999-01"):
        with pytest.raises(InvalidArgument):
            PeriodKey.parse(bad, "p")


def test_period_states_and_posting() -> None:
    period = Period("E23000010", "pcc", PeriodKey(2025, 2), PeriodState.OPEN, INFO)
    assert check_postable(period, "l", dt.date(2025, 5, 3)) == PeriodKey(2025, 2)
    closed = period.closed(INFO)
    with pytest.raises(FailedPrecondition) as err:
        check_postable(closed, "l", dt.date(2025, 5, 3))
    assert err.value.reason == "PERIOD_CLOSED"
    with pytest.raises(FailedPrecondition) as err:
        check_postable(None, "l", dt.date(2025, 5, 3))
    assert err.value.reason == "NO_OPEN_PERIOD"
    locked = closed.locked(INFO)
    with pytest.raises(FailedPrecondition) as err:
        locked.reopened(INFO)
    assert err.value.reason == "PERIOD_LOCKED"
    with pytest.raises(FailedPrecondition) as err:
        check_postable(locked, "l", dt.date(2025, 5, 3))
    assert err.value.reason == "PERIOD_CLOSED"
    assert closed.reopened(INFO).state is PeriodState.OPEN
    with pytest.raises(FailedPrecondition):
        period.locked(INFO)  # only a closed period locks


def _chart() -> ChartView:
    accounts = {
        "1000": Account(
            "E23000010", "1000", "Bank", AccountType.ASSET, SubjectiveHeading.BALANCE_SHEET, INFO
        ),
        "5100": Account(
            "E23000010",
            "5100",
            "Supplies",
            AccountType.EXPENDITURE,
            SubjectiveHeading.SUPPLIES_AND_SERVICES,
            INFO,
        ),
    }
    return ChartView(accounts, frozenset({"LP100"}), frozenset({"pcc", "chief-constable"}))


def test_journal_lines_balance_to_the_penny_and_every_problem_is_reported() -> None:
    lines = [
        LineInput("5100", "LP100", D("100.10"), None),
        LineInput("1000", "", None, D("100.10")),
    ]
    checked = checked_lines(lines, _chart(), "pcc")
    assert balanced(checked)
    with pytest.raises(InvalidArgument) as err:
        checked_lines(
            [LineInput("5100", "LP100", D("100.10"), None), LineInput("1000", "", None, D("100.09"))],
            _chart(),
            "pcc",
        )
    assert [v.field for v in err.value.violations] == ["journal.lines"]
    assert "must equal credits" in err.value.violations[0].description
    with pytest.raises(InvalidArgument) as err:
        checked_lines(
            [
                LineInput("9999", "LP100", D("1"), None),
                LineInput("5100", "", D("1"), None),
                LineInput("1000", "NOPE", None, D("0.001")),
                LineInput("1000", "", D("1"), D("1")),
                LineInput("1000", "", None, D("-5"), counterparty_ledger="pcc"),
            ],
            _chart(),
            "pcc",
        )
    assert {v.field for v in err.value.violations} == {
        "journal.lines[0].account",
        "journal.lines[1].cost_centre",
        "journal.lines[2].cost_centre",
        "journal.lines[2].credit",
        "journal.lines[3]",
        "journal.lines[4].credit",
        "journal.lines[4].counterparty_ledger",
    }
    with pytest.raises(InvalidArgument):
        checked_lines([LineInput("1000", "", D("1"), None)], _chart(), "pcc")


def test_split_by_drivers_is_exact_and_fair() -> None:
    assert split_by_drivers(D("100.00"), [D(1), D(1), D(1)]) == [D("33.34"), D("33.33"), D("33.33")]
    assert split_by_drivers(D("1000.00"), [D("0.5"), D("0.3"), D("0.2")]) == [
        D("500.00"),
        D("300.00"),
        D("200.00"),
    ]
    assert split_by_drivers(D("0.05"), [D(2), D(1), D(0)]) == [D("0.03"), D("0.02"), D("0.00")]
    with pytest.raises(ValueError, match="drivers"):
        split_by_drivers(D("1.00"), [D(0), D(0)])


@given(
    st.integers(min_value=1, max_value=10**11),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(any),
)
def test_split_by_drivers_always_adds_up(pence: int, drivers: list[int]) -> None:
    amount = D(pence) / 100
    parts = split_by_drivers(amount, [D(d) for d in drivers])
    assert sum(parts) == amount
    total = sum(drivers)
    for part, d in zip(parts, drivers, strict=True):
        assert abs(part - amount * d / total) < D("0.01")


def _budget(amount: str, committed: str = "0") -> Budget:
    return Budget(
        "E23000010", "pcc", "b-1", "LP100", "5100", PeriodKey(2025, 1), D(amount), D(committed), 0, INFO
    )


def test_available_and_the_budget_check() -> None:
    position = BudgetPosition(_budget("1000.00", "300.00"), actual=D("200.00"))
    assert position.available == D("500.00")
    check_commitment(position, D("500.00"), "", may_override=False)
    with pytest.raises(FailedPrecondition) as err:
        check_commitment(position, D("500.01"), "", may_override=False)
    assert err.value.reason == "BUDGET_EXCEEDED"
    assert err.value.metadata["available"] == "500.00"
    with pytest.raises(PermissionDenied) as denied:
        check_commitment(position, D("900"), "urgent mutual aid", may_override=False)
    assert denied.value.reason == "OVERRIDE_NOT_PERMITTED"
    check_commitment(position, D("900"), "urgent mutual aid", may_override=True)


def test_commitment_consume_and_release() -> None:
    c = Commitment("E23000010", "pcc", "c-1", "b-1", D("100.00"), D(0), D(0), "PO-1", "", INFO)
    c = c.consuming(D("60.00"), INFO)
    assert c.open_amount == D("40.00")
    with pytest.raises(FailedPrecondition) as err:
        c.consuming(D("40.01"), INFO)
    assert err.value.reason == "EXCEEDS_OPEN_AMOUNT"
    c = c.releasing(INFO)
    assert (c.released, c.open_amount, c.state.value) == (D("40.00"), D("0.00"), "CLOSED")
    with pytest.raises(FailedPrecondition) as err:
        c.releasing(INFO)
    assert err.value.reason == "COMMITMENT_CLOSED"


def test_a_release_keeps_what_was_received_and_not_yet_invoiced() -> None:
    c = Commitment("E23000010", "pcc", "c-1", "b-1", D("100.00"), D("20.00"), D(0), "PO-1", "", INFO)
    # Received 50.00, invoiced 20.00: 30.00 stays open for the invoices, 50.00 goes back.
    kept = c.releasing(INFO, D("50.00"))
    assert (kept.released, kept.open_amount, kept.state.value) == (D("50.00"), D("30.00"), "OPEN")
    # Never more than is open, and nothing below what is consumed.
    assert c.releasing(INFO, D("500.00")) is c  # all received: nothing released
    assert c.releasing(INFO, D("10.00")).released == D("80.00")
    assert c.releasing(INFO).released == D("80.00")
    # Invoices then consume what was kept, and the commitment closes.
    closed = kept.consuming_to(D("50.00"), INFO)
    assert (closed.consumed, closed.open_amount, closed.state.value) == (D("50.00"), D("0.00"), "CLOSED")
    with pytest.raises(FailedPrecondition) as err:
        closed.releasing(INFO, D("50.00"))
    assert err.value.reason == "COMMITMENT_CLOSED"


ORDER = OrderEvidence(
    order_lines=(OrderLine("1", D(10), D("20.00")), OrderLine("2", D(5), D("500.00"))),
    receipt_lines=(ReceiptLine("1", D(6)), ReceiptLine("1", D(4)), ReceiptLine("2", D(3))),
)


def test_three_way_match_inside_tolerance() -> None:
    billed = [BilledLine(0, "1", D(10), D("20.40")), BilledLine(1, "2", D(3), D("499.00"))]
    assert three_way_match(billed, ORDER) == []  # 2% over on line 1; under on line 2


def test_three_way_match_outside_tolerance() -> None:
    found = three_way_match(
        [
            BilledLine(0, "1", D(10), D("20.41")),  # just over 2%
            BilledLine(1, "2", D(4), D("500.00")),  # only 3 received
            BilledLine(2, "9", D(1), D("1.00")),  # not on the order
        ],
        ORDER,
    )
    assert [(f.line, f.code) for f in found] == [
        (0, PRICE_OUT_OF_TOLERANCE),
        (1, QUANTITY_NOT_RECEIVED),
        (2, NOT_ON_ORDER),
    ]
    # The absolute limit binds on expensive items: 1% over £500 is £5.00, within both...
    assert three_way_match([BilledLine(0, "2", D(3), D("505.00"))], ORDER) == []
    # ... but £5.01 over is not, although it is within 2%.
    assert [f.code for f in three_way_match([BilledLine(0, "2", D(3), D("505.01"))], ORDER)] == [
        PRICE_OUT_OF_TOLERANCE
    ]
    # Two invoice lines against one order line add up.
    found = three_way_match([BilledLine(0, "1", D(8), D(20)), BilledLine(1, "1", D(3), D(20))], ORDER)
    assert [(f.line, f.code) for f in found] == [(1, QUANTITY_OVER_ORDERED)]
    # A quantity tolerance lets a small over-delivery through.
    loose = Tolerance(quantity_percent=D("50"))
    assert three_way_match([BilledLine(0, "2", D("4"), D(500))], ORDER, loose) == []


def test_supplied_order_source_is_the_interim_adapter() -> None:
    assert SuppliedOrderSource(ORDER).evidence("E23000010", "PO-1") is ORDER
    assert SuppliedOrderSource(None).evidence("E23000010", "PO-1") is None


def test_a_caller_states_the_evidence_only_of_an_order_outside_the_suite() -> None:
    stated = CallerOrderSource(ORDER, lambda organisation, order: order.startswith("organisations/"))
    assert stated.evidence("E23000010", "PO-1") is ORDER
    with pytest.raises(InvalidArgument) as refused:
        stated.evidence("E23000010", "organisations/E23000010/purchaseOrders/po-1")
    assert [v.field for v in refused.value.violations] == ["match_data"]


def _fact(received: str, due: str, gross: str, paid: str | None) -> PaymentFact:
    return PaymentFact(
        dt.date.fromisoformat(received),
        dt.date.fromisoformat(due),
        D(gross),
        dt.date.fromisoformat(paid) if paid else None,
    )


# Hand-computed: paid in the period A 20 days, B 30, C 31, D 61, G 32 -> mean 174/5 = 34.80;
# 1-30: A, B (40%); 31-60: C, G (40%); 61+: D (20%). Due in the period: A 1000, B 200, C 300,
# D 400, E 500 (never paid), F 600 (paid after the period) = 3000; not paid in it 1100 = 36.67%.
COMPLIANCE_FACTS = [
    _fact("2025-04-01", "2025-05-01", "1000.00", "2025-04-21"),  # A
    _fact("2025-04-10", "2025-05-10", "200.00", "2025-05-10"),  # B
    _fact("2025-05-01", "2025-05-31", "300.00", "2025-06-01"),  # C
    _fact("2025-06-01", "2025-07-01", "400.00", "2025-08-01"),  # D
    _fact("2025-09-01", "2025-09-25", "500.00", None),  # E
    _fact("2025-09-10", "2025-09-30", "600.00", "2025-10-05"),  # F
    _fact("2025-03-01", "2025-03-31", "700.00", "2025-04-02"),  # G
]


def test_payments_compliance_figures_against_a_hand_computed_fixture() -> None:
    start, end = six_month_period(dt.date(2025, 9, 30))
    assert start == dt.date(2025, 4, 1)
    f = compliance_figures(COMPLIANCE_FACTS, start, end)
    assert f.payments == 5
    assert f.mean_days == D("34.80")
    assert (f.percent_within_30, f.percent_31_to_60, f.percent_61_or_more) == (
        D("40.00"),
        D("40.00"),
        D("20.00"),
    )
    assert (f.sums_due, f.sums_due_not_paid, f.percent_due_not_paid) == (
        D("3000.00"),
        D("1100.00"),
        D("36.67"),
    )
    # The next period: F paid 25 days after receipt; nothing else paid or due in it.
    g = compliance_figures(COMPLIANCE_FACTS, *six_month_period(dt.date(2026, 3, 31)))
    assert (g.payments, g.mean_days, g.percent_within_30, g.sums_due) == (1, D("25.00"), D("100.00"), D("0"))
    assert g.percent_due_not_paid == D("0.00")
    with pytest.raises(InvalidArgument):
        six_month_period(dt.date(2025, 6, 30))


def _item(day: str, amount: str, vat: str = "0.00", name: str = "Acme Ltd") -> SpendItem:
    return SpendItem(
        body="PCC for West Yorkshire",
        date=dt.date.fromisoformat(day),
        transaction=f"i-{day}",
        recipient=name,
        department="Leeds, district",
        expense_type="Supplies",
        purpose="Body armour",
        amount=D(amount),
        irrecoverable_vat=D(vat),
        merchant_category="Supplies and services",
    )


def test_spend_files() -> None:
    items = over_threshold(
        [_item("2025-05-02", "500.00"), _item("2025-05-01", "500.01"), _item("2025-05-03", "540.00", "90.00")]
    )
    assert [i.amount for i in items] == [D("500.01"), D("540.00")]  # over £500, by date
    police = spend_csv(SpendFileFormat.POLICE_MONTHLY, items)
    assert police == (
        "Body,Date,Transaction number,Recipient,Expense type,Purpose,Amount\r\n"
        "PCC for West Yorkshire,01/05/2025,i-2025-05-01,Acme Ltd,Supplies,Body armour,500.01\r\n"
        "PCC for West Yorkshire,03/05/2025,i-2025-05-03,Acme Ltd,Supplies,Body armour,540.00\r\n"
    )
    lgtc = spend_csv(SpendFileFormat.LGTC_QUARTERLY, items[1:])
    assert lgtc.splitlines()[1] == (
        'PCC for West Yorkshire,03/05/2025,"Leeds, district",Acme Ltd,Body armour,540.00,90.00,'
        "Supplies and services,i-2025-05-03"
    )
    assert file_range(SpendFileFormat.POLICE_MONTHLY, dt.date(2026, 2, 1)) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    assert file_range(SpendFileFormat.LGTC_QUARTERLY, dt.date(2026, 1, 1)) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 3, 31),
    )
    with pytest.raises(InvalidArgument):
        file_range(SpendFileFormat.LGTC_QUARTERLY, dt.date(2025, 5, 1))
    with pytest.raises(InvalidArgument):
        file_range(SpendFileFormat.POLICE_MONTHLY, dt.date(2025, 5, 2))


def _vat_line(use: VatUse, net: str, vat: str) -> InvoiceLine:
    return InvoiceLine("5100", "LP100", "x", D(1), D(net), D(net), D(vat), use)


def test_vat_analysis_and_the_exempt_de_minimis() -> None:
    start, end = dt.date(2025, 4, 1), dt.date(2026, 3, 31)
    a = vat_analysis(
        [
            _vat_line(VatUse.NON_BUSINESS, "100000.00", "20000.00"),
            _vat_line(VatUse.BUSINESS, "5000.00", "1000.00"),
            _vat_line(VatUse.EXEMPT, "40000.00", "8000.00"),
        ],
        start,
        end,
    )
    assert a.months == 12
    assert [(r.use, r.vat) for r in a.rows] == [
        (VatUse.NON_BUSINESS, D("20000.00")),
        (VatUse.BUSINESS, D("1000.00")),
        (VatUse.EXEMPT, D("8000.00")),
    ]
    # £8,000 over 12 months is above £625 a month (£7,500), and 27.59% of all VAT: significant.
    assert a.exempt_percent == D("27.59")
    assert not a.exempt_insignificant
    small = vat_analysis(
        [_vat_line(VatUse.NON_BUSINESS, "1", "2000.00"), _vat_line(VatUse.EXEMPT, "1", "7500.00")], start, end
    )
    assert small.exempt_insignificant  # exactly £625 a month on average
    # Over £625 a month, and a share of 4.9955%: under 5%, though it shows rounded as 5.00.
    share = vat_analysis(
        [_vat_line(VatUse.NON_BUSINESS, "1", "190009.00"), _vat_line(VatUse.EXEMPT, "1", "9991.00")],
        start,
        end,
    )
    assert share.exempt_percent == D("5.00") and share.exempt_insignificant
    at_limit = vat_analysis(
        [_vat_line(VatUse.NON_BUSINESS, "1", "190000.00"), _vat_line(VatUse.EXEMPT, "1", "10000.00")],
        start,
        end,
    )
    assert at_limit.exempt_percent == D("5.00") and not at_limit.exempt_insignificant  # 5% is not under
    with pytest.raises(InvalidArgument):
        vat_analysis([], dt.date(2025, 4, 2), end)
