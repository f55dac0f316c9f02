"""Two calls that read the same HR record and both change it: the second to save is
refused (ABORTED, through `StaleDataError`), never written over the first. On PostgreSQL
two write transactions overlap, so each call's rules were checked against what it read;
SQLite's writers queue, so the race cannot arise there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy.orm.exc import StaleDataError

from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.config import Settings
from libs.common.db import Database
from libs.common.service import Transaction
from services.hr.domain.establishment import Grade, GradeDetails, PayPoint
from services.hr.persistence.models import KERNEL
from services.hr.service import HrUnitOfWork
from tests.hr.helpers import add_person, officer
from tests.support import WEST_YORKSHIRE, Suite, wait_until_a_transaction_waits_for_a_lock

pytestmark = pytest.mark.postgres


@contextmanager
def _uow(db: Database) -> Iterator[HrUnitOfWork]:
    scope = Scope.of(WEST_YORKSHIRE)
    with db.session(scope, write=True) as session:
        yield HrUnitOfWork(Transaction(session, AuditLog(session, KERNEL, None), scope, None, KERNEL))
        session.commit()


def _renamed(uow: HrUnitOfWork, grade: Grade, name: str) -> Grade:
    return replace(grade, details=replace(grade.details, display_name=name), info=uow.touched(grade.info))


def test_a_change_to_a_record_changed_since_it_was_read_is_refused(postgres_settings: Settings) -> None:
    db = build_database("hr", postgres_settings)
    try:
        with _uow(db) as uow:
            uow.grades.add(
                Grade(
                    WEST_YORKSHIRE,
                    "g-pc",
                    GradeDetails("Constable", None, (PayPoint("1", Decimal(30000)),)),
                    uow.new_info(),
                )
            )
        with _uow(db) as late:
            read_late = late.grades.get(WEST_YORKSHIRE, "g-pc")
            assert read_late is not None and read_late.info.version == 1
            with _uow(db) as first:  # another call, which reads the same version and commits first
                read_first = first.grades.get(WEST_YORKSHIRE, "g-pc")
                assert read_first is not None
                first.grades.save(_renamed(first, read_first, "Police Constable"))
            change = _renamed(late, read_late, "PC")
            with pytest.raises(StaleDataError):
                late.grades.save(change)
            late.tx.session.rollback()
        with _uow(db) as uow:
            kept = uow.grades.get(WEST_YORKSHIRE, "g-pc")
            assert kept is not None and (kept.details.display_name, kept.info.version) == (
                "Police Constable",
                2,
            )
            # A record changed twice in one transaction moves on from its own first change.
            once = _renamed(uow, kept, "PC")
            uow.grades.save(once)
            uow.grades.save(_renamed(uow, once, "Constable"))
        with _uow(db) as uow:
            final = uow.grades.get(WEST_YORKSHIRE, "g-pc")
            assert final is not None and (final.details.display_name, final.info.version) == ("Constable", 4)
    finally:
        db.dispose()


def test_calls_adding_to_one_person_take_turns(postgres_suite: Suite) -> None:
    """An assignment, leave or sickness is checked against the person's others (FTE,
    balance, overlap) and then inserted: each such call locks the person first, so that a
    second waits for the first to commit and then checks against what it added."""
    hr = postgres_suite.caller(WEST_YORKSHIRE, "hr.officer")
    person_id = add_person(hr, WEST_YORKSHIRE, officer(collar="5")).name.rsplit("/", 1)[1]
    db = build_database("hr", postgres_suite.settings)
    order: list[str] = []

    def second() -> None:
        with _uow(db) as other:
            assert other.people.get(WEST_YORKSHIRE, person_id, lock=True) is not None
            order.append("second")

    try:
        with _uow(db) as first:
            assert first.people.get(WEST_YORKSHIRE, person_id, lock=True) is not None
            waiting = threading.Thread(target=second)
            waiting.start()
            wait_until_a_transaction_waits_for_a_lock(postgres_suite.settings, "the second transaction")
            order.append("first")
        waiting.join(timeout=30)
        assert order == ["first", "second"]
    finally:
        db.dispose()
