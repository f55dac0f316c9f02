"""Purchase-to-pay across procurement and finance, as real servers on SQLite and
PostgreSQL: issuing an order commits the budget through procurement's outbox relay."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import grpc
import pytest
from sqlalchemy.exc import IntegrityError

from backoffice.finance.v1 import budget_pb2, payables_pb2
from backoffice.finance.v1 import finance_service_pb2 as fpb
from backoffice.operations.v1 import operations_service_pb2 as opb
from backoffice.operations.v1 import operations_service_pb2_grpc
from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import purchase_order_pb2, requisition_pb2
from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.auth import TokenIssuer, TokenVerifier
from libs.common.clock import today_london as today
from libs.common.config import Settings
from libs.common.context import PrincipalKind
from libs.common.grants import DirectoryGrantSource
from libs.common.outbox import DELIVERED, PARKED, Delivery, OutboxEvent, Settle
from libs.common.peers import ServiceTokens
from libs.common.proto_mapping import date_to_proto
from libs.common.server import RunningServer, create_server
from libs.common.service import Transaction
from services.finance import app as finance_app
from services.procurement.persistence.models import KERNEL
from services.procurement.service import CONSUME_COMMITMENT, RELEASE_COMMITMENT
from services.suite.admin import change_outbox_event, outbox_events
from services.suite.runtime import SERVICE_ROLES, page_secret
from tests.finance.books import MAY, amount, check_books_balance, gbp
from tests.procurement.helpers import approved, decimal, line
from tests.procurement.p2p import World, wait_until
from tests.support import (
    SOUTH_YORKSHIRE,
    WEST_YORKSHIRE,
    Suite,
    audit_after,
    audit_column,
    execute_as_owner,
    failure,
    running_suite,
)

WY = WEST_YORKSHIRE
PENDING = purchase_order_pb2.PURCHASE_ORDER_STATE_PENDING_COMMITMENT
ISSUED = purchase_order_pb2.PURCHASE_ORDER_STATE_ISSUED
DRAFT = purchase_order_pb2.PURCHASE_ORDER_STATE_DRAFT


@pytest.fixture
def p2p(settings: Settings) -> Iterator[Suite]:
    # A quick relay, so that the tests do not wait long for retries.
    settings.outbox_poll_seconds = 0.1
    settings.outbox_backoff_initial_seconds = 0.05
    settings.outbox_backoff_max_seconds = 0.4
    settings.outbox_timeout_seconds = 3
    with running_suite(settings, migrated=True) as s:
        yield s


def _server(suite: Suite, name: str) -> RunningServer:
    return next(s for s in suite.servers if s.app.name == name)


def _settled(suite: Suite) -> None:
    """Waits until procurement's relay has delivered every event it recorded."""
    wait_until(
        lambda: all(e.state == DELIVERED for _, e in outbox_events(suite.settings, ["procurement"], ()))
    )


def _sums(w: World) -> tuple[Decimal, Decimal, Decimal]:
    """The budget's actual, committed and available."""
    b = w.holder.finance.GetBudget(fpb.GetBudgetRequest(name=w.budget.name))
    return amount(b.actual), amount(b.committed), amount(b.available)


