"""The OpenAPI document: generated from the descriptors, complete, valid; and schemathesis
against the running gateway over it: no 5xx, every response conforms."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from google.api import annotations_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from services.gateway.app import RunningGateway, suite_descriptors
from services.gateway.openapi import openapi_document
from services.gateway.routes import routes_of
from tests.support import UNIT, Suite


def _annotated_methods() -> set[str]:
    return {
        m.full_name
        for d in suite_descriptors()
        for m in d.methods
        if m.GetOptions().HasExtension(annotations_pb2.http)
    }


def test_every_annotated_rpc_has_an_operation() -> None:
    document = openapi_document(routes_of(suite_descriptors()))
    operations = {
        op["summary"] for item in document["paths"].values() for op in item.values() if isinstance(op, dict)
    }
    assert operations == _annotated_methods()
    assert len(operations) > 100
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    # Wildcards become path parameters; the custom method keeps its verb.
    debar = document["paths"]["/v1/organisations/{organisationsId}/suppliers/{suppliersId}:debar"]["post"]
    assert [p["name"] for p in debar["parameters"]] == ["organisationsId", "suppliersId"]
    supplier = document["components"]["schemas"]["backoffice.procurement.v1.Supplier"]["properties"]
    assert supplier["displayName"] == {"type": "string"}
    assert supplier["audit"]["readOnly"] is True
    assert supplier["addressLines"] == {"type": "array", "items": {"type": "string"}}
    money = document["components"]["schemas"]["google.type.Money"]["properties"]
    assert money["units"]["type"] == "string"  # int64 is a string in protobuf's JSON mapping


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_served_document_is_valid_openapi(gateway: RunningGateway) -> None:
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    assert len(list(schema.get_all_operations())) == len(_annotated_methods())


# A handful of operations, across services, reads and writes, standard and custom methods:
# the whole API in the time a test should take is not on offer.
OPERATIONS = [
    "ProcurementService_CreateSupplier",
    "ProcurementService_GetSupplier",
    "ProcurementService_ListSuppliers",
    "ProcurementService_DebarSupplier",
    "ProcurementService_UpdateSupplier",
    "ProcurementService_ListRequisitions",
    "DirectoryService_ListOrganisations",
    "HrService_ListPeople",
    "FinanceService_ListJournals",
]
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_error_and_no_nonconforming_response(
    suite: Suite, gateway: RunningGateway
) -> None:
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    schema: Any = schemathesis.openapi.from_dict(document)
    # GATEWAY_FUZZ_ALL=1: every operation, e.g. for a longer run by hand.
    everything = os.environ.get("GATEWAY_FUZZ_ALL") == "1"
    if not everything:
        schema = schema.include(operation_id=OPERATIONS)
    operations = [result.ok() for result in schema.get_all_operations()]
    if not everything:
        assert {op.definition.raw["operationId"] for op in operations} == set(OPERATIONS)
    roles = ("procurement.commercial", "hr.officer", "finance.payables")
    headers = {"Authorization": f"Bearer {suite.token(UNIT, *roles)}"}
    for operation in operations:

        @given(case=operation.as_strategy(), own=st.booleans())
        @settings(
            max_examples=int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "15")),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, own: bool) -> None:
            if own and case.path_parameters and "organisationsId" in case.path_parameters:
                # Half the calls in the unit's own organisation, where data exists.
                case.path_parameters["organisationsId"] = UNIT
            response = case.call(base_url=gateway.url, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS)

        run()
