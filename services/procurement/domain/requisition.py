"""Requisitions: what a requester wants, approved under the scheme of delegation."""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from libs.common.errors import FailedPrecondition, PermissionDenied, Violations
from libs.common.money import MAX_AMOUNT, ZERO, to_pennies
from libs.common.records import RecordInfo
from services.procurement.domain.cpv import cpv_problem
from services.procurement.domain.policy import ProcurementPolicy
from services.procurement.domain.transitions import refuse

VAT_RATES = frozenset({Decimal(0), Decimal(5), Decimal(20)})
MAX_LINES = 100
MAX_QUANTITY = Decimal(10) ** 9


class RequisitionState(enum.Enum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    ORDERED = "ORDERED"


@dataclass(frozen=True)
class Line:
    description: str
    cpv_code: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate_percent: Decimal
    cost_centre: str

    # Worked out once per line: a request reads them for the totals, the stored gross and
    # each line of its answer (the instance is frozen, so they cannot go stale).
    @functools.cached_property
    def net(self) -> Decimal:
        return to_pennies(self.quantity * self.unit_price)

    @functools.cached_property
    def vat(self) -> Decimal:
        return to_pennies(self.net * self.vat_rate_percent / 100)

    def check(self, path: str, v: Violations) -> None:
        v.check(
            0 < len(self.description.strip()) <= 500,
            f"{path}.description",
            "is required, at most 500 characters",
        )
        if problem := cpv_problem(self.cpv_code):
            v.add(f"{path}.cpv_code", problem)
        if not 0 < self.quantity <= MAX_QUANTITY:
            v.add(f"{path}.quantity", "must be greater than zero")
        elif self.quantity != self.quantity.quantize(Decimal("0.000001")):
            v.add(f"{path}.quantity", "at most 6 decimal places")
        price_ok = v.check(
            ZERO <= self.unit_price <= MAX_AMOUNT,
            f"{path}.unit_price",
            "must be from zero to £100 trillion",
        )
        if price_ok and 0 < self.quantity <= MAX_QUANTITY:
            v.check(
                self.quantity * self.unit_price <= MAX_AMOUNT,
                f"{path}.unit_price",
                "quantity x unit price must be at most £100 trillion",
            )
        v.check(self.vat_rate_percent in VAT_RATES, f"{path}.vat_rate_percent", "must be 0, 5 or 20")
        v.check(
            0 < len(self.cost_centre.strip()) <= 20,
            f"{path}.cost_centre",
            "is required, at most 20 characters",
        )


def check_requisition(title: str, lines: tuple[Line, ...], prefix: str = "requisition") -> None:
    v = Violations()
    v.check(0 < len(title.strip()) <= 200, f"{prefix}.title", "is required, at most 200 characters")
    _check_lines(lines, prefix, v)
    v.raise_if_any()


def _check_lines(lines: tuple[Line, ...], prefix: str, v: Violations) -> None:
    if not lines:
        v.add(f"{prefix}.lines", "add at least one line")
    if len(lines) > MAX_LINES:
        v.add(f"{prefix}.lines", f"at most {MAX_LINES} lines")
    for i, line in enumerate(lines):
        line.check(f"{prefix}.lines[{i}]", v)


@dataclass(frozen=True)
class Totals:
    net: Decimal
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat

    @classmethod
    def of(cls, lines: Iterable[Line]) -> Totals:
        items = list(lines)
        return cls(sum((line.net for line in items), ZERO), sum((line.vat for line in items), ZERO))


@dataclass(frozen=True)
class Decision:
    decided_by: str
    decide_time: dt.datetime
    reason: str
    approver_role: str


@dataclass(frozen=True)
class Requisition:
    organisation: str
    id: str
    title: str
    lines: tuple[Line, ...]
    state: RequisitionState
    requester: str
    decision: Decision | None
    purchase_order: str
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/requisitions/{self.id}"

    @functools.cached_property
    def totals(self) -> Totals:
        return Totals.of(self.lines)

    def _require(self, action: str, *states: RequisitionState) -> None:
        if self.state not in states:
            raise refuse(self.name, action, self.state)

    def _require_requester(self, action: str, info: RecordInfo) -> None:
        # A draft is its requester's: else another could rewrite it, submit it and approve
        # it, and the decision would read as approving someone else's request.
        if info.update_principal != self.requester:
            raise PermissionDenied(
                f"only the requester of {self.name} may {action} it",
                reason="NOT_REQUESTER",
                metadata={"resource": self.name, "requester": self.requester},
            )

    def amended(self, title: str, lines: tuple[Line, ...], info: RecordInfo) -> Requisition:
        """`info`: the record touched by whoever changes it, who must be the requester."""
        self._require("change", RequisitionState.DRAFT)
        self._require_requester("change", info)
        return replace(self, title=title, lines=lines, info=info)

    def submitted(self, info: RecordInfo) -> Requisition:
        self._require("submit", RequisitionState.DRAFT)
        self._require_requester("submit", info)
        return replace(self, state=RequisitionState.SUBMITTED, info=info)

    def _decided(
        self,
        *,
        approve: bool,
        principal: str,
        roles: Iterable[str],
        policy: ProcurementPolicy,
        reason: str,
        now: dt.datetime,
        info: RecordInfo,
    ) -> Requisition:
        self._require("approve" if approve else "reject", RequisitionState.SUBMITTED)
        if principal == self.requester:
            raise PermissionDenied(
                "the requester of a requisition may not decide it",
                reason="SELF_APPROVAL",
                metadata={"resource": self.name},
            )
        role = policy.approver_role(self.totals.gross, roles, self.name)
        state = RequisitionState.APPROVED if approve else RequisitionState.REJECTED
        return replace(self, state=state, decision=Decision(principal, now, reason, role), info=info)

    def approved(
        self,
        principal: str,
        *,
        roles: Iterable[str],
        policy: ProcurementPolicy,
        now: dt.datetime,
        info: RecordInfo,
    ) -> Requisition:
        return self._decided(
            approve=True, principal=principal, roles=roles, policy=policy, reason="", now=now, info=info
        )

    def rejected(
        self,
        principal: str,
        *,
        roles: Iterable[str],
        policy: ProcurementPolicy,
        reason: str,
        now: dt.datetime,
        info: RecordInfo,
    ) -> Requisition:
        return self._decided(
            approve=False, principal=principal, roles=roles, policy=policy, reason=reason, now=now, info=info
        )

    def cancelled(self, info: RecordInfo) -> Requisition:
        # Withdrawn by whoever asked; anyone else's way to stop it is the approver's reject.
        self._require("cancel", RequisitionState.DRAFT, RequisitionState.SUBMITTED)
        self._require_requester("cancel", info)
        return replace(self, state=RequisitionState.CANCELLED, info=info)

    def ordered(self, purchase_order: str, info: RecordInfo) -> Requisition:
        if self.state is not RequisitionState.APPROVED:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value}: only an APPROVED requisition can be ordered",
                reason="REQUISITION_NOT_APPROVED",
                metadata={"requisition": self.name, "current_state": self.state.value},
            )
        return replace(self, state=RequisitionState.ORDERED, purchase_order=purchase_order, info=info)

    def order_cancelled(self, purchase_order: str, info: RecordInfo) -> Requisition:
        """Its order was cancelled before anything was received: the demand is still
        approved (the decision stands), so it may be ordered again, say against the right
        budget."""
        if self.state is not RequisitionState.ORDERED or self.purchase_order != purchase_order:
            raise refuse(self.name, "reopen", self.state)
        return replace(self, state=RequisitionState.APPROVED, purchase_order="", info=info)