def test_issue_commits_the_budget_in_the_same_call(p2p: Suite) -> None:
    w = World(p2p)
    first = w.order("45")  # 45 x 100.00 = 4,500.00 net
    assert first.budget == w.budget.name
    issued = w.issue(first)
    assert issued.state == ISSUED and issued.commitment.startswith(f"{w.books.cc}/commitments/")
    # The answer is the order as stored, etag and all (taken from the relay's transaction).
    assert issued == w.get(issued.name)
    c = w.holder.finance.GetCommitment(fpb.GetCommitmentRequest(name=issued.commitment))
    assert amount(c.amount) == Decimal("4500.00") and c.reference == first.name
    # Finance records the procurement service, acting for the force, as who raised it.
    assert c.audit.create_principal == "service/procurement"
    assert w.committed() == Decimal("4500.00")

    # Beyond what is available: refused in the same call, the order unissued and saying why.
    second = w.order("60")
    refused = failure(w.issue, second)
    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "BUDGET_EXCEEDED"
    got = w.get(second.name)
    assert got.state == DRAFT and got.commitment_refusal.startswith("BUDGET_EXCEEDED")
    assert w.committed() == Decimal("4500.00")
    # An override needs the permission and a reason.
    denied = failure(w.issue, second, budget_override_reason="urgent operational need")
    assert denied.code is grpc.StatusCode.PERMISSION_DENIED and denied.reason == "OVERRIDE_NOT_PERMITTED"
    cfo = p2p.caller(WY, "procurement.buyer", "procurement.chief_finance_officer", subject="cfo")
    overridden = w.issue(second, cfo, budget_override_reason="urgent operational need")
    assert overridden.state == ISSUED and overridden.commitment_refusal == ""
    assert overridden.budget_override_reason == "urgent operational need"
    oc = w.holder.finance.GetCommitment(fpb.GetCommitmentRequest(name=overridden.commitment))
    assert oc.override_reason == "urgent operational need"
    assert w.committed() == Decimal("10500.00")

    # Cancelling releases what remains of the commitment.
    w.buyer.procurement.CancelPurchaseOrder(
        pb.CancelPurchaseOrderRequest(name=first.name, reason="not needed")
    )

    def released() -> bool:
        got = w.holder.finance.GetCommitment(fpb.GetCommitmentRequest(name=issued.commitment))
        return bool(got.state == budget_pb2.COMMITMENT_STATE_CLOSED)

    wait_until(released)
    assert w.committed() == Decimal("6000.00")
    # An order without a budget issues as before, with no commitment.
    r = approved(w.requester, w.approver, WY, line(quantity="1"))
    plain = w.buyer.procurement.CreatePurchaseOrder(
        pb.CreatePurchaseOrderRequest(
            parent=f"organisations/{WY}",
            purchase_order=purchase_order_pb2.PurchaseOrder(requisition=r.name, contract=w.framework.name),
        )
    )
    assert w.issue(plain).state == ISSUED and w.committed() == Decimal("6000.00")
    # A budget of another organisation is refused when the order is raised.
    bad = failure(
        w.buyer.procurement.CreatePurchaseOrder,
        pb.CreatePurchaseOrderRequest(
            parent=f"organisations/{WY}",
            purchase_order=purchase_order_pb2.PurchaseOrder(
                requisition=approved(w.requester, w.approver, WY, line(quantity="1")).name,
                contract=w.framework.name,
                budget="organisations/E23000011/ledgers/cc/budgets/b-1",
            ),
        ),
    )
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT


def test_the_service_role_is_least_privilege(p2p: Suite) -> None:
    w = World(p2p)
    token = p2p.issuer.mint("procurement", "", ["service.procurement"], kind=PrincipalKind.SERVICE)
    service = p2p.caller_with_token(token)
    for call, request in (
        (service.finance.GetBudget, fpb.GetBudgetRequest(name=w.budget.name)),
        (service.finance.ListLedgers, fpb.ListLedgersRequest(parent=f"organisations/{WY}")),
    ):
        denied = failure(call, request)
        assert denied.code is grpc.StatusCode.PERMISSION_DENIED and denied.reason == "MISSING_PERMISSION"


async def _restart_finance(suite: Suite, port: int) -> RunningServer:
    settings = suite.settings
    issuer = TokenIssuer.from_settings(settings)
    grants = DirectoryGrantSource(
        suite.addresses["directory"], ServiceTokens(issuer, "finance", SERVICE_ROLES), ttl_seconds=0
    )
    app = finance_app.build(settings, page_secret(settings, settings.signing_key_path().read_bytes()), grants)
    return await create_server(app, TokenVerifier.from_settings(settings), host=settings.host, port=port)


def test_finance_down_then_up_every_commitment_arrives_once(p2p: Suite) -> None:
    w = World(p2p, budget_amount="100000.00")
    orders = [w.order(str(n)) for n in range(1, 7)]
    finance = _server(p2p, "finance")
    port = finance.port
    p2p.run(finance.stop(2))  # in-flight calls finish: no connection left open

    # The relay dies after finance committed the first delivery it makes, before it
    # recorded the answer: the retry carries the same request_id.
    relay = _server(p2p, "procurement").app.relay
    assert relay is not None
    original = dict(relay.handlers)
    crashed: list[str] = []

    def crash_once(handler: Callable[[OutboxEvent, Delivery], object]) -> Callable[..., object]:
        async def deliver(event: OutboxEvent, delivery: Delivery) -> Settle | None:
            settle = await handler(event, delivery)  # type: ignore[misc]
            if not crashed:
                crashed.append(event.id)
                raise RuntimeError("relay killed after finance answered")
            return settle  # type: ignore[no-any-return]

        return deliver

    relay.handlers = {topic: crash_once(h) for topic, h in original.items()}  # type: ignore[misc]

    issued = [w.issue(po) for po in orders]
    assert {po.state for po in issued} == {PENDING}
    assert all(w.get(po.name).state == PENDING for po in orders)

    restarted = p2p.run(_restart_finance(p2p, port))
    p2p.servers[p2p.servers.index(finance)] = restarted
    wait_until(lambda: all(w.get(po.name).state == ISSUED for po in orders))
    assert crashed

    commitments = [w.get(po.name).commitment for po in orders]
    assert len(set(commitments)) == len(orders)
    for po, name in zip(orders, commitments, strict=True):
        c = w.holder.finance.GetCommitment(fpb.GetCommitmentRequest(name=name))
        assert c.reference == po.name
    total = sum(Decimal(n) * 100 for n in range(1, 7))
    assert w.committed() == total  # exactly once each, to the penny
    events = [e for _, e in outbox_events(p2p.settings, ["procurement"], ())]
    assert len(events) == len(orders) and {e.state for e in events} == {DELIVERED}
    assert any(e.attempts > 1 for e in events)


