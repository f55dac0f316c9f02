"""Data at scale, and jobs that are not a timed load, run by the orchestrator.

- `Seeder` (a scenario's `prepare`): bulk SQL into a service's own database, as its owner,
  while the services run. Rows are **cloned** from rows the scenario's setup made through
  the real API (every column as the service wrote it, only the key and the fields the
  scenario varies changed), and anything the service derives from them (finance's running
  balances) is rebuilt from them in the same way the service keeps it, so that what the
  service reads is what it would have written. On PostgreSQL the series comes from
  `generate_series`, on SQLite from a recursive CTE; every table seeded is ANALYZEd.
- `Job` (a scenario's `job`): what a job needs to run its own processes against the suite.

Sizes come from `SCALES` (`--scale`): `full` is the issue's, `small` is for --smoke and
quick runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text

SCALES: dict[str, dict[str, int]] = {
    # List flatness: a register at each size; reports: posted journal lines (ten a journal);
    # the HR import: people, in files of at most 10,000 (`backoffice hr import`'s limit).
    "full": {"list_small": 10_000, "list_large": 1_000_000, "journal_lines": 5_000_000, "people": 250_000},
    "small": {"list_small": 1_000, "list_large": 10_000, "journal_lines": 20_000, "people": 2_000},
}
CHUNK = 50_000  # series members per INSERT: progress to print, bounded transactions


@dataclass
class Seeder:
    """Bulk SQL into the run's databases for one backend; `state` carries what one
    scenario's prepare leaves for another's (e.g. the template a larger register grows from)."""

    backend: str
    urls: dict[str, str]  # service -> owner URL (PostgreSQL: the run's database)
    data_dir: Path
    sizes: dict[str, int]
    state: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def connect(self, service: str) -> Iterator[Connection]:
        engine = create_engine(self.urls[service])
        try:
            with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f'SET search_path TO "{service}"'))
                    conn.execute(text("SET statement_timeout = 0"))
                    conn.commit()
                yield conn
        finally:
            engine.dispose()

    def page_token(
        self, collection: str, parent: str, key: tuple[str | int, ...], filter_text: str = ""
    ) -> str:
        """A page token as the services sign them (key from the development signing key, as
        `start_suite` derives it): the next page after `key`, for a list with no filter."""
        from libs.common.config import Settings
        from libs.common.names import OrganisationName
        from libs.common.paging import Pager
        from services.suite.runtime import page_secret

        settings = Settings(data_dir=self.data_dir)
        pager = Pager(page_secret(settings, settings.signing_key_path().read_bytes()))
        fingerprint = pager.fingerprint(collection, OrganisationName.parse(parent), filter_text)
        return pager.token_after(key, fingerprint)


def pad(dialect: str, expr: str = "g.n", width: int = 7) -> str:
    """SQL for `expr` (an integer) as text zero-padded to `width` digits."""
    return (
        f"lpad(({expr})::text, {width}, '0')" if dialect == "postgresql" else f"printf('%0{width}d', {expr})"
    )


def clone(
    conn: Connection,
    table: str,
    where: dict[str, Any],
    start: int,
    stop: int,
    overrides: dict[str, str],
    label: str = "",
    *,
    skip_existing: bool = False,
) -> int:
    """Insert, for every n in [start, stop), a copy of each row of `table` matching `where`,
    with the columns in `overrides` replaced by SQL expressions of `g.n` (the member of the
    series) and `t.<column>` (the row copied). `{pad}` in an expression is n zero-padded
    to 7 digits. With `skip_existing`, a copy whose key (or another unique column) is taken
    is left out (ON CONFLICT DO NOTHING). Commits every CHUNK members; returns the rows
    inserted."""
    dialect = conn.dialect.name
    columns = _columns(conn, table)
    padded = pad(dialect)
    select_list = ", ".join(overrides[c].format(pad=padded) if c in overrides else f"t.{c}" for c in columns)
    condition = " AND ".join(f"t.{c} = :w_{c}" for c in where) or "1 = 1"
    params = {f"w_{c}": v for c, v in where.items()}
    inserted = 0
    began = time.monotonic()
    for lo in range(start, stop, CHUNK):
        hi = min(lo + CHUNK, stop)
        if dialect == "postgresql":
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select_list} "
                f"FROM {table} t CROSS JOIN generate_series(:lo, :hi - 1) AS g(n) WHERE {condition}"
            )
        else:
            sql = (
                f"WITH RECURSIVE g(n) AS (SELECT :lo UNION ALL SELECT n + 1 FROM g WHERE n + 1 < :hi) "
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select_list} "
                f"FROM {table} t CROSS JOIN g WHERE {condition}"
            )
        if skip_existing:
            sql += " ON CONFLICT DO NOTHING"
        result = conn.execute(text(sql), {**params, "lo": lo, "hi": hi})
        conn.commit()
        inserted += result.rowcount or 0
        if stop - start > 4 * CHUNK and (hi - start) % (10 * CHUNK) == 0:
            print(
                f"    {label or table}: {hi - start:,} of {stop - start:,} ({time.monotonic() - began:.0f} s)"
            )
    analyse(conn, table)
    return inserted


def analyse(conn: Connection, table: str) -> None:
    conn.execute(text(f"ANALYZE {table}"))
    conn.commit()


def _columns(conn: Connection, table: str) -> list[str]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t ORDER BY ordinal_position"
            ),
            {"t": table},
        )
        return [str(r[0]) for r in rows]
    return [str(r[1]) for r in conn.execute(text(f"PRAGMA table_info({table})"))]


def count(conn: Connection, table: str, where: dict[str, Any]) -> int:
    condition = " AND ".join(f"{c} = :{c}" for c in where) or "1 = 1"
    return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {condition}"), where).scalar_one())


@dataclass
class Job:
    """What a scenario's job runs against: the suite's addresses, the tokens of its
    identity and other callers, a work directory for files and logs, and the sizes."""

    backend: str
    addresses: dict[str, str]
    token: str
    tokens: dict[str, str]
    work: Path
    sizes: dict[str, int]
