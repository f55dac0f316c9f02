"""Protobuf <-> procurement domain objects."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from google.type import decimal_pb2, money_pb2

from backoffice.common.v1 import metadata_pb2
from backoffice.procurement.v1 import (
    contract_pb2,
    demand_aggregation_pb2,
    policy_pb2,
    purchase_order_pb2,
    requisition_pb2,
    supplier_pb2,
)
from libs.common.errors import InvalidArgument, Violations
from libs.common.names import OrganisationName
from libs.common.proto_mapping import (
    audit_metadata,
    date_or_violation,
    date_to_proto,
    decimal_from_proto,
    decimal_to_proto,
    money_from_proto,
    money_to_proto,
    timestamp,
)
from services.procurement.domain.contract import Contract, ContractKind, ContractTerms, ProcurementMethod
from services.procurement.domain.demand import DemandAggregation, DemandLine
from services.procurement.domain.policy import ApprovalBand, ProcurementPolicy
from services.procurement.domain.purchase_order import GoodsReceipt, PurchaseOrder, ReceiptLine
from services.procurement.domain.requisition import Line, Requisition, check_requisition
from services.procurement.domain.supplier import BankDetails, Supplier, SupplierDetails

ZERO_MONEY = money_pb2.Money(currency_code="GBP")


def _money(value: Decimal) -> money_pb2.Money:
    return money_to_proto(value)


def _money_in(msg: money_pb2.Money, path: str, v: Violations, *, required: bool = True) -> Decimal | None:
    if not msg.currency_code and msg.units == 0 and msg.nanos == 0:
        if required:
            v.add(path, "is required (an amount in GBP)")
        return None
    return v.parsed(money_from_proto, msg, path)


def _decimal_in(msg: decimal_pb2.Decimal, path: str, v: Violations) -> Decimal | None:
    try:
        value = decimal_from_proto(msg, path)
    except InvalidArgument as err:
        v.items.extend(err.violations)
        return None
    if value is None:
        v.add(path, 'is required (a decimal number such as "12.5")')
    return value


def organisation_codes(names: list[str], path: str, v: Violations) -> tuple[str, ...]:
    codes = []
    for i, name in enumerate(names):
        try:
            codes.append(OrganisationName.parse(name, f"{path}[{i}]").code)
        except InvalidArgument as err:
            v.items.extend(err.violations)
    return tuple(codes)


# --- suppliers ------------------------------------------------------------------------------


def supplier_to_proto(s: Supplier, *, with_bank_details: bool) -> supplier_pb2.Supplier:
    d = s.details
    msg = supplier_pb2.Supplier(
        name=s.name,
        display_name=d.display_name,
        companies_house_number=d.companies_house_number,
        vat_number=d.vat_number,
        address_lines=list(d.address_lines),
        postcode=d.postcode,
        sme=d.sme,
        vcse=d.vcse,
        audit=audit_metadata(s.info),
        etag=s.info.etag,
        bank_details_on_file=d.bank_details is not None,
        marking=metadata_pb2.PROTECTIVE_MARKING_OFFICIAL_SENSITIVE
        if d.bank_details
        else metadata_pb2.PROTECTIVE_MARKING_OFFICIAL,
    )
    if with_bank_details and d.bank_details:
        b = d.bank_details
        msg.bank_details.CopyFrom(
            supplier_pb2.BankDetails(
                account_name=b.account_name, sort_code=b.sort_code, account_number=b.account_number
            )
        )
    if s.debarment:
        msg.debarment.CopyFrom(
            supplier_pb2.Debarment(
                reason=s.debarment.reason,
                debarment_date=date_to_proto(s.debarment.debarment_date),
                record_time=timestamp(s.debarment.record_time),
                recorded_by=s.debarment.recorded_by,
            )
        )
    return msg


def supplier_details(msg: supplier_pb2.Supplier) -> SupplierDetails:
    bank = None
    if msg.HasField("bank_details"):
        b = msg.bank_details
        bank = BankDetails(b.account_name, b.sort_code, b.account_number)
    return SupplierDetails(
        display_name=msg.display_name,
        companies_house_number=msg.companies_house_number,
        vat_number=msg.vat_number,
        address_lines=tuple(msg.address_lines),
        postcode=msg.postcode,
        sme=msg.sme,
        vcse=msg.vcse,
        bank_details=bank,
    )


# --- policy ---------------------------------------------------------------------------------


def policy_to_proto(p: ProcurementPolicy) -> policy_pb2.ProcurementPolicy:
    msg = policy_pb2.ProcurementPolicy(name=p.name, receipt_tolerance_percent=p.receipt_tolerance_percent)
    for band in p.approval_bands:
        b = msg.approval_bands.add(approver_roles=list(band.approver_roles))
        if band.up_to is not None:
            b.up_to.CopyFrom(_money(band.up_to))
    if p.info:
        msg.audit.CopyFrom(audit_metadata(p.info))
        msg.etag = p.info.etag
    return msg


def bands_from_proto(msg: policy_pb2.ProcurementPolicy) -> tuple[ApprovalBand, ...]:
    v = Violations()
    bands = []
    for i, band in enumerate(msg.approval_bands):
        up_to = (
            _money_in(band.up_to, f"procurement_policy.approval_bands[{i}].up_to", v, required=False)
            if band.HasField("up_to")
            else None
        )
        bands.append(ApprovalBand(up_to, tuple(band.approver_roles)))
    v.raise_if_any()
    return tuple(bands)


# --- contracts ------------------------------------------------------------------------------

_KINDS = {
    contract_pb2.CONTRACT_KIND_CONTRACT: ContractKind.CONTRACT,
    contract_pb2.CONTRACT_KIND_FRAMEWORK: ContractKind.FRAMEWORK,
}
_KINDS_PB = {v: k for k, v in _KINDS.items()}
_METHODS = {getattr(contract_pb2, f"PROCUREMENT_METHOD_{m.value}"): m for m in ProcurementMethod}
_METHODS_PB = {v: k for k, v in _METHODS.items()}


def contract_terms(msg: contract_pb2.Contract, owner: str, prefix: str = "contract") -> ContractTerms:
    v = Violations()
    supplier_id = ""
    if msg.supplier:
        parts = msg.supplier.split("/")
        if len(parts) != 4 or parts[0] != "organisations" or parts[2] != "suppliers":
            v.add(f"{prefix}.supplier", "must look like organisations/{code}/suppliers/{supplier}")
        elif parts[1] != owner:
            v.add(f"{prefix}.supplier", "must be a supplier of the letting organisation's own register")
        else:
            supplier_id = parts[3]
    value = _money_in(msg.value, f"{prefix}.value", v) if msg.HasField("value") else None
    vat = (
        _money_in(msg.irrecoverable_vat, f"{prefix}.irrecoverable_vat", v, required=False)
        if msg.HasField("irrecoverable_vat")
        else None
    )
    terms = ContractTerms(
        reference=msg.reference,
        title=msg.title,
        description=msg.description,
        department=msg.department,
        supplier_id=supplier_id,
        kind=_KINDS.get(msg.kind),
        cpv_codes=tuple(msg.cpv_codes),
        value=value,
        irrecoverable_vat=vat or Decimal(0),
        start_date=date_or_violation(msg.start_date, f"{prefix}.start_date", v),
        end_date=date_or_violation(msg.end_date, f"{prefix}.end_date", v),
        review_date=date_or_violation(msg.review_date, f"{prefix}.review_date", v),
        procurement_method=_METHODS.get(msg.procurement_method),
        participants=organisation_codes(list(msg.participants), f"{prefix}.participants", v),
    )
    v.raise_if_any()
    return terms


def contract_to_proto(c: Contract, today: dt.date) -> contract_pb2.Contract:
    t = c.terms
    assert t.kind and t.procurement_method and t.value is not None and t.start_date and t.end_date
    msg = contract_pb2.Contract(
        name=c.name,
        reference=t.reference,
        title=t.title,
        description=t.description,
        department=t.department,
        supplier=c.supplier_name,
        kind=_KINDS_PB[t.kind],
        cpv_codes=list(t.cpv_codes),
        value=_money(t.value),
        irrecoverable_vat=_money(t.irrecoverable_vat),
        start_date=date_to_proto(t.start_date),
        end_date=date_to_proto(t.end_date),
        procurement_method=_METHODS_PB[t.procurement_method],
        participants=[f"organisations/{p}" for p in t.participants],
        state=contract_pb2.ContractState.Value(f"CONTRACT_STATE_{c.state(today).value}"),
        ocid=c.ocid,
        supplier_debarred=c.supplier_debarred,
        audit=audit_metadata(c.info),
        etag=c.info.etag,
    )
    if t.review_date:
        msg.review_date.CopyFrom(date_to_proto(t.review_date))
    for a in c.allocations:
        msg.allocations.add(
            organisation=f"organisations/{a.organisation}",
            quantity=decimal_to_proto(a.quantity),
            value=_money(a.value),
        )
    return msg


# --- requisitions ---------------------------------------------------------------------------


def lines_from_proto(
    lines: list[requisition_pb2.RequisitionLine], prefix: str, title: str | None = None
) -> tuple[Line, ...]:
    """The lines; a line that could not be read is reported with every other problem of the
    requisition, its `title` too when the request sets it."""
    v = Violations()
    out = []
    for i, line in enumerate(lines):
        path = f"{prefix}.lines[{i}]"
        quantity = _decimal_in(line.quantity, f"{path}.quantity", v)
        price = _money_in(line.unit_price, f"{path}.unit_price", v)
        rate = _decimal_in(line.vat_rate_percent, f"{path}.vat_rate_percent", v)
        out.append(
            Line(
                line.description,
                line.cpv_code,
                quantity or Decimal(0),
                price or Decimal(0),
                rate if rate is not None else Decimal(-1),
                line.cost_centre,
            )
        )
    # A title the request leaves alone is not checked here ("x" passes).
    v.raise_with(lambda: check_requisition("x" if title is None else title, tuple(out), prefix))
    return tuple(out)


def line_to_proto(line: Line) -> requisition_pb2.RequisitionLine:
    return requisition_pb2.RequisitionLine(
        description=line.description,
        cpv_code=line.cpv_code,
        quantity=decimal_to_proto(line.quantity),
        unit_price=_money(line.unit_price),
        vat_rate_percent=decimal_to_proto(line.vat_rate_percent),
        cost_centre=line.cost_centre,
        net_amount=_money(line.net),
        vat_amount=_money(line.vat),
    )


def requisition_to_proto(r: Requisition) -> requisition_pb2.Requisition:
    totals = r.totals
    msg = requisition_pb2.Requisition(
        name=r.name,
        title=r.title,
        lines=[line_to_proto(x) for x in r.lines],
        state=requisition_pb2.RequisitionState.Value(f"REQUISITION_STATE_{r.state.value}"),
        requester=r.requester,
        net_total=_money(totals.net),
        vat_total=_money(totals.vat),
        gross_total=_money(totals.gross),
        purchase_order=r.purchase_order,
        audit=audit_metadata(r.info),
        etag=r.info.etag,
    )
    if r.decision:
        msg.decision.CopyFrom(
            requisition_pb2.Decision(
                decided_by=r.decision.decided_by,
                decide_time=timestamp(r.decision.decide_time),
                reason=r.decision.reason,
                approver_role=r.decision.approver_role,
            )
        )
    return msg


# --- purchase orders ------------------------------------------------------------------------


def order_to_proto(o: PurchaseOrder) -> purchase_order_pb2.PurchaseOrder:
    totals = o.totals
    msg = purchase_order_pb2.PurchaseOrder(
        name=o.name,
        requisition=o.requisition,
        contract=o.contract,
        supplier=o.supplier,
        lines=[
            purchase_order_pb2.PurchaseOrderLine(
                line_number=x.line_number,
                item=line_to_proto(x.item),
                received_quantity=decimal_to_proto(x.received),
            )
            for x in o.lines
        ],
        state=purchase_order_pb2.PurchaseOrderState.Value(f"PURCHASE_ORDER_STATE_{o.state.value}"),
        delivery_address=o.delivery_address,
        notes=o.notes,
        net_total=_money(totals.net),
        vat_total=_money(totals.vat),
        gross_total=_money(totals.gross),
        closure_reason=o.closure_reason,
        audit=audit_metadata(o.info),
        etag=o.info.etag,
        budget=o.budget,
        commitment=o.commitment,
        commitment_refusal=o.commitment_refusal,
        budget_override_reason=o.budget_override_reason,
    )
    if o.issue_time:
        msg.issue_time.CopyFrom(timestamp(o.issue_time))
    return msg


def receipt_lines(msg: purchase_order_pb2.GoodsReceipt) -> tuple[ReceiptLine, ...]:
    v = Violations()
    lines = []
    for i, line in enumerate(msg.lines):
        quantity = _decimal_in(line.quantity, f"goods_receipt.lines[{i}].quantity", v)
        lines.append(ReceiptLine(line.line_number, quantity if quantity is not None else Decimal(0)))
    v.raise_if_any()
    return tuple(lines)


def receipt_to_proto(g: GoodsReceipt) -> purchase_order_pb2.GoodsReceipt:
    return purchase_order_pb2.GoodsReceipt(
        name=g.name,
        receipt_date=date_to_proto(g.receipt_date),
        note=g.note,
        audit=audit_metadata(g.info),
        lines=[
            purchase_order_pb2.ReceiptLine(line_number=x.line_number, quantity=decimal_to_proto(x.quantity))
            for x in g.lines
        ],
    )


# --- demand aggregation -----------------------------------------------------------------------


def aggregation_to_proto(a: DemandAggregation) -> demand_aggregation_pb2.DemandAggregation:
    return demand_aggregation_pb2.DemandAggregation(
        name=a.name,
        title=a.title,
        cpv_code=a.cpv_code,
        invited=[f"organisations/{x}" for x in a.invited],
        state=demand_aggregation_pb2.DemandAggregationState.Value(
            f"DEMAND_AGGREGATION_STATE_{a.state.value}"
        ),
        line_count=a.line_count,
        total_quantity=decimal_to_proto(a.total_quantity),
        total_value=_money(a.total_value),
        contract=a.contract,
        audit=audit_metadata(a.info),
        etag=a.info.etag,
    )


def demand_line_to_proto(line: DemandLine) -> demand_aggregation_pb2.DemandLine:
    return demand_aggregation_pb2.DemandLine(
        name=line.name,
        organisation=f"organisations/{line.organisation}",
        description=line.description,
        quantity=decimal_to_proto(line.quantity),
        estimated_unit_price=_money(line.estimated_unit_price),
        audit=audit_metadata(line.info),
    )


def demand_values(msg: demand_aggregation_pb2.DemandLine) -> tuple[Decimal, Decimal]:
    v = Violations()
    quantity = _decimal_in(msg.quantity, "demand_line.quantity", v)
    price = _money_in(msg.estimated_unit_price, "demand_line.estimated_unit_price", v)
    v.raise_if_any()
    assert quantity is not None and price is not None
    return quantity, price