def test_an_order_finance_cannot_commit_goes_back_to_draft_saying_why(p2p: Suite) -> None:
    w = World(p2p)
    r = approved(w.requester, w.approver, WY, line(quantity="1"))
    missing = w.budget.name.rsplit("/", 1)[0] + "/b-no-such-budget"
    po = w.buyer.procurement.CreatePurchaseOrder(
        pb.CreatePurchaseOrderRequest(
            parent=f"organisations/{WY}",
            purchase_order=purchase_order_pb2.PurchaseOrder(
                requisition=r.name, contract=w.framework.name, budget=missing
            ),
        )
    )
    # Finance has no such budget: an answer about this order, so the order does not wait
    # for ever on an event parked for an operator, but comes back to be corrected.
    f = failure(w.issue, po)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "COMMITMENT_REFUSED"
    assert f.metadata["finance_reason"] == "NOT_FOUND" and f.metadata["budget"] == missing
    got = w.get(po.name)
    assert got.state == DRAFT and got.commitment_refusal.startswith("NOT_FOUND: ")
    assert not list(outbox_events(p2p.settings, ["procurement"], (PARKED,)))
    assert w.committed() == Decimal(0)


def test_an_order_against_a_budget_finance_refuses_is_cancelled_and_its_requisition_ordered_again(
    p2p: Suite,
) -> None:
    """An order's budget cannot be amended: one raised against a mistyped budget is
    cancelled, and the approved requisition ordered again against the right one."""
    w = World(p2p)
    r = approved(w.requester, w.approver, WY, line(quantity="1"))
    mistyped = w.budget.name.rsplit("/", 1)[0] + "/b-no-such-budget"

    def order_against(budget: str) -> purchase_order_pb2.PurchaseOrder:
        created: purchase_order_pb2.PurchaseOrder = w.buyer.procurement.CreatePurchaseOrder(
            pb.CreatePurchaseOrderRequest(
                parent=f"organisations/{WY}",
                purchase_order=purchase_order_pb2.PurchaseOrder(
                    requisition=r.name, contract=w.framework.name, budget=budget
                ),
            )
        )
        return created

    wrong = order_against(mistyped)
    refused = failure(w.issue, wrong)
    assert refused.reason == "COMMITMENT_REFUSED" and refused.metadata["finance_reason"] == "NOT_FOUND"
    cancelled = w.buyer.procurement.CancelPurchaseOrder(
        pb.CancelPurchaseOrderRequest(name=wrong.name, reason="raised against the wrong budget")
    )
    assert cancelled.state == purchase_order_pb2.PURCHASE_ORDER_STATE_CANCELLED
    # The approval stands: the demand was approved, not the order.
    reopened = w.requester.procurement.GetRequisition(pb.GetRequisitionRequest(name=r.name))
    assert reopened.state == requisition_pb2.REQUISITION_STATE_APPROVED and reopened.purchase_order == ""
    assert reopened.decision == r.decision
    before, after = (
        json.loads(audit_column(p2p.settings, "procurement", r.name, column)[-1])
        for column in ("before", "after")
    )
    assert (before["state"], before["purchase_order"]) == ("ORDERED", wrong.name)
    assert (after["state"], after["purchase_order"]) == ("APPROVED", "")
    assert after["info"]["update_principal"] == f"{WY}/buyer"

    right = w.issue(order_against(w.budget.name))
    assert right.state == ISSUED and right.requisition == r.name and right.commitment
    assert w.committed() == Decimal("450.00")
    ordered = w.requester.procurement.GetRequisition(pb.GetRequisitionRequest(name=r.name))
    assert ordered.state == requisition_pb2.REQUISITION_STATE_ORDERED and ordered.purchase_order == right.name
    # While that order stands, the requisition is not ordered a third time.
    again = failure(order_against, w.budget.name)
    assert again.code is grpc.StatusCode.FAILED_PRECONDITION and again.reason == "REQUISITION_NOT_APPROVED"
    # Nor, in the schema, does a cancelled order come back beside the live one.
    with pytest.raises(IntegrityError):
        execute_as_owner(
            p2p.settings,
            "procurement",
            "UPDATE purchase_orders SET state = 'DRAFT' WHERE id = :id",
            id=wrong.name.rsplit("/", 1)[1],
        )


