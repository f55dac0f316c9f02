"""Finance's isolation and authorisation: other organisations see nothing; agreements
open exactly their function; roles decide what a person may do; postings are
append-only in the database itself."""

from __future__ import annotations

import datetime as dt

import grpc
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from backoffice.directory.v1 import agreement_pb2
from backoffice.directory.v1 import directory_service_pb2 as dpb
from backoffice.finance.v1 import finance_service_pb2 as pb
from backoffice.finance.v1 import payables_pb2
from libs.common.config import Settings
from libs.common.proto_mapping import date_to_proto
from tests.finance.books import FY, MAY, check_books_balance, cr, dr, gbp, set_up_books
from tests.finance.test_payables import _capture
from tests.support import SOUTH_YORKSHIRE, UNIT, WEST_YORKSHIRE, Suite, failure, today


def test_another_organisation_sees_nothing_and_changes_nothing(suite: Suite) -> None:
    west = set_up_books(suite, WEST_YORKSHIRE)
    south = set_up_books(suite, SOUTH_YORKSHIRE)
    journal = west.journal(west.pcc, MAY, dr("1000", "10.00"), cr("3000", "10.00"))
    f = south.officer.finance
    assert failure(f.GetJournal, pb.GetJournalRequest(name=journal.name)).code is grpc.StatusCode.NOT_FOUND
    tb = failure(f.GetTrialBalance, pb.GetTrialBalanceRequest(ledger=west.pcc, financial_year=FY))
    assert tb.code is grpc.StatusCode.NOT_FOUND
    assert not f.ListJournals(pb.ListJournalsRequest(parent=west.pcc)).journals
    assert not f.ListLedgers(pb.ListLedgersRequest(parent=west.parent)).ledgers
    posted = failure(south.journal, west.pcc, MAY, dr("1000", "1.00"), cr("3000", "1.00"))
    assert posted.code is grpc.StatusCode.PERMISSION_DENIED and posted.reason == "NO_AGREEMENT"
    reversed_ = failure(
        f.ReverseJournal,
        pb.ReverseJournalRequest(name=journal.name, posting_date=date_to_proto(MAY), reason="x"),
    )
    assert reversed_.code is grpc.StatusCode.NOT_FOUND
    closed = failure(f.ClosePeriod, pb.ClosePeriodRequest(name=f"{west.pcc}/periods/2025-02"))
    assert closed.code is grpc.StatusCode.NOT_FOUND
    compliance = failure(
        f.GetPaymentsCompliance,
        pb.GetPaymentsComplianceRequest(
            organisation=west.parent, period_end=date_to_proto(dt.date(2025, 9, 30))
        ),
    )
    assert compliance.code is grpc.StatusCode.NOT_FOUND
    check_books_balance(suite, WEST_YORKSHIRE)


