"""The three-way match: invoice against purchase order and goods receipts.

The rule is pure; where the order and receipt lines come from is a port (`OrderSource`):
the servicer reads them from procurement's API (`api/collaborators.py`) or, for an order
placed outside the suite only, takes them from the request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from libs.common.errors import FieldViolation, InvalidArgument

NOT_ON_ORDER = "NOT_ON_ORDER"
PRICE_OUT_OF_TOLERANCE = "PRICE_OUT_OF_TOLERANCE"
QUANTITY_NOT_RECEIVED = "QUANTITY_NOT_RECEIVED"
QUANTITY_OVER_ORDERED = "QUANTITY_OVER_ORDERED"


@dataclass(frozen=True)
class Tolerance:
    """How far an invoice may stray from the order and receipts and still match.

    A unit price may exceed the order's by at most `price_percent` per cent AND at most
    `price_amount` pounds (the lesser of the two binds); an invoice may bill at most
    `quantity_percent` per cent more than was received (and ordered). Charging less than
    the order, or billing less than was received, always matches."""

    price_percent: Decimal = Decimal("2")
    price_amount: Decimal = Decimal("5.00")
    quantity_percent: Decimal = Decimal("0")


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class OrderLine:
    line: str
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class ReceiptLine:
    line: str
    quantity: Decimal


@dataclass(frozen=True)
class OrderEvidence:
    """An order's lines and what its goods receipts recorded against them."""

    order_lines: tuple[OrderLine, ...]
    receipt_lines: tuple[ReceiptLine, ...]


def evidence_view(evidence: OrderEvidence, origin: str) -> dict[str, object]:
    """The evidence a match was made on, as the audit record keeps it."""
    return {
        "from": origin,
        "order_lines": [
            {"line": o.line, "quantity": str(o.quantity), "unit_price": str(o.unit_price)}
            for o in evidence.order_lines
        ],
        "receipt_lines": [{"line": r.line, "quantity": str(r.quantity)} for r in evidence.receipt_lines],
    }


@dataclass(frozen=True)
class BilledLine:
    """What an invoice line bills: its index, the order line it cites, quantity, price."""

    index: int
    order_line: str
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class Discrepancy:
    line: int
    code: str
    description: str


class OrderSource(Protocol):
    """Reads a purchase order's lines and receipts; None when it cannot."""

    origin: str  # where the evidence comes from, for the audit record

    def evidence(self, organisation: str, purchase_order: str) -> OrderEvidence | None: ...


def _over(value: Decimal, limit: Decimal, percent: Decimal) -> bool:
    return value > limit * (1 + percent / 100)


def three_way_match(
    billed: Sequence[BilledLine],
    evidence: OrderEvidence,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    already_billed: Mapping[str, Decimal] | None = None,
) -> list[Discrepancy]:
    """Every discrepancy between the invoice lines, the order and the receipts; an empty
    list is a match. `already_billed` is what other invoices (approved or paid) have billed
    of each order line: the same goods are not paid for twice, however the invoices are
    numbered."""
    ordered = {o.line: o for o in evidence.order_lines}
    received: dict[str, Decimal] = {}
    for r in evidence.receipt_lines:
        received[r.line] = received.get(r.line, Decimal(0)) + r.quantity
    earlier = dict(already_billed or {})
    billed_per_line: dict[str, Decimal] = dict(earlier)
    found: list[Discrepancy] = []
    for b in billed:
        order = ordered.get(b.order_line)
        if order is None:
            found.append(
                Discrepancy(
                    b.index, NOT_ON_ORDER, f"order line {b.order_line!r} is not on the purchase order"
                )
            )
            continue
        difference = b.unit_price - order.unit_price
        if difference > 0 and (
            difference > tolerance.price_amount
            or (order.unit_price == 0 or difference * 100 / order.unit_price > tolerance.price_percent)
        ):
            found.append(
                Discrepancy(
                    b.index,
                    PRICE_OUT_OF_TOLERANCE,
                    f"unit price {b.unit_price} exceeds the order's {order.unit_price} by more than "
                    f"{tolerance.price_percent}% or £{tolerance.price_amount}",
                )
            )
        billed_per_line[b.order_line] = billed_per_line.get(b.order_line, Decimal(0)) + b.quantity
        total = billed_per_line[b.order_line]
        before = earlier.get(b.order_line, Decimal(0))
        billed_text = f"{total} billed against order line {b.order_line}" + (
            f" ({before} of it by other invoices)" if before else ""
        )
        if _over(total, order.quantity, tolerance.quantity_percent):
            found.append(
                Discrepancy(b.index, QUANTITY_OVER_ORDERED, f"{billed_text}, which ordered {order.quantity}")
            )
        elif _over(total, received.get(b.order_line, Decimal(0)), tolerance.quantity_percent):
            found.append(
                Discrepancy(
                    b.index,
                    QUANTITY_NOT_RECEIVED,
                    f"{billed_text}, of which {received.get(b.order_line, Decimal(0))} has been received",
                )
            )
    return found


class SuppliedOrderSource:
    """Order and receipt lines already in hand, read from procurement's API before the
    transaction; None when there are none."""

    origin = "procurement"

    def __init__(self, supplied: OrderEvidence | None) -> None:
        self._supplied = supplied

    def evidence(self, organisation: str, purchase_order: str) -> OrderEvidence | None:
        return self._supplied


class CallerOrderSource:
    """Order and receipt lines the caller states (`match_data`): evidence only for an order
    placed outside the suite. For one of the suite's own orders procurement's record is the
    evidence, so a caller's account of it is refused rather than believed: a clerk cannot
    certify goods as received that procurement has not receipted."""

    origin = "match_data"

    def __init__(self, stated: OrderEvidence, in_suite: Callable[[str, str], bool]) -> None:
        self._stated = stated
        self._in_suite = in_suite

    def evidence(self, organisation: str, purchase_order: str) -> OrderEvidence | None:
        if self._in_suite(organisation, purchase_order):
            raise InvalidArgument(
                [
                    FieldViolation(
                        "match_data",
                        f"{purchase_order} is an order of the suite: its lines and receipts are "
                        "read from procurement, not stated with the request",
                    )
                ]
            )
        return self._stated
