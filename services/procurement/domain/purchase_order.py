"""Purchase orders and the goods received against them.

DRAFT -> ISSUED -> PARTIALLY_RECEIVED -> RECEIVED (which takes receipts within the
tolerance) -> CLOSED; DRAFT or ISSUED with nothing
received -> CANCELLED; PARTIALLY_RECEIVED -> CLOSED closes short (with a reason).
An order with a budget goes DRAFT -> PENDING_COMMITMENT at issue, then ISSUED when finance
commits the budget, or back to DRAFT with the refusal when it does not.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from libs.common.errors import FailedPrecondition, InvalidArgument, Violations
from libs.common.money import MAX_AMOUNT, ZERO, has_places, to_pennies
from libs.common.records import RecordInfo
from services.procurement.domain.requisition import Line, Totals
from services.procurement.domain.transitions import refuse

UPDATABLE = frozenset({"delivery_address", "notes"})
MAX_DELIVERY_ADDRESS = 500
MAX_NOTES = 2000


def check_order_text(delivery_address: str, notes: str, prefix: str = "purchase_order") -> None:
    v = Violations()
    v.check(
        len(delivery_address) <= MAX_DELIVERY_ADDRESS,
        f"{prefix}.delivery_address",
        f"at most {MAX_DELIVERY_ADDRESS} characters",
    )
    v.check(len(notes) <= MAX_NOTES, f"{prefix}.notes", f"at most {MAX_NOTES} characters")
    v.raise_if_any()


class PurchaseOrderState(enum.Enum):
    DRAFT = "DRAFT"
    ISSUED = "ISSUED"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"
    PENDING_COMMITMENT = "PENDING_COMMITMENT"


@dataclass(frozen=True)
class OrderLine:
    line_number: int
    item: Line
    received: Decimal

    def receivable(self, tolerance_percent: int) -> Decimal:
        """How much more may be received, over-receipt tolerance included."""
        ceiling = self.item.quantity * (100 + tolerance_percent) / 100
        return max(ceiling - self.received, ZERO)


@dataclass(frozen=True)
class ReceiptLine:
    line_number: int
    quantity: Decimal


@dataclass(frozen=True)
class GoodsReceipt:
    organisation: str
    order_id: str
    id: str
    receipt_date: dt.date
    lines: tuple[ReceiptLine, ...]
    note: str
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/purchaseOrders/{self.order_id}/goodsReceipts/{self.id}"


@dataclass(frozen=True)
class PurchaseOrder:
    organisation: str
    id: str
    requisition: str
    contract: str
    supplier: str
    lines: tuple[OrderLine, ...]
    state: PurchaseOrderState
    delivery_address: str
    notes: str
    issue_time: dt.datetime | None
    closure_reason: str
    info: RecordInfo
    # Purchase-to-pay: the finance budget to commit, the commitment once raised, the last
    # refusal, and the override reason given at issue.
    budget: str = ""
    commitment: str = ""
    commitment_refusal: str = ""
    budget_override_reason: str = ""

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/purchaseOrders/{self.id}"

    @functools.cached_property
    def totals(self) -> Totals:
        return Totals.of(line.item for line in self.lines)

    @property
    def contract_key(self) -> tuple[str, str]:
        """The letting organisation and id of the contract the order is placed on."""
        owner, _, contract_id = self.contract.removeprefix("organisations/").partition("/contracts/")
        return owner, contract_id

    @property
    def requisition_id(self) -> str:
        """The id of the requisition it was raised from, which is of the order's own organisation."""
        return self.requisition.rsplit("/", 1)[-1]

    @property
    def received_net(self) -> Decimal:
        """The net value of what has been received, at the order's prices and never more
        than ordered per line: what receipts have used of the order's commitment. Once all
        is received it is the order's net total, to the penny."""
        return sum(
            (
                to_pennies(min(line.received, line.item.quantity) * line.item.unit_price)
                for line in self.lines
            ),
            ZERO,
        )

    def _require(self, action: str, *states: PurchaseOrderState) -> None:
        if self.state not in states:
            raise refuse(self.name, action, self.state)

    def amended(self, delivery_address: str, notes: str, info: RecordInfo) -> PurchaseOrder:
        self._require("amend", PurchaseOrderState.DRAFT)
        return replace(self, delivery_address=delivery_address, notes=notes, info=info)

    def issued(self, now: dt.datetime, info: RecordInfo) -> PurchaseOrder:
        self._require("issue", PurchaseOrderState.DRAFT)
        return replace(self, state=PurchaseOrderState.ISSUED, issue_time=now, info=info)

    def awaiting_commitment(self, override_reason: str, info: RecordInfo) -> PurchaseOrder:
        """Issued by the buyer; finance has yet to commit the budget."""
        self._require("issue", PurchaseOrderState.DRAFT)
        return replace(
            self,
            state=PurchaseOrderState.PENDING_COMMITMENT,
            commitment_refusal="",
            budget_override_reason=override_reason,
            info=info,
        )

    def committed(self, commitment: str, now: dt.datetime, info: RecordInfo) -> PurchaseOrder:
        """Finance committed the budget: the order goes to the supplier."""
        self._require("issue", PurchaseOrderState.PENDING_COMMITMENT)
        return replace(
            self, state=PurchaseOrderState.ISSUED, issue_time=now, commitment=commitment, info=info
        )

    def commitment_refused(self, reason: str, info: RecordInfo) -> PurchaseOrder:
        """Finance refused: the order stays unissued, and says why."""
        self._require("refuse", PurchaseOrderState.PENDING_COMMITMENT)
        return replace(self, state=PurchaseOrderState.DRAFT, commitment_refusal=reason, info=info)

    def cancelled(self, reason: str, info: RecordInfo) -> PurchaseOrder:
        self._require("cancel", PurchaseOrderState.DRAFT, PurchaseOrderState.ISSUED)
        return replace(self, state=PurchaseOrderState.CANCELLED, closure_reason=reason, info=info)

    def closed(self, reason: str, info: RecordInfo) -> PurchaseOrder:
        self._require("close", PurchaseOrderState.RECEIVED, PurchaseOrderState.PARTIALLY_RECEIVED)
        if self.state is PurchaseOrderState.PARTIALLY_RECEIVED and not reason:
            raise InvalidArgument.single("reason", "say why the order closes short of what was ordered")
        return replace(self, state=PurchaseOrderState.CLOSED, closure_reason=reason, info=info)

    def received(
        self, lines: Sequence[ReceiptLine], tolerance_percent: int, info: RecordInfo
    ) -> PurchaseOrder:
        # RECEIVED too: the tolerance is a ceiling per line, the same however the deliveries
        # are split (10 then 1 as 9 then 2), until the order is closed.
        self._require(
            "receive against",
            PurchaseOrderState.ISSUED,
            PurchaseOrderState.PARTIALLY_RECEIVED,
            PurchaseOrderState.RECEIVED,
        )
        by_number = {line.line_number: line for line in self.lines}
        updated = dict(by_number)
        for receipt in lines:
            line = by_number[receipt.line_number]
            room = line.receivable(tolerance_percent)
            if receipt.quantity > room:
                raise FailedPrecondition(
                    f"line {line.line_number} of {self.name}: receiving {receipt.quantity} would pass "
                    f"the {line.item.quantity} ordered (tolerance {tolerance_percent}%); at most "
                    f"{room.normalize():f} more may be received",
                    reason="RECEIPT_EXCEEDS_ORDER",
                    metadata={
                        "line_number": str(line.line_number),
                        "ordered": str(line.item.quantity),
                        "received": str(line.received),
                        "receivable": f"{room.normalize():f}",
                    },
                )
            updated[line.line_number] = replace(line, received=line.received + receipt.quantity)
        new_lines = tuple(updated[n] for n in sorted(updated))
        complete = all(line.received >= line.item.quantity for line in new_lines)
        state = PurchaseOrderState.RECEIVED if complete else PurchaseOrderState.PARTIALLY_RECEIVED
        return replace(self, lines=new_lines, state=state, info=info)


