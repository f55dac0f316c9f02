"""Administrative commands that run as the database owner, outside any tenant scope.

The operations API (libs/common/operations.py) does the same through each service, for
the console, within the caller's scope; both share its functions."""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterator, Mapping, Sequence

from libs.common.access import Scope
from libs.common.audit import AuditLog, ChainReport, verify_chains
from libs.common.config import Settings
from libs.common.context import Call, Principal
from libs.common.db import ALL_ORGANISATIONS, Database, make_engine
from libs.common.kernel_tables import KernelTables
from libs.common.operations import release_event
from libs.common.outbox import Discarded, OutboxEvent, get_event, list_events
from libs.common.service import Transaction
from services.suite.registry import SERVICE_APPS

KERNELS: dict[str, KernelTables] = {m.NAME: m.KERNEL for m in SERVICE_APPS}
DISCARDED: dict[str, Mapping[str, Discarded]] = {m.NAME: m.OUTBOX_DISCARDED for m in SERVICE_APPS}


def verify_audit(
    settings: Settings, services: Sequence[str] | None = None
) -> Iterator[tuple[str, ChainReport]]:
    for name in services or KERNELS:
        db = Database(make_engine(settings.database_url_for(name), schema=name, pool_size=1), schema=name)
        try:
            with db.session(ALL_ORGANISATIONS, write=False) as session:
                for report in verify_chains(session, KERNELS[name]):
                    yield name, report
        finally:
            db.dispose()


def _owner_db(settings: Settings, name: str) -> Database:
    return Database(make_engine(settings.database_url_for(name), schema=name, pool_size=1), schema=name)


def outbox_events(
    settings: Settings, services: Sequence[str] | None = None, states: Sequence[str] = ()
) -> Iterator[tuple[str, OutboxEvent]]:
    """Every service's outbox events (in `states`, when given), oldest first."""
    for name in services or KERNELS:
        db = _owner_db(settings, name)
        try:
            with db.session(ALL_ORGANISATIONS, write=False) as session:
                events = list_events(session, KERNELS[name], tuple(states))
        finally:
            db.dispose()
        for event in events:
            yield name, event


def _operator_call(action: str) -> Call:
    user = getpass.getuser()
    principal = Principal(subject=f"backoffice-cli:{user}", organisation="", roles=frozenset())
    return Call(method=f"backoffice outbox {action}", request_id=str(uuid.uuid4()), principal=principal)


def change_outbox_event(
    settings: Settings, service: str, event_id: str, *, discard_reason: str | None = None
) -> OutboxEvent:
    """Retry (or, with a reason, discard) one event, audited in its organisation's chain."""
    db = _owner_db(settings, service)
    try:
        with db.writer_lock, db.session(ALL_ORGANISATIONS, write=True) as session:
            tables = KERNELS[service]
            call = _operator_call("retry" if discard_reason is None else "discard")
            # The owner's session sees every organisation; the follow-up of a discard acts
            # in the event's own, as the operations API would.
            scope = Scope.of(get_event(session, tables, event_id).organisation)
            tx = Transaction(session, AuditLog(session, tables, call), scope, call, tables)
            event = release_event(tx, tables, event_id, discard_reason, DISCARDED[service])
            session.commit()
            return event
    finally:
        db.dispose()
