"""Procurement end to end through real servers, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import grpc
import pytest
from google.protobuf import field_mask_pb2

from backoffice.directory.v1 import agreement_pb2
from backoffice.directory.v1 import directory_service_pb2 as dpb
from backoffice.procurement.v1 import (
    contract_pb2,
    demand_aggregation_pb2,
    policy_pb2,
    purchase_order_pb2,
    requisition_pb2,
    supplier_pb2,
)
from backoffice.procurement.v1 import procurement_service_pb2 as pb
from libs.common.config import Settings
from libs.common.migrations import upgrade
from libs.common.proto_mapping import date_to_proto
from tests.procurement.helpers import (
    approved,
    contract,
    decimal,
    gbp,
    line,
    order,
    receive,
    requisition,
    supplier,
)
from tests.support import (
    CUMBRIA,
    LEEDS,
    SOUTH_YORKSHIRE,
    UNIT,
    WEST_YORKSHIRE,
    Caller,
    Suite,
    audit_after,
    audit_column,
    downgrade,
    execute_as_owner,
    failure,
    running_suite,
    today,
)

WY = WEST_YORKSHIRE


def _people(suite: Suite) -> dict[str, object]:
    return {
        "officer": suite.caller(UNIT, "procurement.commercial", subject="commercial"),
        "requester": suite.caller(WY, "procurement.requester", subject="requester"),
        "approver": suite.caller(WY, "procurement.budget_holder", subject="approver"),
        "buyer": suite.caller(WY, "procurement.buyer", subject="buyer"),
    }


def test_requisition_to_receipt(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial", subject="commercial")
    requester = suite.caller(WY, "procurement.requester", subject="requester")
    approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    acme = supplier(officer)
    framework = contract(officer, acme.name, [WY])
    assert framework.state == contract_pb2.CONTRACT_STATE_LIVE
    assert framework.ocid.endswith(framework.name.rsplit("/", 1)[1])
    # The participant sees the framework the unit let.
    assert buyer.procurement.GetContract(pb.GetContractRequest(name=framework.name)).name == framework.name

    r = requisition(
        requester, WY, line(quantity="10", price="450.00"), line("Trauma kit", "3", "33.333", "20")
    )
    assert r.state == requisition_pb2.REQUISITION_STATE_DRAFT
    # 10 x 450.00 = 4500.00 (VAT 900.00); 3 x 33.333 = 99.999 -> 100.00 (VAT 20.00)
    assert (r.net_total.units, r.net_total.nanos) == (4600, 0)
    assert (r.vat_total.units, r.gross_total.units) == (920, 5520)
    r = requester.procurement.SubmitRequisition(pb.SubmitRequisitionRequest(name=r.name, etag=r.etag))
    r = approver.procurement.ApproveRequisition(pb.ApproveRequisitionRequest(name=r.name, etag=r.etag))
    assert r.state == requisition_pb2.REQUISITION_STATE_APPROVED
    assert r.decision.decided_by == f"{WY}/approver"
    assert r.decision.approver_role == "procurement.budget_holder"

    po = order(buyer, WY, r.name, framework.name)
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_DRAFT
    assert po.supplier == acme.name and len(po.lines) == 2
    r = requester.procurement.GetRequisition(pb.GetRequisitionRequest(name=r.name))
    assert r.state == requisition_pb2.REQUISITION_STATE_ORDERED and r.purchase_order == po.name
    # A second order from the same requisition is refused.
    again = failure(
        buyer.procurement.CreatePurchaseOrder,
        pb.CreatePurchaseOrderRequest(
            parent=f"organisations/{WY}",
            purchase_order=purchase_order_pb2.PurchaseOrder(requisition=r.name, contract=framework.name),
        ),
    )
    assert again.code is grpc.StatusCode.FAILED_PRECONDITION and again.reason == "REQUISITION_NOT_APPROVED"

    po = buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=po.name, etag=po.etag))
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_ISSUED
    receive(buyer, po.name, (1, "4"))
    po = buyer.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=po.name))
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_PARTIALLY_RECEIVED
    assert po.lines[0].received_quantity.value == "4"
    too_much = failure(receive, buyer, po.name, (1, "7"))
    assert too_much.code is grpc.StatusCode.FAILED_PRECONDITION and too_much.reason == "RECEIPT_EXCEEDS_ORDER"
    assert too_much.metadata["receivable"] == "6"
    receive(buyer, po.name, (1, "6"), (2, "3"))
    po = buyer.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=po.name))
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_RECEIVED
    receipts = buyer.procurement.ListGoodsReceipts(pb.ListGoodsReceiptsRequest(parent=po.name)).goods_receipts
    assert len(receipts) == 2
    po = buyer.procurement.ClosePurchaseOrder(pb.ClosePurchaseOrderRequest(name=po.name, etag=po.etag))
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_CLOSED
    listed = buyer.procurement.ListPurchaseOrders(
        pb.ListPurchaseOrdersRequest(parent=f"organisations/{WY}", filter="state = CLOSED")
    )
    assert [o.name for o in listed.purchase_orders] == [po.name]


def test_illegal_transitions_say_the_current_state(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
    framework = contract(officer, supplier(officer).name, [WY])
    r = approved(buyer, approver, WY)
    po = order(buyer, WY, r.name, framework.name)
    f = failure(receive, buyer, po.name, (1, "1"))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "INVALID_STATE_TRANSITION"
    assert f.metadata["current_state"] == "DRAFT"
    po = buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=po.name))
    f = failure(buyer.procurement.IssuePurchaseOrder, pb.IssuePurchaseOrderRequest(name=po.name))
    assert f.reason == "INVALID_STATE_TRANSITION" and f.metadata["current_state"] == "ISSUED"
    f = failure(
        buyer.procurement.UpdatePurchaseOrder,
        pb.UpdatePurchaseOrderRequest(
            purchase_order=purchase_order_pb2.PurchaseOrder(name=po.name, notes="late change"),
            update_mask=field_mask_pb2.FieldMask(paths=["notes"]),
        ),
    )
    assert f.reason == "INVALID_STATE_TRANSITION"
    stale = failure(
        buyer.procurement.CancelPurchaseOrder,
        pb.CancelPurchaseOrderRequest(name=po.name, reason="no longer needed", etag='W/"1"'),
    )
    assert stale.code is grpc.StatusCode.ABORTED
    po = buyer.procurement.CancelPurchaseOrder(
        pb.CancelPurchaseOrderRequest(name=po.name, reason="budget cut")
    )
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_CANCELLED
    # The cancel returned the requisition to APPROVED: it is ordered again, not resubmitted.
    f = failure(buyer.procurement.SubmitRequisition, pb.SubmitRequisitionRequest(name=r.name))
    assert f.reason == "INVALID_STATE_TRANSITION" and f.metadata["current_state"] == "APPROVED"


def _requisition(caller: Caller, name: str) -> requisition_pb2.Requisition:
    got: requisition_pb2.Requisition = caller.procurement.GetRequisition(pb.GetRequisitionRequest(name=name))
    return got


def test_a_cancelled_order_frees_its_requisition_and_a_closed_one_does_not(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
    framework = contract(officer, supplier(officer).name, [WY])
    r = approved(buyer, approver, WY)
    # Cancelled as a DRAFT, then as ISSUED with nothing received: each time the
    # requisition is APPROVED again, its approval kept, and is ordered again.
    drafted = order(buyer, WY, r.name, framework.name)
    buyer.procurement.CancelPurchaseOrder(pb.CancelPurchaseOrderRequest(name=drafted.name, reason="typo"))
    got = _requisition(buyer, r.name)
    assert got.state == requisition_pb2.REQUISITION_STATE_APPROVED and got.purchase_order == ""
    assert got.decision == r.decision
    issued = order(buyer, WY, r.name, framework.name)
    issued = buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=issued.name))
    assert _requisition(buyer, r.name).purchase_order == issued.name
    buyer.procurement.CancelPurchaseOrder(pb.CancelPurchaseOrderRequest(name=issued.name, reason="wrong lot"))
    assert _requisition(buyer, r.name).state == requisition_pb2.REQUISITION_STATE_APPROVED
    third = order(buyer, WY, r.name, framework.name)
    got = _requisition(buyer, r.name)
    assert got.state == requisition_pb2.REQUISITION_STATE_ORDERED and got.purchase_order == third.name
    states = [
        (json.loads(before)["state"] if before else None, json.loads(after)["state"])
        for before, after in zip(
            audit_column(suite.settings, "procurement", r.name, "before"),
            audit_after(suite.settings, "procurement", r.name),
            strict=True,
        )
    ]
    assert states[3:] == [
        ("APPROVED", "ORDERED"),
        ("ORDERED", "APPROVED"),
        ("APPROVED", "ORDERED"),
        ("ORDERED", "APPROVED"),
        ("APPROVED", "ORDERED"),
    ]

    # Closing ends an order that was delivered: its requisition stays ORDERED.
    delivered = approved(buyer, approver, WY, line(quantity="2"))
    po = order(buyer, WY, delivered.name, framework.name)
    po = buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=po.name))
    receive(buyer, po.name, (1, "2"))
    po = buyer.procurement.ClosePurchaseOrder(pb.ClosePurchaseOrderRequest(name=po.name))
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_CLOSED
    got = _requisition(buyer, delivered.name)
    assert got.state == requisition_pb2.REQUISITION_STATE_ORDERED and got.purchase_order == po.name
    again = failure(order, buyer, WY, delivered.name, framework.name)
    assert again.reason == "REQUISITION_NOT_APPROVED"


def test_the_downgrade_below_0005_names_requisitions_ordered_again(settings: Settings) -> None:
    url, role = settings.database_url_for("procurement"), settings.app_role_for("procurement")
    with running_suite(settings, migrated=True) as suite:
        officer = suite.caller(UNIT, "procurement.commercial")
        buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
        approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
        framework = contract(officer, supplier(officer).name, [WY])
        r = approved(buyer, approver, WY)
        po = order(buyer, WY, r.name, framework.name)
        buyer.procurement.CancelPurchaseOrder(pb.CancelPurchaseOrderRequest(name=po.name, reason="typo"))
    # One order per requisition still holds: the schema goes back and forth.
    downgrade(settings, "procurement", "0004")
    upgrade("procurement", url, app_role=role if settings.database_url else None)
    with running_suite(settings, migrated=True) as suite:
        buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
        order(buyer, WY, r.name, framework.name)
    with pytest.raises(RuntimeError) as refused:
        downgrade(settings, "procurement", "0004")
    assert f"{r.name} (2 orders)" in str(refused.value)
    version = "SELECT version_num FROM alembic_version"
    assert execute_as_owner(settings, "procurement", version) == [("0005",)]


def test_separation_of_duties_and_scheme_of_delegation(suite: Suite) -> None:
    requester = suite.caller(WY, "procurement.requester", "procurement.budget_holder", subject="ann")
    holder = suite.caller(WY, "procurement.budget_holder", subject="bob")
    senior = suite.caller(WY, "procurement.senior_budget_holder", subject="cat")
    small = requisition(requester, WY)
    small = requester.procurement.SubmitRequisition(pb.SubmitRequisitionRequest(name=small.name))
    f = failure(requester.procurement.ApproveRequisition, pb.ApproveRequisitionRequest(name=small.name))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "SELF_APPROVAL"
    big = requisition(requester, WY, line(quantity="100", price="450.00"))  # £54,000 gross
    big = requester.procurement.SubmitRequisition(pb.SubmitRequisitionRequest(name=big.name))
    f = failure(holder.procurement.ApproveRequisition, pb.ApproveRequisitionRequest(name=big.name))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "APPROVAL_LIMIT"
    assert "procurement.senior_budget_holder" in f.metadata["approver_roles"]
    assert (
        senior.procurement.ApproveRequisition(
            pb.ApproveRequisitionRequest(name=big.name)
        ).decision.approver_role
        == "procurement.senior_budget_holder"
    )
    f = failure(holder.procurement.RejectRequisition, pb.RejectRequisitionRequest(name=small.name))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "reason" in f.violations
    rejected = holder.procurement.RejectRequisition(
        pb.RejectRequisitionRequest(name=small.name, reason="use stock")
    )
    assert (
        rejected.state == requisition_pb2.REQUISITION_STATE_REJECTED
        and rejected.decision.reason == "use stock"
    )
    # The organisation changes its scheme: budget holders now approve up to £100,000.
    cfo = suite.caller(WY, "procurement.chief_finance_officer", subject="cfo")
    policy = cfo.procurement.GetProcurementPolicy(
        pb.GetProcurementPolicyRequest(name=f"organisations/{WY}/procurementPolicy")
    )
    assert [b.up_to.units for b in policy.approval_bands] == [25000, 250000, 0]
    new = policy_pb2.ProcurementPolicy(
        name=policy.name,
        approval_bands=[
            policy_pb2.ApprovalBand(up_to=gbp("100000"), approver_roles=["procurement.budget_holder"]),
            policy_pb2.ApprovalBand(approver_roles=["procurement.chief_finance_officer"]),
        ],
        receipt_tolerance_percent=10,
    )
    cfo.procurement.UpdateProcurementPolicy(
        pb.UpdateProcurementPolicyRequest(
            procurement_policy=new, update_mask=field_mask_pb2.FieldMask(paths=["*"])
        )
    )
    another = requisition(requester, WY, line(quantity="100", price="450.00"))
    another = requester.procurement.SubmitRequisition(pb.SubmitRequisitionRequest(name=another.name))
    assert (
        holder.procurement.ApproveRequisition(pb.ApproveRequisitionRequest(name=another.name)).state
        == requisition_pb2.REQUISITION_STATE_APPROVED
    )
    bad = policy_pb2.ProcurementPolicy(
        name=policy.name,
        approval_bands=[
            policy_pb2.ApprovalBand(up_to=gbp("100"), approver_roles=["procurement.tea_maker"]),
        ],
        receipt_tolerance_percent=101,
    )
    f = failure(
        cfo.procurement.UpdateProcurementPolicy,
        pb.UpdateProcurementPolicyRequest(
            procurement_policy=bad, update_mask=field_mask_pb2.FieldMask(paths=["*"])
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert {
        "procurement_policy.approval_bands[0].up_to",
        "procurement_policy.approval_bands[0].approver_roles[0]",
        "procurement_policy.receipt_tolerance_percent",
    } <= set(f.violations)


def test_an_order_on_a_contract_no_longer_shared_is_not_issued(suite: Suite) -> None:
    """Taken off a contract's participants, the organisation no longer sees the contract,
    but still sees its draft order naming it: issuing says NOT_A_PARTICIPANT, not that
    the contract does not exist (review finding)."""
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
    framework = contract(officer, supplier(officer).name, [WY, SOUTH_YORKSHIRE])
    drafted = order(buyer, WY, approved(buyer, approver, WY).name, framework.name)
    officer.procurement.UpdateContract(
        pb.UpdateContractRequest(
            contract=contract_pb2.Contract(
                name=framework.name, participants=[f"organisations/{SOUTH_YORKSHIRE}"]
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["participants"]),
        )
    )
    f = failure(buyer.procurement.IssuePurchaseOrder, pb.IssuePurchaseOrderRequest(name=drafted.name))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "NOT_A_PARTICIPANT", f
    assert f.metadata["contract"] == framework.name
    got = buyer.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=drafted.name))
    assert got.state == purchase_order_pb2.PURCHASE_ORDER_STATE_DRAFT


def test_the_receipt_tolerance_is_the_same_however_deliveries_are_split(suite: Suite) -> None:
    """With 10 % tolerance on 10 ordered, 11 may be received whether it comes as 9 then 2
    or as 10 then 1: a RECEIVED order takes receipts within the tolerance until it is
    closed (review finding: 10 then 1 was refused as INVALID_STATE_TRANSITION)."""
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
    cfo = suite.caller(WY, "procurement.chief_finance_officer", subject="cfo")
    policy = cfo.procurement.GetProcurementPolicy(
        pb.GetProcurementPolicyRequest(name=f"organisations/{WY}/procurementPolicy")
    )
    cfo.procurement.UpdateProcurementPolicy(
        pb.UpdateProcurementPolicyRequest(
            procurement_policy=policy_pb2.ProcurementPolicy(name=policy.name, receipt_tolerance_percent=10),
            update_mask=field_mask_pb2.FieldMask(paths=["receipt_tolerance_percent"]),
        )
    )
    framework = contract(officer, supplier(officer).name, [WY])

    def issued() -> str:
        po = order(buyer, WY, approved(buyer, approver, WY, line(quantity="10")).name, framework.name)
        return buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=po.name)).name

    def received(name: str) -> tuple[str, int]:
        po = buyer.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=name))
        return po.lines[0].received_quantity.value, po.state

    split, whole = issued(), issued()
    receive(buyer, split, (1, "9"))
    receive(buyer, split, (1, "2"))
    receive(buyer, whole, (1, "10"))
    assert received(whole) == ("10", purchase_order_pb2.PURCHASE_ORDER_STATE_RECEIVED)
    receive(buyer, whole, (1, "1"))
    rec = purchase_order_pb2.PURCHASE_ORDER_STATE_RECEIVED
    assert received(split) == received(whole) == ("11", rec)
    f = failure(receive, buyer, whole, (1, "0.5"))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "RECEIPT_EXCEEDS_ORDER", f
    assert f.metadata["receivable"] == "0"
    closed = buyer.procurement.ClosePurchaseOrder(pb.ClosePurchaseOrderRequest(name=whole))
    f = failure(receive, buyer, closed.name, (1, "0.5"))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "INVALID_STATE_TRANSITION", f


def test_one_refusal_names_every_bad_field(suite: Suite) -> None:
    """A bad reason does not hide a missing date, a bad quantity the empty title, nor a bad
    requisition name the budget, address and contract (review finding)."""
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    acme = supplier(officer)
    f = failure(officer.procurement.DebarSupplier, pb.DebarSupplierRequest(name=acme.name, reason=" "))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and set(f.violations) == {"reason", "debarment_date"}, f
    bad_line = line()
    bad_line.quantity.value = "abc"
    f = failure(
        buyer.procurement.CreateRequisition,
        pb.CreateRequisitionRequest(
            parent=f"organisations/{WY}",
            requisition=requisition_pb2.Requisition(title="", lines=[bad_line]),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f
    assert set(f.violations) == {"requisition.title", "requisition.lines[0].quantity"}, f
    f = failure(
        buyer.procurement.CreatePurchaseOrder,
        pb.CreatePurchaseOrderRequest(
            parent=f"organisations/{WY}",
            purchase_order=purchase_order_pb2.PurchaseOrder(
                requisition="nonsense", contract="", budget="budget-1", delivery_address="x" * 501
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f
    assert set(f.violations) == {
        "purchase_order.requisition",
        "purchase_order.contract",
        "purchase_order.budget",
        "purchase_order.delivery_address",
    }, f


def test_debarment_blocks_new_contracts_and_orders(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
    acme = supplier(officer)
    framework = contract(officer, acme.name, [WY])
    drafted = order(buyer, WY, approved(buyer, approver, WY).name, framework.name)
    acme = officer.procurement.DebarSupplier(
        pb.DebarSupplierRequest(
            name=acme.name,
            reason="Debarment list entry: professional misconduct",
            debarment_date=date_to_proto(today()),
            etag=acme.etag,
        )
    )
    assert acme.debarment.reason.startswith("Debarment list")
    assert buyer.procurement.GetContract(pb.GetContractRequest(name=framework.name)).supplier_debarred
    f = failure(order, buyer, WY, approved(buyer, approver, WY).name, framework.name)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "SUPPLIER_DEBARRED"
    f = failure(buyer.procurement.IssuePurchaseOrder, pb.IssuePurchaseOrderRequest(name=drafted.name))
    assert f.reason == "SUPPLIER_DEBARRED"
    f = failure(contract, officer, acme.name, [WY], reference="YHSS-2026-099")
    assert f.reason == "SUPPLIER_DEBARRED"
    f = failure(
        officer.procurement.DebarSupplier,
        pb.DebarSupplierRequest(name=acme.name, reason="again", debarment_date=date_to_proto(today())),
    )
    assert f.reason == "SUPPLIER_ALREADY_DEBARRED"
    officer.procurement.LiftDebarment(pb.LiftDebarmentRequest(name=acme.name, reason="appeal upheld"))
    assert (
        buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=drafted.name)).state
        == purchase_order_pb2.PURCHASE_ORDER_STATE_ISSUED
    )


def test_bank_details_are_for_finance_only(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    finance = suite.caller(UNIT, "finance.payables")
    created = supplier(
        officer,
        bank_details=supplier_pb2.BankDetails(
            account_name="Acme Ltd", sort_code="12-34-56", account_number="12345678"
        ),
    )
    assert not created.HasField("bank_details") and created.bank_details_on_file
    seen = finance.procurement.GetSupplier(pb.GetSupplierRequest(name=created.name))
    assert seen.bank_details.sort_code == "123456" and seen.bank_details.account_number == "12345678"
    assert not officer.procurement.GetSupplier(pb.GetSupplierRequest(name=created.name)).HasField(
        "bank_details"
    )
    f = failure(
        supplier,
        officer,
        "Bad Bank Ltd",
        bank_details=supplier_pb2.BankDetails(account_name="", sort_code="12", account_number="x"),
    )
    assert {
        "supplier.bank_details.account_name",
        "supplier.bank_details.sort_code",
        "supplier.bank_details.account_number",
    } <= set(f.violations)


def test_a_change_of_bank_details_is_named_and_audited_without_the_account(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    finance = suite.caller(UNIT, "finance.payables")
    created = supplier(
        officer,
        bank_details=supplier_pb2.BankDetails(
            account_name="Acme Ltd", sort_code="123456", account_number="12345678"
        ),
    )
    # The officer reads the supplier without its bank details and sends it back whole:
    # `*` leaves the account alone.
    seen = officer.procurement.GetSupplier(pb.GetSupplierRequest(name=created.name))
    seen.display_name = "Acme Holdings Ltd"
    updated = officer.procurement.UpdateSupplier(
        pb.UpdateSupplierRequest(supplier=seen, update_mask=field_mask_pb2.FieldMask(paths=["*"]))
    )
    assert updated.display_name == "Acme Holdings Ltd" and updated.bank_details_on_file
    got = finance.procurement.GetSupplier(pb.GetSupplierRequest(name=created.name))
    assert got.bank_details.account_number == "12345678"
    # Named, the account changes, and the audit log shows that it did.
    officer.procurement.UpdateSupplier(
        pb.UpdateSupplierRequest(
            supplier=supplier_pb2.Supplier(
                name=created.name,
                bank_details=supplier_pb2.BankDetails(
                    account_name="Acme Ltd", sort_code="999999", account_number="87654321"
                ),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["bank_details"]),
        )
    )
    banks = [json.loads(a)["bank_details"] for a in audit_after(suite.settings, "procurement", created.name)]
    assert (
        banks[0]
        == banks[1]
        == {"account_name": "Acme Ltd", "sort_code": "123456", "account_number": "****5678"}
    )
    assert banks[2] == {"account_name": "Acme Ltd", "sort_code": "999999", "account_number": "****4321"}
    assert "12345678" not in str(banks) and "87654321" not in str(banks)


def test_only_the_requester_changes_or_submits_a_draft(suite: Suite) -> None:
    alice = suite.caller(WY, "procurement.requester", subject="alice")
    bob = suite.caller(WY, "procurement.requester", "procurement.budget_holder", subject="bob")
    r = requisition(alice, WY)
    # Bob could otherwise rewrite Alice's draft, submit it and approve his own request,
    # the decision reading as approving hers.
    f = failure(
        bob.procurement.UpdateRequisition,
        pb.UpdateRequisitionRequest(
            requisition=requisition_pb2.Requisition(name=r.name, title="Bob's kit"),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        ),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NOT_REQUESTER"
    f = failure(bob.procurement.SubmitRequisition, pb.SubmitRequisitionRequest(name=r.name))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NOT_REQUESTER"
    r = alice.procurement.SubmitRequisition(pb.SubmitRequisitionRequest(name=r.name, etag=r.etag))
    # Nor does he withdraw hers, draft or submitted (review finding); he may reject it.
    f = failure(bob.procurement.CancelRequisition, pb.CancelRequisitionRequest(name=r.name))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NOT_REQUESTER"
    approved_ = bob.procurement.ApproveRequisition(pb.ApproveRequisitionRequest(name=r.name, etag=r.etag))
    assert (
        approved_.title == "Vests for response"
        and approved_.state == requisition_pb2.REQUISITION_STATE_APPROVED
    )
    withdrawn = alice.procurement.CancelRequisition(
        pb.CancelRequisitionRequest(name=requisition(alice, WY).name)
    )
    assert withdrawn.state == requisition_pb2.REQUISITION_STATE_CANCELLED


def test_order_text_receipt_quantities_and_overrides_are_checked(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    approver = suite.caller(WY, "procurement.chief_finance_officer", subject="cfo")
    overrider = suite.caller(WY, "procurement.buyer", "procurement.chief_finance_officer", subject="cfo")
    framework = contract(officer, supplier(officer).name, [WY])
    po = order(buyer, WY, approved(buyer, approver, WY).name, framework.name)
    f = failure(
        buyer.procurement.UpdatePurchaseOrder,
        pb.UpdatePurchaseOrderRequest(
            purchase_order=purchase_order_pb2.PurchaseOrder(
                name=po.name, delivery_address="x" * 501, notes="y" * 2001
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["*"]),
        ),
    )
    assert set(f.violations) == {"purchase_order.delivery_address", "purchase_order.notes"}
    # An order with no budget has nothing to override: said, not dropped unrecorded.
    f = failure(
        overrider.procurement.IssuePurchaseOrder,
        pb.IssuePurchaseOrderRequest(name=po.name, budget_override_reason="urgent"),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and set(f.violations) == {"budget_override_reason"}
    po = buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=po.name))
    f = failure(
        overrider.procurement.IssuePurchaseOrder,
        pb.IssuePurchaseOrderRequest(name=po.name, budget_override_reason="urgent"),
    )
    assert f.reason == "INVALID_STATE_TRANSITION"
    # A speck received would make the order PARTIALLY_RECEIVED, and no longer cancellable.
    f = failure(receive, buyer, po.name, (1, "0.0000001"))
    assert set(f.violations) == {"goods_receipt.lines[0].quantity"}
    f = failure(receive, buyer, po.name, (1, "1e30"))  # more digits than arithmetic holds
    assert set(f.violations) == {"goods_receipt.lines[0].quantity"}
    f = failure(
        buyer.procurement.CreateGoodsReceipt,
        pb.CreateGoodsReceiptRequest(
            parent=po.name,
            goods_receipt=purchase_order_pb2.GoodsReceipt(
                receipt_date=date_to_proto(today()),
                lines=[purchase_order_pb2.ReceiptLine(line_number=1, quantity=decimal("1"))],
                note="z" * 2001,
            ),
        ),
    )
    assert set(f.violations) == {"goods_receipt.note"}
    got = buyer.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=po.name))
    assert got.state == purchase_order_pb2.PURCHASE_ORDER_STATE_ISSUED


def test_isolation_across_three_forces_and_a_partner(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    framework = contract(officer, supplier(officer).name, [WY, SOUTH_YORKSHIRE])
    made = {}
    for org in (WY, SOUTH_YORKSHIRE, CUMBRIA):
        buyer = suite.caller(org, "procurement.buyer", subject="buyer")
        approver = suite.caller(org, "procurement.budget_holder", subject="approver")
        r = approved(buyer, approver, org)
        made[org] = (buyer, r)
    # Cumbria does not participate: it neither sees the framework nor orders from it.
    cumbria, cumbria_req = made[CUMBRIA]
    f = failure(cumbria.procurement.GetContract, pb.GetContractRequest(name=framework.name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert (
        failure(order, cumbria, CUMBRIA, cumbria_req.name, framework.name).code is grpc.StatusCode.NOT_FOUND
    )
    assert not cumbria.procurement.ListContracts(pb.ListContractsRequest(parent="organisations/-")).contracts
    orders = {
        org: order(made[org][0], org, made[org][1].name, framework.name) for org in (WY, SOUTH_YORKSHIRE)
    }
    south = made[SOUTH_YORKSHIRE][0]
    f = failure(south.procurement.GetPurchaseOrder, pb.GetPurchaseOrderRequest(name=orders[WY].name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    f = failure(south.procurement.GetRequisition, pb.GetRequisitionRequest(name=made[WY][1].name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert [
        o.name
        for o in south.procurement.ListPurchaseOrders(
            pb.ListPurchaseOrdersRequest(parent="organisations/-")
        ).purchase_orders
    ] == [orders[SOUTH_YORKSHIRE].name]
    assert not south.procurement.ListRequisitions(
        pb.ListRequisitionsRequest(parent=f"organisations/{WY}")
    ).requisitions
    # A partner council reads West Yorkshire's orders under a data-sharing agreement, and only reads.
    council = suite.caller(LEEDS, "procurement.buyer", subject="council")
    assert (
        failure(council.procurement.GetPurchaseOrder, pb.GetPurchaseOrderRequest(name=orders[WY].name)).code
        is grpc.StatusCode.NOT_FOUND
    )
    suite.caller(WY, "directory.admin").directory.CreateAgreement(
        dpb.CreateAgreementRequest(
            agreement=agreement_pb2.Agreement(
                display_name="Orders shared with Leeds",
                kind=agreement_pb2.AGREEMENT_KIND_DATA_SHARING,
                organisation=f"organisations/{WY}",
                counterparty=f"organisations/{LEEDS}",
                functions=["procurement.ordering"],
                start_date=date_to_proto(today() - dt.timedelta(days=1)),
            )
        )
    )
    assert (
        council.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=orders[WY].name)).name
        == orders[WY].name
    )
    f = failure(council.procurement.IssuePurchaseOrder, pb.IssuePurchaseOrderRequest(name=orders[WY].name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    f = failure(
        council.procurement.CreateRequisition,
        pb.CreateRequisitionRequest(
            parent=f"organisations/{WY}", requisition=requisition_pb2.Requisition(title="x", lines=[line()])
        ),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"


def test_bad_input_on_every_create(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer")
    f = failure(
        officer.procurement.CreateContract,
        pb.CreateContractRequest(
            parent=f"organisations/{UNIT}",
            contract=contract_pb2.Contract(
                supplier=f"organisations/{WY}/suppliers/s-x",
                cpv_codes=["1234"],
                value=gbp("-5"),
                start_date=date_to_proto(today()),
                end_date=date_to_proto(today() - dt.timedelta(days=1)),
                participants=["organisations/NOPE"],
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert {"contract.supplier", "contract.participants[0]"} <= set(f.violations)
    f = failure(
        officer.procurement.CreateContract,
        pb.CreateContractRequest(
            parent=f"organisations/{UNIT}",
            contract=contract_pb2.Contract(
                supplier=f"organisations/{UNIT}/suppliers/s-x",
                cpv_codes=["1234"],
                value=gbp("-5"),
                start_date=date_to_proto(today()),
                end_date=date_to_proto(today() - dt.timedelta(days=1)),
            ),
        ),
    )
    assert {
        "contract.reference",
        "contract.title",
        "contract.kind",
        "contract.cpv_codes[0]",
        "contract.value",
        "contract.end_date",
        "contract.procurement_method",
    } <= set(f.violations)
    sub_penny = failure(
        officer.procurement.CreateContract,
        pb.CreateContractRequest(
            parent=f"organisations/{UNIT}",
            contract=contract_pb2.Contract(value=gbp("5000.005"), irrecoverable_vat=gbp("-1")),
        ),
    )
    assert {"contract.value", "contract.irrecoverable_vat"} <= set(sub_penny.violations)
    too_much = failure(
        officer.procurement.CreateContract,
        pb.CreateContractRequest(
            parent=f"organisations/{UNIT}",
            contract=contract_pb2.Contract(irrecoverable_vat=gbp("100000000000000.01")),
        ),
    )
    assert "contract.irrecoverable_vat" in too_much.violations
    bad_line = requisition_pb2.RequisitionLine(
        description="",
        cpv_code="x",
        quantity=decimal("0"),
        unit_price=gbp("-1"),
        vat_rate_percent=decimal("17.5"),
    )
    f = failure(
        buyer.procurement.CreateRequisition,
        pb.CreateRequisitionRequest(
            parent=f"organisations/{WY}", requisition=requisition_pb2.Requisition(lines=[bad_line])
        ),
    )
    assert {
        "requisition.title",
        "requisition.lines[0].description",
        "requisition.lines[0].cpv_code",
        "requisition.lines[0].quantity",
        "requisition.lines[0].unit_price",
        "requisition.lines[0].vat_rate_percent",
        "requisition.lines[0].cost_centre",
    } <= set(f.violations)
    f = failure(
        buyer.procurement.CreateRequisition,
        pb.CreateRequisitionRequest(
            parent=f"organisations/{WY}",
            requisition=requisition_pb2.Requisition(
                title="x", lines=[requisition_pb2.RequisitionLine(quantity=decimal("lots"))]
            ),
        ),
    )
    assert "requisition.lines[0].quantity" in f.violations
    f = failure(
        buyer.procurement.CreatePurchaseOrder,
        pb.CreatePurchaseOrderRequest(
            parent=f"organisations/{WY}",
            purchase_order=purchase_order_pb2.PurchaseOrder(requisition="x", contract="y"),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    f = failure(
        buyer.procurement.CreateGoodsReceipt,
        pb.CreateGoodsReceiptRequest(
            parent=f"organisations/{WY}/purchaseOrders/po-missing",
            goods_receipt=purchase_order_pb2.GoodsReceipt(),
        ),
    )
    assert f.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    f = failure(
        officer.procurement.CreateDemandAggregation,
        pb.CreateDemandAggregationRequest(
            parent=f"organisations/{UNIT}",
            demand_aggregation=demand_aggregation_pb2.DemandAggregation(
                cpv_code="bad", invited=[f"organisations/{UNIT}"]
            ),
        ),
    )
    assert {
        "demand_aggregation.title",
        "demand_aggregation.cpv_code",
        "demand_aggregation.invited[0]",
    } <= set(f.violations)
    # Nothing half-written.
    assert not buyer.procurement.ListRequisitions(
        pb.ListRequisitionsRequest(parent=f"organisations/{WY}")
    ).requisitions
    assert not officer.procurement.ListContracts(
        pb.ListContractsRequest(parent=f"organisations/{UNIT}")
    ).contracts


def test_contracts_filter_by_the_supplier_name_they_show(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    acme, other = supplier(officer), supplier(officer, "Other Ltd")
    mine = contract(officer, acme.name, [WY])
    theirs = contract(officer, other.name, [WY], reference="YHSS-2026-002")

    def names(expression: str) -> list[str]:
        found = officer.procurement.ListContracts(
            pb.ListContractsRequest(parent="organisations/-", filter=expression)
        ).contracts
        return [c.name for c in found]

    assert mine.supplier == acme.name
    assert names(f'supplier = "{acme.name}"') == [mine.name]
    assert names(f'supplier != "{acme.name}"') == [theirs.name]
    assert names(f'supplier = "organisations/{WY}/suppliers/{acme.name.rsplit("/", 1)[1]}"') == []


def test_collaborative_procurement(suite: Suite) -> None:
    lead = suite.caller(UNIT, "procurement.commercial")
    acme = supplier(lead)
    aggregation = lead.procurement.CreateDemandAggregation(
        pb.CreateDemandAggregationRequest(
            parent=f"organisations/{UNIT}",
            demand_aggregation=demand_aggregation_pb2.DemandAggregation(
                title="Patrol vehicles 2027",
                cpv_code="34144210-3",
                invited=[f"organisations/{WY}", f"organisations/{SOUTH_YORKSHIRE}"],
            ),
        )
    )
    west = suite.caller(WY, "procurement.buyer", subject="west")
    south = suite.caller(SOUTH_YORKSHIRE, "procurement.buyer", subject="south")
    outsider = suite.caller(CUMBRIA, "procurement.buyer")

    def add(caller: Caller, description: str, quantity: str, price: str) -> demand_aggregation_pb2.DemandLine:
        result: demand_aggregation_pb2.DemandLine = caller.procurement.CreateDemandLine(
            pb.CreateDemandLineRequest(
                parent=aggregation.name,
                demand_line=demand_aggregation_pb2.DemandLine(
                    description=description, quantity=decimal(quantity), estimated_unit_price=gbp(price)
                ),
            )
        )
        return result

    add(west, "Estate cars", "12", "31000")
    add(west, "Vans", "3", "42000.50")
    add(south, "Estate cars", "8", "31000")
    assert failure(add, outsider, "Cars", "1", "1").code is grpc.StatusCode.NOT_FOUND
    mine = west.procurement.ListDemandLines(pb.ListDemandLinesRequest(parent=aggregation.name)).demand_lines
    assert {x.organisation for x in mine} == {f"organisations/{WY}"} and len(mine) == 2
    totals = west.procurement.GetDemandAggregation(pb.GetDemandAggregationRequest(name=aggregation.name))
    assert totals.line_count == 3 and totals.total_quantity.value == "23"
    # Each line's change of the totals is in the trail, as well as the line (review finding).
    trail = [json.loads(a) for a in audit_after(suite.settings, "procurement", aggregation.name)]
    assert [t["line_count"] for t in trail] == [0, 1, 2, 3], trail
    assert (totals.total_value.units, totals.total_value.nanos) == (
        12 * 31000 + 126001 + 8 * 31000,
        500_000_000,
    )
    assert (
        len(lead.procurement.ListDemandLines(pb.ListDemandLinesRequest(parent=aggregation.name)).demand_lines)
        == 3
    )
    assert (
        failure(
            outsider.procurement.GetDemandAggregation, pb.GetDemandAggregationRequest(name=aggregation.name)
        ).code
        is grpc.StatusCode.NOT_FOUND
    )
    closed = lead.procurement.CloseDemandAggregation(
        pb.CloseDemandAggregationRequest(
            name=aggregation.name,
            contract=contract_pb2.Contract(
                reference="YHSS-VEH-2027",
                title="Patrol vehicles",
                supplier=acme.name,
                kind=contract_pb2.CONTRACT_KIND_CONTRACT,
                value=gbp("746001.50"),
                start_date=date_to_proto(today()),
                end_date=date_to_proto(today() + dt.timedelta(days=730)),
                procurement_method=contract_pb2.PROCUREMENT_METHOD_OPEN,
            ),
        )
    )
    assert closed.state == demand_aggregation_pb2.DEMAND_AGGREGATION_STATE_CLOSED
    joint = south.procurement.GetContract(pb.GetContractRequest(name=closed.contract))
    assert sorted(joint.participants) == sorted([f"organisations/{WY}", f"organisations/{SOUTH_YORKSHIRE}"])
    shares = {a.organisation: (a.quantity.value, a.value.units) for a in joint.allocations}
    assert shares == {
        f"organisations/{WY}": ("15", 498001),
        f"organisations/{SOUTH_YORKSHIRE}": ("8", 248000),
    }
    f = failure(add, west, "More", "1", "1")
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "AGGREGATION_CLOSED"


def test_contracts_register_and_ocds_export(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    acme = supplier(officer, "=cmd Ltd", companies_house_number="01234567", sme=True)
    big = contract(officer, acme.name, [WY], reference="YHSS-1", value="5000.01")
    contract(officer, acme.name, [WY], reference="YHSS-2", value="5000.00")
    register = officer.procurement.ExportContractsRegister(
        pb.ExportContractsRegisterRequest(parent=f"organisations/{UNIT}")
    )
    rows = list(csv.reader(io.StringIO(register.csv)))
    assert register.row_count == 1 and len(rows) == 2
    assert "YHSS-1" in rows[1] and not any(cell.startswith("=") for cell in rows[1])
    package = officer.procurement.ExportOcdsReleasePackage(pb.ExportOcdsReleasePackageRequest(name=big.name))
    data = json.loads(package.release_package_json)
    assert {r["ocid"] for r in data["releases"]} == {big.ocid} == {package.ocid}
    # Every buyer is published by its name, the participating force as much as the lead.
    parties = {p["id"]: p["name"] for r in data["releases"] for p in r["parties"] if "buyer" in p["roles"]}
    assert parties == {
        f"XI-BACKOFFICE-{UNIT}": "Yorkshire and the Humber Police Shared Services",
        f"XI-BACKOFFICE-{WY}": "West Yorkshire",
    }
    # A participant may read the contract but publication is the letting organisation's.
    buyer = suite.caller(WY, "procurement.buyer")
    f = failure(buyer.procurement.ExportOcdsReleasePackage, pb.ExportOcdsReleasePackageRequest(name=big.name))
    assert f.code is grpc.StatusCode.NOT_FOUND


def test_lists_filter_by_state_and_dates(suite: Suite) -> None:
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    drafts = [requisition(buyer, WY, title=f"Req {i}") for i in range(3)]
    buyer.procurement.SubmitRequisition(pb.SubmitRequisitionRequest(name=drafts[0].name))
    parent = f"organisations/{WY}"

    def names(filter_text: str) -> list[str]:
        return [
            r.name
            for r in buyer.procurement.ListRequisitions(
                pb.ListRequisitionsRequest(parent=parent, filter=filter_text)
            ).requisitions
        ]

    assert names("state = SUBMITTED") == [drafts[0].name]
    assert names("state = REQUISITION_STATE_DRAFT") == [d.name for d in drafts[1:]]
    day = dt.datetime.now(dt.UTC).date()
    assert names(f"create_date = {day.isoformat()}") == [d.name for d in drafts]
    assert names(f"create_date < {day.isoformat()}") == []
    assert names(f"create_date >= {day.isoformat()} AND state != SUBMITTED") == [d.name for d in drafts[1:]]
    # The last day there is has no day after it: still a filter, not INTERNAL.
    assert names("create_date = 9999-12-31") == [] and names("create_date > 9999-12-31") == []
    assert names("create_date <= 9999-12-31") == [d.name for d in drafts]
    f = failure(
        buyer.procurement.ListRequisitions, pb.ListRequisitionsRequest(parent=parent, filter="state > 3")
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    # A state the list does not have is a mistake to report, not an empty page.
    f = failure(
        buyer.procurement.ListRequisitions, pb.ListRequisitionsRequest(parent=parent, filter="state = BOGUS")
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "SUBMITTED" in f.violations["filter"]
    f = failure(
        buyer.procurement.ListPurchaseOrders,
        pb.ListPurchaseOrdersRequest(parent=parent, filter="state = REQUISITION_STATE_DRAFT"),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT


def test_demand_line_bad_input(suite: Suite) -> None:
    lead = suite.caller(UNIT, "procurement.commercial")
    aggregation = lead.procurement.CreateDemandAggregation(
        pb.CreateDemandAggregationRequest(
            parent=f"organisations/{UNIT}",
            demand_aggregation=demand_aggregation_pb2.DemandAggregation(
                title="Radios", cpv_code="32344210-1", invited=[f"organisations/{WY}"]
            ),
        )
    )
    west = suite.caller(WY, "procurement.buyer")
    f = failure(
        west.procurement.CreateDemandLine,
        pb.CreateDemandLineRequest(
            parent=aggregation.name,
            demand_line=demand_aggregation_pb2.DemandLine(
                quantity=decimal("-1"), estimated_unit_price=gbp("10")
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert {"demand_line.description", "demand_line.quantity"} <= set(f.violations)
    f = failure(
        west.procurement.CreateDemandLine,
        pb.CreateDemandLineRequest(
            parent=aggregation.name, demand_line=demand_aggregation_pb2.DemandLine(description="Radios")
        ),
    )
    assert {"demand_line.quantity", "demand_line.estimated_unit_price"} <= set(f.violations)
    # Finer than the stored millionths: refused, not rounded (nor an INTERNAL error).
    f = failure(
        west.procurement.CreateDemandLine,
        pb.CreateDemandLineRequest(
            parent=aggregation.name,
            demand_line=demand_aggregation_pb2.DemandLine(
                description="Radios", quantity=decimal("1.0000001"), estimated_unit_price=gbp("0.0000001")
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {"demand_line.quantity", "demand_line.estimated_unit_price"}
    # Each within bounds, but their product beyond what the totals hold.
    f = failure(
        west.procurement.CreateDemandLine,
        pb.CreateDemandLineRequest(
            parent=aggregation.name,
            demand_line=demand_aggregation_pb2.DemandLine(
                description="Radios", quantity=decimal("1000000000"), estimated_unit_price=gbp("1000000000")
            ),
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {"demand_line.estimated_unit_price"}


def _aggregation(lead: Caller) -> demand_aggregation_pb2.DemandAggregation:
    """A UNIT-led aggregation with West Yorkshire invited."""
    created: demand_aggregation_pb2.DemandAggregation = lead.procurement.CreateDemandAggregation(
        pb.CreateDemandAggregationRequest(
            parent=f"organisations/{UNIT}",
            demand_aggregation=demand_aggregation_pb2.DemandAggregation(
                title="Air support", cpv_code="34711200-6", invited=[f"organisations/{WY}"]
            ),
        )
    )
    return created


def test_demand_line_figures_beyond_their_columns_are_refused_by_field(suite: Suite) -> None:
    lead = suite.caller(UNIT, "procurement.commercial")
    west = suite.caller(WY, "procurement.buyer", subject="west")
    aggregation = _aggregation(lead)

    def add(quantity: str, price: str) -> demand_aggregation_pb2.DemandLine:
        result: demand_aggregation_pb2.DemandLine = west.procurement.CreateDemandLine(
            pb.CreateDemandLineRequest(
                parent=aggregation.name,
                demand_line=demand_aggregation_pb2.DemandLine(
                    description="Helicopters", quantity=decimal(quantity), estimated_unit_price=gbp(price)
                ),
            )
        )
        return result

    # Under £100 trillion, but beyond what millionths of a pound hold in 64 bits (about
    # 9.2 trillion): said on the field, not an INTERNAL error.
    f = failure(add, "1", "10000000000000")
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f.message
    assert set(f.violations) == {"demand_line.estimated_unit_price"}
    assert "£1 trillion" in f.violations["demand_line.estimated_unit_price"]
    f = failure(add, "10000000000000", "1")
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f.message
    assert set(f.violations) == {"demand_line.quantity"}
    assert "1 trillion" in f.violations["demand_line.quantity"]
    # At the bounds: kept exactly.
    assert add("1", "1000000000000").estimated_unit_price.units == 10**12
    assert add("999999999999", "0").quantity.value == "999999999999"
    # The aggregation's total quantity is kept the same way: a line that would take it
    # past a trillion is refused on its quantity, and nothing of it is added.
    f = failure(add, "0.000001", "0")
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f.message
    assert set(f.violations) == {"demand_line.quantity"}
    totals = west.procurement.GetDemandAggregation(pb.GetDemandAggregationRequest(name=aggregation.name))
    assert totals.line_count == 2 and totals.total_quantity.value == "1000000000000"


def test_an_aggregations_total_value_is_held_to_the_cap(suite: Suite) -> None:
    # Without it the total's pence overflowed their 64-bit column at the 923rd line of
    # £100 trillion (INTERNAL); no contract can be let for more than £100 trillion anyway.
    lead = suite.caller(UNIT, "procurement.commercial")
    west = suite.caller(WY, "procurement.buyer", subject="west")
    aggregation = _aggregation(lead)
    request = pb.CreateDemandLineRequest(
        parent=aggregation.name,
        demand_line=demand_aggregation_pb2.DemandLine(
            description="Airframes", quantity=decimal("1000"), estimated_unit_price=gbp("60000000000")
        ),
    )
    west.procurement.CreateDemandLine(request)
    f = failure(west.procurement.CreateDemandLine, request)
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f.message
    assert set(f.violations) == {"demand_line.estimated_unit_price"}
    assert "£100 trillion" in f.violations["demand_line.estimated_unit_price"]
    totals = west.procurement.GetDemandAggregation(pb.GetDemandAggregationRequest(name=aggregation.name))
    assert totals.line_count == 1 and totals.total_value.units == 60_000_000_000_000


def test_a_close_reason_is_held_to_the_cancel_limit(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    buyer = suite.caller(WY, "procurement.buyer", subject="buyer")
    approver = suite.caller(WY, "procurement.budget_holder", subject="approver")
    framework = contract(officer, supplier(officer).name, [WY])
    po = order(buyer, WY, approved(buyer, approver, WY).name, framework.name)
    po = buyer.procurement.IssuePurchaseOrder(pb.IssuePurchaseOrderRequest(name=po.name, etag=po.etag))
    receive(buyer, po.name, (1, "4"))
    po = buyer.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=po.name))
    f = failure(
        buyer.procurement.ClosePurchaseOrder,
        pb.ClosePurchaseOrderRequest(name=po.name, etag=po.etag, reason="x" * 501),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT, f.message
    assert set(f.violations) == {"reason"}
    assert "500" in f.violations["reason"]
    # Nothing changed.
    got = buyer.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=po.name))
    assert got.state == purchase_order_pb2.PURCHASE_ORDER_STATE_PARTIALLY_RECEIVED
    assert got.etag == po.etag and got.closure_reason == ""
    # At the limit (spaces around it aside) the order closes short, as a cancel would.
    po = buyer.procurement.ClosePurchaseOrder(
        pb.ClosePurchaseOrderRequest(name=po.name, etag=po.etag, reason=" " + "y" * 500 + " ")
    )
    assert po.state == purchase_order_pb2.PURCHASE_ORDER_STATE_CLOSED and po.closure_reason == "y" * 500
