"""The services' scenarios beyond the supplier register (issue 9): Get and List on each
service, requisitions, the whole purchase flow, journals, a contended budget, the HR import
and the reports over data at scale. Registered in `bench.scenarios.REGISTRY` on import
(`bench/scenarios.py` imports this module last).

Organisations: the shared-service unit (X00000101) keeps the register and lets the
framework contract; West Yorkshire (E23000010) raises requisitions and orders, keeps its
books and people; South Yorkshire (E23000011) holds the 5,000,000 posted journal lines;
Humberside (E23000012) imports its people; X00000102 holds the register of 1,000,000
suppliers. So scenarios that grow data do not change what the others read.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import functools
import itertools
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import grpc
from google.type import date_pb2, money_pb2

from backoffice.directory.v1 import directory_service_pb2
from backoffice.finance.v1 import budget_pb2, ledger_pb2
from backoffice.finance.v1 import finance_service_pb2 as fpb
from backoffice.hr.v1 import hr_service_pb2, person_pb2
from backoffice.procurement.v1 import (
    contract_pb2,
    procurement_service_pb2,
    purchase_order_pb2,
    requisition_pb2,
)
from bench import seed
from bench.harness import ROOT, child_env
from bench.scenarios import (
    COMMERCIAL,
    UNIT,
    Call,
    Clients,
    Fixture,
    Identity,
    Scenario,
    _new_supplier,
    register,
)
from libs.common.grpc_errors import refusal_details, status_of_rpc_error

WY = "E23000010"  # West Yorkshire
SY = "E23000011"  # South Yorkshire: the books with millions of posted lines
HUMBERSIDE = "E23000012"  # the HR import
BIG_REGISTER = "X00000102"  # the register grown to 1,000,000 suppliers
FY = 2025
POSTING_DAY = dt.date(2025, 5, 15)  # financial year 2025, period 2
PAGE = 100


def _gbp(pounds: str) -> money_pb2.Money:
    value = Decimal(pounds)
    units = int(value)
    return money_pb2.Money(currency_code="GBP", units=units, nanos=int((value - units) * 1_000_000_000))


def _date(day: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


async def _tolerating(call: Awaitable[object], *codes: grpc.StatusCode) -> None:
    """A setup step that may have run before (another scenario's setup made it)."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        if err.code() not in (grpc.StatusCode.ALREADY_EXISTS, *codes):
            raise


async def _gather_bounded(calls: Sequence[Callable[[], Awaitable[Any]]], in_flight: int = 8) -> list[Any]:
    """Make the calls, at most `in_flight` at a time (a grpc.aio call starts when it is
    made, so each is made only when its turn comes), in order."""
    gate = asyncio.Semaphore(in_flight)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


def _pool_share(clients: Clients, pool: Sequence[Any]) -> Iterator[Any]:
    """This process's share of a pool the setup made (each item used once in the run)."""
    return iter(pool[clients.process_index :: clients.processes])


# ---------------------------------------------------------------------------------------
# Directory: Get and List.


async def _organisations_setup(clients: Clients) -> Fixture:
    page = await clients.directory().ListOrganisations(
        directory_service_pb2.ListOrganisationsRequest(page_size=PAGE),
        metadata=clients.metadata,
        timeout=clients.timeout,
    )
    return {"names": [o.name for o in page.organisations], "first_page": len(page.organisations)}


def _get_organisation_call(clients: Clients, fixture: Fixture, rng: random.Random) -> Call:
    stub = clients.directory()
    names: Sequence[str] = fixture["names"]

    async def call() -> object:
        return await stub.GetOrganisation(
            directory_service_pb2.GetOrganisationRequest(name=rng.choice(names)),
            metadata=clients.metadata,
            timeout=clients.timeout,
        )

    return call


def _list_organisations_call(clients: Clients, fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.directory()
    request = directory_service_pb2.ListOrganisationsRequest(page_size=PAGE)
    expected: int = fixture["first_page"]

    async def call() -> object:
        response = await stub.ListOrganisations(request, metadata=clients.metadata, timeout=clients.timeout)
        if len(response.organisations) != expected:
            raise AssertionError(f"a page of {len(response.organisations)} organisations, not {expected}")
        return response

    return call


_ANYONE = Identity(UNIT, (COMMERCIAL,))
register(
    Scenario(
        "directory.get_organisation",
        "suite",
        "read",
        "GetOrganisation of a random one of the reference organisations",
        _get_organisation_call,
        identity=_ANYONE,
        setup=_organisations_setup,
    )
)
register(
    Scenario(
        "directory.list_organisations_100",
        "suite",
        "read",
        "ListOrganisations, first page of 100 (the whole reference catalogue: fewer than 100)",
        _list_organisations_call,
        identity=_ANYONE,
        setup=_organisations_setup,
    )
)


# ---------------------------------------------------------------------------------------
# Procurement: requisitions, and the whole purchase flow.

_REQUESTER = Identity(WY, ("procurement.requester",), subject="requester")
_APPROVER = Identity(WY, ("procurement.senior_budget_holder",), subject="approver")
_BUYER = Identity(WY, ("procurement.buyer",), subject="buyer")
_FINANCE_OFFICER = Identity(WY, ("finance.officer", "finance.budget_holder"), subject="finance-officer")
_COMMERCIAL = Identity(UNIT, (COMMERCIAL,), subject="commercial")
_CPV = "35811200-4"
_COST_CENTRES = ("LP100", "IN200", "SF300", "PC400")


def _requisition(n: int, lines: int = 5) -> procurement_service_pb2.CreateRequisitionRequest:
    return procurement_service_pb2.CreateRequisitionRequest(
        parent=f"organisations/{WY}",
        requisition=requisition_pb2.Requisition(
            title=f"Bench requisition {n}",
            lines=[
                requisition_pb2.RequisitionLine(
                    description=f"Item {i + 1}",
                    cpv_code=_CPV,
                    quantity={"value": "1"},
                    unit_price=_gbp("10.00"),
                    vat_rate_percent={"value": "20"},
                    cost_centre=_COST_CENTRES[i % len(_COST_CENTRES)],
                )
                for i in range(lines)
            ],
        ),
        request_id=str(uuid.uuid4()),
    )


def _create_requisition_call(clients: Clients, _fixture: Fixture, rng: random.Random) -> Call:
    stub = clients.procurement()
    numbers = itertools.count(rng.randrange(1_000_000) * 1_000_000)

    async def call() -> object:
        return await stub.CreateRequisition(
            _requisition(next(numbers)), metadata=clients.metadata, timeout=clients.timeout
        )

    return call


# The pool of drafts for submit+approve: more than the run can use (150 ran out at 180/s).
_DRAFTS_PER_SECOND = 500


async def _drafts_setup(clients: Clients) -> Fixture:
    stub = clients.procurement()
    size = min(20_000, max(50, round(clients.planned_seconds * _DRAFTS_PER_SECOND)))
    made = await _gather_bounded(
        [
            functools.partial(stub.CreateRequisition, _requisition(n), metadata=clients.metadata, timeout=60)
            for n in range(size)
        ]
    )
    return {"drafts": [[r.name, r.etag] for r in made]}


def _submit_approve_call(clients: Clients, fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.procurement()
    # One iterator per process, shared by its workers: each draft is used once.
    drafts = fixture.setdefault("_mine", _pool_share(clients, fixture["drafts"]))

    async def call() -> object:
        item = next(drafts, None)
        if item is None:
            raise AssertionError("the pool of drafts is used up: raise _DRAFTS_PER_SECOND")
        name, etag = item
        submitted = await stub.SubmitRequisition(
            procurement_service_pb2.SubmitRequisitionRequest(name=name, etag=etag),
            metadata=clients.metadata,
            timeout=clients.timeout,
        )
        return await stub.ApproveRequisition(
            procurement_service_pb2.ApproveRequisitionRequest(name=name, etag=submitted.etag),
            metadata=clients.as_("approver"),
            timeout=clients.timeout,
        )

    return call


async def finance_books(clients: Clients, caller: str, organisation: str) -> str:
    """A small chart, four cost centres, the chief constable's ledger with financial year
    2025 open; the ledger's name. Idempotent (each scenario's setup may call it)."""
    stub, md, parent = clients.finance(), clients.as_(caller), f"organisations/{organisation}"
    expenditure, asset = ledger_pb2.ACCOUNT_TYPE_EXPENDITURE, ledger_pb2.ACCOUNT_TYPE_ASSET
    sheet = ledger_pb2.SUBJECTIVE_HEADING_BALANCE_SHEET
    accounts = [
        ("1000", "Bank", asset, sheet),
        ("1200", "VAT recoverable", asset, sheet),
        ("1300", "Recharges", asset, sheet),
        ("2000", "Creditors", ledger_pb2.ACCOUNT_TYPE_LIABILITY, sheet),
        ("5100", "Equipment", expenditure, ledger_pb2.SUBJECTIVE_HEADING_SUPPLIES_AND_SERVICES),
        ("5500", "Vehicle fuel", expenditure, ledger_pb2.SUBJECTIVE_HEADING_TRANSPORT),
    ]
    for code, name, kind, heading in accounts:
        await _tolerating(
            stub.CreateAccount(
                fpb.CreateAccountRequest(
                    parent=parent,
                    account_id=code,
                    account=ledger_pb2.Account(display_name=name, type=kind, subjective=heading),
                ),
                metadata=md,
            )
        )
    for code in _COST_CENTRES:
        await _tolerating(
            stub.CreateCostCentre(
                fpb.CreateCostCentreRequest(
                    parent=parent,
                    cost_centre_id=code,
                    cost_centre=ledger_pb2.CostCentre(
                        display_name=f"Cost centre {code}",
                        poa_category=ledger_pb2.POA_CATEGORY_LOCAL_POLICING,
                    ),
                ),
                metadata=md,
            )
        )
    await _tolerating(
        stub.CreateLedger(
            fpb.CreateLedgerRequest(
                parent=parent,
                ledger_id="chief-constable",
                ledger=ledger_pb2.Ledger(
                    display_name=f"Chief Constable ({organisation})",
                    entity_kind=ledger_pb2.ENTITY_KIND_CHIEF_CONSTABLE,
                    creditors_account="2000",
                    vat_account="1200",
                    bank_account="1000",
                    recharges_account="1300",
                ),
            ),
            metadata=md,
        )
    )
    ledger = f"{parent}/ledgers/chief-constable"
    await _tolerating(
        stub.OpenFinancialYear(fpb.OpenFinancialYearRequest(ledger=ledger, financial_year=FY), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    return ledger


async def _budget(
    clients: Clients, caller: str, ledger: str, cost_centre: str, period: str, amount: str
) -> str:
    try:
        created = await clients.finance().CreateBudget(
            fpb.CreateBudgetRequest(
                parent=ledger,
                budget=budget_pb2.Budget(
                    cost_centre=cost_centre, account="5100", period=period, amount=_gbp(amount)
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=clients.as_(caller),
        )
    except grpc.aio.AioRpcError as err:
        # A second server on the same database (the workers run) finds the first's budget.
        existing = refusal_details(status_of_rpc_error(err))[1].get("budget")
        if err.code() is not grpc.StatusCode.ALREADY_EXISTS or not existing:
            raise
        return existing
    return str(created.name)


async def _flow_setup(clients: Clients) -> Fixture:
    """Books and a budget with room for millions of orders in West Yorkshire; a supplier
    and a live framework contract of the unit's that West Yorkshire takes part in."""
    ledger = await finance_books(clients, "finance", WY)
    budget = await _budget(clients, "finance", ledger, "LP100", f"{FY}-02", "1000000000.00")
    stub, md = clients.procurement(), clients.as_("commercial")
    supplier = await stub.CreateSupplier(_new_supplier(0), metadata=md, timeout=clients.timeout)
    today = dt.datetime.now(dt.UTC).date()
    framework = await stub.CreateContract(
        procurement_service_pb2.CreateContractRequest(
            parent=f"organisations/{UNIT}",
            contract=contract_pb2.Contract(
                reference=f"BENCH-{uuid.uuid4().hex[:8]}",
                title="Body armour",
                description="Covert body armour for officers",
                department="Commercial",
                supplier=supplier.name,
                kind=contract_pb2.CONTRACT_KIND_FRAMEWORK,
                cpv_codes=[_CPV],
                value=_gbp("1000000000.00"),
                start_date=_date(today - dt.timedelta(days=10)),
                end_date=_date(today + dt.timedelta(days=365)),
                procurement_method=contract_pb2.PROCUREMENT_METHOD_OPEN,
                participants=[f"organisations/{WY}"],
            ),
        ),
        metadata=md,
        timeout=clients.timeout,
    )
    return {"budget": budget, "contract": framework.name}


# What a flow step is handed: the step's name (its RPC) and the call in flight.
Step = Callable[[str, Awaitable[Any]], Awaitable[Any]]


async def _just_await(_name: str, rpc: Awaitable[Any]) -> Any:
    return await rpc


def purchase_flow(clients: Clients, fixture: Fixture, rng: random.Random, step: Step = _just_await) -> Call:
    """One flow, as a force's purchasing system drives it: a 5-line requisition created,
    submitted, approved (by another person), ordered against the framework with the
    budget, and issued (finance commits the budget through procurement's outbox). Each RPC
    goes through `step` (bench/flow_steps.py measures the server's CPU around each)."""
    stub = clients.procurement()
    numbers = itertools.count(rng.randrange(1_000_000) * 1_000_000)
    me, buyer, timeout = clients.metadata, clients.as_("buyer"), clients.timeout

    async def call() -> object:
        r = await step(
            "CreateRequisition",
            stub.CreateRequisition(_requisition(next(numbers)), metadata=me, timeout=timeout),
        )
        r = await step(
            "SubmitRequisition",
            stub.SubmitRequisition(
                procurement_service_pb2.SubmitRequisitionRequest(name=r.name, etag=r.etag),
                metadata=me,
                timeout=timeout,
            ),
        )
        r = await step(
            "ApproveRequisition",
            stub.ApproveRequisition(
                procurement_service_pb2.ApproveRequisitionRequest(name=r.name, etag=r.etag),
                metadata=clients.as_("approver"),
                timeout=timeout,
            ),
        )
        order = await step(
            "CreatePurchaseOrder",
            stub.CreatePurchaseOrder(
                procurement_service_pb2.CreatePurchaseOrderRequest(
                    parent=f"organisations/{WY}",
                    purchase_order=purchase_order_pb2.PurchaseOrder(
                        requisition=r.name,
                        contract=fixture["contract"],
                        budget=fixture["budget"],
                        delivery_address="Stores, Wakefield",
                    ),
                    request_id=str(uuid.uuid4()),
                ),
                metadata=buyer,
                timeout=timeout,
            ),
        )
        issued = await step(
            "IssuePurchaseOrder",
            stub.IssuePurchaseOrder(
                procurement_service_pb2.IssuePurchaseOrderRequest(
                    name=order.name, request_id=str(uuid.uuid4())
                ),
                metadata=buyer,
                timeout=timeout,
            ),
        )
        if issued.state != purchase_order_pb2.PURCHASE_ORDER_STATE_ISSUED:
            state = purchase_order_pb2.PurchaseOrderState.Name(issued.state)
            raise AssertionError(f"the order is {state}, not ISSUED ({issued.commitment_refusal})")
        return issued

    return call


register(
    Scenario(
        "procurement.create_requisition",
        "suite",
        "write",
        "CreateRequisition of 5 lines as a force's requester (fresh request_id)",
        _create_requisition_call,
        identity=_REQUESTER,
    )
)
register(
    Scenario(
        "procurement.submit_approve",
        "suite",
        "write",
        "SubmitRequisition by the requester then ApproveRequisition by an approver, of drafts "
        "made beforehand (one call = both RPCs)",
        _submit_approve_call,
        identity=_REQUESTER,
        identities=(("approver", _APPROVER),),
        setup=_drafts_setup,
    )
)
register(
    Scenario(
        "procurement.purchase_flow",
        "suite",
        "write",
        "the whole purchase flow (one call = create 5-line requisition, submit, approve, "
        "raise the order against a budget, issue it: 5 RPCs and finance's commitment): flows/s",
        purchase_flow,
        identity=_REQUESTER,
        identities=(
            ("approver", _APPROVER),
            ("buyer", _BUYER),
            ("finance", _FINANCE_OFFICER),
            ("commercial", _COMMERCIAL),
        ),
        setup=_flow_setup,
        client_processes=(1, 4),
    )
)


# ---------------------------------------------------------------------------------------
# Procurement: List flat with the size of the register (keyset paging).

_BIG_COMMERCIAL = Identity(BIG_REGISTER, (COMMERCIAL,))


async def _big_register_setup(clients: Clients) -> Fixture:
    """One supplier made through the API: the template the register is cloned from."""
    request = _new_supplier(0)
    request.parent = f"organisations/{BIG_REGISTER}"
    made = await clients.procurement().CreateSupplier(request, metadata=clients.metadata, timeout=60)
    return {"template": made.name.rsplit("/", 1)[1]}


def _grow_register(seeder: seed.Seeder, template: str, size: int) -> None:
    """The register of BIG_REGISTER grown to `size` suppliers: copies of the template with
    ids `<template>-0000001`, ... (so the keyset order is the series' order)."""
    with seeder.connect("procurement") as conn:
        have = seed.count(conn, "suppliers", {"organisation_code": BIG_REGISTER})
        if have < size:
            seed.clone(
                conn,
                "suppliers",
                {"organisation_code": BIG_REGISTER, "id": template},
                have,
                size,
                {"id": "t.id || '-' || {pad}", "display_name": "'Bench Supplier ' || g.n || ' Ltd'"},
                label="suppliers",
            )


def _deep_page(seeder: seed.Seeder, template: str, size: int) -> dict[str, Any]:
    """A page token for the page of 100 in the middle of a register of `size`."""
    middle = size // 2
    key = (BIG_REGISTER, f"{template}-{middle:07d}")
    token = seeder.page_token("suppliers", f"organisations/{BIG_REGISTER}", key)
    return {"template": template, "rows": size, "page_token": token}


def _prepare_small(seeder: seed.Seeder, fixture: Fixture) -> Fixture:
    template = fixture["template"]
    seeder.state["register_template"] = template
    _grow_register(seeder, template, seeder.sizes["list_small"])
    return _deep_page(seeder, template, seeder.sizes["list_small"])


def _prepare_large(seeder: seed.Seeder, _fixture: Fixture) -> Fixture:
    template = seeder.state["register_template"]
    _grow_register(seeder, template, seeder.sizes["list_large"])
    return _deep_page(seeder, template, seeder.sizes["list_large"])


def _deep_list_call(clients: Clients, fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.procurement()
    request = procurement_service_pb2.ListSuppliersRequest(
        parent=f"organisations/{BIG_REGISTER}", page_size=PAGE, page_token=fixture["page_token"]
    )

    async def call() -> object:
        response = await stub.ListSuppliers(request, metadata=clients.metadata, timeout=clients.timeout)
        if len(response.suppliers) != PAGE:
            raise AssertionError(f"a page of {len(response.suppliers)} suppliers, not {PAGE}")
        return response

    return call


register(
    Scenario(
        "procurement.list_suppliers_deep_small",
        "suite",
        "read",
        "ListSuppliers, the page of 100 in the middle of a register of list_small suppliers "
        "(10,000 at --scale full), one call at a time",
        _deep_list_call,
        identity=_BIG_COMMERCIAL,
        setup=_big_register_setup,
        prepare=_prepare_small,
        concurrency=1,
    )
)
register(
    Scenario(
        "procurement.list_suppliers_deep_large",
        "suite",
        "read",
        "the same page in the middle of the same register grown to list_large suppliers "
        "(1,000,000 at --scale full), one call at a time",
        _deep_list_call,
        identity=_BIG_COMMERCIAL,
        prepare=_prepare_large,
        concurrency=1,
        needs=("procurement.list_suppliers_deep_small",),
    )
)


# ---------------------------------------------------------------------------------------
# Finance: journals, a contended budget, reports over millions of lines.

_OFFICER = Identity(WY, ("finance.officer", "finance.budget_holder"), subject="finance-officer")


def _journal_request(ledger: str, n: int, day: dt.date = POSTING_DAY) -> fpb.PostJournalRequest:
    """Ten lines: five debits on equipment across the cost centres, five credits to bank."""
    lines = []
    for i in range(5):
        lines.append(
            ledger_pb2.JournalLine(
                account="5100", cost_centre=_COST_CENTRES[i % len(_COST_CENTRES)], debit=_gbp(f"{10 + i}.00")
            )
        )
        lines.append(ledger_pb2.JournalLine(account="1000", credit=_gbp(f"{10 + i}.00")))
    return fpb.PostJournalRequest(
        parent=ledger,
        journal=ledger_pb2.Journal(posting_date=_date(day), description=f"Bench journal {n}", lines=lines),
        request_id=str(uuid.uuid4()),
    )


async def _books_setup(clients: Clients) -> Fixture:
    return {"ledger": await finance_books(clients, "self", WY)}


def _post_journal_call(clients: Clients, fixture: Fixture, rng: random.Random) -> Call:
    stub = clients.finance()
    numbers = itertools.count(rng.randrange(1_000_000) * 1_000_000)

    async def call() -> object:
        return await stub.PostJournal(
            _journal_request(fixture["ledger"], next(numbers)),
            metadata=clients.metadata,
            timeout=clients.timeout,
        )

    return call


async def _journals_setup(clients: Clients) -> Fixture:
    ledger = await finance_books(clients, "self", WY)
    stub = clients.finance()
    posted = await _gather_bounded(
        [
            functools.partial(
                stub.PostJournal, _journal_request(ledger, n), metadata=clients.metadata, timeout=60
            )
            for n in range(120)
        ]
    )
    return {"ledger": ledger, "names": [j.name for j in posted]}


def _get_journal_call(clients: Clients, fixture: Fixture, rng: random.Random) -> Call:
    stub = clients.finance()
    names: Sequence[str] = fixture["names"]

    async def call() -> object:
        return await stub.GetJournal(
            fpb.GetJournalRequest(name=rng.choice(names)), metadata=clients.metadata, timeout=clients.timeout
        )

    return call


def _list_journals_call(clients: Clients, fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.finance()
    request = fpb.ListJournalsRequest(parent=fixture["ledger"], page_size=PAGE)

    async def call() -> object:
        response = await stub.ListJournals(request, metadata=clients.metadata, timeout=clients.timeout)
        if len(response.journals) != PAGE:
            raise AssertionError(f"a page of {len(response.journals)} journals, not {PAGE}")
        return response

    return call


async def _contended_setup(clients: Clients) -> Fixture:
    ledger = await finance_books(clients, "self", WY)
    return {
        "ledger": ledger,
        "budget": await _budget(clients, "self", ledger, "IN200", f"{FY}-03", "1000000000.00"),
    }


def _raise_commitment_call(clients: Clients, fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.finance()

    async def call() -> object:
        return await stub.RaiseCommitment(
            fpb.RaiseCommitmentRequest(
                parent=fixture["ledger"],
                commitment=budget_pb2.Commitment(
                    budget=fixture["budget"], amount=_gbp("1.00"), reference="bench"
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=clients.metadata,
            timeout=clients.timeout,
        )

    return call


_SELF = (("self", _OFFICER),)
register(
    Scenario(
        "finance.get_journal",
        "suite",
        "read",
        "GetJournal (ten lines) of a random one of 120 posted beforehand",
        _get_journal_call,
        identity=_OFFICER,
        identities=_SELF,
        setup=_journals_setup,
    )
)
register(
    Scenario(
        "finance.list_journals",
        "suite",
        "read",
        "ListJournals, first page of 100 journals of ten lines",
        _list_journals_call,
        identity=_OFFICER,
        identities=_SELF,
        setup=_journals_setup,
    )
)
register(
    Scenario(
        "finance.post_journal",
        "suite",
        "write",
        "PostJournal of ten lines (five cost centres): period check, lines, running balances, audit",
        _post_journal_call,
        identity=_OFFICER,
        identities=_SELF,
        setup=_books_setup,
    )
)
register(
    Scenario(
        "finance.raise_commitment_contended",
        "suite",
        "write",
        "RaiseCommitment of £1 by every caller against one and the same budget "
        "(the budget row is the contention)",
        _raise_commitment_call,
        identity=_OFFICER,
        identities=_SELF,
        setup=_contended_setup,
    )
)

_SY_OFFICER = Identity(SY, ("finance.officer",), subject="sy-finance-officer")


async def _reports_setup(clients: Clients) -> Fixture:
    """South Yorkshire's books, a budget per cost centre and period, and one posted journal
    of ten lines: the template of the millions that `prepare` clones."""
    ledger = await finance_books(clients, "self", SY)
    await _gather_bounded(
        [
            functools.partial(_budget, clients, "self", ledger, cc, f"{FY}-{period:02d}", "50000.00")
            for cc in _COST_CENTRES
            for period in range(1, 13)
        ]
    )
    posted = await clients.finance().PostJournal(
        _journal_request(ledger, 0), metadata=clients.metadata, timeout=60
    )
    return {"ledger": ledger, "template": posted.name.rsplit("/", 1)[1]}


def _prepare_reports(seeder: seed.Seeder, fixture: Fixture) -> Fixture:
    """The template journal cloned until the ledger holds `journal_lines` lines, spread over
    the year's twelve periods; then the balances rebuilt from every line of the ledger,
    as PostJournal keeps them (per period, account, cost centre, counterparty; and per
    account). Idempotent: a second call adds nothing."""
    if seeder.state.get("journals_seeded"):
        return fixture
    journals = seeder.sizes["journal_lines"] // 10
    key = {"organisation_code": SY, "ledger_id": "chief-constable"}
    with seeder.connect("finance") as conn:
        pg = conn.dialect.name == "postgresql"
        period = "((g.n - 1) % 12) + 1"
        day = (
            f"(date '{FY}-04-15' + ((g.n - 1) % 12) * interval '1 month')::date"
            if pg
            else f"date('{FY}-04-15', '+' || ((g.n - 1) % 12) || ' months')"
        )
        seed.clone(
            conn,
            "journals",
            {**key, "id": fixture["template"]},
            1,
            journals,
            {"id": "t.id || '-' || {pad}", "period": period, "posting_date": day},
            label="journals",
        )
        seed.clone(
            conn,
            "journal_lines",
            {**key, "journal_id": fixture["template"]},
            1,
            journals,
            {"journal_id": "t.journal_id || '-' || {pad}"},
            label="journal lines",
        )
        rebuild_balances(conn, SY, "chief-constable")
    seeder.state["journals_seeded"] = True
    seeder.state["reports"] = {**fixture, "journal_lines": journals * 10}
    return dict(seeder.state["reports"])


def _reports_fixture(seeder: seed.Seeder, _fixture: Fixture) -> Fixture:
    """The books finance.trial_balance's setup and prepare made (it runs first)."""
    return dict(seeder.state["reports"])


def rebuild_balances(conn: Any, organisation: str, ledger: str) -> None:
    from sqlalchemy import text

    where = {"o": organisation, "l": ledger}
    join = (
        "FROM journal_lines l JOIN journals j ON j.organisation_code = l.organisation_code "
        "AND j.ledger_id = l.ledger_id AND j.id = l.journal_id "
        "WHERE l.organisation_code = :o AND l.ledger_id = :l"
    )
    for table, by in (
        ("ledger_balances", "l.account_code, l.cost_centre_code, l.counterparty_ledger"),
        ("account_balances", "l.account_code, l.counterparty_ledger"),
    ):
        columns = by.replace("l.", "")
        conn.execute(text(f"DELETE FROM {table} WHERE organisation_code = :o AND ledger_id = :l"), where)
        conn.execute(
            text(
                f"INSERT INTO {table} (organisation_code, ledger_id, financial_year, period, {columns}, "
                f"debit_pence, credit_pence) SELECT l.organisation_code, l.ledger_id, j.financial_year, "
                f"j.period, {by}, sum(l.debit_pence), sum(l.credit_pence) {join} "
                f"GROUP BY l.organisation_code, l.ledger_id, j.financial_year, j.period, {by}"
            ),
            where,
        )
        conn.commit()
        seed.analyse(conn, table)


def _trial_balance_call(clients: Clients, fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.finance()
    request = fpb.GetTrialBalanceRequest(ledger=fixture["ledger"], financial_year=FY)

    async def call() -> object:
        tb = await stub.GetTrialBalance(request, metadata=clients.metadata, timeout=clients.timeout)
        if tb.total_debit != tb.total_credit or not tb.rows:
            raise AssertionError("the trial balance does not balance, or is empty")
        return tb

    return call


def _budget_report_call(clients: Clients, fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.finance()
    request = fpb.GetBudgetReportRequest(ledger=fixture["ledger"], financial_year=FY)

    async def call() -> object:
        return await stub.GetBudgetReport(request, metadata=clients.metadata, timeout=clients.timeout)

    return call


register(
    Scenario(
        "finance.trial_balance",
        "suite",
        "read",
        "GetTrialBalance of one entity (ledger) and year over journal_lines posted lines "
        "(5,000,000 at --scale full), one call at a time",
        _trial_balance_call,
        identity=_SY_OFFICER,
        identities=(("self", _SY_OFFICER),),
        setup=_reports_setup,
        prepare=_prepare_reports,
        concurrency=1,
    )
)
register(
    Scenario(
        "finance.budget_report",
        "suite",
        "read",
        "GetBudgetReport (budget against actual) of the same entity and year, one call at a time",
        _budget_report_call,
        identity=_SY_OFFICER,
        prepare=_reports_fixture,
        concurrency=1,
        needs=("finance.trial_balance",),
    )
)


# ---------------------------------------------------------------------------------------
# HR: Get and List, the bulk import, workforce statistics.

_HR_OFFICER = Identity(WY, ("hr.officer",), subject="hr-officer")
_IMPORTER = Identity(HUMBERSIDE, ("hr.officer",), subject="hr-importer")
_PLANNER = Identity(HUMBERSIDE, ("hr.workforce_planner",), subject="planner")
_IMPORT_FILE_ROWS = 10_000  # `backoffice hr import`'s and BatchCreatePeople's limit
# The command's `--in-flight`: files being recorded at once while it checks the next. One, as
# a force would run it: the service is kept busy by the next file being checked meanwhile.
IMPORT_IN_FLIGHT = 1
# The command is stopped after this many seconds (the file under way is then not committed
# or not counted): the run stays bounded when the import is far slower than its target; the
# figure is then the rate reached, and the people not imported are cloned (`_top_up_people`)
# so that workforce statistics still read the full number.
IMPORT_BUDGET_SECONDS = 90.0
# The command's lines about each file (named first when there are several).
_IMPORTED = re.compile(r"^(?:\S+: )?imported (\d+) people")
_REFUSED = re.compile(r"nothing was imported\s*$")


def _person(n: int, ni_prefix: str) -> hr_service_pb2.CreatePersonRequest:
    return hr_service_pb2.CreatePersonRequest(
        person=person_pb2.Person(
            worker_type=person_pb2.WORKER_TYPE_POLICE_STAFF,
            given_name="Sam",
            family_name=f"Bench{n}",
            national_insurance_number=f"{ni_prefix}{n:06d}A",
            sex=person_pb2.SEX_FEMALE if n % 2 else person_pb2.SEX_MALE,
            ethnicity=person_pb2.ETHNICITY_WHITE_BRITISH,
            join_date=_date(dt.date(2015 + n % 10, 4, 1)),
        ),
        person_id=f"bench-{n:06d}",
    )


async def _people_setup(clients: Clients) -> Fixture:
    stub = clients.hr()
    try:
        await stub.BatchCreatePeople(
            hr_service_pb2.BatchCreatePeopleRequest(
                parent=f"organisations/{WY}", requests=[_person(n, "CE") for n in range(200)]
            ),
            metadata=clients.metadata,
            timeout=120,
        )
    except grpc.aio.AioRpcError as err:
        if err.code() is not grpc.StatusCode.ALREADY_EXISTS:  # the other scenario's setup made them
            raise
    return {"names": [f"organisations/{WY}/people/bench-{n:06d}" for n in range(200)]}


def _get_person_call(clients: Clients, fixture: Fixture, rng: random.Random) -> Call:
    stub = clients.hr()
    names: Sequence[str] = fixture["names"]

    async def call() -> object:
        return await stub.GetPerson(
            hr_service_pb2.GetPersonRequest(name=rng.choice(names)),
            metadata=clients.metadata,
            timeout=clients.timeout,
        )

    return call


def _list_people_call(clients: Clients, _fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.hr()
    request = hr_service_pb2.ListPeopleRequest(parent=f"organisations/{WY}", page_size=PAGE)

    async def call() -> object:
        response = await stub.ListPeople(request, metadata=clients.metadata, timeout=clients.timeout)
        if len(response.people) != PAGE:
            raise AssertionError(f"a page of {len(response.people)} people, not {PAGE}")
        return response

    return call


def _import_job(job: seed.Job, _fixture: Fixture) -> dict[str, Any]:
    """`backoffice hr import` of `people` people into Humberside, in files of 10,000 (its
    limit), all files to one run of the real command (its start-up once, its checks of each
    file while the one before is recorded, one BatchCreatePeople per file). A result as a
    load generator's: one "call" per file, its latency the time from the one before."""
    people = job.sizes["people"]
    files = []
    worker_types = ("police_officer", "police_staff", "pcso")
    for first in range(0, people, _IMPORT_FILE_ROWS):
        path = job.work / f"people-{first:07d}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(
                [
                    "person_id",
                    "worker_type",
                    "given_name",
                    "family_name",
                    "collar_number",
                    "national_insurance_number",
                    "sex",
                    "ethnicity",
                    "join_date",
                ]
            )
            for n in range(first, min(first + _IMPORT_FILE_ROWS, people)):
                kind = worker_types[n % 3]
                out.writerow(
                    [
                        f"p{n:07d}",
                        kind,
                        "Alex",
                        f"Import{n}",
                        str(10_000 + n) if kind == "police_officer" else "",
                        f"AB{n:06d}C",
                        "female" if n % 2 else "male",
                        "white_british",
                        f"{2000 + n % 25}-{1 + n % 12:02d}-01",
                    ]
                )
        files.append(path)
    command = [sys.executable, "-c", "from services.suite.cli import main; main()", "hr", "import"]
    options = ["--org", HUMBERSIDE, "--token", job.token, "--target", job.addresses["hr"]]
    latencies: list[int] = []
    errors: dict[str, int] = {}
    samples: dict[str, str] = {}
    imported = files_imported = 0
    log_path = job.work / "import.log"
    began = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [*command, *map(str, files), *options, "--in-flight", str(IMPORT_IN_FLIGHT)],
            cwd=ROOT,
            env=child_env({"COLUMNS": "120"}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out_of_time = threading.Event()

        def stop() -> None:
            out_of_time.set()
            proc.terminate()

        timer = threading.Timer(IMPORT_BUDGET_SECONDS, stop)
        timer.start()
        last = began
        assert proc.stdout is not None
        try:
            for line in proc.stdout:  # a line as each file is reported
                log.write(line)
                now = time.monotonic()
                if done := _IMPORTED.match(line):
                    imported += int(done.group(1))
                    files_imported += 1
                elif _REFUSED.search(line):
                    errors["REFUSED"] = errors.get("REFUSED", 0) + 1
                    samples.setdefault("REFUSED", line.strip()[-300:])
                else:
                    continue
                latencies.append(round((now - last) * 1e6))
                last = now
            proc.wait(60)
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    seconds = time.monotonic() - began
    # Exit 1 with a file refused is that file's error, counted above; stopped by the budget is
    # no error (the figure is then the rate reached); anything else is the command's failure.
    if proc.returncode != 0 and not out_of_time.is_set() and not (proc.returncode == 1 and errors):
        code = f"EXIT_{proc.returncode}"
        errors[code] = 1
        samples[code] = log_path.read_text(errors="replace")[-300:]
    rate = imported / seconds if seconds else 0.0
    return {
        "latencies_us": latencies,
        "errors": errors,
        "error_samples": samples,
        "calls_total": len(latencies),
        "stuck_calls": 0,
        "measured_seconds": seconds,
        "extra": {
            "people": people,
            "people_imported": imported,
            "files": len(files),
            "files_imported": files_imported,
            "seconds": round(seconds, 2),
            "people_per_s": round(rate, 1),
            "seconds_for_all_at_this_rate": round(people / rate, 1) if rate else None,
        },
    }


def _top_up_people(seeder: seed.Seeder, fixture: Fixture) -> Fixture:
    """Humberside's people made up to `people` by cloning the imported ones (when the import
    ran out of its time budget): the same columns as imported, fresh ids and NI numbers; then
    the tables' planner statistics brought up to date."""
    size = seeder.sizes["people"]
    with seeder.connect("hr") as conn:
        have = seed.count(conn, "people", {"organisation_code": HUMBERSIDE})
        if 0 < have < size:
            n = seed.pad(conn.dialect.name, "g.n", 7)
            six = seed.pad(conn.dialect.name, "g.n", 6)
            seed.clone(
                conn,
                "people",
                {"organisation_code": HUMBERSIDE, "id": "p0000001"},  # police staff: no collar number
                0,
                size,
                {"id": f"'p' || {n}", "national_insurance_number": f"'AB' || {six} || 'C'"},
                label="people",
                skip_existing=True,  # person n of the import has id p<n> and NI AB<n>C too
            )
        # What autovacuum does after a bulk load in production; this machine's PostgreSQL
        # runs with autovacuum off, so without it the planner would know nothing of them.
        for table in ("people", "assignments"):
            seed.analyse(conn, table)
    return {**(fixture or {}), "people": size}


def _workforce_statistics_call(clients: Clients, _fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.hr()
    today = dt.datetime.now(dt.UTC).date()
    request = hr_service_pb2.GetWorkforceStatisticsRequest(
        parent=f"organisations/{HUMBERSIDE}", as_at_date=_date(today)
    )

    async def call() -> object:
        return await stub.GetWorkforceStatistics(request, metadata=clients.metadata, timeout=clients.timeout)

    return call


register(
    Scenario(
        "hr.get_person",
        "suite",
        "read",
        "GetPerson of a random one of 200 people created beforehand",
        _get_person_call,
        identity=_HR_OFFICER,
        setup=_people_setup,
    )
)
register(
    Scenario(
        "hr.list_people",
        "suite",
        "read",
        "ListPeople, first page of 100",
        _list_people_call,
        identity=_HR_OFFICER,
        setup=_people_setup,
    )
)
register(
    Scenario(
        "hr.import",
        "suite",
        "job",
        "`backoffice hr import` of `people` people (250,000 at --scale full) in files of 10,000, "
        f"all to one run of the command ({IMPORT_IN_FLIGHT} in flight): one call = one file (check "
        "every row, one BatchCreatePeople)",
        _get_person_call,  # not used: the job runs instead of a load
        identity=_IMPORTER,
        job=_import_job,
    )
)
register(
    Scenario(
        "hr.workforce_statistics",
        "suite",
        "read",
        "GetWorkforceStatistics as at today over the people imported by hr.import, one call at a time",
        _workforce_statistics_call,
        identity=_PLANNER,
        prepare=_top_up_people,
        concurrency=1,
        needs=("hr.import",),
    )
)
