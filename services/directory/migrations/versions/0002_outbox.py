"""The transactional outbox (libs/common/outbox.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

from libs.common.kernel_tables import OUTBOX_EVENTS
from libs.common.migrations import create_outbox_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table()


def downgrade() -> None:
    op.drop_table(OUTBOX_EVENTS)
