"""What an invoice was matched on, and invoices by purchase order: a match, and again an
approval, counts what the other invoices of the order have billed, so that the same goods
are not paid for twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("match_evidence", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_invoices_purchase_order", "invoices", ["organisation_code", "purchase_order"])


def downgrade() -> None:
    op.drop_index("ix_invoices_purchase_order", table_name="invoices")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("match_evidence")
