"""Commitments by budget: ListCommitments filtered on a budget pages through its
commitments in the order they were raised, not through the whole ledger's.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_commitments_budget", "commitments", ["organisation_code", "ledger_id", "budget_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_commitments_budget", table_name="commitments")
