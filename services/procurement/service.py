"""Procurement's use cases: they take a unit of work and plain values and return domain
objects; every change records its audit entry in the same transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from libs.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from libs.common.filtering import Comparison
from libs.common.money import ZERO
from libs.common.names import check_resource_id, new_id
from libs.common.paging import JsonKey
from libs.common.records import RecordInfo, check_etag, snapshot
from libs.common.service import Transaction
from services.procurement.domain.contract import Contract, ContractTerms, ocid_for
from services.procurement.domain.demand import (
    AggregationState,
    DemandAggregation,
    DemandLine,
    allocations,
    check_aggregation,
    check_demand_line,
)
from services.procurement.domain.policy import ApprovalBand, ProcurementPolicy, check_policy
from services.procurement.domain.purchase_order import (
    GoodsReceipt,
    OrderLine,
    PurchaseOrder,
    PurchaseOrderState,
    ReceiptLine,
    check_order_text,
    check_receipt,
)
from services.procurement.domain.requisition import Line, Requisition, RequisitionState, check_requisition
from services.procurement.domain.supplier import Debarment, Supplier, SupplierDetails, check_reason
from services.procurement.domain.transitions import refuse
from services.procurement.persistence.repository import (
    SqlContractRepository,
    SqlDemandRepository,
    SqlGoodsReceiptRepository,
    SqlPolicyRepository,
    SqlPurchaseOrderRepository,
    SqlRequisitionRepository,
    SqlSupplierRepository,
    SupplierRepository,
)


class ProcurementUnitOfWork:
    def __init__(self, tx: Transaction, suppliers: SupplierRepository | None = None) -> None:
        self.tx = tx
        self.suppliers: SupplierRepository = suppliers or SqlSupplierRepository(tx.session)
        self.policies = SqlPolicyRepository(tx.session)
        self.contracts = SqlContractRepository(tx.session)
        self.requisitions = SqlRequisitionRepository(tx.session)
        self.orders = SqlPurchaseOrderRepository(tx.session)
        self.receipts = SqlGoodsReceiptRepository(tx.session)
        self.demand = SqlDemandRepository(tx.session)

    def new_info(self) -> RecordInfo:
        return RecordInfo.new(self.tx.principal_id, self.tx.acting_organisation, _now())

    def touch(self, info: RecordInfo) -> RecordInfo:
        return info.touched(self.tx.principal_id, self.tx.acting_organisation, _now())

    def audit(self, organisation: str, name: str, before: object, after: object) -> None:
        self.tx.audit.record(
            organisation,
            name,
            snapshot(before) if before is not None else None,
            snapshot(after) if after is not None else None,
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _not_found(name: str) -> NotFound:
    return NotFound(name)


# --- suppliers ------------------------------------------------------------------------------


def _company_taken(number: str) -> AlreadyExists:
    return AlreadyExists(
        f"a supplier with Companies House number {number} is already in the register",
        reason="SUPPLIER_ALREADY_REGISTERED",
        metadata={"companies_house_number": number},
    )


def create_supplier(
    uow: ProcurementUnitOfWork, organisation: str, details: SupplierDetails, supplier_id: str = ""
) -> Supplier:
    if supplier_id:
        check_resource_id(supplier_id, "supplier_id")
    details = details.checked()
    if supplier_id and uow.suppliers.get(organisation, supplier_id):
        raise AlreadyExists(
            f"organisations/{organisation}/suppliers/{supplier_id} already exists",
            reason="SUPPLIER_ALREADY_REGISTERED",
            metadata={"supplier_id": supplier_id},
        )
    if details.companies_house_number and uow.suppliers.by_company_number(
        organisation, details.companies_house_number
    ):
        raise _company_taken(details.companies_house_number)
    supplier = Supplier(organisation, supplier_id or new_id("s"), details, uow.new_info())
    uow.suppliers.add(supplier)
    uow.tx.audit.record(organisation, supplier.name, None, supplier.audit_view())
    return supplier


def get_supplier(uow: ProcurementUnitOfWork, organisation: str, supplier_id: str) -> Supplier:
    supplier = uow.suppliers.get(organisation, supplier_id)
    if supplier is None:
        raise NotFound(f"organisations/{organisation}/suppliers/{supplier_id}")
    return supplier


def list_suppliers(
    uow: ProcurementUnitOfWork, comparisons: Sequence[Comparison], after: JsonKey | None, size: int
) -> list[Supplier]:
    return uow.suppliers.page(comparisons, after, size)


def update_supplier(
    uow: ProcurementUnitOfWork,
    organisation: str,
    *,
    supplier_id: str,
    changes: SupplierDetails,
    paths: frozenset[str],
    etag: str,
) -> Supplier:
    current = get_supplier(uow, organisation, supplier_id)
    check_etag(current.name, etag, current.info)
    details = current.details.with_changes(changes, paths).checked()
    number = details.companies_house_number
    if number and number != current.details.companies_house_number:
        other = uow.suppliers.by_company_number(organisation, number)
        if other is not None and other.id != supplier_id:
            raise _company_taken(number)
    updated = dataclasses.replace(current, details=details, info=uow.touch(current.info))
    uow.suppliers.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    return updated


def _flag_contracts(uow: ProcurementUnitOfWork, supplier: Supplier) -> None:
    """Debarment travels with the supplier onto the contracts let with it."""
    for contract in uow.contracts.of_supplier(supplier.organisation, supplier.id):
        flagged = dataclasses.replace(
            contract, supplier_debarred=supplier.debarred, info=uow.touch(contract.info)
        )
        uow.contracts.save(flagged)
        uow.audit(
            contract.organisation,
            contract.name,
            {"supplier_debarred": contract.supplier_debarred},
            {"supplier_debarred": flagged.supplier_debarred},
        )


def debar_supplier(
    uow: ProcurementUnitOfWork,
    organisation: str,
    supplier_id: str,
    *,
    reason: str,
    debarment_date: dt.date | None,
    etag: str,
) -> Supplier:
    v = Violations()
    text = v.parsed(check_reason, reason) or ""
    v.check(debarment_date is not None, "debarment_date", "is required")
    v.raise_if_any()
    assert debarment_date is not None
    current = get_supplier(uow, organisation, supplier_id)
    check_etag(current.name, etag, current.info)
    debarment = Debarment(text, debarment_date, _now(), uow.tx.principal_id)
    updated = current.debarred_by(debarment, uow.touch(current.info))
    uow.suppliers.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    _flag_contracts(uow, updated)
    return updated


def lift_debarment(
    uow: ProcurementUnitOfWork, organisation: str, supplier_id: str, *, reason: str, etag: str
) -> Supplier:
    text = check_reason(reason)
    current = get_supplier(uow, organisation, supplier_id)
    check_etag(current.name, etag, current.info)
    updated = current.debarment_lifted(uow.touch(current.info))
    uow.suppliers.save(updated)
    uow.tx.audit.record(
        organisation, updated.name, current.audit_view(), {**updated.audit_view(), "reason": text}
    )
    _flag_contracts(uow, updated)
    return updated


# --- policy ---------------------------------------------------------------------------------


def update_policy(
    uow: ProcurementUnitOfWork,
    organisation: str,
    *,
    bands: tuple[ApprovalBand, ...] | None,
    tolerance: int | None,
    etag: str,
    known_roles: frozenset[str],
) -> ProcurementPolicy:
    current = uow.policies.get(organisation)
    if current.info is not None:
        check_etag(current.name, etag, current.info)
    new_bands = current.approval_bands if bands is None else bands
    new_tolerance = current.receipt_tolerance_percent if tolerance is None else tolerance
    check_policy(new_bands, new_tolerance, known_roles)
    info = uow.touch(current.info) if current.info else uow.new_info()
    updated = ProcurementPolicy(organisation, new_bands, new_tolerance, info)
    uow.policies.save(updated)
    uow.audit(organisation, updated.name, current, updated)
    return updated


# --- contracts ------------------------------------------------------------------------------


def create_contract(
    uow: ProcurementUnitOfWork,
    organisation: str,
    terms: ContractTerms,
    *,
    ocds_prefix: str,
    allocations_: Sequence[object] = (),
) -> Contract:
    terms = terms.checked(organisation)
    supplier = uow.suppliers.get(organisation, terms.supplier_id)
    if supplier is None:
        raise InvalidArgument.single(
            "contract.supplier",
            f"organisations/{organisation}/suppliers/{terms.supplier_id} is not in the register",
        )
    supplier.require_not_debarred()
    if uow.contracts.by_reference(organisation, terms.reference.strip()):
        raise AlreadyExists(
            f"a contract with reference {terms.reference} exists",
            reason="CONTRACT_REFERENCE_TAKEN",
            metadata={"reference": terms.reference},
        )
    contract_id = new_id("c")
    contract = Contract(
        organisation,
        contract_id,
        dataclasses.replace(terms, reference=terms.reference.strip(), title=terms.title.strip()),
        ocid_for(ocds_prefix, organisation, contract_id),
        False,
        tuple(allocations_),  # type: ignore[arg-type]
        uow.new_info(),
    )
    uow.contracts.add(contract)
    uow.audit(organisation, contract.name, None, contract)
    return contract


def get_contract(uow: ProcurementUnitOfWork, organisation: str, contract_id: str) -> Contract:
    contract = uow.contracts.get(organisation, contract_id)
    if contract is None:
        raise NotFound(f"organisations/{organisation}/contracts/{contract_id}")
    return contract


def update_contract(
    uow: ProcurementUnitOfWork,
    organisation: str,
    contract_id: str,
    *,
    changes: ContractTerms,
    paths: frozenset[str],
    etag: str,
) -> Contract:
    current = get_contract(uow, organisation, contract_id)
    check_etag(current.name, etag, current.info)
    terms = dataclasses.replace(current.terms, **{p: getattr(changes, p) for p in paths}).checked(
        organisation
    )
    updated = dataclasses.replace(current, terms=terms, info=uow.touch(current.info))
    uow.contracts.save(updated)
    uow.audit(organisation, updated.name, current, updated)
    return updated


# --- requisitions ---------------------------------------------------------------------------


def create_requisition(
    uow: ProcurementUnitOfWork, organisation: str, title: str, lines: tuple[Line, ...]
) -> Requisition:
    check_requisition(title, lines)
    requisition = Requisition(
        organisation,
        new_id("r"),
        title.strip(),
        lines,
        RequisitionState.DRAFT,
        uow.tx.principal_id,
        None,
        "",
        uow.new_info(),
    )
    uow.requisitions.add(requisition)
    uow.audit(organisation, requisition.name, None, requisition)
    return requisition


def get_requisition(uow: ProcurementUnitOfWork, organisation: str, requisition_id: str) -> Requisition:
    requisition = uow.requisitions.get(organisation, requisition_id)
    if requisition is None:
        raise NotFound(f"organisations/{organisation}/requisitions/{requisition_id}")
    return requisition


def _changed_requisition(
    uow: ProcurementUnitOfWork, current: Requisition, updated: Requisition
) -> Requisition:
    uow.requisitions.save(updated)
    uow.audit(current.organisation, updated.name, current, updated)
    return updated


def update_requisition(
    uow: ProcurementUnitOfWork,
    organisation: str,
    requisition_id: str,
    *,
    title: str | None,
    lines: tuple[Line, ...] | None,
    etag: str,
) -> Requisition:
    current = get_requisition(uow, organisation, requisition_id)
    check_etag(current.name, etag, current.info)
    new_title = current.title if title is None else title.strip()
    new_lines = current.lines if lines is None else lines
    check_requisition(new_title, new_lines)
    return _changed_requisition(uow, current, current.amended(new_title, new_lines, uow.touch(current.info)))


def submit_requisition(
    uow: ProcurementUnitOfWork, organisation: str, requisition_id: str, etag: str
) -> Requisition:
    current = get_requisition(uow, organisation, requisition_id)
    check_etag(current.name, etag, current.info)
    return _changed_requisition(uow, current, current.submitted(uow.touch(current.info)))


def decide_requisition(
    uow: ProcurementUnitOfWork,
    organisation: str,
    requisition_id: str,
    *,
    approve: bool,
    roles: frozenset[str],
    reason: str,
    etag: str,
) -> Requisition:
    current = get_requisition(uow, organisation, requisition_id)
    check_etag(current.name, etag, current.info)
    policy = uow.policies.get(organisation)
    info = uow.touch(current.info)
    if approve:
        updated = current.approved(uow.tx.principal_id, roles=roles, policy=policy, now=_now(), info=info)
    else:
        updated = current.rejected(
            uow.tx.principal_id,
            roles=roles,
            policy=policy,
            reason=check_reason(reason),
            now=_now(),
            info=info,
        )
    return _changed_requisition(uow, current, updated)


def cancel_requisition(
    uow: ProcurementUnitOfWork, organisation: str, requisition_id: str, etag: str
) -> Requisition:
    current = get_requisition(uow, organisation, requisition_id)
    check_etag(current.name, etag, current.info)
    return _changed_requisition(uow, current, current.cancelled(uow.touch(current.info)))


# --- purchase orders ------------------------------------------------------------------------


def _visible_contract(uow: ProcurementUnitOfWork, owner: str, contract_id: str) -> Contract:
    contract = uow.contracts.get(owner, contract_id)
    if contract is None:
        raise NotFound(f"organisations/{owner}/contracts/{contract_id}")
    return contract


def check_order_fields(organisation: str, budget: str, delivery_address: str, notes: str) -> str:
    """The order's budget name as kept; INVALID_ARGUMENT naming every bad field."""
    v = Violations()
    kept = v.parsed(check_budget_name, organisation, budget) or ""
    v.parsed(check_order_text, delivery_address.strip(), notes.strip())
    v.raise_if_any()
    return kept


