"""Purchase-to-pay with every service a process of its own (`backoffice serve --service
NAME`, as on Kubernetes), on SQLite and on PostgreSQL.

Orders, goods receipts, invoices (matched against procurement's API), cancellations and
closures at random, while finance and procurement are killed with SIGKILL (a pod that dies;
procurement's outbox relay in the middle of a batch) and started again at random points.
Afterwards every order's commitment is what finance holds, to the penny and exactly once
(consumed by invoices; what was received and not yet invoiced still open), the budget's
committed sum is what the open commitments add up to, and the books balance.

BACKOFFICE_P2P_OPERATIONS sets how many operations (default 1,000); BACKOFFICE_P2P_SEED
replays a run (the seed is in every assertion's message).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from backoffice.finance.v1 import budget_pb2, payables_pb2
from backoffice.finance.v1 import finance_service_pb2 as fpb
from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import purchase_order_pb2 as po_pb2
from libs.common.auth import TokenIssuer
from libs.common.config import Settings
from libs.common.money import to_pennies
from libs.common.outbox import DELIVERED
from services.suite.admin import outbox_events
from tests.finance.books import amount, check_books_balance
from tests.procurement.p2p import WY, World, wait_until
from tests.support import Suite
from tests.test_lifecycle import BACKOFFICE, START_TIMEOUT, free_ports, health_status, settings_env

SERVICES = ("directory", "procurement", "hr", "finance")
S = po_pb2.PurchaseOrderState
PRICES = ("100.00", "12.34", "0.99", "1234.56", "7.77")


class Processes:
    """The four services, each `backoffice serve --service NAME` in its own process."""

    def __init__(self, settings: Settings, work: Path) -> None:
        ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
        self.addresses = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        self.work = work
        self.env = settings_env(
            settings,
            BACKOFFICE_PORTS=json.dumps(ports),
            BACKOFFICE_DIRECTORY_TARGET=self.addresses["directory"],
            BACKOFFICE_SERVICE_TARGETS=json.dumps(self.addresses),
            BACKOFFICE_GRANTS_CACHE_SECONDS="0",
            BACKOFFICE_OUTBOX_POLL_SECONDS="0.2",
            BACKOFFICE_OUTBOX_BACKOFF_INITIAL_SECONDS="0.1",
            BACKOFFICE_OUTBOX_BACKOFF_MAX_SECONDS="1",
            BACKOFFICE_OUTBOX_TIMEOUT_SECONDS="3",
            BACKOFFICE_SHUTDOWN_GRACE_SECONDS="2",
        )
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: Counter[str] = Counter()

    def start(self, name: str) -> None:
        self.starts[name] += 1
        log = self.work / f"{name}-{self.starts[name]}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BACKOFFICE), "serve", "--service", name],
                env=self.env,
                cwd=self.work,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.running[name] = proc
        deadline = time.monotonic() + START_TIMEOUT
        while health_status(self.addresses[name]) != health_pb2.HealthCheckResponse.SERVING:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no goodbye, as when a node dies."""
        proc = self.running.pop(name)
        proc.kill()
        proc.wait(30)

    def up(self, name: str) -> bool:
        return name in self.running

    def stop_all(self) -> None:
        for proc in self.running.values():
            proc.terminate()
        for proc in self.running.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
        self.running.clear()


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[tuple[Processes, Suite]]:
    TokenIssuer.from_settings(settings)  # the signing key every process reads
    p = Processes(settings, tmp_path)
    loop = asyncio.new_event_loop()  # unused: the servers are other processes
    try:
        for name in SERVICES:
            p.start(name)
        suite = Suite(settings, [], loop, dict(p.addresses), TokenIssuer.from_settings(settings))
        yield p, suite
        for c in suite.callers:
            c.close()
    finally:
        p.stop_all()
        loop.close()


@dataclass
class Ordered:
    name: str
    quantity: int
    price: Decimal
    received: int = 0
    billed: int = 0
    billed_net: Decimal = Decimal(0)
    ended: bool = False


def _code(err: grpc.RpcError) -> grpc.StatusCode:
    code: grpc.StatusCode = err.code()
    return code