def test_a_supplier_debarred_while_finance_was_down_stops_the_order_and_frees_the_budget(
    p2p: Suite,
) -> None:
    w = World(p2p)
    po = w.order("3")
    finance = _server(p2p, "finance")
    port = finance.port
    p2p.run(finance.stop(2))
    assert w.issue(po).state == PENDING
    w.officer.procurement.DebarSupplier(
        pb.DebarSupplierRequest(
            name=w.supplier.name, reason="Debarment list entry", debarment_date=date_to_proto(today())
        )
    )
    p2p.servers[p2p.servers.index(finance)] = p2p.run(_restart_finance(p2p, port))

    # Finance commits when it is back; the order, whose supplier is now debarred, does not
    # go to the supplier, and what finance committed goes back to the budget.
    wait_until(lambda: w.get(po.name).state == DRAFT)
    got = w.get(po.name)
    assert got.commitment_refusal.startswith("SUPPLIER_DEBARRED: ") and not got.commitment
    wait_until(lambda: w.committed() == Decimal(0))
    (commitment,) = w.holder.finance.ListCommitments(
        fpb.ListCommitmentsRequest(parent=w.budget.name.rsplit("/budgets/", 1)[0])
    ).commitments
    assert commitment.reference == po.name and amount(commitment.released) == Decimal("300.00")
    events = [e for _, e in outbox_events(p2p.settings, ["procurement"], ())]
    assert {e.state for e in events} == {DELIVERED} and len(events) == 2
    f = failure(w.issue, po, etag=got.etag)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "SUPPLIER_DEBARRED"


def test_a_refused_event_parks_and_is_retried_after_the_fix(p2p: Suite) -> None:
    w = World(p2p)
    catalogue = _server(p2p, "finance").app.catalogue
    granted = catalogue._roles["service.procurement"]
    catalogue._roles["service.procurement"] = frozenset()
    po = w.order("10")
    assert w.issue(po).state == PENDING

    def parked() -> list[OutboxEvent]:
        return [e for _, e in outbox_events(p2p.settings, ["procurement"], (PARKED,))]

    wait_until(lambda: bool(parked()))
    (event,) = parked()
    assert event.key == po.name and event.last_error.startswith("PERMISSION_DENIED")
    time.sleep(0.5)
    assert w.get(po.name).state == PENDING and w.committed() == Decimal(0)

    catalogue._roles["service.procurement"] = granted
    assert change_outbox_event(p2p.settings, "procurement", event.id).state == "PENDING"
    wait_until(lambda: w.get(po.name).state == ISSUED)
    assert w.committed() == Decimal("1000.00")


CANCELLED = purchase_order_pb2.PURCHASE_ORDER_STATE_CANCELLED


def test_a_discarded_commitment_request_puts_its_order_back_to_draft(p2p: Suite) -> None:
    """Operations discarding a parked RaiseCommitment (by the command or the operations
    API) is an answer for the order: back to DRAFT saying so, then issued again or
    cancelled, rather than PENDING_COMMITMENT for ever (review finding)."""
    w = World(p2p)
    catalogue = _server(p2p, "finance").app.catalogue
    granted = catalogue._roles["service.procurement"]
    catalogue._roles["service.procurement"] = frozenset()
    by_command, by_api = w.order("10"), w.order("20")
    assert w.issue(by_command).state == PENDING and w.issue(by_api).state == PENDING

    def parked() -> dict[str, OutboxEvent]:
        return {e.key: e for _, e in outbox_events(p2p.settings, ["procurement"], (PARKED,))}

    wait_until(lambda: len(parked()) == 2)
    events = parked()
    change_outbox_event(
        p2p.settings, "procurement", events[by_command.name].id, discard_reason="budget set up wrongly"
    )
    staff = p2p.caller(WY, "operations.staff", subject="ops")
    channel = grpc.insecure_channel(p2p.addresses["procurement"])
    try:
        operations_service_pb2_grpc.OperationsServiceStub(channel).DiscardOutboxEvent(
            opb.DiscardOutboxEventRequest(
                name=f"organisations/{WY}/outboxEvents/{events[by_api.name].id}", reason="raised twice"
            ),
            metadata=(("authorization", f"Bearer {staff.token}"),),
        )
    finally:
        channel.close()
    for po, reason in ((by_command, "budget set up wrongly"), (by_api, "raised twice")):
        back = w.get(po.name)
        assert back.state == DRAFT and back.commitment_refusal.startswith("DISCARDED: "), back
        assert reason in back.commitment_refusal
    assert w.committed() == Decimal(0)
    trail = [json.loads(a)["state"] for a in audit_after(p2p.settings, "procurement", by_api.name)]
    assert trail[-2:] == ["PENDING_COMMITMENT", "DRAFT"], trail
    # Mended, the order is issued again (a new request) and commits once; the other is cancelled.
    catalogue._roles["service.procurement"] = granted
    w.issue(w.get(by_command.name))
    wait_until(lambda: w.get(by_command.name).state == ISSUED)
    assert w.committed() == Decimal("1000.00")
    w.buyer.procurement.CancelPurchaseOrder(
        pb.CancelPurchaseOrderRequest(name=by_api.name, reason="duplicate")
    )
    assert w.get(by_api.name).state == CANCELLED


