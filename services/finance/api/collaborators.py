"""What finance reads from the other services, through their gRPC APIs (never their
databases): purchase orders and what was received against them, from procurement, for the
three-way match; headcount and FTE, from HR, to allocate a unit's costs by.

Finance calls as itself (`service.finance`, which procurement and HR grant only these
reads) on behalf of the organisation whose request started the work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import grpc

from backoffice.hr.v1 import hr_service_pb2, hr_service_pb2_grpc
from backoffice.procurement.v1 import procurement_service_pb2, procurement_service_pb2_grpc
from libs.common.errors import FailedPrecondition, PermissionDenied, Unavailable
from libs.common.names import OrganisationName
from libs.common.outbox import error_reason
from libs.common.peers import Peers, PeersUnavailable, peer_away
from libs.common.proto_mapping import date_to_proto, decimal_from_proto, money_from_proto
from services.finance.domain.invoices import suite_order_problem
from services.finance.domain.matching import OrderEvidence, OrderLine, ReceiptLine


def _unavailable(service: str, err: Exception) -> Unavailable:
    return Unavailable(
        f"the {service} service cannot be reached from here: {err}", metadata={"service": service}
    )


@dataclass(frozen=True)
class PlacedOrder:
    """A purchase order as procurement holds it: lines, receipts and its commitment."""

    evidence: OrderEvidence
    commitment: str


def suite_order(organisation: str, purchase_order: str) -> bool:
    """Whether an invoice's purchase order is one of the organisation's orders in the
    suite's procurement service (an order placed elsewhere is just a reference)."""
    return suite_order_problem(organisation, purchase_order) is None


class ProcurementOrders:
    def __init__(self, peers: Peers, timeout: float) -> None:
        self._peers = peers
        self._timeout = timeout

    async def read(self, organisation: str, purchase_order: str) -> PlacedOrder:
        try:
            stub = procurement_service_pb2_grpc.ProcurementServiceStub(self._peers.channel("procurement"))
            order = await stub.GetPurchaseOrder(
                procurement_service_pb2.GetPurchaseOrderRequest(name=purchase_order),
                metadata=self._peers.metadata(organisation),
                timeout=self._timeout,
                # A procurement pod that is restarting gets the deadline to come back.
                wait_for_ready=True,
            )
        except PeersUnavailable as err:
            raise _unavailable("procurement", err) from None
        except grpc.aio.AioRpcError as err:
            if away := peer_away(err, "procurement"):
                raise away from None
            if err.code() is grpc.StatusCode.NOT_FOUND:
                raise FailedPrecondition(
                    f"procurement has no purchase order {purchase_order}",
                    reason="ORDER_NOT_FOUND",
                    metadata={"purchase_order": purchase_order},
                ) from None
            raise FailedPrecondition(
                f"procurement refused to give purchase order {purchase_order}: {err.details()}",
                reason="ORDER_DATA_UNAVAILABLE",
                metadata={"purchase_order": purchase_order, "refusal": err.code().name},
            ) from None
        lines = []
        receipts = []
        for line in order.lines:
            number = str(line.line_number)
            lines.append(
                OrderLine(
                    number,
                    decimal_from_proto(line.item.quantity, "quantity") or Decimal(0),
                    money_from_proto(line.item.unit_price, "unit_price"),
                )
            )
            received = decimal_from_proto(line.received_quantity, "received_quantity") or Decimal(0)
            if received:
                receipts.append(ReceiptLine(number, received))
        return PlacedOrder(OrderEvidence(tuple(lines), tuple(receipts)), order.commitment)


class WorkforceBasis(enum.Enum):
    HEADCOUNT = "HEADCOUNT"
    FTE = "FTE"


class HrWorkforce:
    def __init__(self, peers: Peers, timeout: float) -> None:
        self._peers = peers
        self._timeout = timeout

    async def drivers(
        self, unit: str, members: Sequence[str], as_at: dt.date, basis: WorkforceBasis
    ) -> list[Decimal]:
        """Each member's headcount or FTE on the day, as HR gives it to the unit."""
        try:
            stub = hr_service_pb2_grpc.HrServiceStub(self._peers.channel("hr"))
            metadata = self._peers.metadata(unit)
        except PeersUnavailable as err:
            raise _unavailable("hr", err) from None

        async def one(member: str) -> Decimal:
            try:
                found = await stub.GetHeadcount(
                    hr_service_pb2.GetHeadcountRequest(
                        parent=str(OrganisationName(member)), as_at_date=date_to_proto(as_at)
                    ),
                    metadata=metadata,
                    timeout=self._timeout,
                    wait_for_ready=True,
                )
            except grpc.aio.AioRpcError as err:
                if away := peer_away(err, "hr"):
                    raise away from None
                if err.code() is grpc.StatusCode.PERMISSION_DENIED:
                    raise PermissionDenied(
                        f"organisation {member} has not agreed to share its headcount (hr.headcount) "
                        f"with {unit}: {err.details()}",
                        reason=error_reason(err) or "NO_AGREEMENT",
                        metadata={"organisation": member, "function": "hr.headcount"},
                    ) from None
                raise FailedPrecondition(
                    f"HR could not give the headcount of {member}: {err.details()}",
                    reason="WORKFORCE_UNAVAILABLE",
                    metadata={"organisation": member, "refusal": err.code().name},
                ) from None
            if basis is WorkforceBasis.HEADCOUNT:
                return Decimal(found.headcount)
            return decimal_from_proto(found.fte, "fte") or Decimal(0)

        return list(await asyncio.gather(*(one(m) for m in members)))
