"""Path templates and request transcoding, without servers."""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from services.gateway.app import suite_descriptors
from services.gateway.openapi import openapi_path
from services.gateway.routes import TemplateError, parse_template, routes_of
from services.gateway.transcode import BadHttpRequest, build_request


def test_templates_match_resource_names_and_custom_verbs() -> None:
    get = parse_template("/v1/{name=organisations/*/requisitions/*}")
    assert get.match("/v1/organisations/E23000010/requisitions/r-8f2c") == {
        "name": "organisations/E23000010/requisitions/r-8f2c"
    }
    assert get.match("/v1/organisations/E23000010/requisitions") is None
    assert get.match("/v1/organisations/E23000010/requisitions/r-8f2c:approve") is None
    approve = parse_template("/v1/{name=organisations/*/requisitions/*}:approve")
    assert approve.verb == "approve"
    assert approve.match("/v1/organisations/E23000010/requisitions/r-1:approve") == {
        "name": "organisations/E23000010/requisitions/r-1"
    }
    nested = parse_template("/v1/{supplier.name=organisations/*/suppliers/*}")
    assert nested.match("/v1/organisations/X/suppliers/s-1") == {
        "supplier.name": "organisations/X/suppliers/s-1"
    }
    plain = parse_template("/v1/things/{id}/{rest=**}")
    assert plain.match("/v1/things/7/a/b/c") == {"id": "7", "rest": "a/b/c"}
    for bad in ("v1/x", "/v1/{name=organisations/*", "/v1/{name=a/{b}}"):
        with pytest.raises(TemplateError):
            parse_template(bad)


def test_every_rpc_of_the_suite_has_a_route_from_its_annotation() -> None:
    routes = routes_of(suite_descriptors())
    methods = {m.full_name for d in suite_descriptors() for m in d.methods}
    routed = {r.method.full_name for r in routes}
    # Adding an annotated RPC needs no gateway code: everything annotated is routed.
    assert routed <= methods
    assert len(routed) > 100
    debar = next(r for r in routes if r.method.name == "DebarSupplier")
    assert (debar.http_method, debar.body) == ("post", "*")
    assert openapi_path(debar)[0] == "/v1/organisations/{organisationsId}/suppliers/{suppliersId}:debar"


def _route(name: str):  # type: ignore[no-untyped-def]
    return next(r for r in routes_of(suite_descriptors()) if r.method.name == name)


def test_path_body_and_query_fill_the_request() -> None:
    update = _route("UpdateSupplier")
    request = build_request(
        update,
        pb.UpdateSupplierRequest,
        {"supplier.name": "organisations/X/suppliers/s-1"},
        [("updateMask", "displayName,vatNumber"), ("requestId", "r-1")],
        b'{"displayName": "Acme", "name": "ignored: the path wins"}',
    )
    assert request == pb.UpdateSupplierRequest(
        supplier=supplier_pb2.Supplier(name="organisations/X/suppliers/s-1", display_name="Acme"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "vat_number"]),
        request_id="r-1",
    )
    listing = _route("ListSuppliers")
    request = build_request(
        listing, pb.ListSuppliersRequest, {"parent": "organisations/X"}, [("page_size", "5")], b""
    )
    assert request == pb.ListSuppliersRequest(parent="organisations/X", page_size=5)
    with pytest.raises(BadHttpRequest) as bad:
        build_request(
            listing, pb.ListSuppliersRequest, {"parent": "organisations/X"}, [("pageSize", "x")], b""
        )
    assert bad.value.field == "pageSize"
    debar = _route("DebarSupplier")
    with pytest.raises(BadHttpRequest) as lone_surrogate:
        build_request(debar, pb.DebarSupplierRequest, {"name": "n"}, [], b'{"reason": "\\ud800"}')
    assert lone_surrogate.value.field == "body"
    with pytest.raises(BadHttpRequest) as query_on_star:
        build_request(debar, pb.DebarSupplierRequest, {"name": "n"}, [("reason", "x")], b"{}")
    assert query_on_star.value.field == "reason"