def test_randomised_orders_with_finance_restarts_match_to_the_penny(p2p: Suite) -> None:
    """Orders issued and cancelled at random while finance stops and starts at random
    points; afterwards every order's commitment is what finance holds, to the penny.
    BACKOFFICE_P2P_ORDERS sets how many (the issue's 1,000-order run: set it to 1000)."""
    count = int(os.environ.get("BACKOFFICE_P2P_ORDERS", "30"))
    seed = int(os.environ.get("BACKOFFICE_P2P_SEED", str(random.randrange(1_000_000))))
    rng = random.Random(seed)
    w = World(p2p, budget_amount=f"{count * 800}.00")
    finance = _server(p2p, "finance")
    port = finance.port
    down = False
    orders: list[purchase_order_pb2.PurchaseOrder] = []
    refused_codes: list[grpc.StatusCode] = []
    for _ in range(count):
        if rng.random() < 0.1:
            if down:
                restarted = p2p.run(_restart_finance(p2p, port))
                p2p.servers[p2p.servers.index(finance)] = restarted
                finance = restarted
            else:
                p2p.run(finance.stop(2))  # in-flight calls finish: no connection left open
            down = not down
        po = w.order(str(rng.randint(1, 30)))
        try:
            w.issue(po)
        except grpc.RpcError as err:  # refused at once: the order stays DRAFT, saying why
            refused_codes.append(err.code())
        orders.append(po)
        victim = rng.choice(orders)
        if rng.random() < 0.2 and w.get(victim.name).state == ISSUED:
            w.buyer.procurement.CancelPurchaseOrder(
                pb.CancelPurchaseOrderRequest(name=victim.name, reason="no longer needed")
            )
    if down:
        p2p.servers[p2p.servers.index(finance)] = p2p.run(_restart_finance(p2p, port))
    assert set(refused_codes) <= {grpc.StatusCode.FAILED_PRECONDITION}, seed

    def settled() -> bool:
        events = [e for _, e in outbox_events(p2p.settings, ["procurement"], ())]
        return all(e.state == DELIVERED for e in events)

    wait_until(settled, seconds=120)
    expected = Decimal(0)
    for po in orders:
        got = w.get(po.name)
        net = amount(got.net_total)
        assert got.state in (ISSUED, CANCELLED, DRAFT), (seed, got.name, got.state)
        if got.state == DRAFT:
            assert got.commitment == "" and got.commitment_refusal.startswith("BUDGET_EXCEEDED"), seed
            continue
        c = w.holder.finance.GetCommitment(fpb.GetCommitmentRequest(name=got.commitment))
        assert amount(c.amount) == net and c.reference == got.name, seed
        if got.state == CANCELLED:
            assert c.state == budget_pb2.COMMITMENT_STATE_CLOSED and amount(c.released) == net, seed
        else:
            assert amount(c.open_amount) == net, seed
            expected += net
    assert w.committed() == expected, seed
    assert len({w.get(po.name).commitment for po in orders} - {""}) == sum(
        1 for po in orders if w.get(po.name).state != DRAFT
    )
    check_books_balance(p2p, WY)


