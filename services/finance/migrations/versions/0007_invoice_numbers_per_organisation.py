"""A supplier's invoice number is captured once per organisation, not once per ledger: the
same invoice captured in the PCC's ledger and in the chief constable's would be paid twice.

An existing database holding such a pair fails this upgrade on the new constraint; the
pair must be resolved (one of them cancelled and its number corrected) first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PER_LEDGER = "uq_invoices_organisation_code_ledger_id_supplier_supplier_invoice_number"
_PER_ORGANISATION = "uq_invoices_organisation_code_supplier_supplier_invoice_number"


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint(op.f(_PER_LEDGER), type_="unique")
        batch.create_unique_constraint(
            op.f(_PER_ORGANISATION), ["organisation_code", "supplier", "supplier_invoice_number"]
        )


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint(op.f(_PER_ORGANISATION), type_="unique")
        batch.create_unique_constraint(
            op.f(_PER_LEDGER), ["organisation_code", "ledger_id", "supplier", "supplier_invoice_number"]
        )
