"""The supplier register end to end, as a shared-service unit and its members use it."""

from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from tests.support import UNIT, Suite, audit_column, failure


def test_create_get_list_update(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial", subject="cthomas")
    created = officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}",
            supplier=supplier_pb2.Supplier(
                display_name="Acme Ltd",
                vat_number="GB 123 4567 82",
                companies_house_number="1234567",
                sme=True,
            ),
        )
    )
    assert created.name.startswith(f"organisations/{UNIT}/suppliers/s-")
    assert created.vat_number == "GB123456782"
    assert created.companies_house_number == "01234567"
    assert created.audit.create_principal == f"{UNIT}/cthomas"
    got = officer.procurement.GetSupplier(pb.GetSupplierRequest(name=created.name))
    assert got == created
    listed = officer.procurement.ListSuppliers(pb.ListSuppliersRequest(parent=f"organisations/{UNIT}"))
    assert [s.name for s in listed.suppliers] == [created.name]
    assert listed.next_page_token == ""
    updated = officer.procurement.UpdateSupplier(
        pb.UpdateSupplierRequest(
            supplier=supplier_pb2.Supplier(
                name=created.name, display_name="Acme Holdings Ltd", etag=created.etag
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
    )
    assert updated.display_name == "Acme Holdings Ltd"
    assert updated.vat_number == "GB123456782"  # not in the mask: unchanged
    assert updated.etag != created.etag


def test_bad_input_lists_every_bad_field(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    f = failure(
        officer.procurement.CreateSupplier,
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}",
            supplier=supplier_pb2.Supplier(
                display_name=" ", vat_number="GB123456789", companies_house_number="XX12"
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {
        "supplier.display_name",
        "supplier.vat_number",
        "supplier.companies_house_number",
    }
    assert "check digits" in f.violations["supplier.vat_number"]
    bad_parent = failure(
        officer.procurement.CreateSupplier,
        pb.CreateSupplierRequest(parent="forces/1", supplier=supplier_pb2.Supplier(display_name="X")),
    )
    assert bad_parent.code is grpc.StatusCode.INVALID_ARGUMENT and "parent" in bad_parent.violations
    # Nothing was half-written.
    assert not officer.procurement.ListSuppliers(
        pb.ListSuppliersRequest(parent=f"organisations/{UNIT}")
    ).suppliers


def test_duplicate_company_number_is_already_exists(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    request = pb.CreateSupplierRequest(
        parent=f"organisations/{UNIT}",
        supplier=supplier_pb2.Supplier(display_name="A", companies_house_number="SC123456"),
    )
    officer.procurement.CreateSupplier(request)
    f = failure(officer.procurement.CreateSupplier, request)
    assert f.code is grpc.StatusCode.ALREADY_EXISTS
    assert f.reason == "SUPPLIER_ALREADY_REGISTERED"


def test_update_mask_and_etag(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    s = officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}", supplier=supplier_pb2.Supplier(display_name="Old")
        )
    )
    officer.procurement.UpdateSupplier(
        pb.UpdateSupplierRequest(
            supplier=supplier_pb2.Supplier(name=s.name, postcode="ls1 1aa", etag=s.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["postcode"]),
        )
    )
    stale = failure(
        officer.procurement.UpdateSupplier,
        pb.UpdateSupplierRequest(
            supplier=supplier_pb2.Supplier(name=s.name, display_name="New", etag=s.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
    )
    assert stale.code is grpc.StatusCode.ABORTED
    assert stale.reason == "ETAG_MISMATCH"
    bad_mask = failure(
        officer.procurement.UpdateSupplier,
        pb.UpdateSupplierRequest(
            supplier=supplier_pb2.Supplier(name=s.name),
            update_mask=field_mask_pb2.FieldMask(paths=["name", "etag"]),
        ),
    )
    assert bad_mask.code is grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in bad_mask.violations
    current = officer.procurement.GetSupplier(pb.GetSupplierRequest(name=s.name))
    assert current.display_name == "Old" and current.postcode == "LS1 1AA"


def test_a_correlation_id_too_long_to_audit_is_replaced_not_a_failed_write(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    parent = f"organisations/{UNIT}"
    kept = officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(parent=parent, supplier=supplier_pb2.Supplier(display_name="Kept Ltd")),
        metadata=(("x-request-id", "trace-42"),),
    )
    replaced = officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(parent=parent, supplier=supplier_pb2.Supplier(display_name="Long Ltd")),
        metadata=(("x-request-id", "r" * 150),),
    )
    assert audit_column(suite.settings, "procurement", kept.name, "request_id") == ["trace-42"]
    [new_id] = audit_column(suite.settings, "procurement", replaced.name, "request_id")
    assert new_id != "r" * 150 and len(new_id) == 36


def test_a_case_insensitive_search_folds_more_than_ascii(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    parent = f"organisations/{UNIT}"
    emile = officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(parent=parent, supplier=supplier_pb2.Supplier(display_name="Émile Café Ltd"))
    )
    for text in ("Émile", "émile", "CAFÉ"):
        found = officer.procurement.ListSuppliers(
            pb.ListSuppliersRequest(parent=parent, filter=f'display_name:"{text}"')
        )
        assert [s.name for s in found.suppliers] == [emile.name], text