def check_receipt(
    order: PurchaseOrder,
    receipt_date: dt.date | None,
    lines: Sequence[ReceiptLine],
    today: dt.date,
    note: str = "",
) -> None:
    v = Violations()
    v.check(len(note) <= MAX_NOTES, "goods_receipt.note", f"at most {MAX_NOTES} characters")
    if receipt_date is None:
        v.add("goods_receipt.receipt_date", "is required")
    elif receipt_date > today:
        v.add("goods_receipt.receipt_date", "must not be in the future")
    if not lines:
        v.add("goods_receipt.lines", "add at least one line")
    numbers = {line.line_number for line in order.lines}
    seen: set[int] = set()
    for i, line in enumerate(lines):
        path = f"goods_receipt.lines[{i}]"
        if line.line_number not in numbers:
            v.add(f"{path}.line_number", f"the order has lines 1 to {len(order.lines)}")
        if line.line_number in seen:
            v.add(f"{path}.line_number", "names a line twice")
        seen.add(line.line_number)
        if not ZERO < line.quantity <= MAX_AMOUNT or not has_places(line.quantity, 6):
            # Six places, as ordered quantities are kept: a speck received would make the
            # order PARTIALLY_RECEIVED, and it could then no longer be cancelled.
            v.add(f"{path}.quantity", "must be greater than zero, to at most six decimal places")
    v.raise_if_any()