def create_purchase_order(
    uow: ProcurementUnitOfWork,
    organisation: str,
    *,
    requisition_id: str,
    contract_owner: str,
    contract_id: str,
    delivery_address: str,
    notes: str,
    today: dt.date,
    budget: str = "",
) -> PurchaseOrder:
    budget = check_order_fields(organisation, budget, delivery_address, notes)
    delivery_address, notes = delivery_address.strip(), notes.strip()
    requisition = get_requisition(uow, organisation, requisition_id)
    contract = _visible_contract(uow, contract_owner, contract_id)
    contract.require_orderable(organisation, today)
    order_id = new_id("po")
    order = PurchaseOrder(
        organisation,
        order_id,
        requisition.name,
        contract.name,
        contract.supplier_name,
        tuple(OrderLine(i, line, ZERO) for i, line in enumerate(requisition.lines, 1)),
        PurchaseOrderState.DRAFT,
        delivery_address,
        notes,
        None,
        "",
        uow.new_info(),
        budget=budget,
    )
    ordered = requisition.ordered(order.name, uow.touch(requisition.info))
    uow.orders.add(order)
    _changed_requisition(uow, requisition, ordered)
    uow.audit(organisation, order.name, None, order)
    return order


def get_purchase_order(uow: ProcurementUnitOfWork, organisation: str, order_id: str) -> PurchaseOrder:
    order = uow.orders.get(organisation, order_id)
    if order is None:
        raise NotFound(f"organisations/{organisation}/purchaseOrders/{order_id}")
    return order


