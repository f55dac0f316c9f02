"""Finance's tables. Money is integer pence (BigInteger); quantities and unit prices are
exact decimal text. Journals and their lines are append-only."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, DateTime, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import PartyOwned, TenantOwned, new_metadata
from libs.common.kernel_tables import add_kernel_tables
from libs.common.persistence import Recorded


class Base(DeclarativeBase):
    metadata = new_metadata()


KERNEL = add_kernel_tables(Base.metadata)

# journals, journal_lines and budget_revisions are append-only: their migration protects
# them (libs/common/append_only.py), so the application role may insert and read only.


class LedgerRow(TenantOwned, Recorded, Base):
    __tablename__ = "ledgers"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    entity_kind: Mapped[str] = mapped_column(String(40))
    creditors_account: Mapped[str] = mapped_column(String(12))
    vat_account: Mapped[str] = mapped_column(String(12))
    bank_account: Mapped[str] = mapped_column(String(12))
    recharges_account: Mapped[str] = mapped_column(String(12))


class AccountRow(TenantOwned, Recorded, Base):
    __tablename__ = "accounts"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    subjective: Mapped[str] = mapped_column(String(40))


class CostCentreRow(TenantOwned, Recorded, Base):
    __tablename__ = "cost_centres"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    poa_category: Mapped[str] = mapped_column(String(40))


class PeriodRow(TenantOwned, Recorded, Base):
    __tablename__ = "periods"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    financial_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(10))


class JournalRow(TenantOwned, Recorded, Base):
    __tablename__ = "journals"
    # One reversal per journal: a second is refused by the database too.
    __table_args__ = (UniqueConstraint("organisation_code", "ledger_id", "reversal_of"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    posting_date: Mapped[dt.date] = mapped_column(Date)
    financial_year: Mapped[int] = mapped_column(Integer)
    period: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(20))
    source_resource: Mapped[str] = mapped_column(String(300))
    reversal_of: Mapped[str | None] = mapped_column(String(63))


class JournalLineRow(TenantOwned, Base):
    __tablename__ = "journal_lines"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    journal_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_code: Mapped[str] = mapped_column(String(12))
    cost_centre_code: Mapped[str] = mapped_column(String(12))
    debit_pence: Mapped[int] = mapped_column(BigInteger)
    credit_pence: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(500))
    counterparty_ledger: Mapped[str] = mapped_column(String(63))


class BalanceRow(TenantOwned, Base):
    """Debits and credits per ledger, period, account, cost centre and intra-group
    counterparty, kept up to date in the transaction of every posting, so that reports
    never read the lines."""

    __tablename__ = "ledger_balances"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    financial_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    cost_centre_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    counterparty_ledger: Mapped[str] = mapped_column(String(63), primary_key=True)
    debit_pence: Mapped[int] = mapped_column(BigInteger)
    credit_pence: Mapped[int] = mapped_column(BigInteger)


class AccountBalanceRow(TenantOwned, Base):
    """The same per account (no cost centre): what the trial balance by account reads, so
    that its cost follows the size of the chart, not the number of cost centres."""

    __tablename__ = "account_balances"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    financial_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    counterparty_ledger: Mapped[str] = mapped_column(String(63), primary_key=True)
    debit_pence: Mapped[int] = mapped_column(BigInteger)
    credit_pence: Mapped[int] = mapped_column(BigInteger)


class BudgetRow(TenantOwned, Recorded, Base):
    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint(
            "organisation_code", "ledger_id", "cost_centre_code", "account_code", "financial_year", "period"
        ),
    )

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    cost_centre_code: Mapped[str] = mapped_column(String(12))
    account_code: Mapped[str] = mapped_column(String(12))
    financial_year: Mapped[int] = mapped_column(Integer)
    period: Mapped[int] = mapped_column(Integer)
    amount_pence: Mapped[int] = mapped_column(BigInteger)
    # The open amount of the budget's commitments, kept with them under the row's lock.
    committed_pence: Mapped[int] = mapped_column(BigInteger)
    revisions: Mapped[int] = mapped_column(Integer)


class BudgetRevisionRow(TenantOwned, Base):
    __tablename__ = "budget_revisions"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    previous_pence: Mapped[int] = mapped_column(BigInteger)
    amount_pence: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    principal: Mapped[str] = mapped_column(String(200))
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CommitmentRow(TenantOwned, Recorded, Base):
    __tablename__ = "commitments"
    # A budget's commitments, in the order they were raised (ListCommitments by budget).
    __table_args__ = (Index("ix_commitments_budget", "organisation_code", "ledger_id", "budget_id", "id"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(63))
    amount_pence: Mapped[int] = mapped_column(BigInteger)
    consumed_pence: Mapped[int] = mapped_column(BigInteger)
    released_pence: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(200))
    override_reason: Mapped[str] = mapped_column(String(500))


class InvoiceRow(TenantOwned, Recorded, Base):
    __tablename__ = "invoices"
    __table_args__ = (
        # Across the organisation's ledgers: one supplier invoice is owed by one body, and
        # captured in the PCC's ledger and again in the chief constable's it would be paid
        # twice. Compared by its key (invoice_number_key), not as typed. A cancelled one
        # frees its number, to be captured again where it belongs.
        Index(
            "uq_invoices_supplier_invoice_key",
            "organisation_code",
            "supplier",
            "supplier_invoice_key",
            unique=True,
            postgresql_where=text("state <> 'CANCELLED'"),
            sqlite_where=text("state <> 'CANCELLED'"),
        ),
        Index("ix_invoices_commitment", "organisation_code", "ledger_id", "commitment"),
        Index("ix_invoices_purchase_order_key", "organisation_code", "purchase_order_key"),
        Index("ix_invoices_due", "organisation_code", "ledger_id", "state", "due_date"),
        Index("ix_invoices_paid_date", "organisation_code", "paid_date"),
        Index("ix_invoices_due_date", "organisation_code", "due_date"),
    )

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    supplier: Mapped[str] = mapped_column(String(300))
    supplier_display_name: Mapped[str] = mapped_column(String(200))
    supplier_invoice_number: Mapped[str] = mapped_column(String(100))
    supplier_invoice_key: Mapped[str] = mapped_column(String(300))
    invoice_date: Mapped[dt.date] = mapped_column(Date)
    received_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    purchase_order: Mapped[str] = mapped_column(String(100))
    # invoice_number_key of an external reference, the name of a suite order (purchase_order_key).
    purchase_order_key: Mapped[str] = mapped_column(String(300))
    commitment: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20))
    match_state: Mapped[str] = mapped_column(String(20))
    # JSON list of [line, code, description]: read whole, never queried.
    discrepancies: Mapped[str] = mapped_column(Text)
    journal_id: Mapped[str] = mapped_column(String(300))
    posting_date: Mapped[dt.date | None] = mapped_column(Date)
    payment_run_id: Mapped[str] = mapped_column(String(300))
    paid_date: Mapped[dt.date | None] = mapped_column(Date)
    gross_pence: Mapped[int] = mapped_column(BigInteger)
    # JSON {"order_lines": [[line, quantity, unit price]], "receipt_lines": [[line, quantity]]}
    # of the last match, "" before one.
    match_evidence: Mapped[str] = mapped_column(Text, server_default="")
    cancellation_reason: Mapped[str] = mapped_column(Text, server_default="")


class InvoiceLineRow(TenantOwned, Base):
    __tablename__ = "invoice_lines"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_code: Mapped[str] = mapped_column(String(12))
    cost_centre_code: Mapped[str] = mapped_column(String(12))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[str] = mapped_column(String(40))
    unit_price: Mapped[str] = mapped_column(String(40))
    net_pence: Mapped[int] = mapped_column(BigInteger)
    vat_pence: Mapped[int] = mapped_column(BigInteger)
    vat_use: Mapped[str] = mapped_column(String(20))
    order_line: Mapped[str] = mapped_column(String(40))


class PaymentRunRow(TenantOwned, Recorded, Base):
    __tablename__ = "payment_runs"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    payment_date: Mapped[dt.date] = mapped_column(Date)
    due_by: Mapped[dt.date] = mapped_column(Date)
    journal_id: Mapped[str] = mapped_column(String(300))
    total_pence: Mapped[int] = mapped_column(BigInteger)
    # Newline-joined invoice ids: read whole, never queried.
    invoices: Mapped[str] = mapped_column(Text)


class RechargeRow(PartyOwned, Recorded, Base):
    """Owned by the charging organisation; the charged one (counterparty) sees it too."""

    __tablename__ = "recharges"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    counterparty_code: Mapped[str] = mapped_column(String(9), index=True)
    ledger_id: Mapped[str] = mapped_column(String(63))
    amount_pence: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(500))
    posting_date: Mapped[dt.date] = mapped_column(Date)
    income_account: Mapped[str] = mapped_column(String(12))
    cost_centre_code: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(20))
    journal_id: Mapped[str] = mapped_column(String(300))
    counterparty_ledger_id: Mapped[str] = mapped_column(String(300))
    counterparty_journal_id: Mapped[str] = mapped_column(String(300))
    allocation_id: Mapped[str] = mapped_column(String(63))
    decline_reason: Mapped[str] = mapped_column(String(500), server_default="")
    cancel_reason: Mapped[str] = mapped_column(String(500), server_default="")
    cancellation_journal_id: Mapped[str] = mapped_column(String(300), server_default="")
