"""Hypothesis drives requisitions and purchase orders through random sequences of
actions and checks, after each, that the machine moved exactly as the rules say."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from libs.common.errors import DomainError, FailedPrecondition, InvalidArgument, PermissionDenied
from libs.common.records import RecordInfo
from services.procurement.domain.policy import BUDGET_HOLDER, CHIEF_FINANCE_OFFICER, ProcurementPolicy
from services.procurement.domain.purchase_order import (
    OrderLine,
    PurchaseOrder,
    PurchaseOrderState,
    ReceiptLine,
)
from services.procurement.domain.requisition import Line, Requisition, RequisitionState

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
INFO = RecordInfo.new("E23000010/requester", None, NOW)
POLICY = ProcurementPolicy.default("E23000010")
R = RequisitionState
P = PurchaseOrderState


def _refused(result: object) -> bool:
    return isinstance(result, FailedPrecondition) and result.reason == "INVALID_STATE_TRANSITION"


class RequisitionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        line = Line("Vests", "35811200-4", Decimal(10), Decimal("450.00"), Decimal(20), "OPS-01")
        self.r = Requisition(
            "E23000010", "r-1", "Vests", (line,), R.DRAFT, "E23000010/requester", None, "", INFO
        )
        self.model = R.DRAFT

    def _try(self, action: object) -> object:
        try:
            self.r = action()  # type: ignore[operator]
        except DomainError as err:
            return err
        return None

    @rule()
    def submit(self) -> None:
        err = self._try(lambda: self.r.submitted(INFO))
        if self.model is R.DRAFT:
            assert err is None
            self.model = R.SUBMITTED
        else:
            assert _refused(err)

    @rule()
    def submit_by_another(self) -> None:
        other = RecordInfo.new("E23000010/approver", None, NOW)
        err = self._try(lambda: self.r.submitted(other))
        if self.model is R.DRAFT:
            assert isinstance(err, PermissionDenied) and err.reason == "NOT_REQUESTER"
        else:
            assert _refused(err)

    @rule(by_requester=st.booleans(), senior=st.booleans())
    def approve(self, by_requester: bool, senior: bool) -> None:
        who = "E23000010/requester" if by_requester else "E23000010/approver"
        roles = {CHIEF_FINANCE_OFFICER} if senior else {BUDGET_HOLDER}
        err = self._try(lambda: self.r.approved(who, roles=roles, policy=POLICY, now=NOW, info=INFO))
        if self.model is not R.SUBMITTED:
            assert _refused(err)
        elif by_requester:
            assert isinstance(err, PermissionDenied) and err.reason == "SELF_APPROVAL"
        else:
            assert err is None
            self.model = R.APPROVED

    @rule()
    def reject(self) -> None:
        err = self._try(
            lambda: self.r.rejected(
                "E23000010/approver", roles={BUDGET_HOLDER}, policy=POLICY, reason="no", now=NOW, info=INFO
            )
        )
        if self.model is R.SUBMITTED:
            assert err is None
            self.model = R.REJECTED
        else:
            assert _refused(err)

    @rule()
    def cancel(self) -> None:
        err = self._try(lambda: self.r.cancelled(INFO))
        if self.model in (R.DRAFT, R.SUBMITTED):
            assert err is None
            self.model = R.CANCELLED
        else:
            assert _refused(err)

    @rule()
    def cancel_by_another(self) -> None:
        other = RecordInfo.new("E23000010/approver", None, NOW)
        err = self._try(lambda: self.r.cancelled(other))
        if self.model in (R.DRAFT, R.SUBMITTED):
            assert isinstance(err, PermissionDenied) and err.reason == "NOT_REQUESTER"
        else:
            assert _refused(err)

    @rule()
    def order(self) -> None:
        err = self._try(lambda: self.r.ordered("organisations/E23000010/purchaseOrders/po-1", INFO))
        if self.model is R.APPROVED:
            assert err is None
            self.model = R.ORDERED
        else:
            assert isinstance(err, FailedPrecondition) and err.reason == "REQUISITION_NOT_APPROVED"

    @rule(its_order=st.booleans())
    def order_cancelled(self, its_order: bool) -> None:
        po = "organisations/E23000010/purchaseOrders/" + ("po-1" if its_order else "po-2")
        err = self._try(lambda: self.r.order_cancelled(po, INFO))
        if self.model is R.ORDERED and its_order:
            assert err is None
            self.model = R.APPROVED
        else:
            assert _refused(err)

    @invariant()
    def state_matches_model(self) -> None:
        assert self.r.state is self.model
        assert (self.r.decision is not None) == (self.model in (R.APPROVED, R.REJECTED, R.ORDERED))
        assert bool(self.r.purchase_order) == (self.model is R.ORDERED)


class PurchaseOrderMachine(RuleBasedStateMachine):
    ORDERED = (Decimal(10), Decimal("2.5"))
    TOLERANCE = 5

    def __init__(self) -> None:
        super().__init__()
        lines = tuple(
            OrderLine(i, Line("Item", "35811200-4", q, Decimal("1.00"), Decimal(20), "OPS-01"), Decimal(0))
            for i, q in enumerate(self.ORDERED, 1)
        )
        self.po = PurchaseOrder("E23000010", "po-1", "r", "c", "s", lines, P.DRAFT, "", "", None, "", INFO)
        self.model = P.DRAFT
        self.received = [Decimal(0), Decimal(0)]

    def _try(self, action: object) -> object:
        try:
            self.po = action()  # type: ignore[operator]
        except DomainError as err:
            return err
        return None

    @rule()
    def issue(self) -> None:
        err = self._try(lambda: self.po.issued(NOW, INFO))
        if self.model is P.DRAFT:
            assert err is None
            self.model = P.ISSUED
        else:
            assert _refused(err)

    @rule(
        line=st.sampled_from([1, 2]),
        quantity=st.decimals(min_value=Decimal("0.5"), max_value=Decimal(12), places=1),
    )
    def receive(self, line: int, quantity: Decimal) -> None:
        err = self._try(lambda: self.po.received([ReceiptLine(line, quantity)], self.TOLERANCE, INFO))
        if self.model not in (P.ISSUED, P.PARTIALLY_RECEIVED, P.RECEIVED):
            assert _refused(err)
            return
        ceiling = self.ORDERED[line - 1] * (100 + self.TOLERANCE) / 100
        if self.received[line - 1] + quantity > ceiling:
            assert isinstance(err, FailedPrecondition) and err.reason == "RECEIPT_EXCEEDS_ORDER"
            return
        assert err is None
        self.received[line - 1] += quantity
        complete = all(r >= o for r, o in zip(self.received, self.ORDERED, strict=True))
        self.model = P.RECEIVED if complete else P.PARTIALLY_RECEIVED

    @rule()
    def cancel(self) -> None:
        err = self._try(lambda: self.po.cancelled("changed our minds", INFO))
        if self.model in (P.DRAFT, P.ISSUED):
            assert err is None
            self.model = P.CANCELLED
        else:
            assert _refused(err)

    @rule(reason=st.sampled_from(["", "supplier cannot deliver the rest"]))
    def close(self, reason: str) -> None:
        err = self._try(lambda: self.po.closed(reason, INFO))
        if self.model is P.RECEIVED or (self.model is P.PARTIALLY_RECEIVED and reason):
            assert err is None
            self.model = P.CLOSED
        elif self.model is P.PARTIALLY_RECEIVED:
            assert isinstance(err, InvalidArgument)
        else:
            assert _refused(err)

    @precondition(lambda self: self.model in (P.CLOSED, P.CANCELLED))
    @rule()
    def terminal_states_stay_put(self) -> None:
        for action in (lambda: self.po.issued(NOW, INFO), lambda: self.po.cancelled("x", INFO)):
            assert _refused(self._try(action))

    @invariant()
    def state_and_quantities_match_model(self) -> None:
        assert self.po.state is self.model
        assert [line.received for line in self.po.lines] == self.received


TestRequisitionMachine = RequisitionMachine.TestCase
TestRequisitionMachine.settings = settings(max_examples=150, stateful_step_count=20, deadline=None)
TestPurchaseOrderMachine = PurchaseOrderMachine.TestCase
TestPurchaseOrderMachine.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