def _changed_order(
    uow: ProcurementUnitOfWork, current: PurchaseOrder, updated: PurchaseOrder
) -> PurchaseOrder:
    uow.orders.save(updated)
    uow.audit(current.organisation, updated.name, current, updated)
    return updated


def amend_purchase_order(
    uow: ProcurementUnitOfWork,
    organisation: str,
    order_id: str,
    *,
    delivery_address: str | None,
    notes: str | None,
    etag: str,
) -> PurchaseOrder:
    current = get_purchase_order(uow, organisation, order_id)
    check_etag(current.name, etag, current.info)
    address = current.delivery_address if delivery_address is None else delivery_address.strip()
    text = current.notes if notes is None else notes.strip()
    check_order_text(address, text)
    updated = current.amended(address, text, uow.touch(current.info))
    return _changed_order(uow, current, updated)


# Events procurement publishes to finance (delivered by its outbox relay).
RAISE_COMMITMENT = "finance.commitments.raise"
RELEASE_COMMITMENT = "finance.commitments.release"
# No longer published: goods received stay committed until the invoice consumes them. The
# relay still delivers it (finance_events.HANDLERS), for events recorded before the upgrade.
CONSUME_COMMITMENT = "finance.commitments.consume"
_BUDGET_PARTS = 6  # organisations/{code}/ledgers/{ledger}/budgets/{budget}


