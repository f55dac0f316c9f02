"""Procurement's repositories: domain objects in, domain objects out."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from sqlalchemy import and_, bindparam, not_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.attributes import set_committed_value

from libs.common.db import owned_by_one_organisation
from libs.common.filtering import Comparison
from libs.common.money import from_minor, to_minor
from libs.common.paging import JsonKey
from libs.common.persistence import (
    apply_filter,
    aware,
    insert_values,
    keyset_after,
    primary_key,
    read_by_key,
    record_info,
    record_values,
    update_by_key,
    values_of,
)
from services.procurement.domain.contract import (
    Allocation,
    Contract,
    ContractKind,
    ContractTerms,
    ProcurementMethod,
)
from services.procurement.domain.demand import AggregationState, DemandAggregation, DemandLine
from services.procurement.domain.policy import ApprovalBand, ProcurementPolicy
from services.procurement.domain.purchase_order import (
    GoodsReceipt,
    OrderLine,
    PurchaseOrder,
    PurchaseOrderState,
    ReceiptLine,
)
from services.procurement.domain.requisition import Decision, Line, Requisition, RequisitionState
from services.procurement.domain.supplier import BankDetails, Debarment, Supplier, SupplierDetails
from services.procurement.persistence.models import (
    ContractParticipantRow,
    ContractRow,
    DemandAggregationRow,
    DemandInviteeRow,
    DemandLineRow,
    GoodsReceiptRow,
    PolicyRow,
    PurchaseOrderRow,
    RequisitionRow,
    SupplierRow,
)

Filters = Mapping[str, InstrumentedAttribute[Any]]


class SupplierRepository(Protocol):
    def get(self, organisation: str, supplier_id: str) -> Supplier | None: ...
    def by_company_number(self, organisation: str, number: str) -> Supplier | None: ...
    def add(self, supplier: Supplier) -> None: ...
    def save(self, supplier: Supplier) -> None: ...
    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Supplier]: ...


# --- encoding -----------------------------------------------------------------------------


def _pence(amount: Decimal) -> int:
    return to_minor(amount, 2)


def _lines_json(lines: Sequence[Line]) -> str:
    return json.dumps(
        [
            {
                "description": x.description,
                "cpv_code": x.cpv_code,
                "quantity": str(x.quantity),
                "unit_price": str(x.unit_price),
                "vat_rate_percent": str(x.vat_rate_percent),
                "cost_centre": x.cost_centre,
            }
            for x in lines
        ]
    )


def _line(d: Mapping[str, str]) -> Line:
    return Line(
        d["description"],
        d["cpv_code"],
        Decimal(d["quantity"]),
        Decimal(d["unit_price"]),
        Decimal(d["vat_rate_percent"]),
        d["cost_centre"],
    )


def _lines(text: str) -> tuple[Line, ...]:
    return tuple(_line(d) for d in json.loads(text))


# --- suppliers ------------------------------------------------------------------------------


def _supplier(row: SupplierRow) -> Supplier:
    bank = None
    if row.bank_account_name and row.bank_sort_code and row.bank_account_number:
        bank = BankDetails(row.bank_account_name, row.bank_sort_code, row.bank_account_number)
    debarment = None
    if row.debarment_reason is not None and row.debarment_date and row.debarment_record_time:
        debarment = Debarment(
            row.debarment_reason,
            row.debarment_date,
            aware(row.debarment_record_time),
            row.debarment_recorded_by or "",
        )
    return Supplier(
        organisation=row.organisation_code,
        id=row.id,
        details=SupplierDetails(
            display_name=row.display_name,
            companies_house_number=row.companies_house_number or "",
            vat_number=row.vat_number or "",
            address_lines=tuple(row.address_lines.split("\n")) if row.address_lines else (),
            postcode=row.postcode,
            sme=row.sme,
            vcse=row.vcse,
            bank_details=bank,
        ),
        info=record_info(row),
        debarment=debarment,
    )


def _supplier_values(s: Supplier) -> dict[str, object]:
    d, bank, debarment = s.details, s.details.bank_details, s.debarment
    return {
        "display_name": d.display_name,
        "companies_house_number": d.companies_house_number or None,
        "vat_number": d.vat_number or None,
        "address_lines": "\n".join(d.address_lines),
        "postcode": d.postcode,
        "sme": d.sme,
        "vcse": d.vcse,
        "bank_account_name": bank.account_name if bank else None,
        "bank_sort_code": bank.sort_code if bank else None,
        "bank_account_number": bank.account_number if bank else None,
        "debarment_reason": debarment.reason if debarment else None,
        "debarment_date": debarment.debarment_date if debarment else None,
        "debarment_record_time": debarment.record_time if debarment else None,
        "debarment_recorded_by": debarment.recorded_by if debarment else None,
        **record_values(s.info),
    }


@functools.cache
def _by_key(model: Any, columns: tuple[str, ...]) -> Any:
    """One statement per model and key, built once: building one per call and keying it for
    the compiled cache costs more than running it."""
    return select(model).where(*(getattr(model, c) == bindparam(c) for c in columns))


class _Rows:
    """What the repositories share: fetch one row by key, save a domain object onto it."""

    model: ClassVar[Any]

    def __init__(self, session: Session) -> None:
        self._session = session
        # Rows this transaction has read or added, by primary key: saving what was just read
        # needs no second SELECT (the session's identity map holds rows only weakly).
        self._held: dict[tuple[object, ...], Any] = {}

    def _row(self, **key: object) -> Any:
        """The row with this key: an instance, or, by primary key for rows of one
        organisation, its plain values (`values_of`) read with a Core statement."""
        if None in key.values():  # `= NULL` matches nothing; filter_by says IS NULL
            return self._session.scalars(select(self.model).filter_by(**key)).first()
        by_primary_key = tuple(key) == primary_key(self.model)
        if by_primary_key and (held := self._held.get(tuple(key.values()))) is not None:
            return held
        if by_primary_key and owned_by_one_organisation(self.model):
            row = read_by_key(self._session, self.model, key)
        else:
            row = self._session.scalars(_by_key(self.model, tuple(key)), key).first()
        if row is not None and by_primary_key:
            self._held[tuple(key.values())] = row
        return row

    def _update(self, row: Any, values: Mapping[str, object]) -> None:
        if owned_by_one_organisation(self.model):
            # A Core UPDATE with the version check the unit of work would make (~60 µs
            # against ~140).
            key = {column: getattr(row, column) for column in primary_key(self.model)}
            update_by_key(self._session, self.model, key, values, was_version=row.version)
            if isinstance(row, tuple):  # plain values: later reads in the transaction see the new ones
                self._held[tuple(key.values())] = row._replace(**values)  # type: ignore[attr-defined]
            else:  # an instance: it takes them as committed, so the session does not write it again
                for column, value in values.items():
                    set_committed_value(row, column, value)
            return
        for column, value in values.items():
            setattr(row, column, value)
        self._session.flush()

    def _insert(self, **values: object) -> None:
        if owned_by_one_organisation(self.model):
            # No instance built; a save in the same transaction reads the row back first.
            insert_values(self._session, self.model, values)
            return
        row = self.model(**values)
        self._session.add(row)
        self._session.flush()
        self._held[tuple(getattr(row, column) for column in primary_key(self.model))] = row


class SqlSupplierRepository(_Rows):
    model = SupplierRow
    FILTERS: ClassVar[Filters] = {
        "display_name": SupplierRow.display_name,
        "companies_house_number": SupplierRow.companies_house_number,
        "vat_number": SupplierRow.vat_number,
        "postcode": SupplierRow.postcode,
        "sme": SupplierRow.sme,
        "vcse": SupplierRow.vcse,
    }

    def get(self, organisation: str, supplier_id: str) -> Supplier | None:
        row = self._row(organisation_code=organisation, id=supplier_id)
        return _supplier(row) if row else None

    def by_company_number(self, organisation: str, number: str) -> Supplier | None:
        row = self._row(organisation_code=organisation, companies_house_number=number)
        return _supplier(row) if row else None

    def add(self, supplier: Supplier) -> None:
        self._insert(organisation_code=supplier.organisation, id=supplier.id, **_supplier_values(supplier))

    def save(self, supplier: Supplier) -> None:
        self._update(
            self._row(organisation_code=supplier.organisation, id=supplier.id), _supplier_values(supplier)
        )

    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Supplier]:
        stmt = apply_filter(values_of(SupplierRow).select(), comparisons, self.FILTERS)
        stmt = keyset_after(stmt, [SupplierRow.organisation_code, SupplierRow.id], after).limit(size)
        return [_supplier(r) for r in values_of(SupplierRow).read(self._session, stmt)]


# --- policy ---------------------------------------------------------------------------------


class SqlPolicyRepository(_Rows):
    model = PolicyRow

    def get(self, organisation: str) -> ProcurementPolicy:
        row = self._row(organisation_code=organisation)
        if row is None:
            return ProcurementPolicy.default(organisation)
        bands = tuple(
            ApprovalBand(Decimal(b["up_to"]) if b["up_to"] is not None else None, tuple(b["approver_roles"]))
            for b in json.loads(row.approval_bands)
        )
        return ProcurementPolicy(organisation, bands, row.receipt_tolerance_percent, record_info(row))

    def save(self, policy: ProcurementPolicy) -> None:
        assert policy.info is not None
        values = {
            "approval_bands": json.dumps(
                [
                    {
                        "up_to": str(b.up_to) if b.up_to is not None else None,
                        "approver_roles": list(b.approver_roles),
                    }
                    for b in policy.approval_bands
                ]
            ),
            "receipt_tolerance_percent": policy.receipt_tolerance_percent,
            **record_values(policy.info),
        }
        row = self._row(organisation_code=policy.organisation)
        if row is None:
            self._insert(organisation_code=policy.organisation, **values)
        else:
            self._update(row, values)


# --- contracts ------------------------------------------------------------------------------


def _contract(row: ContractRow) -> Contract:
    terms = ContractTerms(
        reference=row.reference,
        title=row.title,
        description=row.description,
        department=row.department,
        supplier_id=row.supplier_id,
        kind=ContractKind(row.kind),
        cpv_codes=tuple(row.cpv_codes.split(",")) if row.cpv_codes else (),
        value=from_minor(row.value_pence, 2),
        irrecoverable_vat=from_minor(row.irrecoverable_vat_pence, 2),
        start_date=row.start_date,
        end_date=row.end_date,
        review_date=row.review_date,
        procurement_method=ProcurementMethod(row.procurement_method),
        participants=tuple(row.participants.split(",")) if row.participants else (),
    )
    allocations = tuple(
        Allocation(a["organisation"], Decimal(a["quantity"]), Decimal(a["value"]))
        for a in json.loads(row.allocations)
    )
    return Contract(
        row.organisation_code, row.id, terms, row.ocid, row.supplier_debarred, allocations, record_info(row)
    )


def _contract_values(c: Contract) -> dict[str, object]:
    t = c.terms
    assert t.kind and t.procurement_method and t.value is not None
    return {
        "reference": t.reference,
        "title": t.title,
        "description": t.description,
        "department": t.department,
        "supplier_id": t.supplier_id,
        "kind": t.kind.value,
        "cpv_codes": ",".join(t.cpv_codes),
        "value_pence": _pence(t.value),
        "irrecoverable_vat_pence": _pence(t.irrecoverable_vat),
        "start_date": t.start_date,
        "end_date": t.end_date,
        "review_date": t.review_date,
        "procurement_method": t.procurement_method.value,
        "participants": ",".join(t.participants),
        "ocid": c.ocid,
        "supplier_debarred": c.supplier_debarred,
        "allocations": json.dumps(
            [
                {"organisation": a.organisation, "quantity": str(a.quantity), "value": str(a.value)}
                for a in c.allocations
            ]
        ),
        **record_values(c.info),
    }


class SqlContractRepository(_Rows):
    model = ContractRow
    FILTERS: ClassVar[Filters] = {
        "supplier": ContractRow.supplier_id,
        "kind": ContractRow.kind,
        "reference": ContractRow.reference,
        "title": ContractRow.title,
        "start_date": ContractRow.start_date,
        "end_date": ContractRow.end_date,
    }

    def get(self, organisation: str, contract_id: str) -> Contract | None:
        row = self._row(organisation_code=organisation, id=contract_id)
        return _contract(row) if row else None

    def by_reference(self, organisation: str, reference: str) -> Contract | None:
        row = self._row(organisation_code=organisation, reference=reference)
        return _contract(row) if row else None

    def _set_participants(self, c: Contract) -> None:
        existing = set(
            self._session.scalars(
                select(ContractParticipantRow.counterparty_code).filter_by(
                    organisation_code=c.organisation, contract_id=c.id
                )
            )
        )
        wanted = set(c.terms.participants)
        for code in wanted - existing:
            self._session.add(
                ContractParticipantRow(
                    organisation_code=c.organisation, contract_id=c.id, counterparty_code=code
                )
            )
        for code in existing - wanted:
            row = self._session.get(ContractParticipantRow, (c.organisation, c.id, code))
            self._session.delete(row)

    def add(self, c: Contract) -> None:
        self._insert(organisation_code=c.organisation, id=c.id, **_contract_values(c))
        self._set_participants(c)
        self._session.flush()

    def save(self, c: Contract) -> None:
        self._update(self._row(organisation_code=c.organisation, id=c.id), _contract_values(c))
        self._set_participants(c)
        self._session.flush()

    def of_supplier(self, organisation: str, supplier_id: str) -> list[Contract]:
        stmt = select(ContractRow).filter_by(organisation_code=organisation, supplier_id=supplier_id)
        return [_contract(r) for r in self._session.scalars(stmt)]

    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Contract]:
        # `supplier` is compared as the API shows it, `organisations/{org}/suppliers/{id}`: the
        # register is the contract's owner's, so the name is the owner and the id together.
        by_name = [
            c
            for c in comparisons
            if c.field == "supplier" and c.op in ("=", "!=") and str(c.value).count("/") == 3
        ]
        stmt = apply_filter(select(ContractRow), [c for c in comparisons if c not in by_name], self.FILTERS)
        for c in by_name:
            _, owner, _, supplier_id = str(c.value).split("/")
            named = and_(ContractRow.organisation_code == owner, ContractRow.supplier_id == supplier_id)
            stmt = stmt.where(named if c.op == "=" else not_(named))
        stmt = keyset_after(stmt, [ContractRow.organisation_code, ContractRow.id], after).limit(size)
        return [_contract(r) for r in self._session.scalars(stmt)]

    def let_by(self, organisation: str) -> list[Contract]:
        stmt = select(ContractRow).filter_by(organisation_code=organisation).order_by(ContractRow.reference)
        return [_contract(r) for r in self._session.scalars(stmt)]


# --- requisitions ---------------------------------------------------------------------------


def _requisition(row: RequisitionRow) -> Requisition:
    decision = None
    if row.decided_by and row.decide_time:
        decision = Decision(
            row.decided_by, aware(row.decide_time), row.decision_reason or "", row.approver_role or ""
        )
    return Requisition(
        row.organisation_code,
        row.id,
        row.title,
        _lines(row.lines),
        RequisitionState(row.state),
        row.requester,
        decision,
        row.purchase_order,
        record_info(row),
    )


def _requisition_values(r: Requisition) -> dict[str, object]:
    d = r.decision
    return {
        "title": r.title,
        "lines": _lines_json(r.lines),
        "state": r.state.value,
        "requester": r.requester,
        "gross_total_pence": _pence(r.totals.gross),
        "decided_by": d.decided_by if d else None,
        "decide_time": d.decide_time if d else None,
        "decision_reason": d.reason if d else None,
        "approver_role": d.approver_role if d else None,
        "purchase_order": r.purchase_order,
        **record_values(r.info),
    }


class SqlRequisitionRepository(_Rows):
    model = RequisitionRow
    FILTERS: ClassVar[Filters] = {
        "state": RequisitionRow.state,
        "requester": RequisitionRow.requester,
        "create_date": RequisitionRow.create_time,
    }

    def get(self, organisation: str, requisition_id: str) -> Requisition | None:
        row = self._row(organisation_code=organisation, id=requisition_id)
        return _requisition(row) if row else None

    def add(self, r: Requisition) -> None:
        self._insert(organisation_code=r.organisation, id=r.id, **_requisition_values(r))

    def save(self, r: Requisition) -> None:
        self._update(self._row(organisation_code=r.organisation, id=r.id), _requisition_values(r))

    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Requisition]:
        stmt = apply_filter(values_of(RequisitionRow).select(), comparisons, self.FILTERS)
        stmt = keyset_after(stmt, [RequisitionRow.organisation_code, RequisitionRow.id], after).limit(size)
        return [_requisition(r) for r in values_of(RequisitionRow).read(self._session, stmt)]


# --- purchase orders and receipts ------------------------------------------------------------


def _order(row: PurchaseOrderRow) -> PurchaseOrder:
    lines = tuple(
        OrderLine(d["line_number"], _line(d["item"]), Decimal(d["received"])) for d in json.loads(row.lines)
    )
    issue = aware(row.issue_time) if row.issue_time is not None else None
    return PurchaseOrder(
        row.organisation_code,
        row.id,
        row.requisition,
        row.contract,
        row.supplier,
        lines,
        PurchaseOrderState(row.state),
        row.delivery_address,
        row.notes,
        issue,
        row.closure_reason,
        record_info(row),
        budget=row.budget,
        commitment=row.commitment,
        commitment_refusal=row.commitment_refusal,
        budget_override_reason=row.budget_override_reason,
    )


def _order_values(o: PurchaseOrder) -> dict[str, object]:
    lines = [
        {
            "line_number": x.line_number,
            "item": json.loads(_lines_json([x.item]))[0],
            "received": str(x.received),
        }
        for x in o.lines
    ]
    return {
        "requisition": o.requisition,
        "contract": o.contract,
        "supplier": o.supplier,
        "lines": json.dumps(lines),
        "state": o.state.value,
        "delivery_address": o.delivery_address,
        "notes": o.notes,
        "issue_time": o.issue_time,
        "closure_reason": o.closure_reason,
        "gross_total_pence": _pence(o.totals.gross),
        "budget": o.budget,
        "commitment": o.commitment,
        "commitment_refusal": o.commitment_refusal,
        "budget_override_reason": o.budget_override_reason,
        **record_values(o.info),
    }


class SqlPurchaseOrderRepository(_Rows):
    model = PurchaseOrderRow
    FILTERS: ClassVar[Filters] = {
        "state": PurchaseOrderRow.state,
        "supplier": PurchaseOrderRow.supplier,
        "contract": PurchaseOrderRow.contract,
        "create_date": PurchaseOrderRow.create_time,
    }

    def get(self, organisation: str, order_id: str) -> PurchaseOrder | None:
        row = self._row(organisation_code=organisation, id=order_id)
        return _order(row) if row else None

    def add(self, o: PurchaseOrder) -> None:
        self._insert(organisation_code=o.organisation, id=o.id, **_order_values(o))

    def save(self, o: PurchaseOrder) -> None:
        self._update(self._row(organisation_code=o.organisation, id=o.id), _order_values(o))

    def page(
        self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int
    ) -> list[PurchaseOrder]:
        stmt = apply_filter(values_of(PurchaseOrderRow).select(), comparisons, self.FILTERS)
        stmt = keyset_after(stmt, [PurchaseOrderRow.organisation_code, PurchaseOrderRow.id], after).limit(
            size
        )
        return [_order(r) for r in values_of(PurchaseOrderRow).read(self._session, stmt)]


def _receipt(row: GoodsReceiptRow) -> GoodsReceipt:
    lines = tuple(ReceiptLine(d["line_number"], Decimal(d["quantity"])) for d in json.loads(row.lines))
    return GoodsReceipt(
        row.organisation_code,
        row.purchase_order_id,
        row.id,
        row.receipt_date,
        lines,
        row.note,
        record_info(row),
    )


class SqlGoodsReceiptRepository(_Rows):
    model = GoodsReceiptRow

    def add(self, g: GoodsReceipt) -> None:
        lines = json.dumps([{"line_number": x.line_number, "quantity": str(x.quantity)} for x in g.lines])
        self._insert(
            organisation_code=g.organisation,
            purchase_order_id=g.order_id,
            id=g.id,
            receipt_date=g.receipt_date,
            lines=lines,
            note=g.note,
            **record_values(g.info),
        )

    def page(self, organisation: str, order_id: str, after: JsonKey | None, size: int) -> list[GoodsReceipt]:
        stmt = select(GoodsReceiptRow).filter_by(organisation_code=organisation, purchase_order_id=order_id)
        stmt = keyset_after(stmt, [GoodsReceiptRow.id], after).limit(size)
        return [_receipt(r) for r in self._session.scalars(stmt)]


# --- demand aggregation ---------------------------------------------------------------------


def _aggregation(row: DemandAggregationRow) -> DemandAggregation:
    return DemandAggregation(
        row.organisation_code,
        row.id,
        row.title,
        row.cpv_code,
        tuple(row.invited.split(",")) if row.invited else (),
        AggregationState(row.state),
        row.line_count,
        from_minor(row.total_quantity_micro, 6),
        from_minor(row.total_value_pence, 2),
        row.contract,
        record_info(row),
    )


def _aggregation_values(a: DemandAggregation) -> dict[str, object]:
    return {
        "title": a.title,
        "cpv_code": a.cpv_code,
        "invited": ",".join(a.invited),
        "state": a.state.value,
        "line_count": a.line_count,
        "total_quantity_micro": to_minor(a.total_quantity, 6),
        "total_value_pence": _pence(a.total_value),
        "contract": a.contract,
        **record_values(a.info),
    }


def _demand_line(row: DemandLineRow) -> DemandLine:
    return DemandLine(
        row.organisation_code,
        row.aggregation_id,
        row.id,
        row.counterparty_code,
        row.description,
        from_minor(row.quantity_micro, 6),
        from_minor(row.estimated_unit_price_micro, 6),
        record_info(row),
    )


class SqlDemandRepository(_Rows):
    model = DemandAggregationRow

    def get(self, organisation: str, aggregation_id: str) -> DemandAggregation | None:
        row = self._row(organisation_code=organisation, id=aggregation_id)
        return _aggregation(row) if row else None

    def add(self, a: DemandAggregation) -> None:
        self._insert(organisation_code=a.organisation, id=a.id, **_aggregation_values(a))
        for code in a.invited:
            self._session.add(
                DemandInviteeRow(
                    organisation_code=a.organisation, aggregation_id=a.id, counterparty_code=code
                )
            )
        self._session.flush()

    def save(self, a: DemandAggregation) -> None:
        self._update(self._row(organisation_code=a.organisation, id=a.id), _aggregation_values(a))

    def page(self, after: JsonKey | None, size: int) -> list[DemandAggregation]:
        stmt = keyset_after(
            select(DemandAggregationRow),
            [DemandAggregationRow.organisation_code, DemandAggregationRow.id],
            after,
        ).limit(size)
        return [_aggregation(r) for r in self._session.scalars(stmt)]

    def add_line(self, line: DemandLine) -> None:
        self._session.add(
            DemandLineRow(
                organisation_code=line.lead,
                aggregation_id=line.aggregation_id,
                id=line.id,
                counterparty_code=line.organisation,
                description=line.description,
                quantity_micro=to_minor(line.quantity, 6),
                estimated_unit_price_micro=to_minor(line.estimated_unit_price, 6),
                **record_values(line.info),
            )
        )
        self._session.flush()

    def lines(
        self, lead: str, aggregation_id: str, after: JsonKey | None = None, size: int | None = None
    ) -> list[DemandLine]:
        stmt = keyset_after(
            select(DemandLineRow).filter_by(organisation_code=lead, aggregation_id=aggregation_id),
            [DemandLineRow.id],
            after,
        )
        if size is not None:
            stmt = stmt.limit(size)
        return [_demand_line(r) for r in self._session.scalars(stmt)]