def test_goods_received_stay_committed_until_the_invoice_consumes_them(p2p: Suite) -> None:
    """A goods receipt leaves the order's commitment as it is: what arrived is owed, and
    stays committed until the supplier's invoice is approved, which moves it from
    committed to actual. Available never rises above the budget less what was received."""
    w = World(p2p)  # a 10,000.00 budget
    po = w.issue(w.order("10"))  # 10 x 100.00 = 1,000.00
    assert po.state == ISSUED and w.committed() == Decimal("1000.00")

    w.receive(po.name, "4")
    _settled(p2p)
    c = w.commitment(po.commitment)
    assert (amount(c.consumed), amount(c.open_amount)) == (Decimal(0), Decimal("1000.00"))
    assert _sums(w) == (Decimal(0), Decimal("1000.00"), Decimal("9000.00"))

    # Finance reads the order and its receipts from procurement: no match data supplied.
    first = w.invoice(po.name, "INV-1", "4")
    matched = w.match(first.name)
    assert matched.match_state == payables_pb2.MATCH_STATE_MATCHED and not matched.discrepancies
    assert matched.commitment == po.commitment  # taken from the order
    # The audit record keeps what the match was made on, and where it came from.
    evidence = json.loads(audit_after(p2p.settings, "finance", first.name)[-1])["match_evidence"]
    assert evidence == {
        "from": "procurement",
        "order_lines": [{"line": "1", "quantity": "10", "unit_price": "100"}],
        "receipt_lines": [{"line": "1", "quantity": "4"}],
    }
    w.approve(first.name)
    c = w.commitment(po.commitment)
    assert (amount(c.consumed), amount(c.open_amount)) == (Decimal("400.00"), Decimal("600.00"))
    # The invoice moved the 400.00 received from committed to actual; available is as it was.
    assert _sums(w) == (Decimal("400.00"), Decimal("600.00"), Decimal("9000.00"))

    # Billed before it arrived: out of tolerance until the goods come.
    second = w.invoice(po.name, "INV-2", "6")
    # The clerk cannot state the receipts of a suite order instead of procurement's record.
    stated = failure(
        w.clerk.finance.MatchInvoice,
        fpb.MatchInvoiceRequest(
            name=second.name,
            match_data=fpb.MatchData(
                order_lines=[fpb.OrderLine(line="1", quantity=decimal("10"), unit_price=gbp("100.00"))],
                receipt_lines=[fpb.ReceiptLine(line="1", quantity=decimal("10"))],
            ),
        ),
    )
    assert stated.code is grpc.StatusCode.INVALID_ARGUMENT and set(stated.violations) == {"match_data"}
    unchanged = w.clerk.finance.GetInvoice(fpb.GetInvoiceRequest(name=second.name))
    assert unchanged.match_state == second.match_state and unchanged.etag == second.etag
    early = w.match(second.name)
    assert early.match_state == payables_pb2.MATCH_STATE_OUT_OF_TOLERANCE
    assert [d.code for d in early.discrepancies] == ["QUANTITY_NOT_RECEIVED"]
    w.receive(po.name, "6")
    _settled(p2p)
    # All received, 600.00 of it not yet invoiced: still committed, available unchanged.
    c = w.commitment(po.commitment)
    assert c.state == budget_pb2.COMMITMENT_STATE_OPEN and amount(c.open_amount) == Decimal("600.00")
    assert _sums(w) == (Decimal("400.00"), Decimal("600.00"), Decimal("9000.00"))
    assert w.match(second.name).match_state == payables_pb2.MATCH_STATE_MATCHED
    w.approve(second.name)
    c = w.commitment(po.commitment)
    assert c.state == budget_pb2.COMMITMENT_STATE_CLOSED
    assert (amount(c.consumed), amount(c.released)) == (Decimal("1000.00"), Decimal(0))
    assert _sums(w) == (Decimal("1000.00"), Decimal(0), Decimal("9000.00"))
    check_books_balance(p2p, WY)


def test_the_same_goods_are_not_paid_for_twice(p2p: Suite) -> None:
    """A second invoice for goods another invoice of the order has billed does not match,
    whatever its number; and one matched before the other was approved is matched again."""
    w = World(p2p)
    po = w.issue(w.order("10"))
    w.receive(po.name, "5")
    first, twin = w.invoice(po.name, "INV-A", "5"), w.invoice(po.name, "INV-A2", "5")
    # Both match while neither is approved; the first approved, the second must match again.
    assert w.match(first.name).match_state == payables_pb2.MATCH_STATE_MATCHED
    assert w.match(twin.name).match_state == payables_pb2.MATCH_STATE_MATCHED
    # Another force's payables staff neither match nor approve it.
    south = p2p.caller(SOUTH_YORKSHIRE, "finance.payables", subject="south-clerk")
    approve = fpb.ApproveInvoiceRequest(name=first.name, posting_date=date_to_proto(MAY))
    for call, request in (
        (south.finance.MatchInvoice, fpb.MatchInvoiceRequest(name=first.name)),
        (south.finance.ApproveInvoice, approve),
    ):
        assert failure(call, request).code is grpc.StatusCode.NOT_FOUND
    w.approve(first.name)
    stale = failure(w.approve, twin.name)
    assert stale.code is grpc.StatusCode.FAILED_PRECONDITION and stale.reason == "MATCH_STALE"
    assert w.clerk.finance.GetInvoice(fpb.GetInvoiceRequest(name=twin.name)).state == (
        payables_pb2.INVOICE_STATE_RECEIVED
    )
    again = w.match(twin.name)
    assert again.match_state == payables_pb2.MATCH_STATE_OUT_OF_TOLERANCE
    assert [d.code for d in again.discrepancies] == ["QUANTITY_NOT_RECEIVED"]
    assert "5 of it by other invoices" in again.discrepancies[0].description
    # Once the rest arrives, the second bills it: five and five of ten received.
    w.receive(po.name, "5")
    assert w.match(twin.name).match_state == payables_pb2.MATCH_STATE_MATCHED
    w.approve(twin.name)
    c = w.commitment(po.commitment)
    assert c.state == budget_pb2.COMMITMENT_STATE_CLOSED and amount(c.consumed) == Decimal("1000.00")
    # A third for the same goods does not match: all ten are billed.
    third = w.invoice(po.name, "INV-A3", "1")
    over = w.match(third.name)
    assert [d.code for d in over.discrepancies] == ["QUANTITY_OVER_ORDERED"]
    check_books_balance(p2p, WY)


