"""The operations API (`backoffice.operations.v1.OperationsService`), implemented once and
served by every service about its own database: its outbox events (list, retry, discard)
and its audit chains (verify).

It stands on the same kernel as the service's business methods, so the same rules hold:
the caller's roles must grant the method's permission, it reaches its own organisation and
those whose agreement with its unit provides the method's function today, a resource it may
not reach is NOT_FOUND, and a retry or discard is one audited, idempotent write. The
`backoffice outbox` and `backoffice audit verify` commands, which run as the database owner
outside any tenant scope, share the functions below.

Registration: a service's composition root passes its kernel in `ServiceApp.kernel`, and
`create_server` serves this API over it beside the service's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc
from sqlalchemy.orm import Session

from backoffice.operations.v1 import operations_service_pb2 as pb
from backoffice.operations.v1 import operations_service_pb2_grpc
from libs.common.audit import ChainReport, verify_chains
from libs.common.errors import InvalidArgument, NotFound
from libs.common.grpc_types import RpcContext
from libs.common.kernel_tables import KernelTables
from libs.common.names import ChildName, OrganisationName
from libs.common.outbox import (
    DELIVERED,
    DISCARDED,
    PARKED,
    PENDING,
    Discarded,
    OutboxEvent,
    discard_event,
    get_event,
    list_events,
    retry_event,
)
from libs.common.proto_mapping import timestamp

if TYPE_CHECKING:
    from google.protobuf.descriptor import ServiceDescriptor

    from libs.common.service import ServiceKernel, Transaction

DESCRIPTOR: ServiceDescriptor = pb.DESCRIPTOR.services_by_name["OperationsService"]
COLLECTION = "outboxEvents"

LIST_EVENTS = "operations.outbox.list"
RELEASE_EVENTS = "operations.outbox.release"
VERIFY_AUDIT = "operations.audit.verify"

# Shared-service operations staff: they see the cross-service events of the organisations
# their unit serves and release parked ones, and verify the audit log. A business role (it
# changes what reaches finance), so a platform operator may not hold it (check_segregation).
OPERATIONS_STAFF = "operations.staff"
# Internal audit: verifies chains, changes nothing.
OPERATIONS_AUDITOR = "operations.auditor"
ROLES: dict[str, frozenset[str]] = {
    OPERATIONS_STAFF: frozenset({LIST_EVENTS, RELEASE_EVENTS, VERIFY_AUDIT}),
    OPERATIONS_AUDITOR: frozenset({VERIFY_AUDIT}),
}

_STATE_TO_PROTO = {
    PENDING: pb.OUTBOX_EVENT_STATE_PENDING,
    DELIVERED: pb.OUTBOX_EVENT_STATE_DELIVERED,
    PARKED: pb.OUTBOX_EVENT_STATE_PARKED,
    DISCARDED: pb.OUTBOX_EVENT_STATE_DISCARDED,
}
_STATE_FROM_PROTO = {v: k for k, v in _STATE_TO_PROTO.items()}
UNSETTLED = (PENDING, PARKED)


# --- shared with the `backoffice` commands -----------------------------------------------------


def release_event(
    tx: Transaction,
    tables: KernelTables,
    event_id: str,
    discard_reason: str | None,
    discarded: Mapping[str, Discarded],
) -> OutboxEvent:
    """Retry an event (no reason) or discard it (with one, and its topic's follow-up in
    `discarded`); audited in its organisation's chain. The caller commits."""
    if discard_reason is None:
        return retry_event(tx.session, tables, tx.audit, event_id)
    event = discard_event(tx.session, tables, tx.audit, event_id, discard_reason)
    if (follow_up := discarded.get(event.topic)) is not None:
        follow_up(tx, event, discard_reason.strip())
    return event


def chain_report(session: Session, tables: KernelTables, organisation: str) -> ChainReport:
    """One organisation's chain (an organisation with no records has an intact, empty one)."""
    for report in verify_chains(session, tables):
        if report.organisation == organisation:
            return report
    return ChainReport(organisation, 0, [])


# --- the gRPC servicer -------------------------------------------------------------------------


