"""A force's purchase-to-pay world, driven through the real APIs: books and a budget in
finance, a framework contract, and the people who requisition, order, receive, invoice and
approve (shared by the in-process and the separate-process tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from backoffice.finance.v1 import budget_pb2, payables_pb2
from backoffice.finance.v1 import finance_service_pb2 as fpb
from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import purchase_order_pb2
from libs.common.money import to_pennies
from libs.common.proto_mapping import date_to_proto
from tests.finance.books import MAY, amount, gbp, set_up_books
from tests.procurement.helpers import approved, contract, decimal, line, supplier
from tests.support import UNIT, WEST_YORKSHIRE, Caller, Suite

WY = WEST_YORKSHIRE


class World:
    def __init__(self, suite: Suite, budget_amount: str = "10000.00") -> None:
        self.suite = suite
        self.books = set_up_books(suite, WY)
        self.holder = suite.caller(WY, "finance.budget_holder", subject="holder")
        self.budget = self.books.officer.finance.CreateBudget(
            fpb.CreateBudgetRequest(
                parent=self.books.cc,
                budget=budget_pb2.Budget(
                    cost_centre="LP100", account="5100", period="2025-02", amount=gbp(budget_amount)
                ),
            )
        )
        officer = suite.caller(UNIT, "procurement.commercial", subject="commercial")
        self.requester = suite.caller(WY, "procurement.requester", subject="requester")
        self.approver = suite.caller(WY, "procurement.senior_budget_holder", subject="approver")
        self.buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
        self.officer = officer
        self.supplier = supplier(officer)
        self.framework = contract(officer, self.supplier.name, [WY])
        self.clerk = suite.caller(WY, "finance.payables", subject="clerk")
        self.approver_ap = suite.caller(WY, "finance.payables", subject="ap-approver")

    def order(self, quantity: str, price: str = "100.00") -> purchase_order_pb2.PurchaseOrder:
        r = approved(self.requester, self.approver, WY, line(quantity=quantity, price=price))
        created: purchase_order_pb2.PurchaseOrder = self.buyer.procurement.CreatePurchaseOrder(
            pb.CreatePurchaseOrderRequest(
                parent=f"organisations/{WY}",
                purchase_order=purchase_order_pb2.PurchaseOrder(
                    requisition=r.name, contract=self.framework.name, budget=self.budget.name
                ),
            )
        )
        return created

    def issue(
        self, po: purchase_order_pb2.PurchaseOrder, caller: Caller | None = None, **kw: str
    ) -> purchase_order_pb2.PurchaseOrder:
        issued: purchase_order_pb2.PurchaseOrder = (caller or self.buyer).procurement.IssuePurchaseOrder(
            pb.IssuePurchaseOrderRequest(name=po.name, **kw)
        )
        return issued

    def get(self, name: str) -> purchase_order_pb2.PurchaseOrder:
        got: purchase_order_pb2.PurchaseOrder = self.buyer.procurement.GetPurchaseOrder(
            pb.GetPurchaseOrderRequest(name=name)
        )
        return got

    def committed(self) -> Decimal:
        b = self.holder.finance.GetBudget(fpb.GetBudgetRequest(name=self.budget.name))
        return amount(b.committed)

    def commitment(self, name: str) -> budget_pb2.Commitment:
        got: budget_pb2.Commitment = self.holder.finance.GetCommitment(fpb.GetCommitmentRequest(name=name))
        return got

    def receive(self, po: str, quantity: str) -> None:
        self.buyer.procurement.CreateGoodsReceipt(
            pb.CreateGoodsReceiptRequest(
                parent=po,
                goods_receipt=purchase_order_pb2.GoodsReceipt(
                    receipt_date=date_to_proto(MAY),
                    lines=[purchase_order_pb2.ReceiptLine(line_number=1, quantity=decimal(quantity))],
                ),
            )
        )

    def invoice(self, po: str, number: str, quantity: str, price: str = "100.00") -> payables_pb2.Invoice:
        """A supplier's invoice for line 1 of an order, captured by the payables clerk."""
        net = to_pennies(Decimal(quantity) * Decimal(price))
        created: payables_pb2.Invoice = self.clerk.finance.CreateInvoice(
            fpb.CreateInvoiceRequest(
                parent=self.books.cc,
                invoice=payables_pb2.Invoice(
                    supplier=f"organisations/{WY}/suppliers/s-acme",
                    supplier_display_name="Acme Ltd",
                    supplier_invoice_number=number,
                    invoice_date=date_to_proto(MAY),
                    received_date=date_to_proto(MAY),
                    purchase_order=po,
                    lines=[
                        payables_pb2.InvoiceLine(
                            account="5100",
                            cost_centre="LP100",
                            description="Body armour",
                            quantity=decimal(quantity),
                            unit_price=gbp(price),
                            net=gbp(str(net)),
                            vat=gbp(str(to_pennies(net / 5))),
                            vat_use=payables_pb2.VAT_USE_NON_BUSINESS,
                            order_line="1",
                        )
                    ],
                ),
            )
        )
        return created

    def match(self, invoice: str) -> payables_pb2.Invoice:
        matched: payables_pb2.Invoice = self.clerk.finance.MatchInvoice(fpb.MatchInvoiceRequest(name=invoice))
        return matched

    def approve(self, invoice: str) -> payables_pb2.Invoice:
        approved: payables_pb2.Invoice = self.approver_ap.finance.ApproveInvoice(
            fpb.ApproveInvoiceRequest(name=invoice, posting_date=date_to_proto(MAY))
        )
        return approved


def wait_until(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")
