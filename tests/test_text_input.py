"""Text the database cannot hold is bad input, refused the same way on every backend."""

from __future__ import annotations

import grpc

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from tests.support import UNIT, Suite, failure


def test_a_nul_character_in_text_is_invalid_argument_not_internal(suite: Suite) -> None:
    """Protobuf strings may carry U+0000; PostgreSQL text cannot. A request carrying one
    is the caller's mistake: INVALID_ARGUMENT naming the field, on SQLite as on
    PostgreSQL, never INTERNAL (PostgreSQL) nor stored (SQLite)."""
    officer = suite.caller(UNIT, "procurement.commercial")
    parent = f"organisations/{UNIT}"

    f = failure(
        officer.procurement.ListSuppliers,
        pb.ListSuppliersRequest(parent=parent, filter='display_name = "Acme\x00Ltd"'),
    )
    assert (f.code, f.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"), f.message
    assert "filter" in f.violations

    f = failure(
        officer.procurement.CreateSupplier,
        pb.CreateSupplierRequest(parent=parent, supplier=supplier_pb2.Supplier(display_name="Acme\x00Ltd")),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f.message
    assert "supplier.display_name" in f.violations
    assert officer.procurement.ListSuppliers(pb.ListSuppliersRequest(parent=parent)).suppliers == []
