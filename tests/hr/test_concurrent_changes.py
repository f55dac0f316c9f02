"""Two calls that read the same HR record and both change it: the second to save is
refused (ABORTED, through `StaleDataError`), never written over the first. On PostgreSQL
two write transactions overlap, so each call's rules were checked against what it read;
SQLite's writers queue, so the race cannot arise there."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy.orm.exc import StaleDataError

from backoffice.hr.v1 import establishment_pb2
from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.config import Settings
from libs.common.db import Database
from libs.common.errors import FailedPrecondition
from libs.common.service import Transaction
from services.hr import service
from services.hr.domain.establishment import AssignmentTerms, Grade, GradeDetails, PayPoint
from services.hr.domain.person import LeavingReason
from services.hr.domain.transfer import TransferKind, TransferTerms
from services.hr.persistence.models import KERNEL
from services.hr.service import HrUnitOfWork
from tests.hr.helpers import D, add_person, grade, officer, post, unit
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Suite, wait_until_a_transaction_waits_for_a_lock

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


def _second_waits_then_fails(
    suite: Suite,
    db: Database,
    first: Callable[[HrUnitOfWork], object],
    second: Callable[[HrUnitOfWork], object],
) -> BaseException | None:
    """Runs `first` in a transaction kept open until `second`, in another, is seen waiting for
    a lock; then commits it, and returns what `second` raised (None if it succeeded)."""
    raised: list[BaseException | None] = []

    def other() -> None:
        try:
            with _uow(db) as uow:
                second(uow)
            raised.append(None)
        except Exception as err:
            raised.append(err)

    with _uow(db) as uow:
        first(uow)
        waiting = threading.Thread(target=other)
        waiting.start()
        wait_until_a_transaction_waits_for_a_lock(suite.settings, "the second call")
    waiting.join(timeout=30)
    assert raised, "the second call did not finish"
    return raised[0]


def test_a_leaver_and_an_offer_to_another_force_take_turns(postgres_suite: Suite) -> None:
    """Else both commit, the receiving force accepts, and both forces count the person."""
    hr = postgres_suite.caller(WEST_YORKSHIRE, "hr.officer")
    person_id = add_person(hr, WEST_YORKSHIRE, officer(collar="6")).name.rsplit("/", 1)[1]
    db = build_database("hr", postgres_suite.settings)
    terms = TransferTerms(TransferKind.TRANSFER, person_id, SOUTH_YORKSHIRE, D(2026, 12, 1))
    try:
        refused = _second_waits_then_fails(
            postgres_suite,
            db,
            lambda uow: service.create_transfer(uow, WEST_YORKSHIRE, terms),
            lambda uow: service.record_leaver(
                uow,
                WEST_YORKSHIRE,
                person_id,
                leaving_date=D(2026, 12, 31),
                reason=LeavingReason.RESIGNATION,
                etag="",
            ),
        )
        assert isinstance(refused, FailedPrecondition) and refused.reason == "TRANSFER_PENDING", refused
    finally:
        db.dispose()


def test_ending_a_post_and_assigning_to_it_take_turns(postgres_suite: Suite) -> None:
    """Else an assignment starting after the post's last day could commit beside its end."""
    hr = postgres_suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = add_person(hr, WEST_YORKSHIRE, officer(collar="7"))
    constable = grade(hr, WEST_YORKSHIRE, "Constable", rank=establishment_pb2.RANK_CONSTABLE)
    made = post(hr, WEST_YORKSHIRE, unit(hr, WEST_YORKSHIRE).name, constable.name)
    post_id = made.name.rsplit("/", 1)[1]
    terms = AssignmentTerms(person.name.rsplit("/", 1)[1], post_id, "1", D(2025, 6, 1), pay_point="1")
    db = build_database("hr", postgres_suite.settings)
    try:
        refused = _second_waits_then_fails(
            postgres_suite,
            db,
            lambda uow: service.create_assignment(uow, WEST_YORKSHIRE, terms),
            lambda uow: service.end_post(uow, WEST_YORKSHIRE, post_id, D(2025, 3, 31), ""),
        )
        assert isinstance(refused, FailedPrecondition) and refused.reason == "POST_OCCUPIED", refused
    finally:
        db.dispose()