def check_budget_name(organisation: str, budget: str) -> str:
    """A finance budget of the order's own organisation (or none): finance is asked to
    commit only on behalf of the organisation whose order it is."""
    budget = budget.strip()
    if not budget:
        return ""
    parts = budget.split("/")
    if (
        len(parts) != _BUDGET_PARTS
        or parts[0] != "organisations"
        or parts[2] != "ledgers"
        or parts[4] != "budgets"
        or not all(parts)
    ):
        raise InvalidArgument.single(
            "purchase_order.budget", "must be organisations/{code}/ledgers/{ledger}/budgets/{budget}"
        )
    if parts[1] != organisation:
        raise InvalidArgument.single(
            "purchase_order.budget", "must be a budget of the order's own organisation"
        )
    return budget


def issue_purchase_order(
    uow: ProcurementUnitOfWork,
    organisation: str,
    order_id: str,
    *,
    etag: str,
    today: dt.date,
    override_reason: str = "",
    may_override: bool = False,
) -> PurchaseOrder:
    current = get_purchase_order(uow, organisation, order_id)
    check_etag(current.name, etag, current.info)
    if current.state is not PurchaseOrderState.DRAFT:
        raise refuse(current.name, "issue", current.state)
    # A supplier debarred, or a contract ended or no longer shared, since the order was
    # drafted stops it here.
    _require_orderable(uow, current, today)
    override_reason = override_reason.strip()
    if not current.budget:
        if override_reason:
            # Else the override would be dropped unrecorded, its giver believing it kept.
            raise InvalidArgument.single("budget_override_reason", "the order has no budget to override")
        return _changed_order(uow, current, current.issued(_now(), uow.touch(current.info)))
    if len(override_reason) > 500:
        raise InvalidArgument.single("budget_override_reason", "at most 500 characters")
    if override_reason and not may_override:
        raise PermissionDenied(
            "overriding the budget check needs the permission procurement.orders.override_budget",
            reason="OVERRIDE_NOT_PERMITTED",
        )
    pending = current.awaiting_commitment(override_reason, uow.touch(current.info))
    # The commitment request commits with the order's change, or neither happens.
    uow.tx.outbox.publish(
        RAISE_COMMITMENT,
        current.name,
        {
            "order": current.name,
            "budget": current.budget,
            "amount": str(current.totals.net),
            "override_reason": override_reason,
        },
    )
    return _changed_order(uow, current, pending)