def event_to_proto(service: str, event: OutboxEvent) -> pb.OutboxEvent:
    message = pb.OutboxEvent(
        name=str(ChildName(event.organisation, COLLECTION, event.id)),
        service=service,
        topic=event.topic,
        key=event.key,
        state=_STATE_TO_PROTO.get(event.state, pb.OUTBOX_EVENT_STATE_UNSPECIFIED),
        attempts=event.attempts,
        last_error=event.last_error,
        create_time=timestamp(event.created_at),
        payload_json=_json(event.payload),
    )
    if event.state == PENDING:
        message.next_attempt_time.CopyFrom(timestamp(event.next_attempt_at))
    if event.settled_at is not None:
        message.settle_time.CopyFrom(timestamp(event.settled_at))
    return message


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, default=str)


class OperationsServicer(operations_service_pb2_grpc.OperationsServiceServicer):
    def __init__(self, kernel: ServiceKernel, discarded: Mapping[str, Discarded]) -> None:
        self.k = kernel
        self.discarded = discarded

    async def ListOutboxEvents(  # noqa: N802  # gRPC method names are the proto's
        self, request: pb.ListOutboxEventsRequest, context: RpcContext
    ) -> pb.ListOutboxEventsResponse:
        parent = OrganisationName.parse(request.parent, allow_wildcard=True)
        states: list[str] = []
        for index, value in enumerate(request.states):
            if value not in _STATE_FROM_PROTO:
                raise InvalidArgument.single(f"states[{index}]", "must be a known, specified state")
            states.append(_STATE_FROM_PROTO[value])
        states = sorted(set(states)) or list(UNSETTLED)
        # Every service signs with the one secret: the service is named, so that one
        # service's token does not page another's outbox.
        fingerprint = self.k.pager.fingerprint(self.k.name, COLLECTION, parent, ",".join(states))
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await (self.k.scope_everywhere() if parent.is_wildcard else self.k.scope_in(parent.code))
        after = int(page.after[0]) if page.after else 0

        def fetch(tx: Transaction) -> list[OutboxEvent]:
            # Row-level security limits PostgreSQL to the scope too; SQLite has only this.
            return list_events(
                tx.session,
                self.k.tables,
                tuple(states),
                scope.organisations,
                after_seq=after,
                limit=page.size + 1,
            )

        found = await self.k.read(scope, fetch)
        token = self.k.pager.next_token(page, found, lambda x: (x.seq,))
        return pb.ListOutboxEventsResponse(
            outbox_events=[event_to_proto(self.k.name, e) for e in found[: page.size]],
            next_page_token=token,
        )

    async def _release(self, name_text: str, request: Any, discard_reason: str | None) -> pb.OutboxEvent:
        name = ChildName.parse(name_text, COLLECTION)
        scope = await self.k.scope_of(str(name), name.organisation)

        def work(tx: Transaction) -> pb.OutboxEvent:
            tables = self.k.tables
            try:
                before = get_event(tx.session, tables, name.id)
            except NotFound as err:
                raise NotFound(str(name)) from err
            if before.organisation != name.organisation:
                raise NotFound(str(name))
            return event_to_proto(
                self.k.name, release_event(tx, tables, name.id, discard_reason, self.discarded)
            )

        return await self.k.write(scope, request, pb.OutboxEvent, work)

    async def RetryOutboxEvent(  # noqa: N802
        self, request: pb.RetryOutboxEventRequest, context: RpcContext
    ) -> pb.OutboxEvent:
        return await self._release(request.name, request, None)

    async def DiscardOutboxEvent(  # noqa: N802
        self, request: pb.DiscardOutboxEventRequest, context: RpcContext
    ) -> pb.OutboxEvent:
        ChildName.parse(request.name, COLLECTION)
        if not request.reason.strip():
            raise InvalidArgument.single("reason", "say why the event will never be delivered")
        return await self._release(request.name, request, request.reason)

    async def VerifyAuditLog(  # noqa: N802
        self, request: pb.VerifyAuditLogRequest, context: RpcContext
    ) -> pb.VerifyAuditLogResponse:
        organisation = OrganisationName.parse(request.organisation, "organisation")
        scope = await self.k.scope_of(str(organisation), organisation.code)
        report = await self.k.read(
            scope, lambda tx: chain_report(tx.session, self.k.tables, organisation.code)
        )
        return pb.VerifyAuditLogResponse(
            organisation=str(organisation),
            service=self.k.name,
            intact=report.intact,
            records=report.records,
            first_broken_record=report.first_broken,
            problems=report.problems,
        )


# --- registration ------------------------------------------------------------------------------


def register(server: grpc.aio.Server, kernel: ServiceKernel, discarded: Mapping[str, Discarded]) -> None:
    operations_service_pb2_grpc.add_OperationsServiceServicer_to_server(
        OperationsServicer(kernel, discarded), server
    )
