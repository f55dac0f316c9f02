"""Ledgers, chart, periods and journals end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import grpc
import pytest
from google.type import date_pb2, money_pb2

from backoffice.finance.v1 import finance_service_pb2 as pb
from backoffice.finance.v1 import ledger_pb2
from libs.common.proto_mapping import date_to_proto
from tests.finance.books import FY, MAY, amount, check_books_balance, cr, dr, gbp, set_up_books
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Caller, Suite, execute_as_owner, failure


def _tb(
    caller: Caller, ledger: str, *, through_period: int = 0, by_cost_centre: bool = False
) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    tb = caller.finance.GetTrialBalance(
        pb.GetTrialBalanceRequest(
            ledger=ledger, financial_year=FY, through_period=through_period, by_cost_centre=by_cost_centre
        )
    )
    return {(r.account, r.cost_centre): (amount(r.debit), amount(r.credit)) for r in tb.rows}


def test_chart_ledgers_and_periods(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    f = books.officer.finance
    ledgers = f.ListLedgers(pb.ListLedgersRequest(parent=books.parent)).ledgers
    assert [(x.name, x.entity_kind) for x in ledgers] == [
        (books.cc, ledger_pb2.ENTITY_KIND_CHIEF_CONSTABLE),
        (books.pcc, ledger_pb2.ENTITY_KIND_POLICE_AND_CRIME_COMMISSIONER),
    ]
    accounts = f.ListAccounts(pb.ListAccountsRequest(parent=books.parent, page_size=4))
    assert [a.name.rsplit("/", 1)[1] for a in accounts.accounts] == ["1000", "1200", "1300", "2000"]
    more = f.ListAccounts(
        pb.ListAccountsRequest(parent=books.parent, page_size=100, page_token=accounts.next_page_token)
    )
    assert len(more.accounts) == 7 and not more.next_page_token
    centres = f.ListCostCentres(pb.ListCostCentresRequest(parent=books.parent)).cost_centres
    assert {c.name.rsplit("/", 1)[1]: c.poa_category for c in centres}[
        "IN200"
    ] == ledger_pb2.POA_CATEGORY_INVESTIGATIONS
    periods = f.ListPeriods(pb.ListPeriodsRequest(parent=books.pcc)).periods
    assert len(periods) == 12
    assert periods[0].name == f"{books.pcc}/periods/2025-01"
    assert (periods[0].start_date.month, periods[11].end_date.year, periods[11].end_date.month) == (
        4,
        2026,
        3,
    )
    assert all(p.state == ledger_pb2.PERIOD_STATE_OPEN for p in periods)
    again = failure(f.OpenFinancialYear, pb.OpenFinancialYearRequest(ledger=books.pcc, financial_year=FY))
    assert again.code is grpc.StatusCode.ALREADY_EXISTS and again.reason == "YEAR_ALREADY_OPEN"
    dup = failure(
        f.CreateAccount,
        pb.CreateAccountRequest(
            parent=books.parent,
            account_id="1000",
            account=ledger_pb2.Account(
                display_name="x",
                type=ledger_pb2.ACCOUNT_TYPE_ASSET,
                subjective=ledger_pb2.SUBJECTIVE_HEADING_BALANCE_SHEET,
            ),
        ),
    )
    assert dup.code is grpc.StatusCode.ALREADY_EXISTS and dup.reason == "ACCOUNT_ALREADY_EXISTS"
    bad = failure(
        f.CreateAccount,
        pb.CreateAccountRequest(
            parent=books.parent,
            account_id="x1",
            account=ledger_pb2.Account(
                display_name="",
                type=ledger_pb2.ACCOUNT_TYPE_INCOME,
                subjective=ledger_pb2.SUBJECTIVE_HEADING_EMPLOYEES,
            ),
        ),
    )
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad.violations) == {"account_id", "account.display_name", "account.subjective"}
    bad = failure(
        f.CreateLedger,
        pb.CreateLedgerRequest(parent=books.parent, ledger_id="X", ledger=ledger_pb2.Ledger(vat_account="v")),
    )
    assert set(bad.violations) == {"ledger_id"}  # the id is checked first
    bad = failure(
        f.CreateLedger,
        pb.CreateLedgerRequest(
            parent=books.parent, ledger_id="spare", ledger=ledger_pb2.Ledger(vat_account="v")
        ),
    )
    assert set(bad.violations) == {"ledger.display_name", "ledger.entity_kind", "ledger.vat_account"}


def test_journals_post_balanced_and_balances_follow(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    grant = books.journal(books.pcc, MAY, dr("1000", "1000000.00"), cr("8000", "1000000.00", "PC400"))
    assert grant.name.startswith(f"{books.pcc}/journals/j-")
    assert grant.period == f"{books.pcc}/periods/2025-02"
    assert amount(grant.total) == Decimal("1000000.00")
    assert grant.source == ledger_pb2.JOURNAL_SOURCE_MANUAL
    books.journal(
        books.pcc,
        MAY,
        dr("4100", "0.10", "LP100"),
        dr("4100", "0.20", "IN200"),
        cr("1000", "0.30"),
        text="exact decimals: 0.1 + 0.2 = 0.3",
    )
    got = books.officer.finance.GetJournal(pb.GetJournalRequest(name=grant.name))
    assert got == grant
    tb = _tb(books.officer, books.pcc)
    assert tb[("1000", "")] == (Decimal("999999.70"), Decimal("0.00"))
    assert tb[("8000", "")] == (Decimal("0.00"), Decimal("1000000.00"))
    by_cc = _tb(books.officer, books.pcc, by_cost_centre=True)
    assert by_cc[("4100", "LP100")] == (Decimal("0.10"), Decimal("0.00"))
    assert by_cc[("4100", "IN200")] == (Decimal("0.20"), Decimal("0.00"))
    # Periods before May hold nothing.
    assert _tb(books.officer, books.pcc, through_period=1) == {}
    listed = books.officer.finance.ListJournals(pb.ListJournalsRequest(parent=books.pcc)).journals
    assert listed[0].name == grant.name and len(listed) == 2
    check_books_balance(suite, WEST_YORKSHIRE)


def test_unbalanced_and_bad_journals_are_invalid_argument_and_post_nothing(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    f = failure(books.journal, books.pcc, MAY, dr("5100", "100.00", "LP100"), cr("1000", "99.99"))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {"journal.lines"}
    assert "must equal credits" in f.violations["journal.lines"]
    f = failure(
        books.journal,
        books.pcc,
        MAY,
        dr("5100", "100.00"),
        cr("9999", "100.00", "LP100"),
        ledger_pb2.JournalLine(account="1000", debit=gbp("1"), credit=gbp("1")),
        dr("1000", "0.001"),
    )
    assert set(f.violations) == {
        "journal.lines[0].cost_centre",
        "journal.lines[1].account",
        "journal.lines[2]",
        "journal.lines[3].debit",
    }
    f = failure(
        books.officer.finance.PostJournal,
        pb.PostJournalRequest(parent=books.pcc, journal=ledger_pb2.Journal(description=" ")),
    )
    assert {"journal.description", "journal.posting_date", "journal.lines"} <= set(f.violations)
    # Amounts and dates that cannot be read are all named in one answer, not the first alone.
    f = failure(
        books.officer.finance.PostJournal,
        pb.PostJournalRequest(
            parent=books.pcc,
            journal=ledger_pb2.Journal(
                description="bad amounts",
                posting_date=date_pb2.Date(year=FY, month=13, day=1),
                lines=[
                    ledger_pb2.JournalLine(
                        account="5100", debit=money_pb2.Money(currency_code="EUR", units=5)
                    ),
                    ledger_pb2.JournalLine(
                        account="1000", credit=money_pb2.Money(currency_code="GBP", units=5, nanos=10**9)
                    ),
                ],
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {
        "journal.posting_date",
        "journal.lines[0].debit.currency_code",
        "journal.lines[1].credit.nanos",
    }
    f = failure(books.journal, f"{books.parent}/ledgers/nope", MAY, dr("1000", "1"), cr("3000", "1"))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert _tb(books.officer, books.pcc) == {}
    check_books_balance(suite, WEST_YORKSHIRE)


def test_reversal_is_linked_and_nets_to_nothing(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    original = books.journal(books.cc, MAY, dr("5500", "123.45", "LP100"), cr("1000", "123.45"))
    # Not dated before the original, in its period or in an earlier one (or year).
    early = failure(
        books.officer.finance.ReverseJournal,
        pb.ReverseJournalRequest(
            name=original.name, posting_date=date_to_proto(MAY - dt.timedelta(days=1)), reason="wrong"
        ),
    )
    assert early.code is grpc.StatusCode.INVALID_ARGUMENT and set(early.violations) == {"posting_date"}
    assert "2025-05-15" in early.violations["posting_date"]
    reversal = books.officer.finance.ReverseJournal(
        pb.ReverseJournalRequest(
            name=original.name, posting_date=date_to_proto(dt.date(2025, 6, 2)), reason="wrong cost centre"
        )
    )
    assert reversal.reversal_of == original.name
    assert reversal.source == ledger_pb2.JOURNAL_SOURCE_REVERSAL
    assert [(x.account, amount(x.credit)) for x in reversal.lines if x.HasField("credit")] == [
        ("5500", Decimal("123.45"))
    ]
    assert (
        books.officer.finance.GetJournal(pb.GetJournalRequest(name=original.name)).reversed_by
        == reversal.name
    )
    again = failure(
        books.officer.finance.ReverseJournal,
        pb.ReverseJournalRequest(name=original.name, posting_date=date_to_proto(MAY), reason="again"),
    )
    assert again.code is grpc.StatusCode.FAILED_PRECONDITION and again.reason == "ALREADY_REVERSED"
    of_reversal = failure(
        books.officer.finance.ReverseJournal,
        pb.ReverseJournalRequest(name=reversal.name, posting_date=date_to_proto(MAY), reason="undo"),
    )
    assert of_reversal.reason == "IS_A_REVERSAL"
    no_reason = failure(books.officer.finance.ReverseJournal, pb.ReverseJournalRequest(name=original.name))
    assert set(no_reason.violations) == {"reason", "posting_date"}
    # May carries the journal, June its reversal; over the year, nothing.
    assert _tb(books.officer, books.cc, through_period=2)[("5500", "")] == (
        Decimal("123.45"),
        Decimal("0.00"),
    )
    assert _tb(books.officer, books.cc) == {}
    check_books_balance(suite, WEST_YORKSHIRE)


def test_closed_and_locked_periods_refuse_postings(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    f = books.officer.finance
    may = f"{books.pcc}/periods/2025-02"
    closed = f.ClosePeriod(pb.ClosePeriodRequest(name=may))
    assert closed.state == ledger_pb2.PERIOD_STATE_CLOSED
    refused = failure(books.journal, books.pcc, MAY, dr("1000", "1.00"), cr("3000", "1.00"))
    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "PERIOD_CLOSED"
    # The other entity's May is its own, and still open.
    books.journal(books.cc, MAY, dr("1000", "1.00"), cr("3000", "1.00"))
    no_year = failure(books.journal, books.pcc, dt.date(2026, 4, 1), dr("1000", "1.00"), cr("3000", "1.00"))
    assert no_year.reason == "NO_OPEN_PERIOD"
    stale = failure(f.ReopenPeriod, pb.ReopenPeriodRequest(name=may, reason="late accrual", etag='W/"1"'))
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    reopened = f.ReopenPeriod(pb.ReopenPeriodRequest(name=may, reason="late accrual", etag=closed.etag))
    assert reopened.state == ledger_pb2.PERIOD_STATE_OPEN
    books.journal(books.pcc, MAY, dr("1000", "2.00"), cr("3000", "2.00"))
    not_closed = failure(f.LockPeriod, pb.LockPeriodRequest(name=may))
    assert not_closed.reason == "PERIOD_NOT_CLOSED"
    f.ClosePeriod(pb.ClosePeriodRequest(name=may))
    locked = f.LockPeriod(pb.LockPeriodRequest(name=may))
    assert locked.state == ledger_pb2.PERIOD_STATE_LOCKED
    never = failure(f.ReopenPeriod, pb.ReopenPeriodRequest(name=may, reason="please"))
    assert never.code is grpc.StatusCode.FAILED_PRECONDITION and never.reason == "PERIOD_LOCKED"
    assert (
        failure(books.journal, books.pcc, MAY, dr("1000", "1.00"), cr("3000", "1.00")).reason
        == "PERIOD_CLOSED"
    )
    missing = failure(f.ClosePeriod, pb.ClosePeriodRequest(name=f"{books.pcc}/periods/2030-01"))
    assert missing.code is grpc.StatusCode.NOT_FOUND
    check_books_balance(suite, WEST_YORKSHIRE)


def test_a_retried_post_posts_once(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    request = pb.PostJournalRequest(
        parent=books.pcc,
        journal=ledger_pb2.Journal(
            posting_date=date_to_proto(MAY),
            description="once",
            lines=[dr("1000", "50.00"), cr("3000", "50.00")],
        ),
        request_id="5b0b3c1e-9f0e-4a51-9d57-0d7b7f1f0a01",
    )
    first = books.officer.finance.PostJournal(request)
    assert books.officer.finance.PostJournal(request) == first
    assert _tb(books.officer, books.pcc)[("1000", "")] == (Decimal("50.00"), Decimal("0.00"))
    check_books_balance(suite, WEST_YORKSHIRE)


def test_group_trial_balance_eliminates_transactions_between_the_entities(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    books.journal(books.pcc, MAY, dr("1000", "500.00"), cr("8000", "500.00", "PC400"))
    # The PCC funds the chief constable: both sides name the other entity.
    books.journal(books.pcc, MAY, dr("5900", "300.00", "PC400", "chief-constable"), cr("1000", "300.00"))
    books.journal(books.cc, MAY, dr("1000", "300.00"), cr("8000", "300.00", "LP100", "pcc"))
    books.journal(books.cc, MAY, dr("4100", "250.00", "LP100"), cr("1000", "250.00"))
    group = _tb(books.officer, f"{books.parent}/ledgers/-")
    assert group == {
        ("1000", ""): (Decimal("250.00"), Decimal("0.00")),
        ("4100", ""): (Decimal("250.00"), Decimal("0.00")),
        ("8000", ""): (Decimal("0.00"), Decimal("500.00")),
    }
    assert _tb(books.officer, books.cc)[("8000", "")] == (Decimal("0.00"), Decimal("300.00"))
    bad = failure(books.journal, books.pcc, MAY, dr("1000", "1.00", counterparty="pcc"), cr("3000", "1.00"))
    assert set(bad.violations) == {"journal.lines[0].counterparty_ledger"}
    check_books_balance(suite, WEST_YORKSHIRE)
    # A further £100 the PCC tags as paid to the chief constable, who has not booked it: the
    # two sides no longer agree, so nothing between them is eliminated and the group still
    # balances, the difference in plain sight (5900 £400 against 8000's £300 from the PCC).
    books.journal(books.pcc, MAY, dr("5900", "100.00", "PC400", "chief-constable"), cr("1000", "100.00"))
    assert _tb(books.officer, f"{books.parent}/ledgers/-") == {
        ("1000", ""): (Decimal("150.00"), Decimal("0.00")),
        ("4100", ""): (Decimal("250.00"), Decimal("0.00")),
        ("5900", ""): (Decimal("400.00"), Decimal("0.00")),
        ("8000", ""): (Decimal("0.00"), Decimal("800.00")),
    }
    check_books_balance(suite, WEST_YORKSHIRE)


def test_group_trial_balance_keeps_an_accrual_the_other_side_books_differently(suite: Suite) -> None:
    books = set_up_books(suite, SOUTH_YORKSHIRE)
    group = f"{books.parent}/ledgers/-"
    # Each side tags both lines of its accrual, so each side's tagged lines net to zero on
    # their own; the PCC's £300 and the chief constable's £250 still do not agree.
    books.journal(
        books.pcc,
        MAY,
        dr("5900", "300.00", "PC400", "chief-constable"),
        cr("2000", "300.00", counterparty="chief-constable"),
    )
    books.journal(
        books.cc, MAY, dr("1300", "250.00", counterparty="pcc"), cr("8000", "250.00", "LP100", "pcc")
    )
    assert _tb(books.officer, group) == {
        ("1300", ""): (Decimal("250.00"), Decimal("0.00")),
        ("2000", ""): (Decimal("0.00"), Decimal("300.00")),
        ("5900", ""): (Decimal("300.00"), Decimal("0.00")),
        ("8000", ""): (Decimal("0.00"), Decimal("250.00")),
    }
    # The chief constable books the other £50: income against expenditure and debtor
    # against creditor agree, and the whole accrual is eliminated.
    books.journal(books.cc, MAY, dr("1300", "50.00", counterparty="pcc"), cr("8000", "50.00", "LP100", "pcc"))
    assert _tb(books.officer, group) == {}
    check_books_balance(suite, SOUTH_YORKSHIRE)


def test_a_journal_is_held_to_the_largest_amount_in_all(suite: Suite) -> None:
    books = set_up_books(suite, WEST_YORKSHIRE)
    half = "60000000000000.00"  # each line within the largest amount, the two beyond it
    big = failure(
        books.journal, books.pcc, MAY, dr("1000", half), dr("1000", half), cr("3000", half), cr("3000", half)
    )
    assert big.code is grpc.StatusCode.INVALID_ARGUMENT and set(big.violations) == {"journal.lines"}
    assert "100,000,000,000,000" in big.violations["journal.lines"]


@pytest.mark.postgres
def test_a_balance_beyond_its_column_is_refused_with_a_reason_and_nothing_kept(postgres_suite: Suite) -> None:
    """Balances add up journals each within the largest amount; a sum past 64-bit pence is
    a refusal with a reason, not INTERNAL. (SQLite turns such a sum into a float instead;
    no body's books come near it.)"""
    books = set_up_books(postgres_suite, WEST_YORKSHIRE)
    settings = postgres_suite.settings
    execute_as_owner(
        settings,
        "finance",
        "INSERT INTO account_balances (organisation_code, ledger_id, financial_year, period, "
        "account_code, counterparty_ledger, debit_pence, credit_pence) "
        "VALUES (:org, :ledger, 2025, 2, '1000', '', :big, 0)",
        org=WEST_YORKSHIRE,
        ledger=books.cc.rsplit("/", 1)[1],
        big=2**63 - 100,
    )
    journals = "SELECT count(*) FROM journals"
    before = execute_as_owner(settings, "finance", journals)
    refused = failure(books.journal, books.cc, MAY, dr("1000", "1.00"), cr("3000", "1.00"))
    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "AMOUNT_OUT_OF_RANGE"
    assert execute_as_owner(settings, "finance", journals) == before
