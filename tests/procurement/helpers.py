"""Building blocks for procurement scenarios through the real API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.type import money_pb2

from backoffice.procurement.v1 import contract_pb2, purchase_order_pb2, requisition_pb2, supplier_pb2
from backoffice.procurement.v1 import procurement_service_pb2 as pb
from libs.common.proto_mapping import date_to_proto
from tests.support import UNIT, Caller, today


def gbp(pounds: str) -> money_pb2.Money:
    units, _, pence = pounds.partition(".")
    return money_pb2.Money(currency_code="GBP", units=int(units), nanos=int((pence or "0").ljust(9, "0")))


def decimal(text: str) -> dict[str, str]:
    return {"value": text}


def supplier(officer: Caller, name: str = "Acme Ltd", **fields: Any) -> supplier_pb2.Supplier:
    created: supplier_pb2.Supplier = officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}", supplier=supplier_pb2.Supplier(display_name=name, **fields)
        )
    )
    return created


def contract(
    officer: Caller,
    supplier_name: str,
    participants: list[str],
    *,
    reference: str = "YHSS-2026-001",
    value: str = "120000.00",
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> contract_pb2.Contract:
    created: contract_pb2.Contract = officer.procurement.CreateContract(
        pb.CreateContractRequest(
            parent=f"organisations/{UNIT}",
            contract=contract_pb2.Contract(
                reference=reference,
                title="Body armour",
                description="Covert body armour for officers",
                department="Commercial",
                supplier=supplier_name,
                kind=contract_pb2.CONTRACT_KIND_FRAMEWORK,
                cpv_codes=["35811200-4"],
                value=gbp(value),
                start_date=date_to_proto(start or today() - dt.timedelta(days=10)),
                end_date=date_to_proto(end or today() + dt.timedelta(days=365)),
                procurement_method=contract_pb2.PROCUREMENT_METHOD_OPEN,
                participants=[f"organisations/{p}" for p in participants],
            ),
        )
    )
    return created


def line(
    description: str = "Body armour vest",
    quantity: str = "10",
    price: str = "450.00",
    vat: str = "20",
    cost_centre: str = "OPS-01",
) -> requisition_pb2.RequisitionLine:
    return requisition_pb2.RequisitionLine(
        description=description,
        cpv_code="35811200-4",
        quantity=decimal(quantity),
        unit_price=gbp(price),
        vat_rate_percent=decimal(vat),
        cost_centre=cost_centre,
    )


def requisition(
    requester: Caller, org: str, *lines: requisition_pb2.RequisitionLine, title: str = "Vests for response"
) -> requisition_pb2.Requisition:
    created: requisition_pb2.Requisition = requester.procurement.CreateRequisition(
        pb.CreateRequisitionRequest(
            parent=f"organisations/{org}",
            requisition=requisition_pb2.Requisition(title=title, lines=list(lines) or [line()]),
        )
    )
    return created


def approved(
    requester: Caller, approver: Caller, org: str, *lines: requisition_pb2.RequisitionLine
) -> requisition_pb2.Requisition:
    r = requisition(requester, org, *lines)
    r = requester.procurement.SubmitRequisition(pb.SubmitRequisitionRequest(name=r.name, etag=r.etag))
    result: requisition_pb2.Requisition = approver.procurement.ApproveRequisition(
        pb.ApproveRequisitionRequest(name=r.name, etag=r.etag)
    )
    return result


def order(
    buyer: Caller, org: str, requisition_name: str, contract_name: str
) -> purchase_order_pb2.PurchaseOrder:
    created: purchase_order_pb2.PurchaseOrder = buyer.procurement.CreatePurchaseOrder(
        pb.CreatePurchaseOrderRequest(
            parent=f"organisations/{org}",
            purchase_order=purchase_order_pb2.PurchaseOrder(
                requisition=requisition_name, contract=contract_name, delivery_address="Stores, Wakefield"
            ),
        )
    )
    return created


def receive(buyer: Caller, order_name: str, *lines: tuple[int, str]) -> purchase_order_pb2.GoodsReceipt:
    created: purchase_order_pb2.GoodsReceipt = buyer.procurement.CreateGoodsReceipt(
        pb.CreateGoodsReceiptRequest(
            parent=order_name,
            goods_receipt=purchase_order_pb2.GoodsReceipt(
                receipt_date=date_to_proto(today()),
                lines=[purchase_order_pb2.ReceiptLine(line_number=n, quantity=decimal(q)) for n, q in lines],
            ),
        )
    )
    return created
