"""Unexpected failures: the caller learns nothing of the internals, the log has it all."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf.empty_pb2 import Empty
from sqlalchemy import MetaData, create_engine, text

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from libs.common.access import AccessPolicy, Grant, Scope
from libs.common.config import Settings
from libs.common.db import Database, make_engine, normalise_url
from libs.common.errors import FailedPrecondition
from libs.common.kernel_tables import add_kernel_tables
from libs.common.paging import Pager
from libs.common.service import ServiceKernel
from tests.support import UNIT, Suite, failure


def test_unexpected_error_is_internal_with_only_a_request_id(
    settings: Settings, suite: Suite, capsys: pytest.CaptureFixture[str]
) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}", supplier=supplier_pb2.Supplier(display_name="A")
        )
    )
    # Pull the table out from under the running service, as its owner.
    engine = create_engine(normalise_url(settings.database_url_for("procurement")))
    with engine.begin() as conn:
        schema = "procurement." if conn.dialect.name == "postgresql" else ""
        conn.execute(text(f"ALTER TABLE {schema}suppliers RENAME TO suppliers_gone"))
    engine.dispose()
    f = failure(officer.procurement.ListSuppliers, pb.ListSuppliersRequest(parent=f"organisations/{UNIT}"))
    assert f.code is grpc.StatusCode.INTERNAL
    assert f.reason == "INTERNAL"
    request_id = f.metadata["request_id"]
    assert request_id in f.message
    assert "suppliers" not in f.message.lower() and "sql" not in f.message.lower()
    logged = capsys.readouterr()
    log = logged.out + logged.err
    assert "Traceback" in log or "exception" in log
    assert request_id in log


class _NoGrants:
    async def grants_for(self, holder: str) -> list[Grant]:
        return []


def test_only_sqlites_integer_past_64_bits_is_amount_out_of_range(tmp_path: Path) -> None:
    """SQLite's driver cannot bind an integer past 64 bits and raises OverflowError from the
    execute: the kernel answers it as PostgreSQL's numeric_value_out_of_range, a refusal
    (AMOUNT_OUT_OF_RANGE). Any other OverflowError inside a use case, a date computed off
    the calendar above all, is a bug: it goes on to be answered INTERNAL (review finding)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'overflow.db'}", pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    db = Database(engine)
    kernel = ServiceKernel(
        name="overflow",
        db=db,
        tables=add_kernel_tables(MetaData()),
        policy=AccessPolicy(_NoGrants()),
        pager=Pager(b"overflow-test-secret"),
        pool_size=1,
    )
    scope = Scope.of("E23000010")

    def store(x: int) -> Callable[[], Empty]:
        def attempt() -> Empty:
            with db.session(scope, write=True) as session:
                session.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
            raise AssertionError("stored")

        return attempt

    def day_before_the_first() -> Empty:
        day = dt.date(1, 1, 1) - dt.timedelta(days=1)
        raise AssertionError(day)

    try:
        with pytest.raises(FailedPrecondition) as refused:
            kernel._retrying(scope, store(2**70), None)
        assert refused.value.reason == "AMOUNT_OUT_OF_RANGE"
        with pytest.raises(OverflowError, match="date value out of range"):
            kernel._retrying(scope, day_before_the_first, None)
    finally:
        asyncio.run(kernel.close())
