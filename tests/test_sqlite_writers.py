"""SQLite writers start with BEGIN IMMEDIATE, sent straight to the driver: a writer that
cannot get the lock in time still fails as SQLAlchemy's OperationalError ("database is
locked"), which the kernel answers with ABORTED (DATABASE_BUSY)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from libs.common.access import Scope
from libs.common.db import Database, make_engine
from libs.common.service import _busy


def test_a_writer_kept_waiting_past_the_busy_timeout_fails_as_busy(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    engine = make_engine(f"sqlite:///{path}", pool_size=1)
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.commit()
        conn.exec_driver_sql("PRAGMA busy_timeout=50")  # the one pooled connection: fail fast
    db = Database(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError) as caught, db.session(Scope.of("E23000010"), write=True):
            pass
        assert _busy(caught.value)
        holder.execute("ROLLBACK")
        with db.session(Scope.of("E23000010"), write=True) as session:  # and the lock is free again
            session.execute(text("INSERT INTO t VALUES (1)"))
            session.commit()
        assert holder.execute("SELECT count(*) FROM t").fetchone() == (1,)
    finally:
        holder.close()
        db.dispose()