def _require_orderable(uow: ProcurementUnitOfWork, order: PurchaseOrder, today: dt.date) -> None:
    contract = uow.contracts.get(*order.contract_key)
    if contract is None:
        # A contract hides from an organisation taken off its participants; the order,
        # which the organisation still sees, names it, so NOT_FOUND would mislead.
        raise FailedPrecondition(
            f"{order.contract} is no longer shared with organisations/{order.organisation}",
            reason="NOT_A_PARTICIPANT",
            metadata={"contract": order.contract},
        )
    contract.require_orderable(order.organisation, today)


# Why an order cannot be placed on its contract (`Contract.require_orderable`), as an issue
# refused when finance's commitment came back says.
ORDERING_REFUSALS = frozenset({"CONTRACT_NOT_LIVE", "SUPPLIER_DEBARRED", "NOT_A_PARTICIPANT"})


def commitment_raised(
    uow: ProcurementUnitOfWork, organisation: str, order_id: str, commitment: str, today: dt.date
) -> PurchaseOrder:
    """Finance committed the budget (applied by the relay with the delivery)."""
    current = get_purchase_order(uow, organisation, order_id)
    if current.state is PurchaseOrderState.CANCELLED:
        return current
    try:
        # Finance may answer long after the issue (it was down): a supplier debarred, or a
        # contract ended or no longer shared, meanwhile stops the order here as it would
        # have at the issue, and the commitment goes back to the budget.
        _require_orderable(uow, current, today)
    except FailedPrecondition as err:
        uow.tx.outbox.publish(RELEASE_COMMITMENT, current.name, {"commitment": commitment})
        refusal = f"{err.reason}: {err.message} (the commitment {commitment} is released)"
        return _changed_order(uow, current, current.commitment_refused(refusal, uow.touch(current.info)))
    return _changed_order(uow, current, current.committed(commitment, _now(), uow.touch(current.info)))


def commitment_refused(
    uow: ProcurementUnitOfWork, organisation: str, order_id: str, reason: str
) -> PurchaseOrder:
    """Finance refused to commit the budget (applied by the relay with the delivery)."""
    current = get_purchase_order(uow, organisation, order_id)
    return _changed_order(uow, current, current.commitment_refused(reason, uow.touch(current.info)))


def end_purchase_order(
    uow: ProcurementUnitOfWork, organisation: str, order_id: str, *, cancel: bool, reason: str, etag: str
) -> PurchaseOrder:
    current = get_purchase_order(uow, organisation, order_id)
    check_etag(current.name, etag, current.info)
    info = uow.touch(current.info)
    updated = (
        current.cancelled(check_reason(reason), info)
        if cancel
        else current.closed(check_reason(reason, required=False), info)
    )
    if current.commitment:
        # Cancelled, or closed (short or in full): nothing more will be received, so what
        # remains of the commitment goes back to the budget, except what was received and
        # not yet invoiced (finance keeps that open for the invoices to consume). A cancel
        # comes before any receipt: all of it goes back.
        uow.tx.outbox.publish(
            RELEASE_COMMITMENT,
            current.name,
            {"commitment": current.commitment, "retain_to": str(current.received_net)},
        )
    _changed_order(uow, current, updated)
    if cancel:
        # Nothing was received, so the approved demand may be ordered again (an order's
        # budget cannot be amended: one raised against the wrong budget is cancelled).
        requisition = get_requisition(uow, organisation, current.requisition_id)
        reopened = requisition.order_cancelled(current.name, uow.touch(requisition.info))
        _changed_requisition(uow, requisition, reopened)
    return updated


