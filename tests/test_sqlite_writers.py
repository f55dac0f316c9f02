"""SQLite writers start with BEGIN IMMEDIATE, sent straight to the driver: a writer that
cannot get the lock in time still fails as SQLAlchemy's OperationalError ("database is
locked"), which the kernel answers with ABORTED (DATABASE_BUSY). Writers queue on the
database's writer lock, across threads and worker processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from libs.common.access import Scope
from libs.common.db import Database, SqliteWriterLock, make_engine
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


# Another worker process: takes the writer lock of the database it is given, says so, and
# holds it until told to let go.
_OTHER_WORKER = """
import sys
from libs.common.db import SqliteWriterLock
with SqliteWriterLock(sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="the lock between processes is flock (POSIX)")
def test_the_writer_lock_queues_writers_of_other_worker_processes(tmp_path: Path) -> None:
    """With `serve --workers`, writers of different processes queue on the lock rather
    than in SQLite's busy handler, which sleeps and let one process starve the other."""
    path = str(tmp_path / "workers.db")
    db = Database(make_engine(f"sqlite:///{path}"))
    assert isinstance(db.writer_lock, SqliteWriterLock)
    got = threading.Event()

    def write() -> None:
        with db.writer_lock:
            got.set()

    with subprocess.Popen(
        [sys.executable, "-c", _OTHER_WORKER, path],
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as other:
        assert other.stdin is not None and other.stdout is not None
        try:
            assert other.stdout.readline().strip() == "holding"
            writer = threading.Thread(target=write)
            writer.start()
            # The other process still holds it: this one's writer waits (it is not refused).
            assert not got.wait(0.3)
            other.stdin.write("\n")
            other.stdin.flush()
            assert other.stdout.readline().strip() == "released"
            writer.join(10)
            assert got.is_set()
        finally:
            other.kill()
            db.dispose()


def test_without_a_file_writers_queue_on_the_thread_lock_alone() -> None:
    lock = SqliteWriterLock(None)  # an in-memory database: no file to lock beside it
    got = threading.Event()

    def write() -> None:
        with lock:
            got.set()

    with lock:
        writer = threading.Thread(target=write)
        writer.start()
        assert not got.wait(0.2)
    writer.join(10)
    assert got.is_set()
