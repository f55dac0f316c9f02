"""Connections the database drops (a restart, a failover) cost no call: the pool has no
pre-ping, so the first statement of each transaction finds a dead connection and the
transaction starts again on a new one."""

from __future__ import annotations

import psycopg
import pytest

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from libs.common.config import Settings
from tests.support import WEST_YORKSHIRE, Suite


def _drop_every_connection_but_mine(settings: Settings) -> int:
    assert settings.database_url
    dsn = settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
def test_calls_after_the_database_drops_every_connection_succeed(
    postgres_settings: Settings, postgres_suite: Suite
) -> None:
    caller = postgres_suite.caller(WEST_YORKSHIRE, "procurement.commercial")
    parent = f"organisations/{WEST_YORKSHIRE}"
    made = caller.procurement.CreateSupplier(
        pb.CreateSupplierRequest(parent=parent, supplier=supplier_pb2.Supplier(display_name="Before Ltd"))
    )
    for _ in range(3):  # reads, then writes, each on pooled connections the server has dropped
        assert _drop_every_connection_but_mine(postgres_settings) > 0
        assert (
            caller.procurement.GetSupplier(pb.GetSupplierRequest(name=made.name)).display_name == "Before Ltd"
        )
        assert _drop_every_connection_but_mine(postgres_settings) > 0
        caller.procurement.CreateSupplier(
            pb.CreateSupplierRequest(parent=parent, supplier=supplier_pb2.Supplier(display_name="After Ltd"))
        )
    listed = caller.procurement.ListSuppliers(pb.ListSuppliersRequest(parent=parent, page_size=10))
    assert sorted(s.display_name for s in listed.suppliers) == ["After Ltd"] * 3 + ["Before Ltd"]
