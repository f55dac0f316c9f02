"""Collaborative procurement: demand gathered from several organisations into one
joint contract with each one's allocation."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from libs.common.errors import FailedPrecondition, NotFound, Violations
from libs.common.money import MAX_AMOUNT, ZERO, has_places, to_pennies
from libs.common.names import valid_organisation_code
from libs.common.records import RecordInfo
from services.procurement.domain.contract import Allocation
from services.procurement.domain.cpv import cpv_problem

# Quantities and estimated unit prices are kept in millionths in 64-bit integers, which
# hold up to (2**63 - 1) / 10**6, about 9.2 trillion: a trillion is the round figure below
# it, for a line's quantity and unit price and for an aggregation's total quantity.
MAX_MILLIONTHS = Decimal(10) ** 12


class AggregationState(enum.Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@dataclass(frozen=True)
class DemandLine:
    lead: str
    aggregation_id: str
    id: str
    organisation: str
    description: str
    quantity: Decimal
    estimated_unit_price: Decimal
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.lead}/demandAggregations/{self.aggregation_id}/demandLines/{self.id}"

    @property
    def value(self) -> Decimal:
        return to_pennies(self.quantity * self.estimated_unit_price)


@dataclass(frozen=True)
class DemandAggregation:
    organisation: str  # the lead
    id: str
    title: str
    cpv_code: str
    invited: tuple[str, ...]
    state: AggregationState
    line_count: int
    total_quantity: Decimal
    total_value: Decimal
    contract: str
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/demandAggregations/{self.id}"

    def require_open(self) -> None:
        if self.state is not AggregationState.OPEN:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value}: no more demand can be added or closed",
                reason="AGGREGATION_CLOSED",
                metadata={"resource": self.name, "current_state": self.state.value},
            )

    def with_line(self, line: DemandLine, info: RecordInfo) -> DemandAggregation:
        self.require_open()
        if line.organisation != self.organisation and line.organisation not in self.invited:
            raise NotFound(self.name)
        total_quantity = self.total_quantity + line.quantity
        total_value = self.total_value + line.value
        v = Violations()
        v.check(
            total_quantity <= MAX_MILLIONTHS,
            "demand_line.quantity",
            f"would take the aggregation's total quantity ({self.total_quantity.normalize():f}) "
            "past 1 trillion",
        )
        # Pence in a 64-bit column: 923 lines of £100 trillion would overflow it. The total
        # is held to what any one amount may be, as the joint contract's value is.
        v.check(
            total_value <= MAX_AMOUNT,
            "demand_line.estimated_unit_price",
            f"would take the aggregation's total value (£{self.total_value:,.2f}) past £100 trillion",
        )
        v.raise_if_any()
        return replace(
            self,
            line_count=self.line_count + 1,
            total_quantity=total_quantity,
            total_value=total_value,
            info=info,
        )

    def closed_into(self, contract: str, lines: Sequence[DemandLine], info: RecordInfo) -> DemandAggregation:
        self.require_open()
        if not lines:
            raise FailedPrecondition(f"{self.name} has no demand to contract for", reason="NO_DEMAND")
        return replace(self, state=AggregationState.CLOSED, contract=contract, info=info)


def allocations(lines: Sequence[DemandLine]) -> tuple[Allocation, ...]:
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for line in lines:
        quantity, value = totals.get(line.organisation, (ZERO, ZERO))
        totals[line.organisation] = (quantity + line.quantity, value + line.value)
    return tuple(Allocation(org, q, v) for org, (q, v) in sorted(totals.items()))


def check_aggregation(title: str, cpv_code: str, invited: tuple[str, ...], lead: str) -> None:
    v = Violations()
    v.check(0 < len(title.strip()) <= 200, "demand_aggregation.title", "is required, at most 200 characters")
    if problem := cpv_problem(cpv_code):
        v.add("demand_aggregation.cpv_code", problem)
    if not invited:
        v.add("demand_aggregation.invited", "invite at least one organisation")
    for i, code in enumerate(invited):
        if not valid_organisation_code(code):
            v.add(f"demand_aggregation.invited[{i}]", "must be organisations/{code}")
        elif code == lead:
            v.add(f"demand_aggregation.invited[{i}]", "the lead takes part without being invited")
    if len(set(invited)) != len(invited):
        v.add("demand_aggregation.invited", "names an organisation twice")
    v.raise_if_any()


def check_demand_line(description: str, quantity: Decimal, price: Decimal) -> None:
    v = Violations()
    v.check(
        0 < len(description.strip()) <= 500, "demand_line.description", "is required, at most 500 characters"
    )
    v.check(
        ZERO < quantity <= MAX_MILLIONTHS and has_places(quantity, 6),
        "demand_line.quantity",
        "must be greater than zero and at most 1 trillion, to at most six decimal places",
    )
    v.check(
        ZERO <= price <= MAX_MILLIONTHS and has_places(price, 6),
        "demand_line.estimated_unit_price",
        "must be from zero to £1 trillion, to at most six decimal places",
    )
    v.check(
        quantity * price <= MAX_AMOUNT,
        "demand_line.estimated_unit_price",
        "the line's value (quantity x price) must be at most £100 trillion",
    )
    v.raise_if_any()
