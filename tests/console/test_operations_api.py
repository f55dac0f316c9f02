"""The operations API every service serves (libs/common/operations.py): parked events and
audit verification, through real servers on SQLite and PostgreSQL, scoped like any data."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from backoffice.operations.v1 import operations_service_pb2 as opb
from backoffice.operations.v1 import operations_service_pb2_grpc
from libs.common.operations import DESCRIPTOR
from services.suite.admin import verify_audit
from tests.console.conftest import park_event
from tests.support import UNIT, WEST_YORKSHIRE, Suite, failure

Auth = tuple[tuple[str, str | bytes], ...]


def _stub(
    suite: Suite, service: str, token: str
) -> tuple[operations_service_pb2_grpc.OperationsServiceStub, Auth]:
    channel = grpc.insecure_channel(suite.addresses[service])
    return operations_service_pb2_grpc.OperationsServiceStub(channel), (("authorization", f"Bearer {token}"),)


def test_every_service_serves_the_operations_api_with_declared_rules(suite: Suite) -> None:
    for service in suite.addresses:
        stub, auth = _stub(suite, service, suite.token(UNIT, "operations.staff"))
        found = stub.ListOutboxEvents(opb.ListOutboxEventsRequest(parent="organisations/-"), metadata=auth)
        assert list(found.outbox_events) == []
    assert {m.name for m in DESCRIPTOR.methods} == {
        "ListOutboxEvents",
        "RetryOutboxEvent",
        "DiscardOutboxEvent",
        "VerifyAuditLog",
    }


def test_parked_events_are_listed_retried_and_discarded_within_scope(suite: Suite) -> None:
    first = park_event(suite, WEST_YORKSHIRE, key="orders/1")
    second = park_event(suite, WEST_YORKSHIRE, key="orders/2")
    elsewhere = park_event(suite, UNIT, key="orders/3")
    staff, auth = _stub(suite, "procurement", suite.token(WEST_YORKSHIRE, "operations.staff", subject="ops"))

    parked = staff.ListOutboxEvents(
        opb.ListOutboxEventsRequest(parent="organisations/-", states=[opb.OUTBOX_EVENT_STATE_PARKED]),
        metadata=auth,
    )
    # Only the caller's organisation: the unit's event is out of its reach.
    assert [e.name for e in parked.outbox_events] == [
        f"organisations/{WEST_YORKSHIRE}/outboxEvents/{first}",
        f"organisations/{WEST_YORKSHIRE}/outboxEvents/{second}",
    ]
    event = parked.outbox_events[0]
    assert event.service == "procurement" and event.topic == "test.parked"
    assert "BUDGET_CLOSED" in event.last_error and event.attempts == 1
    # Paging.
    page = staff.ListOutboxEvents(
        opb.ListOutboxEventsRequest(parent=f"organisations/{WEST_YORKSHIRE}", page_size=1), metadata=auth
    )
    assert len(page.outbox_events) == 1 and page.next_page_token
    rest = staff.ListOutboxEvents(
        opb.ListOutboxEventsRequest(
            parent=f"organisations/{WEST_YORKSHIRE}", page_size=1, page_token=page.next_page_token
        ),
        metadata=auth,
    )
    assert [e.name.rsplit("/", 1)[1] for e in rest.outbox_events] == [second]

    f = failure(
        staff.RetryOutboxEvent,
        opb.RetryOutboxEventRequest(name=f"organisations/{UNIT}/outboxEvents/{elsewhere}"),
        metadata=auth,
    )
    assert f.code is grpc.StatusCode.NOT_FOUND
    # An event named under the wrong organisation is not found either.
    f = failure(
        staff.RetryOutboxEvent,
        opb.RetryOutboxEventRequest(name=f"organisations/{WEST_YORKSHIRE}/outboxEvents/{elsewhere}"),
        metadata=auth,
    )
    assert f.code is grpc.StatusCode.NOT_FOUND

    f = failure(
        staff.DiscardOutboxEvent,
        opb.DiscardOutboxEventRequest(name=f"organisations/{WEST_YORKSHIRE}/outboxEvents/{second}"),
        metadata=auth,
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "reason" in f.violations
    discarded = staff.DiscardOutboxEvent(
        opb.DiscardOutboxEventRequest(
            name=f"organisations/{WEST_YORKSHIRE}/outboxEvents/{second}", reason="sent by post instead"
        ),
        metadata=auth,
    )
    assert discarded.state == opb.OUTBOX_EVENT_STATE_DISCARDED and discarded.HasField("settle_time")
    f = failure(
        staff.RetryOutboxEvent,
        opb.RetryOutboxEventRequest(name=discarded.name),
        metadata=auth,
    )
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "OUTBOX_EVENT_SETTLED"

    # The audit chain records both changes and stays intact, by the API and by the command.
    verified = staff.VerifyAuditLog(
        opb.VerifyAuditLogRequest(organisation=f"organisations/{WEST_YORKSHIRE}"), metadata=auth
    )
    assert verified.intact and verified.records >= 1 and verified.service == "procurement"
    assert verified.first_broken_record == 0 and not verified.problems
    reports = [
        r for name, r in verify_audit(suite.settings, ["procurement"]) if r.organisation == WEST_YORKSHIRE
    ]
    assert reports and reports[0].intact


def test_access_is_decided_by_roles_and_agreements(suite: Suite) -> None:
    event = park_event(suite, WEST_YORKSHIRE)
    name = f"organisations/{WEST_YORKSHIRE}/outboxEvents/{event}"
    # Without the role: refused with the permission named.
    buyer, auth = _stub(suite, "procurement", suite.token(WEST_YORKSHIRE, "procurement.buyer"))
    f = failure(buyer.RetryOutboxEvent, opb.RetryOutboxEventRequest(name=name), metadata=auth)
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "MISSING_PERMISSION"
    # An auditor verifies but does not release.
    auditor, auth = _stub(suite, "procurement", suite.token(WEST_YORKSHIRE, "operations.auditor"))
    assert auditor.VerifyAuditLog(
        opb.VerifyAuditLogRequest(organisation=f"organisations/{WEST_YORKSHIRE}"), metadata=auth
    ).intact
    f = failure(auditor.RetryOutboxEvent, opb.RetryOutboxEventRequest(name=name), metadata=auth)
    assert f.code is grpc.StatusCode.PERMISSION_DENIED
    # Another organisation's staff, with no agreement: nothing to see, nothing to verify.
    unit, auth = _stub(suite, "procurement", suite.token(UNIT, "operations.staff"))
    assert not unit.ListOutboxEvents(
        opb.ListOutboxEventsRequest(parent="organisations/-"), metadata=auth
    ).outbox_events
    f = failure(
        unit.VerifyAuditLog,
        opb.VerifyAuditLogRequest(organisation=f"organisations/{WEST_YORKSHIRE}"),
        metadata=auth,
    )
    assert f.code is grpc.StatusCode.NOT_FOUND
    # A platform operator may not hold the role (segregation of duties).
    operator, auth = _stub(suite, "procurement", suite.token(UNIT, "platform.operator", "operations.staff"))
    f = failure(
        operator.ListOutboxEvents, opb.ListOutboxEventsRequest(parent="organisations/-"), metadata=auth
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "SEGREGATION_OF_DUTIES"


@pytest.mark.parametrize("state", [opb.OUTBOX_EVENT_STATE_UNSPECIFIED, 99])
def test_a_bad_state_filter_is_invalid(suite: Suite, state: Any) -> None:
    stub, auth = _stub(suite, "finance", suite.token(UNIT, "operations.staff"))
    f = failure(
        stub.ListOutboxEvents,
        opb.ListOutboxEventsRequest(parent="organisations/-", states=[state]),
        metadata=auth,
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "states[0]" in f.violations
