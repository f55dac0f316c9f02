"""The HTTP/JSON gateway end to end: real HTTP calls, transcoded to the real services, on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from services.gateway.app import RunningGateway
from tests.support import OTHER_UNIT, UNIT, Suite, today

SUPPLIERS = f"/v1/organisations/{UNIT}/suppliers"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def bearer(suite: Suite, organisation: str, *roles: str, subject: str = "council-dev") -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.token(organisation, *roles, subject=subject)}"}


def detail(body: dict[str, Any], type_url: str) -> dict[str, Any]:
    (found,) = [d for d in body.get("details", []) if d["@type"] == type_url]
    return dict(found)


def violations(body: dict[str, Any]) -> dict[str, str]:
    return {v["field"]: v["description"] for v in detail(body, BAD_REQUEST)["fieldViolations"]}


def reason(body: dict[str, Any]) -> str:
    return str(detail(body, ERROR_INFO)["reason"])


def test_create_get_list_update_and_a_custom_method(suite: Suite, http: httpx.Client) -> None:
    auth = bearer(suite, UNIT, "procurement.commercial", subject="cthomas")
    created = http.post(
        SUPPLIERS,
        params={"requestId": "3f0b8c1e-6c53-4a4e-9d3e-6a2f3c1d9b10"},
        json={"displayName": "Acme Ltd", "vatNumber": "GB 123 4567 82", "companiesHouseNumber": "1234567"},
        headers=auth,
    )
    assert created.status_code == 200, created.text
    assert created.headers["content-type"] == "application/json"
    supplier = created.json()
    assert supplier["name"].startswith(f"organisations/{UNIT}/suppliers/s-")
    assert supplier["vatNumber"] == "GB123456782"  # protobuf's JSON mapping: lowerCamelCase
    assert supplier["audit"]["createPrincipal"] == f"{UNIT}/cthomas"  # the token reached the service

    # The same request id again: the first result, not a second supplier (AIP-155 through HTTP).
    again = http.post(
        SUPPLIERS,
        params={"request_id": "3f0b8c1e-6c53-4a4e-9d3e-6a2f3c1d9b10"},  # proto field names work too
        json={"displayName": "Acme Ltd", "vatNumber": "GB 123 4567 82", "companiesHouseNumber": "1234567"},
        headers=auth,
    )
    assert again.json()["name"] == supplier["name"]

    got = http.get(f"/v1/{supplier['name']}", headers=auth)
    assert got.status_code == 200
    assert got.json() == supplier

    second = http.post(SUPPLIERS, json={"displayName": "Bolt Ltd"}, headers=auth).json()
    page = http.get(SUPPLIERS, params={"pageSize": 1}, headers=auth).json()
    assert [s["name"] for s in page["suppliers"]] == [supplier["name"]]
    rest = http.get(
        SUPPLIERS, params={"pageSize": 1, "pageToken": page["nextPageToken"]}, headers=auth
    ).json()
    assert [s["name"] for s in rest["suppliers"]] == [second["name"]]
    filtered = http.get(SUPPLIERS, params={"filter": 'display_name:"Bolt"'}, headers=auth).json()
    assert [s["name"] for s in filtered["suppliers"]] == [second["name"]]

    # PATCH with body "supplier", the name from the path and the field mask as a query parameter.
    updated = http.patch(
        f"/v1/{supplier['name']}",
        params={"updateMask": "displayName"},
        json={"displayName": "Acme Holdings Ltd", "etag": supplier["etag"]},
        headers=auth,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["displayName"] == "Acme Holdings Ltd"
    assert updated.json()["vatNumber"] == "GB123456782"

    # A custom method (AIP-136) with body "*".
    day = today()
    debarred = http.post(
        f"/v1/{supplier['name']}:debar",
        json={
            "reason": "Listed on the debarment list",
            "debarmentDate": {"year": day.year, "month": day.month, "day": day.day},
            "etag": updated.json()["etag"],
        },
        headers=auth,
    )
    assert debarred.status_code == 200, debarred.text
    assert debarred.json()["debarment"]["reason"] == "Listed on the debarment list"
    twice = http.post(
        f"/v1/{supplier['name']}:debar",
        json={"reason": "again", "debarmentDate": {"year": day.year, "month": day.month, "day": day.day}},
        headers=auth,
    )
    assert twice.status_code == 400  # FAILED_PRECONDITION
    assert twice.json()["code"] == 9
    assert reason(twice.json()) == "SUPPLIER_ALREADY_DEBARRED"


def test_errors_map_to_http_status_with_the_status_as_json(suite: Suite, http: httpx.Client) -> None:
    auth = bearer(suite, UNIT, "procurement.commercial")
    bad = http.post(
        SUPPLIERS,
        json={"displayName": " ", "vatNumber": "GB123456789", "companiesHouseNumber": "XX12"},
        headers=auth,
    )
    assert bad.status_code == 400
    body = bad.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    assert body["message"]
    # A council's developer sees which field was wrong, and why.
    assert set(violations(body)) == {
        "supplier.display_name",
        "supplier.vat_number",
        "supplier.companies_house_number",
    }
    assert "check digits" in violations(body)["supplier.vat_number"]

    # No token: the service (not the gateway) says UNAUTHENTICATED.
    assert http.get(SUPPLIERS).status_code == 401
    assert http.get(SUPPLIERS, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    # The token is forwarded unchanged: a role without the permission is refused by the service.
    denied = http.post(SUPPLIERS, json={"displayName": "X"}, headers=bearer(suite, UNIT, "hr.records"))
    assert denied.status_code == 403
    assert denied.json()["code"] == 7
    # Another organisation's register: creating there needs an agreement.
    elsewhere = http.post(
        f"/v1/organisations/{OTHER_UNIT}/suppliers", json={"displayName": "X"}, headers=auth
    )
    assert elsewhere.status_code == 403
    assert reason(elsewhere.json()) == "NO_AGREEMENT"

    missing = http.get(f"{SUPPLIERS}/s-doesnotexist", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["code"] == 5

    first = http.post(
        SUPPLIERS, json={"displayName": "Acme", "companiesHouseNumber": "01234567"}, headers=auth
    )
    assert first.status_code == 200
    taken = http.post(
        SUPPLIERS, json={"displayName": "Acme 2", "companiesHouseNumber": "01234567"}, headers=auth
    )
    assert taken.status_code == 409
    assert reason(taken.json()) == "SUPPLIER_ALREADY_REGISTERED"

    stale = http.patch(
        f"/v1/{first.json()['name']}",
        params={"updateMask": "displayName"},
        json={"displayName": "Acme Group", "etag": 'W/"999"'},
        headers=auth,
    )
    assert stale.status_code == 409  # ABORTED
    assert reason(stale.json()) == "ETAG_MISMATCH"


def test_requests_that_do_not_fit_the_rpc_are_bad_requests(suite: Suite, http: httpx.Client) -> None:
    auth = bearer(suite, UNIT, "procurement.commercial")
    not_json = http.post(SUPPLIERS, content=b"{nope", headers={**auth, "content-type": "application/json"})
    assert not_json.status_code == 400
    assert reason(not_json.json()) == "BAD_HTTP_REQUEST"
    assert "body" in violations(not_json.json())

    unknown_field = http.post(SUPPLIERS, json={"displayName": "X", "colour": "red"}, headers=auth)
    assert unknown_field.status_code == 400
    assert "supplier" in violations(unknown_field.json())

    wrong_type = http.get(SUPPLIERS, params={"pageSize": "lots"}, headers=auth)
    assert wrong_type.status_code == 400
    assert "pageSize" in violations(wrong_type.json())

    unknown_param = http.get(SUPPLIERS, params={"colour": "red"}, headers=auth)
    assert unknown_param.status_code == 400
    assert violations(unknown_param.json()) == {"colour": "no such field"}

    path_param_in_query = http.get(SUPPLIERS, params={"parent": "organisations/E23000010"}, headers=auth)
    assert path_param_in_query.status_code == 400

    no_route = http.get("/v1/nothing/here", headers=auth)
    assert no_route.status_code == 404
    assert reason(no_route.json()) == "NO_SUCH_PATH"
    wrong_method = http.delete(SUPPLIERS, headers=auth)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, POST"
    assert reason(wrong_method.json()) == "METHOD_NOT_ALLOWED"


def test_a_service_that_does_not_answer_is_503_without_its_address(suite: Suite, http: httpx.Client) -> None:
    procurement = next(s for s in suite.servers if s.app.name == "procurement")
    suite.run(procurement.stop(1))
    # Anyone may reach the gateway: gRPC's own message, which names the service's address
    # inside the cluster, goes to the log, not to the caller.
    answer = http.get(SUPPLIERS, headers={"Authorization": "Bearer not-even-a-token"})
    assert answer.status_code == 503
    assert reason(answer.json()) == "BACKEND_UNAVAILABLE"
    assert procurement.address.rsplit(":", 1)[1] not in answer.text and "ipv4" not in answer.text


def test_other_services_are_reachable_too(suite: Suite, http: httpx.Client, gateway: RunningGateway) -> None:
    # Organisations are public in the directory; every service's annotated RPCs are routed.
    services = {r.service.full_name for r in gateway.gateway.routes}
    assert services == {
        "backoffice.directory.v1.DirectoryService",
        "backoffice.procurement.v1.ProcurementService",
        "backoffice.finance.v1.FinanceService",
        "backoffice.hr.v1.HrService",
    }
    auth = bearer(suite, UNIT, "procurement.commercial")
    policy = http.get(f"/v1/organisations/{UNIT}/procurementPolicy", headers=auth)
    assert policy.status_code in (200, 404), policy.text
    assert http.get("/healthz").json() == {"status": "SERVING"}
