"""The hash-chained, append-only audit log.

Each organisation has its own chain: record n stores the SHA-256 of its own content and
of record n-1's hash, and `audit_chain_heads` holds the last sequence number and hash.
Editing a record breaks its hash; deleting one breaks the sequence or the link; deleting
the newest breaks the head. `backoffice audit verify` walks every chain.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
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


PENDING_KEY = "audit_logs"


@dataclass(frozen=True)
class _Statements:
    """Built once per service: a statement made anew on every call costs more to build and
    to key for the compiled cache than to run."""

    head: Any
    start: dict[str, Any]
    append: Any
    advance: Any
    advance_from: Any


@functools.cache
def _statements(tables: KernelTables) -> _Statements:
    heads = tables.audit_chain_heads
    start = {"organisation_code": bindparam("org"), "last_seq": 0, "last_hash": GENESIS}
    return _Statements(
        head=select(heads.c.last_seq, heads.c.last_hash)
        .where(heads.c.organisation_code == bindparam("org"))
        .with_for_update(),
        start={
            "postgresql": postgresql.insert(heads).values(start).on_conflict_do_nothing(),
            "sqlite": sqlite.insert(heads).values(start).on_conflict_do_nothing(),
        },
        append=insert(tables.audit_records),
        advance=update(heads)
        .where(heads.c.organisation_code == bindparam("org"))
        .values(last_seq=bindparam("seq"), last_hash=bindparam("digest")),
        advance_from=update(heads)
        .where(
            heads.c.organisation_code == bindparam("org"),
            heads.c.last_seq == bindparam("was_seq"),
            heads.c.last_hash == bindparam("was_hash"),
        )
        .values(last_seq=bindparam("seq"), last_hash=bindparam("digest")),
    )


# The head this process last moved each chain to, by chain table and organisation: a guess
# that saves the locked read when it is right. It is never trusted: the head advances only
# where it still holds exactly that sequence number and hash (compare-and-swap, under the
# row's lock), so records always follow the chain's true last hash; a wrong guess (another
# process appended, or the transaction that moved it rolled back) costs one UPDATE that
# matches nothing, then the locked read as before.
#
# Used where a process writes one transaction at a time (SQLite: `Database.writer_lock`),
# so that the guess is right unless another process wrote. On PostgreSQL a process's
# writers overlap: with 32 creates in flight for one organisation 98 % of guesses were
# already stale (a wasted UPDATE each), so there every append reads the head under lock.
_LAST_HEADS: dict[tuple[Any, str], tuple[int, str]] = {}


class AuditLog:
    """Appends audit records inside the caller's transaction.

    Records are kept until the change is done (the kernel calls `flush`; the session's
    `before_commit` runs `flush_pending` for any left), then appended in one go: one locked
    read of the organisation's chain head, one multi-row insert, one head update. The head's
    row lock, which orders the writers of one organisation's chain, is so held from the end
    of the change to its commit, not for the whole transaction.
    """

    def __init__(self, session: Session, tables: KernelTables, call: Call | None) -> None:
        self._session = session
        self._tables = tables
        self._call = call
        self._pending: list[dict[str, Any]] = []
        self._serial_writers = session.get_bind().dialect.name == "sqlite"
        self.records_written = 0
        session.info.setdefault(PENDING_KEY, []).append(self)

    def record(
        self,
        organisation: str,
        resource: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        call = self._call
        acting = None
        if call and call.principal and call.principal.organisation != organisation:
            acting = call.principal.organisation or None
        self._pending.append(
            {
                "organisation_code": organisation,
                "occurred_at": dt.datetime.now(dt.UTC),
                "principal": call.principal.id if call and call.principal else "system",
                "acting_organisation": acting,
                "method": call.method if call else "system",
                "resource": resource,
                "request_id": call.request_id if call else None,
                "before": canonical_json(before),
                "after": canonical_json(after),
            }
        )
        self.records_written += 1

    def _head(self, organisation: str) -> tuple[int, str]:
        sql = _statements(self._tables)
        found = self._session.execute(sql.head, {"org": organisation}).one_or_none()
        if found is None:
            dialect = self._session.get_bind().dialect.name
            self._session.execute(sql.start[dialect], {"org": organisation})
            found = self._session.execute(sql.head, {"org": organisation}).one()
        return found[0], found[1]

    def flush(self) -> None:
        """Appends the pending records to their organisations' chains."""
        pending, self._pending = self._pending, []
        by_organisation: dict[str, list[dict[str, Any]]] = {}
        for fields in pending:
            by_organisation.setdefault(fields["organisation_code"], []).append(fields)
        sql = _statements(self._tables)
        # Heads are locked in one order, so two transactions never wait on each other's.
        for organisation in sorted(by_organisation):
            records = by_organisation[organisation]
            known = (self._tables.audit_chain_heads, organisation)
            guess = _LAST_HEADS.get(known) if self._serial_writers else None
            rows = None
            if guess is not None:
                rows, seq, digest = _chained(records, *guess)
                moved = self._session.execute(
                    sql.advance_from,
                    {
                        "org": organisation,
                        "was_seq": guess[0],
                        "was_hash": guess[1],
                        "seq": seq,
                        "digest": digest,
                    },
                )
                if moved.rowcount != 1:  # type: ignore[attr-defined]
                    rows = None
            if rows is None:
                rows, seq, digest = _chained(records, *self._head(organisation))
                self._session.execute(sql.advance, {"org": organisation, "seq": seq, "digest": digest})
            self._session.execute(sql.append, rows)
            if self._serial_writers:
                _LAST_HEADS[known] = (seq, digest)