class Run:
    """One randomised run against the processes, keeping what it expects."""

    def __init__(self, p: Processes, suite: Suite, operations: int, seed: int) -> None:
        self.p = p
        self.suite = suite
        self.rng = random.Random(seed)
        self.seed = seed
        self.w = World(suite, budget_amount=f"{operations * 5000}.00")
        self.orders: list[Ordered] = []
        self.invoices = 0
        self.done: Counter[str] = Counter()

    def state(self, order: Ordered) -> int:
        return self.w.get(order.name).state

    def open_order(self) -> None:
        quantity = self.rng.randint(1, 12)
        price = self.rng.choice(PRICES)
        po = self.w.order(str(quantity), price)
        self.orders.append(Ordered(po.name, quantity, Decimal(price)))
        refused = None
        try:
            self.w.issue(po)
        except grpc.RpcError as err:  # finance refused the budget: the order stays DRAFT
            refused = _code(err)
        assert refused in (None, grpc.StatusCode.FAILED_PRECONDITION), (self.seed, refused)
        self.done["order"] += 1

    def receive(self) -> None:
        candidates = [o for o in self.orders if not o.ended and o.received < o.quantity]
        if not candidates:
            return
        order = self.rng.choice(candidates)
        if self.state(order) not in (
            S.PURCHASE_ORDER_STATE_ISSUED,
            S.PURCHASE_ORDER_STATE_PARTIALLY_RECEIVED,
        ):
            return  # still waiting for finance's commitment
        quantity = self.rng.randint(1, order.quantity - order.received)
        self.w.receive(order.name, str(quantity))
        order.received += quantity
        self.done["receipt"] += 1

    def invoice(self) -> None:
        candidates = [o for o in self.orders if not o.ended and o.billed < o.received]
        if not candidates or not self.p.up("finance"):
            return
        order = self.rng.choice(candidates)
        quantity = order.received - order.billed
        self.invoices += 1
        price = order.price
        invoice = self.w.invoice(order.name, f"INV-{self.invoices}", str(quantity), str(price))
        matched = self.w.match(invoice.name)
        assert matched.match_state == payables_pb2.MATCH_STATE_MATCHED, (self.seed, matched)
        self.w.approve(invoice.name)
        order.billed += quantity
        order.billed_net += to_pennies(quantity * price)
        self.done["invoice"] += 1

    def end(self) -> None:
        candidates = [o for o in self.orders if not o.ended]
        if not candidates:
            return
        order = self.rng.choice(candidates)
        state = self.state(order)
        if state == S.PURCHASE_ORDER_STATE_ISSUED and order.received == 0:
            self.w.buyer.procurement.CancelPurchaseOrder(
                pb.CancelPurchaseOrderRequest(name=order.name, reason="no longer needed")
            )
        elif state in (S.PURCHASE_ORDER_STATE_PARTIALLY_RECEIVED, S.PURCHASE_ORDER_STATE_RECEIVED):
            self.w.buyer.procurement.ClosePurchaseOrder(
                pb.ClosePurchaseOrderRequest(name=order.name, reason="finished with")
            )
        else:
            return
        order.ended = True
        self.done["end"] += 1

    def disrupt(self) -> None:
        if not self.p.up("finance"):
            self.p.start("finance")
            self.done["finance started"] += 1
        elif self.rng.random() < 0.5:
            self.p.kill("finance")  # stays down for a while: orders wait, pending
            self.done["finance killed"] += 1
        else:
            self.p.kill("procurement")  # its relay dies wherever it was in its batch
            self.p.start("procurement")
            self.done["procurement killed"] += 1

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.03:
            self.disrupt()
        elif roll < 0.33 or not self.orders:
            self.open_order()
        elif roll < 0.63:
            self.receive()
        elif roll < 0.88:
            self.invoice()
        else:
            self.end()


def test_randomised_purchase_to_pay_across_processes(processes: tuple[Processes, Suite]) -> None:
    p, suite = processes
    operations = int(os.environ.get("BACKOFFICE_P2P_OPERATIONS", "1000"))
    seed = int(os.environ.get("BACKOFFICE_P2P_SEED", str(random.randrange(1_000_000))))
    run = Run(p, suite, operations, seed)
    for _ in range(operations):
        run.step()
    if not p.up("finance"):
        p.start("finance")
    assert run.done["receipt"] and run.done["invoice"] and run.done["end"], (seed, run.done)

    def settled() -> bool:
        events = [e for _, e in outbox_events(suite.settings, ["procurement"], ())]
        return all(e.state == DELIVERED for e in events)

    try:
        wait_until(settled, seconds=120)
    except AssertionError:
        waiting = [e for _, e in outbox_events(suite.settings, ["procurement"], ()) if e.state != DELIVERED]
        raise AssertionError((seed, run.done, waiting[:5])) from None
    w = run.w
    open_sum = Decimal(0)
    billed_sum = Decimal(0)
    commitments: set[str] = set()
    for order in run.orders:
        got = w.get(order.name)
        if got.state == S.PURCHASE_ORDER_STATE_DRAFT:
            assert got.commitment == "" and got.commitment_refusal.startswith("BUDGET_EXCEEDED"), seed
            continue
        assert got.state != S.PURCHASE_ORDER_STATE_PENDING_COMMITMENT, (seed, got.name)
        c = w.commitment(got.commitment)
        net = amount(got.net_total)
        received_net = sum(
            (
                to_pennies(
                    min(Decimal(line.received_quantity.value or "0"), Decimal(line.item.quantity.value))
                    * amount(line.item.unit_price)
                )
                for line in got.lines
            ),
            Decimal(0),
        )
        # Invoices consume the commitment; receipts leave it as it is (what is received
        # stays committed until invoiced), so nothing received is ever available again.
        consumed = order.billed_net
        assert (c.reference, amount(c.amount), amount(c.consumed)) == (got.name, net, consumed), (
            seed,
            got,
            c,
        )
        if order.ended:
            # Cancelled (nothing received) or closed: all but the received and unbilled goes.
            assert amount(c.released) == net - received_net, (seed, got.name)
            assert amount(c.open_amount) == received_net - consumed, (seed, got.name)
        else:
            assert amount(c.released) == 0, (seed, got.name)
        assert amount(c.consumed) + amount(c.open_amount) >= received_net, (seed, got.name)
        closed = c.state == budget_pb2.COMMITMENT_STATE_CLOSED
        assert closed == (amount(c.open_amount) == 0), (seed, got.name)
        open_sum += amount(c.open_amount)
        billed_sum += order.billed_net
        commitments.add(got.commitment)
    assert len(commitments) == sum(1 for o in run.orders if w.get(o.name).commitment), seed
    budget = w.holder.finance.GetBudget(fpb.GetBudgetRequest(name=w.budget.name))
    # No commitment twice: a duplicate would hold budget that no order accounts for.
    assert amount(budget.committed) == open_sum, (seed, run.done)
    assert amount(budget.actual) == billed_sum, (seed, run.done)
    check_books_balance(suite, WY)
