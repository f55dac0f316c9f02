"""The audit log appends a transaction's records together, just before it commits."""

from __future__ import annotations

from sqlalchemy import select

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