def test_closing_short_keeps_what_was_received_committed_until_invoiced(p2p: Suite) -> None:
    """Closed short after 4 of 10 arrived, before their invoice: the 6 never delivered go
    back to the budget; the 4 received are owed, and stay committed until invoiced."""
    w = World(p2p)
    po = w.issue(w.order("10"))
    w.receive(po.name, "4")
    current = w.get(po.name)
    w.buyer.procurement.ClosePurchaseOrder(
        pb.ClosePurchaseOrderRequest(name=po.name, reason="supplier discontinued the line", etag=current.etag)
    )
    _settled(p2p)
    c = w.commitment(po.commitment)
    assert c.state == budget_pb2.COMMITMENT_STATE_OPEN
    assert (amount(c.consumed), amount(c.released), amount(c.open_amount)) == (
        Decimal(0),
        Decimal("600.00"),
        Decimal("400.00"),
    )
    assert _sums(w) == (Decimal(0), Decimal("400.00"), Decimal("9600.00"))
    # The invoice for the 4 consumes what was kept, and the commitment closes.
    invoice = w.invoice(po.name, "INV-4", "4")
    assert w.match(invoice.name).match_state == payables_pb2.MATCH_STATE_MATCHED
    w.approve(invoice.name)
    c = w.commitment(po.commitment)
    assert c.state == budget_pb2.COMMITMENT_STATE_CLOSED
    assert (amount(c.consumed), amount(c.released)) == (Decimal("400.00"), Decimal("600.00"))
    assert _sums(w) == (Decimal("400.00"), Decimal(0), Decimal("9600.00"))
    check_books_balance(p2p, WY)


def _publish_as_before_the_upgrade(suite: Suite, topic: str, key: str, payload: dict[str, str]) -> None:
    """Records an event in procurement's outbox, as a release before the upgrade did."""
    db = build_database("procurement", suite.settings)
    try:
        with db.writer_lock, db.session(Scope.of(WY), write=True) as session:
            tx = Transaction(session, AuditLog(session, KERNEL, None), Scope.of(WY), None, KERNEL)
            tx.outbox.publish(topic, key, payload)
            session.commit()
    finally:
        db.dispose()


def test_events_recorded_before_the_upgrade_are_still_delivered(p2p: Suite) -> None:
    """Receipts consumed the commitment before the upgrade, and a close released all that
    was open: such events, still waiting in the outbox, are delivered as they were, and an
    invoice or a close afterwards counts nothing twice."""
    w = World(p2p)
    po = w.issue(w.order("10"))
    w.receive(po.name, "4")
    _publish_as_before_the_upgrade(
        p2p,
        CONSUME_COMMITMENT,
        po.name,
        {"commitment": po.commitment, "receipt": f"{po.name}/goodsReceipts/gr-1", "consumed_to": "400.00"},
    )
    _settled(p2p)
    assert amount(w.commitment(po.commitment).consumed) == Decimal("400.00")
    assert _sums(w) == (Decimal(0), Decimal("600.00"), Decimal("9400.00"))
    # Closed now: the 400.00 received is consumed already, so the close keeps nothing open.
    w.buyer.procurement.ClosePurchaseOrder(pb.ClosePurchaseOrderRequest(name=po.name, reason="done"))
    _settled(p2p)
    c = w.commitment(po.commitment)
    assert c.state == budget_pb2.COMMITMENT_STATE_CLOSED
    assert (amount(c.consumed), amount(c.released)) == (Decimal("400.00"), Decimal("600.00"))
    invoice = w.invoice(po.name, "INV-OLD", "4")
    assert w.match(invoice.name).match_state == payables_pb2.MATCH_STATE_MATCHED
    w.approve(invoice.name)
    assert _sums(w) == (Decimal("400.00"), Decimal(0), Decimal("9600.00"))

    # A release recorded before the upgrade carries no retain_to: it releases all that is open.
    other = w.issue(w.order("5"))
    w.receive(other.name, "2")
    _publish_as_before_the_upgrade(p2p, RELEASE_COMMITMENT, other.name, {"commitment": other.commitment})
    _settled(p2p)
    c = w.commitment(other.commitment)
    assert c.state == budget_pb2.COMMITMENT_STATE_CLOSED and amount(c.released) == Decimal("500.00")
    check_books_balance(p2p, WY)


