"""The audit log appends a transaction's records together, just before it commits."""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from libs.common import audit
from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.config import Settings
from services.procurement.persistence.models import KERNEL
from services.suite.admin import verify_audit
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Suite

BOTH = (WEST_YORKSHIRE, SOUTH_YORKSHIRE)


def _record(settings: Settings, resources: list[tuple[str, str]], *, commit: bool = True) -> None:
    db = build_database("procurement", settings)
    try:
        with db.writer_lock, db.session(Scope.of(*BOTH), write=True) as session:
            audit = AuditLog(session, KERNEL, None)
            for organisation, resource in resources:
                audit.record(organisation, resource, None, {"n": resource})
            if commit:
                session.commit()
    finally:
        db.dispose()


def _chains(settings: Settings) -> dict[str, list[tuple[int, str]]]:
    db = build_database("procurement", settings)
    try:
        with db.session(Scope.of(*BOTH), write=False) as session:
            t = KERNEL.audit_records
            rows = session.execute(
                select(t.c.organisation_code, t.c.chain_seq, t.c.resource)
                .where(t.c.resource.like("test/%"))
                .order_by(t.c.organisation_code, t.c.chain_seq)
            ).all()
    finally:
        db.dispose()
    chains: dict[str, list[tuple[int, str]]] = {}
    for organisation, seq, resource in rows:
        chains.setdefault(organisation, []).append((seq, resource))
    return chains


def test_records_of_one_transaction_join_each_organisations_chain_in_order(
    settings: Settings, suite: Suite
) -> None:
    _record(
        settings, [(WEST_YORKSHIRE, "test/w1"), (SOUTH_YORKSHIRE, "test/s1"), (WEST_YORKSHIRE, "test/w2")]
    )
    _record(settings, [(WEST_YORKSHIRE, "test/w3")])
    _record(settings, [(SOUTH_YORKSHIRE, "test/lost")], commit=False)

    chains = _chains(settings)
    west = [resource for _, resource in chains[WEST_YORKSHIRE]]
    assert west == ["test/w1", "test/w2", "test/w3"]
    assert [resource for _, resource in chains[SOUTH_YORKSHIRE]] == ["test/s1"]
    for chain in chains.values():
        seqs = [seq for seq, _ in chain]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in the sequence"
    reports = {r.organisation: r for name, r in verify_audit(settings, ["procurement"])}
    assert reports[WEST_YORKSHIRE].intact and reports[SOUTH_YORKSHIRE].intact


def _head_reads(settings: Settings, resources: list[tuple[str, str]]) -> int:
    """Appends like `_record`, and counts the locked reads of chain heads it took."""
    reads = 0

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        nonlocal reads
        reads += statement.lstrip().upper().startswith("SELECT") and "audit_chain_heads" in statement

    event.listen(Engine, "before_cursor_execute", count)
    try:
        _record(settings, resources)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return reads


def test_the_chain_follows_its_true_head_whatever_this_process_last_saw(settings: Settings) -> None:
    """Where a process writes one transaction at a time (SQLite), the head it last wrote
    saves the locked read, but only when it is exactly the chain's head: after another
    process appended, after a rolled-back append, or with the right sequence number and
    another hash, the records still follow the true head. On PostgreSQL every append reads
    the head under lock."""
    key = (KERNEL.audit_chain_heads, WEST_YORKSHIRE)
    guessing = not settings.database_url
    _record(settings, [(WEST_YORKSHIRE, "test/1")])
    assert _head_reads(settings, [(WEST_YORKSHIRE, "test/2")]) == (0 if guessing else 1)

    # Another process appends after this one last looked.
    stale = audit._LAST_HEADS.get(key)
    _record(settings, [(WEST_YORKSHIRE, "test/3")])
    if guessing and stale is not None:
        audit._LAST_HEADS[key] = stale
    assert _head_reads(settings, [(WEST_YORKSHIRE, "test/4")]) == 1

    # An append that was flushed and then rolled back moved the guess, not the chain.
    db = build_database("procurement", settings)
    try:
        with db.writer_lock, db.session(Scope.of(WEST_YORKSHIRE), write=True) as session:
            log = AuditLog(session, KERNEL, None)
            log.record(WEST_YORKSHIRE, "test/rolled-back", None, {"n": 0})
            log.flush()
    finally:
        db.dispose()
    assert _head_reads(settings, [(WEST_YORKSHIRE, "test/5")]) == 1

    # The right sequence number with a hash that is not the chain's (another database's).
    if guessing:
        seq, _ = audit._LAST_HEADS[key]
        audit._LAST_HEADS[key] = (seq, "f" * 64)
    assert _head_reads(settings, [(WEST_YORKSHIRE, "test/6")]) == 1

    chain = _chains(settings)[WEST_YORKSHIRE]
    assert [resource for _, resource in chain] == [f"test/{n}" for n in range(1, 7)]
    seqs = [seq for seq, _ in chain]
    assert seqs == list(range(seqs[0], seqs[0] + 6))
    reports = {r.organisation: r for _, r in verify_audit(settings, ["procurement"])}
    assert reports[WEST_YORKSHIRE].intact, reports[WEST_YORKSHIRE].problems
