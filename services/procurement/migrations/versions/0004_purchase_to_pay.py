"""Purchase-to-pay: an order's finance budget, its commitment and finance's refusal.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("budget", "commitment", "commitment_refusal", "budget_override_reason")


def upgrade() -> None:
    with op.batch_alter_table("purchase_orders") as batch:
        batch.add_column(sa.Column("budget", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("commitment", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("commitment_refusal", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("budget_override_reason", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("purchase_orders") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
