"""Tables every service keeps beside its own: the audit log and idempotency records.

Defined once here; each service adds them to its metadata and creates them in its first
migration (`libs.common.migrations.create_kernel_tables`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.schema import SchemaItem

AUDIT_RECORDS = "audit_records"
AUDIT_CHAIN_HEADS = "audit_chain_heads"
IDEMPOTENCY_KEYS = "idempotency_keys"
# Created by a later migration of each service (`libs.common.migrations.create_outbox_table`),
# so it is not in KERNEL_TABLE_COLUMNS, which the first migrations create.
OUTBOX_EVENTS = "outbox_events"
# Tables the application role may insert into and read, but never change or delete from.
APPEND_ONLY_TABLES = (AUDIT_RECORDS,)
TENANT_TABLES = (AUDIT_RECORDS, AUDIT_CHAIN_HEADS, IDEMPOTENCY_KEYS)


def audit_records_columns() -> list[SchemaItem]:
    return [
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        # The organisation whose data changed; its chain holds the record.
        Column("organisation_code", String(9), nullable=False),
        Column("chain_seq", BigInteger, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("principal", String(200), nullable=False),
        # Set when a shared-service unit acted for the organisation under an agreement.
        Column("acting_organisation", String(9), nullable=True),
        Column("method", String(200), nullable=False),
        Column("resource", String(300), nullable=False),
        Column("request_id", String(100), nullable=True),
        Column("before", Text, nullable=True),
        Column("after", Text, nullable=True),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        UniqueConstraint("organisation_code", "chain_seq"),
    ]


def audit_chain_heads_columns() -> list[SchemaItem]:
    return [
        Column("organisation_code", String(9), primary_key=True),
        Column("last_seq", BigInteger, nullable=False),
        Column("last_hash", String(64), nullable=False),
    ]


def idempotency_keys_columns() -> list[SchemaItem]:
    return [
        Column("organisation_code", String(9), nullable=False),
        Column("request_id", String(100), nullable=False),
        Column("method", String(200), nullable=False),
        Column("principal", String(200), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("response", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("organisation_code", "request_id"),
    ]


def outbox_events_columns() -> list[SchemaItem]:
    return [
        # Delivery order: per key, events go out in `seq` order.
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        # The event id: the receiver's request_id, so a redelivery has its effect once.
        Column("id", String(64), nullable=False, unique=True),
        Column("organisation_code", String(9), nullable=False),
        Column("topic", String(100), nullable=False),
        Column("key", String(300), nullable=False),
        Column("payload", Text, nullable=False),
        # PENDING, DELIVERED, PARKED or DISCARDED.
        Column("state", String(12), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False),
        Column("last_error", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("settled_at", DateTime(timezone=True), nullable=True),
    ]


# The relay's reads: a key's events in order, and what is due.
OUTBOX_EVENTS_INDEXES = {
    "ix_outbox_events_key_seq": ("key", "seq"),
    "ix_outbox_events_state_seq": ("state", "seq"),
}


KERNEL_TABLE_COLUMNS = {
    AUDIT_RECORDS: audit_records_columns,
    AUDIT_CHAIN_HEADS: audit_chain_heads_columns,
    IDEMPOTENCY_KEYS: idempotency_keys_columns,
}


@dataclass(frozen=True)
class KernelTables:
    audit_records: Table
    audit_chain_heads: Table
    idempotency_keys: Table
    outbox_events: Table


def add_kernel_tables(metadata: MetaData) -> KernelTables:
    tables = {name: Table(name, metadata, *columns()) for name, columns in KERNEL_TABLE_COLUMNS.items()}
    return KernelTables(
        audit_records=tables[AUDIT_RECORDS],
        audit_chain_heads=tables[AUDIT_CHAIN_HEADS],
        idempotency_keys=tables[IDEMPOTENCY_KEYS],
        outbox_events=Table(
            OUTBOX_EVENTS,
            metadata,
            *outbox_events_columns(),
            *(Index(name, *columns) for name, columns in OUTBOX_EVENTS_INDEXES.items()),
        ),
    )
