"""Finance: ledgers, chart of accounts, periods, journals and balances, budgets and
commitments, invoices and payments, recharges; and the kernel tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from libs.common.append_only import protect_append_only
from libs.common.migrations import create_kernel_tables, enable_tenant_isolation

# Tables owned by one organisation (the recharges table is owned by two).
TENANT_TABLES = (
    "ledgers",
    "accounts",
    "cost_centres",
    "periods",
    "journals",
    "journal_lines",
    "ledger_balances",
    "account_balances",
    "budgets",
    "budget_revisions",
    "commitments",
    "invoices",
    "invoice_lines",
    "payment_runs",
)
# The application role may insert and read these, never change or delete them.
APPEND_ONLY = ("journals", "journal_lines", "budget_revisions")


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kernel_tables()
    op.create_table(
        "accounts",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("subjective", sa.String(length=40), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "code", name=op.f("pk_accounts")),
    )
    op.create_table(
        "budget_revisions",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("budget_id", sa.String(length=63), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("previous_pence", sa.BigInteger(), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation_code", "ledger_id", "budget_id", "revision", name=op.f("pk_budget_revisions")
        ),
    )
    op.create_table(
        "budgets",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("cost_centre_code", sa.String(length=12), nullable=False),
        sa.Column("account_code", sa.String(length=12), nullable=False),
        sa.Column("financial_year", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("committed_pence", sa.BigInteger(), nullable=False),
        sa.Column("revisions", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "ledger_id", "id", name=op.f("pk_budgets")),
        sa.UniqueConstraint(
            "organisation_code",
            "ledger_id",
            "cost_centre_code",
            "account_code",
            "financial_year",
            "period",
            name=op.f(
                "uq_budgets_organisation_code_ledger_id_cost_centre_code_account_code_financial_year_period"
            ),
        ),
    )
    op.create_table(
        "commitments",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("budget_id", sa.String(length=63), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("consumed_pence", sa.BigInteger(), nullable=False),
        sa.Column("released_pence", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("override_reason", sa.String(length=500), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "ledger_id", "id", name=op.f("pk_commitments")),
    )
    op.create_table(
        "cost_centres",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("poa_category", sa.String(length=40), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "code", name=op.f("pk_cost_centres")),
    )
    op.create_table(
        "invoice_lines",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("invoice_id", sa.String(length=63), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("account_code", sa.String(length=12), nullable=False),
        sa.Column("cost_centre_code", sa.String(length=12), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit_price", sa.String(length=40), nullable=False),
        sa.Column("net_pence", sa.BigInteger(), nullable=False),
        sa.Column("vat_pence", sa.BigInteger(), nullable=False),
        sa.Column("vat_use", sa.String(length=20), nullable=False),
        sa.Column("order_line", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation_code", "ledger_id", "invoice_id", "line_no", name=op.f("pk_invoice_lines")
        ),
    )
    op.create_table(
        "invoices",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("supplier", sa.String(length=300), nullable=False),
        sa.Column("supplier_display_name", sa.String(length=200), nullable=False),
        sa.Column("supplier_invoice_number", sa.String(length=100), nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column("received_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("purchase_order", sa.String(length=100), nullable=False),
        sa.Column("commitment", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("match_state", sa.String(length=20), nullable=False),
        sa.Column("discrepancies", sa.Text(), nullable=False),
        sa.Column("journal_id", sa.String(length=300), nullable=False),
        sa.Column("posting_date", sa.Date(), nullable=True),
        sa.Column("payment_run_id", sa.String(length=300), nullable=False),
        sa.Column("paid_date", sa.Date(), nullable=True),
        sa.Column("gross_pence", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "ledger_id", "id", name=op.f("pk_invoices")),
        sa.UniqueConstraint(
            "organisation_code",
            "ledger_id",
            "supplier",
            "supplier_invoice_number",
            name=op.f("uq_invoices_organisation_code_ledger_id_supplier_supplier_invoice_number"),
        ),
    )
    op.create_table(
        "journal_lines",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("journal_id", sa.String(length=63), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("account_code", sa.String(length=12), nullable=False),
        sa.Column("cost_centre_code", sa.String(length=12), nullable=False),
        sa.Column("debit_pence", sa.BigInteger(), nullable=False),
        sa.Column("credit_pence", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("counterparty_ledger", sa.String(length=63), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation_code", "ledger_id", "journal_id", "line_no", name=op.f("pk_journal_lines")
        ),
    )
    op.create_table(
        "journals",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("posting_date", sa.Date(), nullable=False),
        sa.Column("financial_year", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_resource", sa.String(length=300), nullable=False),
        sa.Column("reversal_of", sa.String(length=63), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "ledger_id", "id", name=op.f("pk_journals")),
        sa.UniqueConstraint(
            "organisation_code",
            "ledger_id",
            "reversal_of",
            name=op.f("uq_journals_organisation_code_ledger_id_reversal_of"),
        ),
    )
    op.create_table(
        "ledger_balances",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("financial_year", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("account_code", sa.String(length=12), nullable=False),
        sa.Column("cost_centre_code", sa.String(length=12), nullable=False),
        sa.Column("counterparty_ledger", sa.String(length=63), nullable=False),
        sa.Column("debit_pence", sa.BigInteger(), nullable=False),
        sa.Column("credit_pence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation_code",
            "ledger_id",
            "financial_year",
            "period",
            "account_code",
            "cost_centre_code",
            "counterparty_ledger",
            name=op.f("pk_ledger_balances"),
        ),
    )
    op.create_table(
        "ledgers",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("entity_kind", sa.String(length=40), nullable=False),
        sa.Column("creditors_account", sa.String(length=12), nullable=False),
        sa.Column("vat_account", sa.String(length=12), nullable=False),
        sa.Column("bank_account", sa.String(length=12), nullable=False),
        sa.Column("recharges_account", sa.String(length=12), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_ledgers")),
    )
    op.create_table(
        "payment_runs",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("payment_date", sa.Date(), nullable=False),
        sa.Column("due_by", sa.Date(), nullable=False),
        sa.Column("journal_id", sa.String(length=300), nullable=False),
        sa.Column("total_pence", sa.BigInteger(), nullable=False),
        sa.Column("invoices", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "ledger_id", "id", name=op.f("pk_payment_runs")),
    )
    op.create_table(
        "periods",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("financial_year", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation_code", "ledger_id", "financial_year", "number", name=op.f("pk_periods")
        ),
    )
    op.create_table(
        "recharges",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("counterparty_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("amount_pence", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("posting_date", sa.Date(), nullable=False),
        sa.Column("income_account", sa.String(length=12), nullable=False),
        sa.Column("cost_centre_code", sa.String(length=12), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("journal_id", sa.String(length=300), nullable=False),
        sa.Column("counterparty_ledger_id", sa.String(length=300), nullable=False),
        sa.Column("counterparty_journal_id", sa.String(length=300), nullable=False),
        sa.Column("allocation_id", sa.String(length=63), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_recharges")),
    )
    op.create_table(
        "account_balances",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("ledger_id", sa.String(length=63), nullable=False),
        sa.Column("financial_year", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("account_code", sa.String(length=12), nullable=False),
        sa.Column("counterparty_ledger", sa.String(length=63), nullable=False),
        sa.Column("debit_pence", sa.BigInteger(), nullable=False),
        sa.Column("credit_pence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation_code",
            "ledger_id",
            "financial_year",
            "period",
            "account_code",
            "counterparty_ledger",
            name=op.f("pk_account_balances"),
        ),
    )
    op.create_index("ix_recharges_counterparty_code", "recharges", ["counterparty_code"])
    op.create_index("ix_invoices_due", "invoices", ["organisation_code", "ledger_id", "state", "due_date"])
    op.create_index("ix_invoices_paid_date", "invoices", ["organisation_code", "paid_date"])
    op.create_index("ix_invoices_due_date", "invoices", ["organisation_code", "due_date"])
    for table in TENANT_TABLES:
        enable_tenant_isolation(table)
    enable_tenant_isolation("recharges", "organisation_code", "counterparty_code")
    for table in APPEND_ONLY:
        protect_append_only(table)


def downgrade() -> None:
    for table in (*TENANT_TABLES, "recharges"):
        op.drop_table(table)
    for table in ("idempotency_keys", "audit_chain_heads", "audit_records"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS backoffice_refuse_change()")