def test_the_match_says_when_procurement_cannot_help(p2p: Suite) -> None:
    w = World(p2p)
    unknown = w.invoice(f"organisations/{WY}/purchaseOrders/po-nowhere", "INV-X", "1")
    f = failure(w.match, unknown.name)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "ORDER_NOT_FOUND"
    # Another organisation's order is not one this invoice may cite: the invoice is that
    # organisation's to capture, and its receipts are not evidence here.
    f = failure(w.invoice, "organisations/E23000011/purchaseOrders/po-1", "INV-Y", "1")
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and set(f.violations) == {"invoice.purchase_order"}
    po = w.issue(w.order("2"))
    waiting = w.invoice(po.name, "INV-Z", "2")
    p2p.run(_server(p2p, "procurement").stop(1))
    f = failure(w.match, waiting.name)
    assert f.code is grpc.StatusCode.UNAVAILABLE and f.reason == "DEPENDENCY_UNAVAILABLE"
    assert w.clerk.finance.GetInvoice(fpb.GetInvoiceRequest(name=waiting.name)).match_state == (
        payables_pb2.MATCH_STATE_UNSPECIFIED
    )


def test_a_retried_match_is_answered_as_before_while_procurement_is_down(p2p: Suite) -> None:
    """A match reads the order from procurement before its transaction; a retry of an
    answered match (same request_id) gets that answer back, not UNAVAILABLE, and not a
    match against what the order says by then (review finding)."""
    w = World(p2p)
    po = w.issue(w.order("2"))
    waiting = w.invoice(po.name, "INV-R", "2")
    request = fpb.MatchInvoiceRequest(name=waiting.name, request_id=str(uuid.uuid4()))
    first = w.clerk.finance.MatchInvoice(request)
    p2p.run(_server(p2p, "procurement").stop(1))
    assert w.clerk.finance.MatchInvoice(request) == first
    f = failure(
        w.clerk.finance.MatchInvoice, fpb.MatchInvoiceRequest(name=waiting.name, request_id=str(uuid.uuid4()))
    )
    assert f.code is grpc.StatusCode.UNAVAILABLE and f.reason == "DEPENDENCY_UNAVAILABLE"
    # The same request_id for another request is still refused, before procurement is asked.
    other = w.invoice(po.name, "INV-S", "2")
    f = failure(
        w.clerk.finance.MatchInvoice, fpb.MatchInvoiceRequest(name=other.name, request_id=request.request_id)
    )
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.reason == "REQUEST_ID_REUSED"


def test_the_finance_service_reads_orders_for_the_invoice_organisation_only(p2p: Suite) -> None:
    w = World(p2p)
    po = w.order("1")
    for_wy = p2p.caller_with_token(
        p2p.issuer.mint("finance", WY, ["service.finance"], kind=PrincipalKind.SERVICE)
    )
    assert for_wy.procurement.GetPurchaseOrder(pb.GetPurchaseOrderRequest(name=po.name)).name == po.name
    denied = failure(
        for_wy.procurement.ListPurchaseOrders, pb.ListPurchaseOrdersRequest(parent=f"organisations/{WY}")
    )
    assert denied.code is grpc.StatusCode.PERMISSION_DENIED and denied.reason == "MISSING_PERMISSION"
    for_other = p2p.caller_with_token(
        p2p.issuer.mint("finance", "E23000011", ["service.finance"], kind=PrincipalKind.SERVICE)
    )
    f = failure(for_other.procurement.GetPurchaseOrder, pb.GetPurchaseOrderRequest(name=po.name))
    assert f.code is grpc.StatusCode.NOT_FOUND


def test_goods_received_but_not_yet_invoiced_still_use_the_budget(p2p: Suite) -> None:
    """Between the goods receipt and the supplier's invoice the money is owed: the budget
    must not show it as available again, or a second order commits the same £10,000 and
    the budget ends overspent with no override given."""
    w = World(p2p)  # a £10,000.00 budget
    first = w.issue(w.order("100"))  # 100 x 100.00 = 10,000.00
    assert first.state == ISSUED and w.committed() == Decimal("10000.00")
    w.receive(first.name, "100")  # all delivered; the invoice has not come yet
    _settled(p2p)
    assert amount(w.commitment(first.commitment).open_amount) == Decimal("10000.00")
    budget = w.holder.finance.GetBudget(fpb.GetBudgetRequest(name=w.budget.name))
    # Nothing is left: 10,000.00 of goods arrived against a 10,000.00 budget.
    assert amount(budget.available) == Decimal("0.00"), budget
    # So a second order of 10,000.00 is refused, not committed over the top.
    second = w.order("100")
    refused = failure(w.issue, second)
    assert refused.reason == "BUDGET_EXCEEDED"
    # The invoice then moves the 10,000.00 from committed to actual: never overspent.
    invoice = w.invoice(first.name, "INV-100", "100")
    assert w.match(invoice.name).match_state == payables_pb2.MATCH_STATE_MATCHED
    w.approve(invoice.name)
    assert w.commitment(first.commitment).state == budget_pb2.COMMITMENT_STATE_CLOSED
    assert _sums(w) == (Decimal("10000.00"), Decimal(0), Decimal(0))
