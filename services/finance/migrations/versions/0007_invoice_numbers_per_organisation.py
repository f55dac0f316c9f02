"""A supplier's invoice number is captured once per organisation, not once per ledger: the
same invoice captured in the PCC's ledger and in the chief constable's would be paid twice.
A cancelled invoice (captured in error) frees its number, so the unique index leaves
cancelled invoices out, and they keep their reason.

An existing database holding such a pair fails this upgrade, naming the invoices to
resolve first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PER_LEDGER = "uq_invoices_organisation_code_ledger_id_supplier_supplier_invoice_number"
_PER_ORGANISATION = "uq_invoices_supplier_invoice_number"
_NOT_CANCELLED = sa.text("state <> 'CANCELLED'")


def upgrade() -> None:
    # Said plainly, rather than as the index's failure: which invoices to resolve first.
    pairs = op.get_bind().execute(
        sa.text(
            "SELECT organisation_code, supplier, supplier_invoice_number, count(*) FROM invoices "
            "GROUP BY organisation_code, supplier, supplier_invoice_number HAVING count(*) > 1"
        )
    )
    found = [f"{org} {supplier} {number} ({n} ledgers)" for org, supplier, number, n in pairs]
    if found:
        raise RuntimeError(
            "these supplier invoices are captured in more than one ledger of an organisation; "
            "resolve them before this upgrade: " + "; ".join(found[:20])
        )
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint(op.f(_PER_LEDGER), type_="unique")
        batch.add_column(sa.Column("cancellation_reason", sa.Text(), nullable=False, server_default=""))
    op.create_index(
        _PER_ORGANISATION,
        "invoices",
        ["organisation_code", "supplier", "supplier_invoice_number"],
        unique=True,
        postgresql_where=_NOT_CANCELLED,
        sqlite_where=_NOT_CANCELLED,
    )


def downgrade() -> None:
    op.drop_index(_PER_ORGANISATION, table_name="invoices")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("cancellation_reason")
        batch.create_unique_constraint(
            op.f(_PER_LEDGER), ["organisation_code", "ledger_id", "supplier", "supplier_invoice_number"]
        )
