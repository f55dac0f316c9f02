"""Debarment and bank details on suppliers; procurement policies, contracts and their
participants, requisitions, purchase orders, goods receipts, demand aggregation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from libs.common.migrations import enable_shared_isolation, enable_tenant_isolation

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _recorded() -> list[sa.Column[Any]]:
    return [
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_principal", sa.String(200), nullable=False),
        sa.Column("update_principal", sa.String(200), nullable=False),
        sa.Column("update_acting_organisation", sa.String(9)),
        sa.Column("version", sa.Integer, nullable=False),
    ]


def _key(*columns: str, table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=f"pk_{table}")


def upgrade() -> None:
    for column in (
        sa.Column("bank_account_name", sa.String(140)),
        sa.Column("bank_sort_code", sa.String(6)),
        sa.Column("bank_account_number", sa.String(8)),
        sa.Column("debarment_reason", sa.Text),
        sa.Column("debarment_date", sa.Date),
        sa.Column("debarment_record_time", sa.DateTime(timezone=True)),
        sa.Column("debarment_recorded_by", sa.String(200)),
    ):
        op.add_column("suppliers", column)

    op.create_table(
        "procurement_policies",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("approval_bands", sa.Text, nullable=False),
        sa.Column("receipt_tolerance_percent", sa.Integer, nullable=False),
        *_recorded(),
        _key("organisation_code", table="procurement_policies"),
    )
    enable_tenant_isolation("procurement_policies")

    op.create_table(
        "contract_participants",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("contract_id", sa.String(63), nullable=False),
        sa.Column("counterparty_code", sa.String(9), nullable=False),
        _key("organisation_code", "contract_id", "counterparty_code", table="contract_participants"),
    )
    op.create_index(
        "ix_contract_participants_counterparty_code", "contract_participants", ["counterparty_code"]
    )
    enable_tenant_isolation("contract_participants", "organisation_code", "counterparty_code")
    op.create_table(
        "contracts",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("reference", sa.String(50), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("supplier_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cpv_codes", sa.Text, nullable=False),
        sa.Column("value_pence", sa.BigInteger, nullable=False),
        sa.Column("irrecoverable_vat_pence", sa.BigInteger, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("review_date", sa.Date),
        sa.Column("procurement_method", sa.String(40), nullable=False),
        sa.Column("participants", sa.Text, nullable=False),
        sa.Column("ocid", sa.String(100), nullable=False),
        sa.Column("supplier_debarred", sa.Boolean, nullable=False),
        sa.Column("allocations", sa.Text, nullable=False),
        *_recorded(),
        _key("organisation_code", "id", table="contracts"),
        sa.UniqueConstraint(
            "organisation_code", "reference", name="uq_contracts_organisation_code_reference"
        ),
        sa.CheckConstraint("end_date >= start_date", name="ck_contracts_dates_in_order"),
    )
    enable_shared_isolation("contracts", "contract_participants", "contract_id")

    op.create_table(
        "requisitions",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("lines", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("gross_total_pence", sa.BigInteger, nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decide_time", sa.DateTime(timezone=True)),
        sa.Column("decision_reason", sa.Text),
        sa.Column("approver_role", sa.String(100)),
        sa.Column("purchase_order", sa.String(200), nullable=False),
        *_recorded(),
        _key("organisation_code", "id", table="requisitions"),
    )
    op.create_index("ix_requisitions_state", "requisitions", ["state"])
    enable_tenant_isolation("requisitions")

    op.create_table(
        "purchase_orders",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("requisition", sa.String(200), nullable=False),
        sa.Column("contract", sa.String(200), nullable=False),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column("lines", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("delivery_address", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("issue_time", sa.DateTime(timezone=True)),
        sa.Column("closure_reason", sa.Text, nullable=False),
        sa.Column("gross_total_pence", sa.BigInteger, nullable=False),
        *_recorded(),
        _key("organisation_code", "id", table="purchase_orders"),
        # One order per requisition, ever.
        sa.UniqueConstraint("requisition", name="uq_purchase_orders_requisition"),
    )
    op.create_index("ix_purchase_orders_state", "purchase_orders", ["state"])
    enable_tenant_isolation("purchase_orders")

    op.create_table(
        "goods_receipts",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("purchase_order_id", sa.String(63), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("receipt_date", sa.Date, nullable=False),
        sa.Column("lines", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        *_recorded(),
        _key("organisation_code", "purchase_order_id", "id", table="goods_receipts"),
    )
    enable_tenant_isolation("goods_receipts")

    op.create_table(
        "demand_invitees",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("aggregation_id", sa.String(63), nullable=False),
        sa.Column("counterparty_code", sa.String(9), nullable=False),
        _key("organisation_code", "aggregation_id", "counterparty_code", table="demand_invitees"),
    )
    op.create_index("ix_demand_invitees_counterparty_code", "demand_invitees", ["counterparty_code"])
    enable_tenant_isolation("demand_invitees", "organisation_code", "counterparty_code")
    op.create_table(
        "demand_aggregations",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("cpv_code", sa.String(10), nullable=False),
        sa.Column("invited", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("line_count", sa.Integer, nullable=False),
        sa.Column("total_quantity_micro", sa.BigInteger, nullable=False),
        sa.Column("total_value_pence", sa.BigInteger, nullable=False),
        sa.Column("contract", sa.String(200), nullable=False),
        *_recorded(),
        _key("organisation_code", "id", table="demand_aggregations"),
    )
    enable_shared_isolation("demand_aggregations", "demand_invitees", "aggregation_id")
    op.create_table(
        "demand_lines",
        sa.Column("organisation_code", sa.String(9), nullable=False),
        sa.Column("aggregation_id", sa.String(63), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("counterparty_code", sa.String(9), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("quantity_micro", sa.BigInteger, nullable=False),
        sa.Column("estimated_unit_price_micro", sa.BigInteger, nullable=False),
        *_recorded(),
        _key("organisation_code", "aggregation_id", "id", table="demand_lines"),
    )
    enable_tenant_isolation("demand_lines", "organisation_code", "counterparty_code")


def downgrade() -> None:
    for table in (
        "demand_lines",
        "demand_aggregations",
        "demand_invitees",
        "goods_receipts",
        "purchase_orders",
        "requisitions",
        "contracts",
        "contract_participants",
        "procurement_policies",
    ):
        op.drop_table(table)
    with op.batch_alter_table("suppliers") as batch:
        for column in (
            "bank_account_name",
            "bank_sort_code",
            "bank_account_number",
            "debarment_reason",
            "debarment_date",
            "debarment_record_time",
            "debarment_recorded_by",
        ):
            batch.drop_column(column)