def test_roles_decide_what_a_person_may_do(suite: Suite) -> None:
    west = set_up_books(suite, WEST_YORKSHIRE)
    for role in ("finance.budget_holder", "finance.payables", "finance.auditor", "finance.cfo"):
        caller = suite.caller(WEST_YORKSHIRE, role)
        f = failure(caller.finance.PostJournal, pb.PostJournalRequest(parent=west.pcc))
        assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "MISSING_PERMISSION", role
    auditor = suite.caller(WEST_YORKSHIRE, "finance.auditor")
    assert auditor.finance.GetTrialBalance(pb.GetTrialBalanceRequest(ledger=west.pcc, financial_year=FY))
    f = failure(auditor.finance.CreatePaymentRun, pb.CreatePaymentRunRequest(parent=west.pcc))
    assert f.reason == "MISSING_PERMISSION"
    f = failure(west.officer.finance.CreateInvoice, pb.CreateInvoiceRequest(parent=west.pcc))
    assert f.reason == "MISSING_PERMISSION"  # the finance officer does not run accounts payable
    operator = suite.caller(WEST_YORKSHIRE, "platform.operator")
    f = failure(
        operator.finance.GetTrialBalance, pb.GetTrialBalanceRequest(ledger=west.pcc, financial_year=FY)
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED


def test_a_unit_runs_payables_for_a_force_only_under_agreement(suite: Suite) -> None:
    west = set_up_books(suite, WEST_YORKSHIRE)
    unit_clerk = suite.caller(UNIT, "finance.payables", subject="unit-clerk")
    before = failure(_capture, unit_clerk, west.cc, "U-1", MAY)
    assert before.code is grpc.StatusCode.PERMISSION_DENIED and before.reason == "NO_AGREEMENT"
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    admin.directory.CreateAgreement(
        dpb.CreateAgreementRequest(
            agreement=agreement_pb2.Agreement(
                display_name="Accounts payable",
                kind=agreement_pb2.AGREEMENT_KIND_SERVICE_PROVISION,
                organisation=west.parent,
                counterparty=f"organisations/{UNIT}",
                functions=["finance.payables"],
                start_date=date_to_proto(today() - dt.timedelta(days=1)),
            )
        )
    )
    invoice = _capture(unit_clerk, west.cc, "U-1", MAY)
    assert invoice.audit.update_acting_organisation == UNIT
    approver = suite.caller(UNIT, "finance.payables", subject="unit-approver")
    approved = approver.finance.ApproveInvoice(
        pb.ApproveInvoiceRequest(name=invoice.name, posting_date=date_to_proto(MAY))
    )
    assert approved.state == payables_pb2.INVOICE_STATE_APPROVED
    # finance.payables opens invoices, not the ledger: the unit may not post journals.
    unit_officer = suite.caller(UNIT, "finance.officer")
    f = failure(
        unit_officer.finance.PostJournal,
        pb.PostJournalRequest(parent=west.cc, journal=pb.PostJournalRequest().journal),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"
    check_books_balance(suite, WEST_YORKSHIRE)


def test_postings_are_append_only_in_the_database(settings: Settings, suite: Suite) -> None:
    """Whatever the application does, the database refuses to change a posted line: on
    PostgreSQL the service's role lacks UPDATE and DELETE; on both, a trigger refuses."""
    west = set_up_books(suite, WEST_YORKSHIRE)
    west.journal(west.pcc, MAY, dr("1000", "10.00"), cr("3000", "10.00"))
    url = settings.database_url_for("finance")
    if settings.database_url:
        role = settings.app_role_for("finance")
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            conn.execute("SET search_path TO finance")
            conn.execute("SELECT set_config('app.orgs', %s, true)", (WEST_YORKSHIRE,))
            assert conn.execute("SELECT count(*) FROM journal_lines").fetchone() == (2,)
            for statement in (
                "UPDATE journal_lines SET debit_pence = 0",
                "DELETE FROM journal_lines",
                "UPDATE journals SET description = 'x'",
                "DELETE FROM budget_revisions",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
                conn.rollback()
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
                conn.execute("SET search_path TO finance")
            # Even the owner meets the trigger.
            conn.execute("RESET ROLE")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE journal_lines SET debit_pence = 0")
    else:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                for statement in ("UPDATE journal_lines SET debit_pence = 0", "DELETE FROM journals"):
                    with pytest.raises(DBAPIError, match="append-only"):
                        conn.execute(text(statement))
        finally:
            engine.dispose()
    check_books_balance(suite, WEST_YORKSHIRE)


def test_bad_names_and_paging(suite: Suite) -> None:
    west = set_up_books(suite, WEST_YORKSHIRE)
    f = west.officer.finance
    bad = failure(f.GetJournal, pb.GetJournalRequest(name="journals/1"))
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT and set(bad.violations) == {"name"}
    bad = failure(f.ListAccounts, pb.ListAccountsRequest(parent=west.parent, page_size=-1))
    assert set(bad.violations) == {"page_size"}
    first = f.ListAccounts(pb.ListAccountsRequest(parent=west.parent, page_size=2))
    bad = failure(
        f.ListCostCentres, pb.ListCostCentresRequest(parent=west.parent, page_token=first.next_page_token)
    )
    assert set(bad.violations) == {"page_token"}
    bad = failure(
        f.GetTrialBalance, pb.GetTrialBalanceRequest(ledger=west.pcc, financial_year=1900, through_period=13)
    )
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT
    missing = failure(f.GetBudget, pb.GetBudgetRequest(name=f"{west.cc}/budgets/b-none"))
    assert missing.code is grpc.StatusCode.NOT_FOUND
    usd = gbp("1.00")
    usd.currency_code = "USD"
    f2 = failure(
        f.ReviseBudget, pb.ReviseBudgetRequest(name=f"{west.cc}/budgets/b-x", amount=usd, reason="x")
    )
    assert set(f2.violations) == {"amount.currency_code"}
