"""Procurement's tables. Money is integer pence, quantities integer millionths, prices
integer millionths of a pound: exact on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import PartyOwned, SharedWithParticipants, TenantOwned, new_metadata
from libs.common.kernel_tables import add_kernel_tables
from libs.common.persistence import VersionGuarded


class Base(DeclarativeBase):
    metadata = new_metadata()


KERNEL = add_kernel_tables(Base.metadata)


class SupplierRow(TenantOwned, VersionGuarded, Base):
    __tablename__ = "suppliers"
    __table_args__ = (UniqueConstraint("organisation_code", "companies_house_number"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # NULL when empty, so that the unique constraint only binds real numbers.
    companies_house_number: Mapped[str | None] = mapped_column(String(8))
    vat_number: Mapped[str | None] = mapped_column(String(14))
    # Newline-joined: a short ordered list, always read whole.
    address_lines: Mapped[str] = mapped_column(Text, default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    sme: Mapped[bool] = mapped_column(Boolean, default=False)
    vcse: Mapped[bool] = mapped_column(Boolean, default=False)
    bank_account_name: Mapped[str | None] = mapped_column(String(140))
    bank_sort_code: Mapped[str | None] = mapped_column(String(6))
    bank_account_number: Mapped[str | None] = mapped_column(String(8))
    debarment_reason: Mapped[str | None] = mapped_column(Text)
    debarment_date: Mapped[dt.date | None] = mapped_column(Date)
    debarment_record_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    debarment_recorded_by: Mapped[str | None] = mapped_column(String(200))


class PolicyRow(TenantOwned, VersionGuarded, Base):
    __tablename__ = "procurement_policies"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    # JSON: [{"up_to": "25000.00" | null, "approver_roles": [...]}, ...]
    approval_bands: Mapped[str] = mapped_column(Text)
    receipt_tolerance_percent: Mapped[int] = mapped_column(Integer)


class ContractParticipantRow(PartyOwned, Base):
    """organisation_code: the letting organisation; counterparty_code: a participant."""

    __tablename__ = "contract_participants"
    __table_args__ = (Index("ix_contract_participants_counterparty_code", "counterparty_code"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    counterparty_code: Mapped[str] = mapped_column(String(9), primary_key=True)


class ContractRow(SharedWithParticipants, VersionGuarded, Base):
    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("organisation_code", "reference"),)
    __participants__ = ContractParticipantRow
    __participant_key__ = "contract_id"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    reference: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(200))
    supplier_id: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(20))
    cpv_codes: Mapped[str] = mapped_column(Text)
    value_pence: Mapped[int] = mapped_column(BigInteger)
    irrecoverable_vat_pence: Mapped[int] = mapped_column(BigInteger)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    review_date: Mapped[dt.date | None] = mapped_column(Date)
    procurement_method: Mapped[str] = mapped_column(String(40))
    participants: Mapped[str] = mapped_column(Text)
    ocid: Mapped[str] = mapped_column(String(100))
    supplier_debarred: Mapped[bool] = mapped_column(Boolean, default=False)
    # JSON: [{"organisation": code, "quantity": "12.5", "value": "100.00"}, ...]
    allocations: Mapped[str] = mapped_column(Text, default="[]")


class RequisitionRow(TenantOwned, VersionGuarded, Base):
    __tablename__ = "requisitions"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    # JSON lines with decimal strings: exact, read whole with the requisition.
    lines: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), index=True)
    requester: Mapped[str] = mapped_column(String(200))
    gross_total_pence: Mapped[int] = mapped_column(BigInteger)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decide_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    approver_role: Mapped[str | None] = mapped_column(String(100))
    purchase_order: Mapped[str] = mapped_column(String(200), default="")


class PurchaseOrderRow(TenantOwned, VersionGuarded, Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        # One live order per requisition: a cancelled one frees it to be ordered again
        # (migration 0005).
        Index(
            "uq_purchase_orders_live_requisition",
            "organisation_code",
            "requisition",
            unique=True,
            postgresql_where=text("state <> 'CANCELLED'"),
            sqlite_where=text("state <> 'CANCELLED'"),
        ),
    )

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    requisition: Mapped[str] = mapped_column(String(200))
    contract: Mapped[str] = mapped_column(String(200))
    supplier: Mapped[str] = mapped_column(String(200))
    lines: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), index=True)
    delivery_address: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    issue_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closure_reason: Mapped[str] = mapped_column(Text)
    gross_total_pence: Mapped[int] = mapped_column(BigInteger)
    # Purchase-to-pay (migration 0004).
    budget: Mapped[str] = mapped_column(String(300), default="")
    commitment: Mapped[str] = mapped_column(String(300), default="")
    commitment_refusal: Mapped[str] = mapped_column(Text, default="")
    budget_override_reason: Mapped[str] = mapped_column(Text, default="")


class GoodsReceiptRow(TenantOwned, VersionGuarded, Base):
    __tablename__ = "goods_receipts"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    purchase_order_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    receipt_date: Mapped[dt.date] = mapped_column(Date)
    lines: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)


class DemandInviteeRow(PartyOwned, Base):
    """organisation_code: the lead; counterparty_code: an invited organisation."""

    __tablename__ = "demand_invitees"
    __table_args__ = (Index("ix_demand_invitees_counterparty_code", "counterparty_code"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    aggregation_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    counterparty_code: Mapped[str] = mapped_column(String(9), primary_key=True)


class DemandAggregationRow(SharedWithParticipants, VersionGuarded, Base):
    __tablename__ = "demand_aggregations"
    __participants__ = DemandInviteeRow
    __participant_key__ = "aggregation_id"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    cpv_code: Mapped[str] = mapped_column(String(10))
    invited: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    line_count: Mapped[int] = mapped_column(Integer)
    total_quantity_micro: Mapped[int] = mapped_column(BigInteger)
    total_value_pence: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(200))


class DemandLineRow(PartyOwned, VersionGuarded, Base):
    """organisation_code: the lead; counterparty_code: whose demand it is. The lead sees
    every line, a participant only its own."""

    __tablename__ = "demand_lines"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    aggregation_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    counterparty_code: Mapped[str] = mapped_column(String(9))
    description: Mapped[str] = mapped_column(Text)
    quantity_micro: Mapped[int] = mapped_column(BigInteger)
    estimated_unit_price_micro: Mapped[int] = mapped_column(BigInteger)
