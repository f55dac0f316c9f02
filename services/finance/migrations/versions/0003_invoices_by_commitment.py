"""Invoices by commitment: what the invoices against one commitment have billed is read at
every approval.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_invoices_commitment", "invoices", ["organisation_code", "ledger_id", "commitment"])


def downgrade() -> None:
    op.drop_index("ix_invoices_commitment", table_name="invoices")
