"""A person's last day of service in SQL, as `services.hr.service._departed` shows it: the
leaving date stored, or else the day before their accepted outgoing transfer took effect
(the last of them). The second is derived and never stored, because the receiving force
accepts and one force's transaction never writes another's rows; so every query that
compares leaving dates (the workforce statistics, the `leaving_date` filter of ListPeople)
compares this, not the column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Date, Subquery, and_, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from services.hr.domain.transfer import TransferKind, TransferState
from services.hr.persistence.models import PersonRow, TransferRow


class _DayBefore(FunctionElement[dt.date]):
    """The day before a date column, in each dialect's own date arithmetic."""

    type = Date()
    name = "day_before"
    inherit_cache = True


@compiles(_DayBefore)
def _day_before(element: _DayBefore, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - 1)"  # PostgreSQL: date - integer


@compiles(_DayBefore, "sqlite")
def _day_before_sqlite(element: _DayBefore, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps dates as ISO text, which date() reads and writes.
    return f"date({compiler.process(element.clauses, **kw)}, '-1 day')"


@dataclass(frozen=True)
class LastDay:
    """For a query of PersonRow: outer-join `moved` `on` it, then `day` is each person's
    last day of service, NULL while in service."""

    moved: Subquery
    on: ColumnElement[bool]
    day: ColumnElement[dt.date]


def last_day(organisation: str | None = None) -> LastDay:
    """The last day of service of the people of `organisation`, or of every organisation the
    query's scope reads when None."""
    accepted = [
        TransferRow.kind == TransferKind.TRANSFER.value,
        TransferRow.state == TransferState.ACCEPTED.value,
    ]
    if organisation is not None:
        accepted.append(TransferRow.organisation_code == organisation)
    latest = (
        select(TransferRow.organisation_code, TransferRow.person_id, func.max(TransferRow.id).label("id"))
        .where(*accepted)
        .group_by(TransferRow.organisation_code, TransferRow.person_id)
        .subquery("latest")
    )
    moved = (
        select(TransferRow.organisation_code, TransferRow.person_id, TransferRow.effective_date)
        .join(
            latest,
            and_(
                TransferRow.organisation_code == latest.c.organisation_code,
                TransferRow.id == latest.c.id,
            ),
        )
        .subquery("moved")
    )
    on = and_(moved.c.organisation_code == PersonRow.organisation_code, moved.c.person_id == PersonRow.id)
    return LastDay(moved, on, func.coalesce(PersonRow.leaving_date, _DayBefore(moved.c.effective_date)))