def _chained(
    records: list[dict[str, Any]], last_seq: int, last_hash: str
) -> tuple[list[dict[str, Any]], int, str]:
    """`records` as the chain's next rows after (`last_seq`, `last_hash`), and the new head."""
    rows = []
    for fields in records:
        last_seq += 1
        digest = record_hash(last_hash, {**fields, "chain_seq": last_seq})
        rows.append({**fields, "chain_seq": last_seq, "prev_hash": last_hash, "hash": digest})
        last_hash = digest
    return rows, last_seq, last_hash


def flush_pending(session: Session) -> None:
    """Writes every audit log's pending records: the session's `before_commit`."""
    for log in session.info.get(PENDING_KEY, ()):
        log.flush()


@dataclass(frozen=True)
class ChainReport:
    organisation: str
    records: int
    problems: list[str]
    # The sequence number of the first broken link: a missing, unlinked or altered record,
    # or the first one removed from the end; 0 when intact.
    first_broken: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_chains(session: Session, tables: KernelTables) -> Iterator[ChainReport]:
    """Walk every organisation's chain; run as the owner, outside any tenant scope."""
    records, heads = tables.audit_records, tables.audit_chain_heads
    head_rows = {r.organisation_code: (r.last_seq, r.last_hash) for r in session.execute(select(heads))}
    orgs = set(head_rows) | set(session.scalars(select(records.c.organisation_code).distinct()))
    for org in sorted(orgs):
        broken: list[tuple[int, str]] = []  # (the record, what is wrong), in chain order
        expected_seq, prev = 1, GENESIS
        count = 0
        rows = session.execute(
            select(records).where(records.c.organisation_code == org).order_by(records.c.chain_seq)
        ).mappings()
        for row in rows:
            count += 1
            seq = row["chain_seq"]
            if seq != expected_seq:
                broken.append((expected_seq, f"record {expected_seq} is missing (next found: {seq})"))
            elif row["prev_hash"] != prev:
                broken.append((seq, f"record {seq} does not follow record {seq - 1}"))
            if record_hash(row["prev_hash"], dict(row)) != row["hash"]:
                broken.append((seq, f"record {seq} (id {row['id']}) was altered after it was written"))
            expected_seq, prev = seq + 1, row["hash"]
        head = head_rows.get(org)
        if head is None:
            broken.append((1, "the chain has no head"))
        elif head[0] > expected_seq - 1:
            broken.append(
                (
                    expected_seq,
                    f"the chain ends at record {expected_seq - 1} but its head says {head[0]}: "
                    "records were removed from the end",
                )
            )
        elif head != (expected_seq - 1, prev):
            broken.append(
                (
                    max(1, min(head[0] + 1, expected_seq - 1)),
                    f"the chain ends at record {expected_seq - 1} but its head is at record {head[0]}, "
                    "or names another last record: the head was altered",
                )
            )
        yield ChainReport(org, count, [p for _, p in broken], broken[0][0] if broken else 0)
