"""Organisations (seeded with the reference list), agreements, and the kernel tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic import op

from libs.common.migrations import create_kernel_tables, enable_tenant_isolation
from libs.common.reference import reference_organisations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _record_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(200), nullable=False),
        sa.Column("update_principal", sa.String(200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(9)),
        sa.Column("version", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    create_kernel_tables()
    organisations = op.create_table(
        "organisations",
        sa.Column("code", sa.String(9), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("country", sa.String(20), nullable=False),
        *_record_columns(),
    )
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("organisation_code", sa.String(9), sa.ForeignKey("organisations.code"), nullable=False),
        sa.Column("counterparty_code", sa.String(9), sa.ForeignKey("organisations.code"), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("functions", sa.Text, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("terminate_time", sa.DateTime(timezone=True)),
        sa.Column("termination_reason", sa.Text, nullable=False, server_default=""),
        *_record_columns(),
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_in_order"),
        sa.CheckConstraint("organisation_code <> counterparty_code", name="two_parties"),
    )
    op.create_index("ix_agreements_organisation_code", "agreements", ["organisation_code"])
    op.create_index("ix_agreements_counterparty_code", "agreements", ["counterparty_code"])
    enable_tenant_isolation("agreements", "organisation_code", "counterparty_code")
    now = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    op.bulk_insert(
        organisations,
        [
            {
                "code": o.code,
                "display_name": o.display_name,
                "kind": o.kind,
                "country": o.country,
                "create_time": now,
                "update_time": now,
                "create_principal": "system/reference-data",
                "update_principal": "system/reference-data",
                "update_acting_organisation": None,
                "version": 1,
            }
            for o in reference_organisations()
        ],
    )


def downgrade() -> None:
    op.drop_table("agreements")
    op.drop_table("organisations")
    for table in ("idempotency_keys", "audit_chain_heads", "audit_records"):
        op.drop_table(table)
