"""HR: people, establishment, absence, training and vetting, pay records, transfers; and
the kernel tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from libs.common.migrations import create_kernel_tables, enable_tenant_isolation

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "vetting_clearances",
    "transfers",
    "training_records",
    "sickness_absences",
    "posts",
    "people",
    "pay_records",
    "org_units",
    "leave_requests",
    "grades",
    "assignments",
)


def upgrade() -> None:
    create_kernel_tables()
    op.create_table(
        "assignments",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.String(length=63), nullable=False),
        sa.Column("post_id", sa.String(length=63), nullable=False),
        sa.Column("fte_units", sa.Integer(), nullable=False),
        sa.Column("grade_id", sa.String(length=63), nullable=False),
        sa.Column("pay_point", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_person_id"), "assignments", ["person_id"], unique=False)
    op.create_index(op.f("ix_assignments_post_id"), "assignments", ["post_id"], unique=False)
    op.create_table(
        "grades",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("rank", sa.String(length=30), nullable=True),
        sa.Column("pay_points", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_grades")),
        sa.UniqueConstraint(
            "organisation_code", "display_name", name=op.f("uq_grades_organisation_code_display_name")
        ),
    )
    op.create_table(
        "leave_requests",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.String(length=63), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("days_tenths", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_leave_requests")),
    )
    op.create_index(op.f("ix_leave_requests_person_id"), "leave_requests", ["person_id"], unique=False)
    op.create_table(
        "org_units",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("parent_id", sa.String(length=63), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_org_units")),
    )
    op.create_table(
        "pay_records",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.String(length=63), nullable=False),
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("ordinary_pay_pence", sa.BigInteger(), nullable=False),
        sa.Column("period_bonus_pence", sa.BigInteger(), nullable=False),
        sa.Column("pay_period_days", sa.Integer(), nullable=False),
        sa.Column("weekly_hours_hundredths", sa.Integer(), nullable=False),
        sa.Column("annual_bonus_pence", sa.BigInteger(), nullable=False),
        sa.Column("full_pay", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_pay_records")),
        sa.UniqueConstraint(
            "organisation_code",
            "person_id",
            "snapshot_date",
            name=op.f("uq_pay_records_organisation_code_person_id_snapshot_date"),
        ),
    )
    op.create_index(op.f("ix_pay_records_snapshot_date"), "pay_records", ["snapshot_date"], unique=False)
    op.create_table(
        "people",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("worker_type", sa.String(length=30), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("preferred_name", sa.String(length=100), nullable=False),
        sa.Column("collar_number", sa.String(length=10), nullable=True),
        sa.Column("national_insurance_number", sa.String(length=9), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=20), nullable=False),
        sa.Column("ethnicity", sa.String(length=60), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("address_lines", sa.Text(), nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=False),
        sa.Column("full_time_leave_tenths", sa.Integer(), nullable=True),
        sa.Column("join_date", sa.Date(), nullable=False),
        sa.Column("leaving_date", sa.Date(), nullable=True),
        sa.Column("leaving_reason", sa.String(length=30), nullable=True),
        sa.Column("prior_service", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_people")),
        sa.UniqueConstraint(
            "organisation_code", "collar_number", name=op.f("uq_people_organisation_code_collar_number")
        ),
        sa.UniqueConstraint(
            "organisation_code",
            "national_insurance_number",
            name=op.f("uq_people_organisation_code_national_insurance_number"),
        ),
    )
    op.create_table(
        "posts",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("org_unit_id", sa.String(length=63), nullable=False),
        sa.Column("worker_type", sa.String(length=30), nullable=False),
        sa.Column("grade_id", sa.String(length=63), nullable=False),
        sa.Column("budgeted_fte_units", sa.BigInteger(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_posts")),
    )
    op.create_table(
        "sickness_absences",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.String(length=63), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("work_related", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_sickness_absences")),
    )
    op.create_index(op.f("ix_sickness_absences_person_id"), "sickness_absences", ["person_id"], unique=False)
    op.create_table(
        "training_records",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.String(length=63), nullable=False),
        sa.Column("course", sa.String(length=100), nullable=False),
        sa.Column("accreditation", sa.Boolean(), nullable=False),
        sa.Column("completed_date", sa.Date(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_training_records")),
    )
    op.create_index(
        op.f("ix_training_records_expiry_date"), "training_records", ["expiry_date"], unique=False
    )
    op.create_index(op.f("ix_training_records_person_id"), "training_records", ["person_id"], unique=False)
    op.create_table(
        "transfers",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("counterparty_code", sa.String(length=9), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("person_id", sa.String(length=63), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("display_name", sa.String(length=210), nullable=False),
        sa.Column("worker_type", sa.String(length=30), nullable=False),
        sa.Column("grade_display_name", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("receiving_person_id", sa.String(length=63), nullable=False),
        sa.Column("decline_reason", sa.String(length=500), nullable=False),
        sa.Column("package", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_transfers")),
    )
    op.create_index(op.f("ix_transfers_counterparty_code"), "transfers", ["counterparty_code"], unique=False)
    op.create_index(op.f("ix_transfers_person_id"), "transfers", ["person_id"], unique=False)
    op.create_table(
        "vetting_clearances",
        sa.Column("organisation_code", sa.String(length=9), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.String(length=63), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("granted_date", sa.Date(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=50), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(length=200), nullable=False),
        sa.Column("update_principal", sa.String(length=200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(length=9), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_code", "id", name=op.f("pk_vetting_clearances")),
    )
    op.create_index(
        op.f("ix_vetting_clearances_expiry_date"), "vetting_clearances", ["expiry_date"], unique=False
    )
    op.create_index(
        op.f("ix_vetting_clearances_person_id"), "vetting_clearances", ["person_id"], unique=False
    )
    # Transfers belong to both forces: either party's scope sees the row.
    enable_tenant_isolation("assignments")
    enable_tenant_isolation("grades")
    enable_tenant_isolation("leave_requests")
    enable_tenant_isolation("org_units")
    enable_tenant_isolation("pay_records")
    enable_tenant_isolation("people")
    enable_tenant_isolation("posts")
    enable_tenant_isolation("sickness_absences")
    enable_tenant_isolation("training_records")
    enable_tenant_isolation("transfers", "organisation_code", "counterparty_code")
    enable_tenant_isolation("vetting_clearances")


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
    for table in ("idempotency_keys", "audit_chain_heads", "audit_records"):
        op.drop_table(table)
