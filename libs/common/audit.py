"""The hash-chained, append-only audit log.

Each organisation has its own chain: record n stores the SHA-256 of its own content and
of record n-1's hash, and `audit_chain_heads` holds the last sequence number and hash.
Editing a record breaks its hash; deleting one breaks the sequence or the link; deleting
the newest breaks the head. `backoffice audit verify` walks every chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from libs.common.context import Call
from libs.common.kernel_tables import KernelTables

GENESIS = "0" * 64


def canonical_json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _utc_text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    material = json.dumps(
        [
            prev_hash,
            fields["organisation_code"],
            fields["chain_seq"],
            _utc_text(fields["occurred_at"]),
            fields["principal"],
            fields["acting_organisation"],
            fields["method"],
            fields["resource"],
            fields["request_id"],
            fields["before"],
            fields["after"],
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()


class AuditLog:
    """Appends audit records inside the caller's transaction."""

    def __init__(self, session: Session, tables: KernelTables, call: Call | None) -> None:
        self._session = session
        self._tables = tables
        self._call = call
        self.records_written = 0

    def record(
        self,
        organisation: str,
        resource: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        heads = self._tables.audit_chain_heads
        dialect = self._session.get_bind().dialect.name
        start = {"organisation_code": organisation, "last_seq": 0, "last_hash": GENESIS}
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(heads).values(start).on_conflict_do_nothing()
        else:
            stmt = sqlite.insert(heads).values(start).on_conflict_do_nothing()
        self._session.execute(stmt)
        # The row lock orders concurrent writers of one organisation's chain.
        last_seq, last_hash = self._session.execute(
            select(heads.c.last_seq, heads.c.last_hash)
            .where(heads.c.organisation_code == organisation)
            .with_for_update()
        ).one()
        call = self._call
        acting = None
        if call and call.principal and call.principal.organisation != organisation:
            acting = call.principal.organisation or None
        fields: dict[str, Any] = {
            "organisation_code": organisation,
            "chain_seq": last_seq + 1,
            "occurred_at": dt.datetime.now(dt.UTC),
            "principal": call.principal.id if call and call.principal else "system",
            "acting_organisation": acting,
            "method": call.method if call else "system",
            "resource": resource,
            "request_id": call.request_id if call else None,
            "before": canonical_json(before),
            "after": canonical_json(after),
        }
        digest = record_hash(last_hash, fields)
        self._session.execute(
            insert(self._tables.audit_records).values(**fields, prev_hash=last_hash, hash=digest)
        )
        self._session.execute(
            update(heads)
            .where(heads.c.organisation_code == organisation)
            .values(last_seq=last_seq + 1, last_hash=digest)
        )
        self.records_written += 1


@dataclass(frozen=True)
class ChainReport:
    organisation: str
    records: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_chains(session: Session, tables: KernelTables) -> Iterator[ChainReport]:
    """Walk every organisation's chain; run as the owner, outside any tenant scope."""
    records, heads = tables.audit_records, tables.audit_chain_heads
    head_rows = {r.organisation_code: (r.last_seq, r.last_hash) for r in session.execute(select(heads))}
    orgs = set(head_rows) | set(session.scalars(select(records.c.organisation_code).distinct()))
    for org in sorted(orgs):
        problems: list[str] = []
        expected_seq, prev = 1, GENESIS
        count = 0
        rows = session.execute(
            select(records).where(records.c.organisation_code == org).order_by(records.c.chain_seq)
        ).mappings()
        for row in rows:
            count += 1
            seq = row["chain_seq"]
            if seq != expected_seq:
                problems.append(f"record {expected_seq} is missing (next found: {seq})")
            elif row["prev_hash"] != prev:
                problems.append(f"record {seq} does not follow record {seq - 1}")
            if record_hash(row["prev_hash"], dict(row)) != row["hash"]:
                problems.append(f"record {seq} (id {row['id']}) was altered after it was written")
            expected_seq, prev = seq + 1, row["hash"]
        head = head_rows.get(org)
        if head is None:
            problems.append("the chain has no head")
        elif head != (expected_seq - 1, prev):
            problems.append(
                f"the chain ends at record {expected_seq - 1} but its head says {head[0]}: "
                "records were removed from the end"
            )
        yield ChainReport(org, count, problems)
