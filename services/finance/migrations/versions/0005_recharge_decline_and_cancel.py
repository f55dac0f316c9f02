"""Recharges declined by the organisation charged and cancelled by the charging one: their
reasons, and the reversal of the charging side's journal.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = (("decline_reason", 500), ("cancel_reason", 500), ("cancellation_journal_id", 300))


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("recharges", sa.Column(name, sa.String(length), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("recharges") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
