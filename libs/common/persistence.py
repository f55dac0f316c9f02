"""Helpers repositories share: record columns <-> RecordInfo, keyset pages, filters."""

from __future__ import annotations

import datetime as dt
import functools
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Session, class_mapper, declared_attr, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from libs.common.db import (
    check_organisations_writable,
    in_scope,
    owned_by_one_organisation,
    sole_organisation,
)
from libs.common.filtering import Comparison
from libs.common.paging import JsonKey
from libs.common.records import RecordInfo

S = TypeVar("S", bound=Select[Any])
M = TypeVar("M")


class Recorded:
    """Who created and last changed a row, and its version (see libs.common.records)."""

    create_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    update_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    create_principal: Mapped[str] = mapped_column(String(200))
    update_principal: Mapped[str] = mapped_column(String(200))
    update_acting_organisation: Mapped[str | None] = mapped_column(String(9))
    version: Mapped[int] = mapped_column(Integer)


class VersionGuarded(Recorded):
    """Every update also says WHERE version = <the version read>: a writer that lost a race
    is refused (StaleDataError, which the kernel reports as ABORTED) instead of silently
    overwriting. The domain sets each new version itself."""

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805  # a declared_attr takes the class
        return {"version_id_col": cls.version, "version_id_generator": False}


class Values(Generic[M]):
    """A mapped class's rows read as plain values: named tuples with the mapped attributes'
    names, so that the functions mapping a row to the domain take either. For pages: an ORM
    instance (its state, its identity-map entry) cost about as much as the rest of a list
    call put together, and a page neither changes its rows nor reads them again.

    The select is still an ORM statement of the class's columns, so the tenant filter
    limits it as it does the class."""

    def __init__(self, model: type[M]) -> None:
        attributes = class_mapper(model).column_attrs
        keys = [attribute.key for attribute in attributes]
        self._columns = [getattr(model, key) for key in keys]
        self._table_columns = [attribute.columns[0] for attribute in attributes]
        values: Any = namedtuple(f"{model.__name__}Values", keys)  # type: ignore[misc]  # names known at run time
        self._make: Callable[[Any], Any] = values._make

    def select(self) -> Select[Any]:
        return select(*self._columns)

    def core_select(self) -> Select[Any]:
        """The same columns of the table, as a Core statement: the ORM's execution path (a
        third of a read by key) and its tenant filter both skip it, so the caller checks
        the scope (`libs.common.db.in_scope`); row-level security still applies."""
        return select(*self._table_columns)

    def read(
        self, session: Session, statement: Select[Any], params: Mapping[str, Any] | None = None
    ) -> list[M]:
        """The rows of `statement` (built on `select()`), typed as the class they stand for:
        read their attributes, never change them."""
        make = self._make
        return [make(row) for row in session.execute(statement, params)]


_VALUES: dict[type, Values[Any]] = {}


def values_of(model: type[M]) -> Values[M]:
    """The `Values` of a mapped class, built once (two threads may both build it: harmless)."""
    found = _VALUES.get(model)
    if found is None:
        found = _VALUES[model] = Values(model)
    return found


@functools.cache
def primary_key(model: Any) -> tuple[str, ...]:
    return tuple(str(column.key) for column in class_mapper(model).primary_key)


@functools.cache
def _core_by_key(model: Any, lock: bool) -> Select[Any]:
    table_columns = model.__table__.c
    stmt = (
        values_of(model).core_select().where(*(table_columns[c] == bindparam(c) for c in primary_key(model)))
    )
    # Writers of one row queue here, so that a check and the change it allows see the same
    # row (a no-op on SQLite, whose writers are serialised anyway).
    return stmt.with_for_update() if lock else stmt


