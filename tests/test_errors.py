"""Unexpected failures: the caller learns nothing of the internals, the log has it all."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import create_engine, text

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from libs.common.config import Settings
from libs.common.db import normalise_url
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
