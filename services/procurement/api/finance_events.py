"""Delivering procurement's purchase-to-pay events to finance's gRPC API (the outbox
relay calls these as the procurement service, with the event id as the request_id), and
applying finance's answer to the order in the same transaction that marks the event
delivered."""

from __future__ import annotations

from decimal import Decimal

import grpc

from backoffice.finance.v1 import budget_pb2, finance_service_pb2, finance_service_pb2_grpc
from libs.common.clock import today_london
from libs.common.outbox import (
    PERMANENT_CODES,
    Delivery,
    Discarded,
    Handler,
    OutboxEvent,
    Settle,
    error_reason,
)
from libs.common.proto_mapping import money_to_proto
from libs.common.service import Transaction
from services.procurement import service
from services.procurement.domain.purchase_order import PurchaseOrder, PurchaseOrderState
from services.procurement.service import ProcurementUnitOfWork

# Finance's answers about the request itself. PERMISSION_DENIED is not among them: it says
# the suite is misconfigured (an agreement, a role), which an operator mends and retries.
_REFUSALS = PERMANENT_CODES - {grpc.StatusCode.PERMISSION_DENIED}


def _stub(delivery: Delivery) -> finance_service_pb2_grpc.FinanceServiceAsyncStub:
    return finance_service_pb2_grpc.FinanceServiceStub(delivery.channel("finance"))


def _order_id(event: OutboxEvent) -> str:
    return str(event.payload["order"]).rsplit("/", 1)[1]


async def raise_commitment(event: OutboxEvent, delivery: Delivery) -> Settle:
    budget = str(event.payload["budget"])
    ledger = budget.split("/budgets/", 1)[0]
    order_id = _order_id(event)
    try:
        commitment = await _stub(delivery).RaiseCommitment(
            finance_service_pb2.RaiseCommitmentRequest(
                parent=ledger,
                commitment=budget_pb2.Commitment(
                    budget=budget,
                    amount=money_to_proto(Decimal(str(event.payload["amount"]))),
                    reference=str(event.payload["order"]),
                ),
                override_reason=str(event.payload.get("override_reason", "")),
                request_id=event.id,
            ),
            metadata=delivery.metadata,
            timeout=delivery.timeout,
        )
    except grpc.aio.AioRpcError as err:
        if err.code() in _REFUSALS:
            # A decision on this order (over budget, no such budget, a closed year, an amount
            # finance will not commit), not a failed delivery: the order goes back to DRAFT
            # and says why, rather than wait for ever on an event parked for an operator.
            refusal = f"{error_reason(err) or err.code().name}: {err.details()}"

            def refused(tx: Transaction) -> PurchaseOrder:
                uow = ProcurementUnitOfWork(tx)
                return service.commitment_refused(uow, event.organisation, order_id, refusal)

            return refused
        raise

    def raised(tx: Transaction) -> PurchaseOrder:
        uow = ProcurementUnitOfWork(tx)
        return service.commitment_raised(uow, event.organisation, order_id, commitment.name, today_london())

    return raised


async def release_commitment(event: OutboxEvent, delivery: Delivery) -> Settle | None:
    request = finance_service_pb2.ReleaseCommitmentRequest(
        name=str(event.payload["commitment"]), request_id=event.id
    )
    if "retain_to" in event.payload:
        # What was received and not yet invoiced stays committed. An event recorded before
        # the upgrade carries none, and releases all that is open, as it did then.
        request.retain_to.CopyFrom(money_to_proto(Decimal(str(event.payload["retain_to"]))))
    try:
        await _stub(delivery).ReleaseCommitment(
            request,
            metadata=delivery.metadata,
            timeout=delivery.timeout,
        )
    except grpc.aio.AioRpcError as err:
        # Consumed in full already: nothing remains to release.
        if not (
            err.code() is grpc.StatusCode.FAILED_PRECONDITION and error_reason(err) == "COMMITMENT_CLOSED"
        ):
            raise
    return None


async def consume_commitment(event: OutboxEvent, delivery: Delivery) -> Settle | None:
    """Goods receipts published these before receipts stopped consuming the commitment;
    kept so that events still waiting in an outbox at the upgrade are delivered."""
    await _stub(delivery).ConsumeCommitment(
        finance_service_pb2.ConsumeCommitmentRequest(
            name=str(event.payload["commitment"]),
            consumed_to=money_to_proto(Decimal(str(event.payload["consumed_to"]))),
            request_id=event.id,
        ),
        metadata=delivery.metadata,
        timeout=delivery.timeout,
    )
    return None


HANDLERS: dict[str, Handler] = {
    service.RAISE_COMMITMENT: raise_commitment,
    service.CONSUME_COMMITMENT: consume_commitment,
    service.RELEASE_COMMITMENT: release_commitment,
}


def raise_discarded(tx: Transaction, event: OutboxEvent, reason: str) -> PurchaseOrder:
    """Operations gave up on asking finance to commit: the order goes back to DRAFT saying
    so (to be issued again, a new request, or cancelled) instead of waiting for ever."""
    uow = ProcurementUnitOfWork(tx)
    order = service.get_purchase_order(uow, event.organisation, _order_id(event))
    if order.state is not PurchaseOrderState.PENDING_COMMITMENT:
        return order
    # An event parks when finance refused the call (no commitment), or when its answer
    # could not be applied here: then finance did commit, and only it can release that.
    refusal = (
        f"DISCARDED: operations discarded the request to commit the budget ({reason}); "
        f"if finance committed it ({event.id}), release that commitment in finance"
    )
    return service.commitment_refused(uow, event.organisation, order.id, refusal)


DISCARDED: dict[str, Discarded] = {service.RAISE_COMMITMENT: raise_discarded}