def receive_goods(
    uow: ProcurementUnitOfWork,
    organisation: str,
    order_id: str,
    *,
    receipt_date: dt.date | None,
    lines: tuple[ReceiptLine, ...],
    note: str,
    today: dt.date,
) -> GoodsReceipt:
    order = get_purchase_order(uow, organisation, order_id)
    check_receipt(order, receipt_date, lines, today, note.strip())
    assert receipt_date is not None
    tolerance = uow.policies.get(organisation).receipt_tolerance_percent
    updated = order.received(lines, tolerance, uow.touch(order.info))
    receipt = GoodsReceipt(
        organisation, order_id, new_id("gr"), receipt_date, lines, note.strip(), uow.new_info()
    )
    _changed_order(uow, order, updated)
    uow.receipts.add(receipt)
    uow.audit(organisation, receipt.name, None, receipt)
    # Nothing goes to finance: what has arrived is owed, so it stays committed until the
    # supplier's invoice is approved and consumes it (finance posts it to actual then).
    return receipt


# --- collaborative procurement ----------------------------------------------------------------


def create_aggregation(
    uow: ProcurementUnitOfWork, lead: str, *, title: str, cpv_code: str, invited: tuple[str, ...]
) -> DemandAggregation:
    check_aggregation(title, cpv_code, invited, lead)
    aggregation = DemandAggregation(
        lead,
        new_id("da"),
        title.strip(),
        cpv_code,
        invited,
        AggregationState.OPEN,
        0,
        ZERO,
        ZERO,
        "",
        uow.new_info(),
    )
    uow.demand.add(aggregation)
    uow.audit(lead, aggregation.name, None, aggregation)
    return aggregation


def get_aggregation(uow: ProcurementUnitOfWork, lead: str, aggregation_id: str) -> DemandAggregation:
    aggregation = uow.demand.get(lead, aggregation_id)
    if aggregation is None:
        raise NotFound(f"organisations/{lead}/demandAggregations/{aggregation_id}")
    return aggregation


def add_demand(
    uow: ProcurementUnitOfWork,
    lead: str,
    aggregation_id: str,
    *,
    contributor: str,
    description: str,
    quantity: Decimal,
    price: Decimal,
) -> DemandLine:
    check_demand_line(description, quantity, price)
    aggregation = get_aggregation(uow, lead, aggregation_id)
    line = DemandLine(
        lead, aggregation_id, new_id("dl"), contributor, description.strip(), quantity, price, uow.new_info()
    )
    updated = aggregation.with_line(line, uow.touch(aggregation.info))
    uow.demand.add_line(line)
    uow.demand.save(updated)
    uow.audit(contributor, line.name, None, line)
    # The aggregation's totals and version change too; in the contributor's chain, as the
    # contributor's transaction writes them.
    uow.audit(contributor, updated.name, aggregation, updated)
    return line


def close_aggregation(
    uow: ProcurementUnitOfWork,
    lead: str,
    aggregation_id: str,
    *,
    terms: ContractTerms,
    etag: str,
    ocds_prefix: str,
) -> DemandAggregation:
    aggregation = get_aggregation(uow, lead, aggregation_id)
    check_etag(aggregation.name, etag, aggregation.info)
    aggregation.require_open()
    lines = uow.demand.lines(lead, aggregation_id)
    shares = allocations(lines)
    participants = tuple(a.organisation for a in shares if a.organisation != lead)
    contract = create_contract(
        uow,
        lead,
        dataclasses.replace(terms, cpv_codes=(aggregation.cpv_code,), participants=participants),
        ocds_prefix=ocds_prefix,
        allocations_=shares,
    )
    closed = aggregation.closed_into(contract.name, lines, uow.touch(aggregation.info))
    uow.demand.save(closed)
    uow.audit(lead, closed.name, aggregation, closed)
    return closed
