"""ListOutboxEvents pages by keyset, as every List does (libs/common/paging.py): a page
reads its own rows from the database, not the whole outbox."""

from __future__ import annotations

import json
import threading
from typing import Any

import grpc
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from backoffice.operations.v1 import operations_service_pb2 as opb
from backoffice.operations.v1 import operations_service_pb2_grpc
from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.outbox import DELIVERED, _now
from services.procurement.persistence.models import KERNEL
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Suite, failure


def _delivered_history(suite: Suite, organisation: str, count: int) -> None:
    """`count` events procurement published and delivered long ago: kept as a record."""
    db = build_database("procurement", suite.settings)
    now = _now()
    rows = [
        {
            "id": f"{organisation}-{i:05d}",
            "organisation_code": organisation,
            "topic": "procurement.order.issued",
            "key": f"organisations/{organisation}/purchaseOrders/po-{i:05d}",
            "payload": json.dumps({"n": i}),
            "state": DELIVERED,
            "attempts": 1,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
            "settled_at": now,
        }
        for i in range(count)
    ]
    try:
        scope = Scope.of(organisation)
        with db.writer_lock, db.session(scope, write=True) as session:
            session.execute(insert(KERNEL.outbox_events), rows)
            session.commit()
    finally:
        db.dispose()


def test_a_page_of_outbox_events_reads_one_page_not_the_whole_outbox(suite: Suite) -> None:
    _delivered_history(suite, WEST_YORKSHIRE, 300)
    _delivered_history(suite, SOUTH_YORKSHIRE, 300)
    token = suite.token(WEST_YORKSHIRE, "operations.staff", subject="ops")
    auth = (("authorization", f"Bearer {token}"),)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The servicer's reads run on the kernel's threads (the relay has its own).
        if threading.current_thread().name.startswith("procurement-db") and "outbox_events" in statement:
            statements.append(" ".join(statement.split()))

    with grpc.insecure_channel(suite.addresses["procurement"]) as channel:
        stub = operations_service_pb2_grpc.OperationsServiceStub(channel)
        first = stub.ListOutboxEvents(
            opb.ListOutboxEventsRequest(
                parent=f"organisations/{WEST_YORKSHIRE}",
                states=[opb.OUTBOX_EVENT_STATE_DELIVERED],
                page_size=2,
            ),
            metadata=auth,
        )
        assert len(first.outbox_events) == 2 and first.next_page_token
        event.listen(Engine, "before_cursor_execute", seen)
        try:
            second = stub.ListOutboxEvents(
                opb.ListOutboxEventsRequest(
                    parent=f"organisations/{WEST_YORKSHIRE}",
                    states=[opb.OUTBOX_EVENT_STATE_DELIVERED],
                    page_size=2,
                    page_token=first.next_page_token,
                ),
                metadata=auth,
            )
        finally:
            event.remove(Engine, "before_cursor_execute", seen)
    assert [e.name.rsplit("/", 1)[1] for e in second.outbox_events] == [
        f"{WEST_YORKSHIRE}-00002",
        f"{WEST_YORKSHIRE}-00003",
    ]
    assert statements, "the page read no outbox events"
    # Every organisation's delivered events, kept for ever, were read (and their payloads
    # decoded) to return two: the seek past the token, the organisation and the page size
    # belong in the query.
    for statement in statements:
        assert " LIMIT " in statement.upper(), statement
        assert "outbox_events.seq >" in statement and "organisation_code" in statement, statement


def test_one_services_page_token_does_not_page_anothers_outbox(suite: Suite) -> None:
    """Every service signs page tokens with the one secret: a token from procurement's
    outbox names procurement, so finance refuses it rather than skip its own events."""
    _delivered_history(suite, WEST_YORKSHIRE, 3)
    token = suite.token(WEST_YORKSHIRE, "operations.staff", subject="ops")
    auth = (("authorization", f"Bearer {token}"),)
    request = opb.ListOutboxEventsRequest(
        parent=f"organisations/{WEST_YORKSHIRE}", states=[opb.OUTBOX_EVENT_STATE_DELIVERED], page_size=1
    )
    with grpc.insecure_channel(suite.addresses["procurement"]) as channel:
        first = operations_service_pb2_grpc.OperationsServiceStub(channel).ListOutboxEvents(
            request, metadata=auth
        )
    assert first.next_page_token
    request.page_token = first.next_page_token
    with grpc.insecure_channel(suite.addresses["finance"]) as channel:
        f = failure(
            operations_service_pb2_grpc.OperationsServiceStub(channel).ListOutboxEvents,
            request,
            metadata=auth,
        )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in f.violations, f
