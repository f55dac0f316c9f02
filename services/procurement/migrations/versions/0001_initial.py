"""The supplier register and the kernel tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from libs.common.migrations import create_kernel_tables, enable_tenant_isolation

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kernel_tables()
    op.create_table(
        "suppliers",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("companies_house_number", sa.String(8)),
        sa.Column("vat_number", sa.String(14)),
        sa.Column("address_lines", sa.Text, nullable=False),
        sa.Column("postcode", sa.String(10), nullable=False),
        sa.Column("sme", sa.Boolean, nullable=False),
        sa.Column("vcse", sa.Boolean, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(200), nullable=False),
        sa.Column("update_principal", sa.String(200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(9)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name="pk_suppliers"),
        sa.UniqueConstraint(
            "organisation_code",
            "companies_house_number",
            name="uq_suppliers_organisation_code_companies_house_number",
        ),
    )
    enable_tenant_isolation("suppliers")


def downgrade() -> None:
    op.drop_table("suppliers")
    for table in ("idempotency_keys", "audit_chain_heads", "audit_records"):
        op.drop_table(table)