def take_turns(session: Session, key: str) -> None:
    """Makes the writers of `key` take turns until this transaction ends, where a check
    reads rows that a concurrent writer could add (no existing row to lock): on
    PostgreSQL a transaction-scoped advisory lock; on SQLite nothing, as its writers
    (BEGIN IMMEDIATE) already take turns."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def _by_key_of_one_organisation(model: Any, key: Mapping[str, object]) -> None:
    if not owned_by_one_organisation(model) or tuple(key) != primary_key(model):
        raise TypeError(f"{model.__name__} rows cannot be read or written by key without the tenant filter")


def read_by_key(
    session: Session, model: type[M], key: Mapping[str, object], *, lock: bool = False
) -> M | None:
    """The row of `model` with this primary key, as plain values, read with a Core statement
    (a third of the ORM's cost for one row). Only for rows of one organisation, whose key
    names it: the tenant filter then reduces to one test of the scope, made here."""
    mapped: Any = model  # the caches take any class
    _by_key_of_one_organisation(mapped, key)
    if not in_scope(session, str(key["organisation_code"])):
        return None
    found = values_of(model).read(session, _core_by_key(mapped, lock), key)
    return found[0] if found else None


@functools.cache
def _insert_into(model: Any) -> Any:
    return insert(model.__table__)


@functools.cache
def _update_of(model: Any, columns: tuple[str, ...], versioned: bool) -> Any:
    table = model.__table__
    stmt = update(table).where(*(table.c[c] == bindparam(f"key_{c}") for c in primary_key(model)))
    if versioned:
        stmt = stmt.where(table.c.version == bindparam("was_version"))
    return stmt.values({c: bindparam(f"new_{c}") for c in columns})


def insert_values(session: Session, model: type, values: Mapping[str, object]) -> None:
    """Inserts a row of one organisation from its values with a Core statement (a third of
    the unit of work's cost), checking the scope as the flush guard would."""
    if not owned_by_one_organisation(model):
        raise TypeError(f"{model.__name__} rows are written through the unit of work")
    check_organisations_writable(session, model, {str(values["organisation_code"])})
    session.execute(_insert_into(model), values)


def update_by_key(
    session: Session,
    model: type,
    key: Mapping[str, object],
    values: Mapping[str, object],
    *,
    was_version: int | None = None,
) -> None:
    """Updates the row of one organisation with this primary key with a Core statement,
    checking the scope as the flush guard would; with `was_version`, only if the row is
    still at that version (`StaleDataError` otherwise, as the unit of work raises)."""
    mapped: Any = model
    _by_key_of_one_organisation(mapped, key)
    check_organisations_writable(session, model, {str(key["organisation_code"])})
    session.flush()  # anything pending first, as the unit of work would order it
    params = {f"key_{c}": v for c, v in key.items()} | {f"new_{c}": v for c, v in values.items()}
    if was_version is not None:
        params["was_version"] = was_version
    changed = session.execute(_update_of(mapped, tuple(values), was_version is not None), params)
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        which = f"{model.__tablename__} {tuple(key.values())}"  # type: ignore[attr-defined]
        raise StaleDataError(f"{which} changed or went since it was read")


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def record_info(row: Any) -> RecordInfo:
    return RecordInfo(
        create_time=aware(row.create_time),
        update_time=aware(row.update_time),
        create_principal=row.create_principal,
        update_principal=row.update_principal,
        update_acting_organisation=row.update_acting_organisation,
        version=row.version,
    )


def record_values(info: RecordInfo) -> dict[str, Any]:
    return {
        "create_time": info.create_time,
        "update_time": info.update_time,
        "create_principal": info.create_principal,
        "update_principal": info.update_principal,
        "update_acting_organisation": info.update_acting_organisation,
        "version": info.version,
    }


def keyset_after(stmt: S, columns: Sequence[InstrumentedAttribute[Any]], after: JsonKey | None) -> S:
    """Seek past `after` in ascending order of `columns` (which must be unique together)."""
    stmt = stmt.order_by(*columns)
    if after is None:
        return stmt
    if len(columns) == 1:
        return stmt.where(columns[0] > literal(after[0]))
    first = columns[0]
    owner = first.class_
    if first.key == "organisation_code" and isinstance(owner, type) and sole_organisation(owner) == after[0]:
        # Every row is of this organisation: seek on the rest. PostgreSQL starts an index
        # scan at `org = X AND id > Y`, but not at `(org, id) > (X, Y)` beside `org = X`,
        # which reads the organisation from its first row (a page deep in a big register).
        rest = columns[1:]
        seek = (
            rest[0] > literal(after[1])
            if len(rest) == 1
            else tuple_(*rest) > tuple_(*map(literal, after[1:]))
        )
        return stmt.where(first == literal(after[0]), seek)
    return stmt.where(tuple_(*columns) > tuple_(*(literal(v) for v in after)))


def _day_clause(column: InstrumentedAttribute[Any] | ColumnElement[Any], op: str, day: dt.date) -> Any:
    """A date against a timestamp column means the whole (UTC) day."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    if day == dt.date.max:  # no day after it: the day runs to the end of time
        return {
            "=": column >= start,
            "!=": column < start,
            "<": column < start,
            "<=": column.is_not(None),
            ">": column.is_(None) & column.is_not(None),
            ">=": column >= start,
        }[op]
    end = start + dt.timedelta(days=1)
    return {
        "=": and_(column >= start, column < end),
        "!=": or_(column < start, column >= end),
        "<": column < start,
        "<=": column < end,
        ">": column >= end,
        ">=": column >= start,
    }[op]


def apply_filter(
    stmt: S,
    comparisons: Sequence[Comparison],
    columns: Mapping[str, InstrumentedAttribute[Any] | ColumnElement[Any]],
) -> S:
    clauses: list[Any] = []
    for c in comparisons:
        column = columns[c.field]
        if isinstance(c.value, dt.date) and isinstance(column.type, DateTime):
            clauses.append(_day_clause(column, c.op, c.value))
            continue
        if c.op == ":":
            clauses.append(func.lower(column).contains(str(c.value).lower(), autoescape=True))
        elif c.op == "=":
            clauses.append(column == c.value)
        elif c.op == "!=":
            clauses.append(or_(column != c.value, column.is_(None)))
        elif c.op == "<":
            clauses.append(column < c.value)
        elif c.op == "<=":
            clauses.append(column <= c.value)
        elif c.op == ">":
            clauses.append(column > c.value)
        elif c.op == ">=":
            clauses.append(column >= c.value)
    return stmt.where(and_(*clauses)) if clauses else stmt
