"""gRPC servicer of finance: protobuf in, use case, protobuf out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from google.type import date_pb2, decimal_pb2, money_pb2

from backoffice.finance.v1 import (
    budget_pb2,
    finance_service_pb2_grpc,
    ledger_pb2,
    payables_pb2,
    recharge_pb2,
    reports_pb2,
)
from backoffice.finance.v1 import finance_service_pb2 as pb
from libs.common.access import RoleCatalogue
from libs.common.errors import InvalidArgument, Violations
from libs.common.filtering import Comparison, FieldType, parse_filter
from libs.common.grpc_types import RpcContext
from libs.common.names import ChildName, OrganisationName
from libs.common.paging import JsonKey, ListRequest
from libs.common.peers import Peers
from libs.common.proto_mapping import (
    audit_metadata,
    business_date_from_proto,
    date_to_proto,
    money_from_proto,
    money_to_proto,
)
from libs.common.service import ServiceKernel
from services.finance import service
from services.finance.api.collaborators import HrWorkforce, ProcurementOrders, WorkforceBasis, suite_order
from services.finance.api.names import LedgerChildName, LedgerName
from services.finance.domain.budgets import BudgetPosition, Commitment, CommitmentState
from services.finance.domain.chart import (
    Account,
    AccountType,
    CostCentre,
    EntityKind,
    Ledger,
    LedgerDetails,
    PoaCategory,
    SubjectiveHeading,
)
from services.finance.domain.compliance import ComplianceFigures
from services.finance.domain.invoices import (
    Invoice,
    InvoiceDetails,
    InvoiceLine,
    InvoiceState,
    MatchState,
    PaymentRun,
    VatUse,
)
from services.finance.domain.journals import Journal, LineInput
from services.finance.domain.matching import (
    CallerOrderSource,
    OrderEvidence,
    OrderLine,
    OrderSource,
    ReceiptLine,
    SuppliedOrderSource,
)
from services.finance.domain.money import ZERO
from services.finance.domain.periods import Period, PeriodKey
from services.finance.domain.recharges import Recharge
from services.finance.domain.reports import BudgetReportRow, TrialBalance
from services.finance.domain.spend import SpendFileFormat
from services.finance.domain.vat import VatAnalysis
from services.finance.roles import OVERRIDE_PERMISSION

E = TypeVar("E")


def _enum_in(wrapper: Any, prefix: str, domain: type[E], value: int) -> E | None:
    """A proto enum value as the domain's enum; None for unset or unknown values."""
    if value == 0:
        return None
    try:
        return domain(wrapper.Name(value).removeprefix(prefix))  # type: ignore[call-arg]
    except ValueError:
        return None


def _enum_out(wrapper: Any, prefix: str, member: Any) -> int:
    value: int = wrapper.Value(prefix + member.value)
    return value


def _decimal(value: decimal_pb2.Decimal, field_path: str) -> Decimal:
    try:
        number = Decimal(value.value)
    except InvalidOperation:
        raise InvalidArgument.single(field_path, "must be a decimal number such as 12 or 2.5") from None
    if not number.is_finite():
        raise InvalidArgument.single(field_path, "must be a finite decimal number")
    return number


def _decimal_out(value: Decimal) -> decimal_pb2.Decimal:
    return decimal_pb2.Decimal(value=str(value))


def _date(value: date_pb2.Date, field_path: str) -> dt.date | None:
    """Every date finance reads from a request: a day in the years it computes within."""
    return business_date_from_proto(value, field_path)


def _required_date(v: Violations, value: date_pb2.Date, field_path: str) -> dt.date | None:
    """The day, or None with its problem (a bad day, or none given) kept in `v`."""
    before = len(v.items)
    day = v.parsed(_date, value, field_path)
    if day is None and len(v.items) == before:
        v.add(field_path, "is required")
    return day


def _optional_money(msg: Any, field: str, field_path: str) -> Decimal | None:
    if not msg.HasField(field):
        return None
    value: money_pb2.Money = getattr(msg, field)
    return money_from_proto(value, field_path)


def _money(value: money_pb2.Money, field_path: str) -> Decimal:
    return money_from_proto(value, field_path)


# --- mapping out -------------------------------------------------------------------------


def ledger_to_proto(ledger: Ledger) -> ledger_pb2.Ledger:
    d = ledger.details
    assert d.entity_kind is not None
    return ledger_pb2.Ledger(
        name=ledger.name,
        display_name=d.display_name,
        entity_kind=_enum_out(ledger_pb2.EntityKind, "ENTITY_KIND_", d.entity_kind),  # type: ignore[arg-type]
        creditors_account=d.creditors_account,
        vat_account=d.vat_account,
        bank_account=d.bank_account,
        recharges_account=d.recharges_account,
        audit=audit_metadata(ledger.info),
    )


def account_to_proto(account: Account) -> ledger_pb2.Account:
    return ledger_pb2.Account(
        name=account.name,
        display_name=account.display_name,
        type=_enum_out(ledger_pb2.AccountType, "ACCOUNT_TYPE_", account.type),  # type: ignore[arg-type]
        subjective=_enum_out(ledger_pb2.SubjectiveHeading, "SUBJECTIVE_HEADING_", account.subjective),  # type: ignore[arg-type]
        audit=audit_metadata(account.info),
    )


def cost_centre_to_proto(cc: CostCentre) -> ledger_pb2.CostCentre:
    return ledger_pb2.CostCentre(
        name=cc.name,
        display_name=cc.display_name,
        poa_category=_enum_out(ledger_pb2.PoaCategory, "POA_CATEGORY_", cc.poa_category),  # type: ignore[arg-type]
        audit=audit_metadata(cc.info),
    )


def period_to_proto(p: Period) -> ledger_pb2.Period:
    return ledger_pb2.Period(
        name=p.name,
        financial_year=p.key.year,
        number=p.key.number,
        start_date=date_to_proto(p.key.start),
        end_date=date_to_proto(p.key.end),
        state=_enum_out(ledger_pb2.PeriodState, "PERIOD_STATE_", p.state),  # type: ignore[arg-type]
        etag=p.info.etag,
    )


def journal_to_proto(j: Journal) -> ledger_pb2.Journal:
    lines = [
        ledger_pb2.JournalLine(
            account=line.account,
            cost_centre=line.cost_centre,
            description=line.description,
            counterparty_ledger=line.counterparty_ledger,
            **(
                {"debit": money_to_proto(line.debit)}
                if line.debit > 0
                else {"credit": money_to_proto(line.credit)}
            ),
        )
        for line in j.lines
    ]
    return ledger_pb2.Journal(
        name=j.name,
        posting_date=date_to_proto(j.posting_date),
        description=j.description,
        lines=lines,
        period=f"{j.ledger_name}/periods/{j.period}",
        source=_enum_out(ledger_pb2.JournalSource, "JOURNAL_SOURCE_", j.source),  # type: ignore[arg-type]
        source_resource=j.source_resource,
        reversal_of=f"{j.ledger_name}/journals/{j.reversal_of}" if j.reversal_of else "",
        reversed_by=f"{j.ledger_name}/journals/{j.reversed_by}" if j.reversed_by else "",
        total=money_to_proto(j.total),
        audit=audit_metadata(j.info),
    )


_BUDGET_FILTERS = {
    "cost_centre": FieldType.STRING,
    "account": FieldType.STRING,
    "financial_year": FieldType.INT,
}
_COMMITMENT_FILTERS = {"budget": FieldType.STRING, "state": FieldType.ENUM, "reference": FieldType.STRING}


def _commitment_comparisons(text: str, ledger: LedgerName) -> list[Comparison]:
    """The filter's comparisons, with a budget's name as its id and a state as its value."""
    out: list[Comparison] = []
    for c in parse_filter(text, _COMMITMENT_FILTERS):
        if c.field == "budget":
            if c.op not in ("=", "!="):
                raise InvalidArgument.single("filter", "budget takes = or != and a budget's name")
            budget = LedgerChildName.parse(str(c.value), "budgets", "filter")
            if (budget.organisation, budget.ledger) != (ledger.organisation, ledger.ledger):
                raise InvalidArgument.single("filter", f"{budget} is not a budget of {ledger}")
            out.append(Comparison(c.field, c.op, budget.id))
        elif c.field == "state":
            if str(c.value) not in CommitmentState.__members__:
                states = ", ".join(CommitmentState.__members__)
                raise InvalidArgument.single("filter", f"state is one of {states}")
            out.append(Comparison(c.field, c.op, CommitmentState[str(c.value)].value))
        else:
            out.append(c)
    return out


def budget_to_proto(p: BudgetPosition) -> budget_pb2.Budget:
    b = p.budget
    return budget_pb2.Budget(
        name=b.name,
        cost_centre=b.cost_centre,
        account=b.account,
        period=str(b.period),
        amount=money_to_proto(b.amount),
        actual=money_to_proto(p.actual),
        committed=money_to_proto(b.committed),
        available=money_to_proto(p.available),
        revisions=b.revisions,
        audit=audit_metadata(b.info),
        etag=b.info.etag,
    )


def commitment_to_proto(c: Commitment) -> budget_pb2.Commitment:
    return budget_pb2.Commitment(
        name=c.name,
        budget=c.budget_name,
        amount=money_to_proto(c.amount),
        reference=c.reference,
        consumed=money_to_proto(c.consumed),
        released=money_to_proto(c.released),
        open_amount=money_to_proto(c.open_amount),
        state=_enum_out(budget_pb2.CommitmentState, "COMMITMENT_STATE_", c.state),  # type: ignore[arg-type]
        override_reason=c.override_reason,
        audit=audit_metadata(c.info),
        etag=c.info.etag,
    )


_MATCH_OUT = {
    MatchState.UNMATCHED: payables_pb2.MATCH_STATE_UNSPECIFIED,
    MatchState.MATCHED: payables_pb2.MATCH_STATE_MATCHED,
    MatchState.OUT_OF_TOLERANCE: payables_pb2.MATCH_STATE_OUT_OF_TOLERANCE,
}


def invoice_to_proto(i: Invoice) -> payables_pb2.Invoice:
    d = i.details
    msg = payables_pb2.Invoice(
        name=i.name,
        supplier=d.supplier,
        supplier_display_name=d.supplier_display_name,
        supplier_invoice_number=d.supplier_invoice_number,
        purchase_order=d.purchase_order,
        commitment=d.commitment,
        lines=[
            payables_pb2.InvoiceLine(
                account=line.account,
                cost_centre=line.cost_centre,
                description=line.description,
                quantity=_decimal_out(line.quantity),
                unit_price=money_to_proto(line.unit_price),
                net=money_to_proto(line.net),
                vat=money_to_proto(line.vat),
                vat_use=_enum_out(payables_pb2.VatUse, "VAT_USE_", line.vat_use),  # type: ignore[arg-type]
                order_line=line.order_line,
            )
            for line in d.lines
        ],
        net_total=money_to_proto(d.net_total),
        vat_total=money_to_proto(d.vat_total),
        gross_total=money_to_proto(d.gross_total),
        state=_enum_out(payables_pb2.InvoiceState, "INVOICE_STATE_", i.state),  # type: ignore[arg-type]
        match_state=_MATCH_OUT[i.match_state],
        discrepancies=[
            payables_pb2.MatchDiscrepancy(line=x.line, code=x.code, description=x.description)
            for x in i.discrepancies
        ],
        journal=i.journal,
        payment_run=i.payment_run,
        audit=audit_metadata(i.info),
        etag=i.info.etag,
        cancellation_reason=i.cancellation_reason,
    )
    for field, day in (
        ("invoice_date", d.invoice_date),
        ("received_date", d.received_date),
        ("due_date", d.due_date),
        ("posting_date", i.posting_date),
        ("paid_date", i.paid_date),
    ):
        if day is not None:
            getattr(msg, field).CopyFrom(date_to_proto(day))
    return msg


def payment_run_to_proto(run: PaymentRun) -> payables_pb2.PaymentRun:
    return payables_pb2.PaymentRun(
        name=run.name,
        payment_date=date_to_proto(run.payment_date),
        due_by=date_to_proto(run.due_by),
        invoices=list(run.invoices),
        total=money_to_proto(run.total),
        journal=run.journal,
        audit=audit_metadata(run.info),
    )


def recharge_to_proto(r: Recharge) -> recharge_pb2.Recharge:
    return recharge_pb2.Recharge(
        name=r.name,
        ledger=f"organisations/{r.organisation}/ledgers/{r.ledger}",
        counterparty=f"organisations/{r.counterparty}",
        amount=money_to_proto(r.amount),
        description=r.description,
        posting_date=date_to_proto(r.posting_date),
        income_account=r.income_account,
        cost_centre=r.cost_centre,
        state=_enum_out(recharge_pb2.RechargeState, "RECHARGE_STATE_", r.state),  # type: ignore[arg-type]
        journal=r.journal,
        counterparty_ledger=r.counterparty_ledger,
        counterparty_journal=r.counterparty_journal,
        audit=audit_metadata(r.info),
        etag=r.info.etag,
        decline_reason=r.decline_reason,
        cancel_reason=r.cancel_reason,
        cancellation_journal=r.cancellation_journal,
    )


def trial_balance_to_proto(tb: TrialBalance) -> reports_pb2.TrialBalance:
    return reports_pb2.TrialBalance(
        ledger=tb.ledger,
        financial_year=tb.year,
        through_period=tb.through,
        rows=[
            reports_pb2.TrialBalanceRow(
                account=r.account,
                account_display_name=r.account_display_name,
                cost_centre=r.cost_centre,
                debit=money_to_proto(r.debit),
                credit=money_to_proto(r.credit),
            )
            for r in tb.rows
        ],
        total_debit=money_to_proto(tb.total_debit),
        total_credit=money_to_proto(tb.total_credit),
    )


def budget_report_to_proto(
    ledger: str, year: int, through: int, rows: Sequence[BudgetReportRow]
) -> reports_pb2.BudgetReport:
    return reports_pb2.BudgetReport(
        ledger=ledger,
        financial_year=year,
        through_period=through or 12,
        rows=[
            reports_pb2.BudgetReportRow(
                poa_category=_enum_out(ledger_pb2.PoaCategory, "POA_CATEGORY_", r.category),  # type: ignore[arg-type]
                budget=money_to_proto(r.budget),
                actual=money_to_proto(r.actual),
                committed=money_to_proto(r.committed),
                available=money_to_proto(r.available),
            )
            for r in rows
        ],
    )


def compliance_to_proto(organisation: str, f: ComplianceFigures) -> reports_pb2.PaymentsCompliance:
    return reports_pb2.PaymentsCompliance(
        organisation=f"organisations/{organisation}",
        period_start=date_to_proto(f.start),
        period_end=date_to_proto(f.end),
        payments=f.payments,
        mean_days_to_pay=_decimal_out(f.mean_days),
        percent_within_30_days=_decimal_out(f.percent_within_30),
        percent_31_to_60_days=_decimal_out(f.percent_31_to_60),
        percent_61_days_or_more=_decimal_out(f.percent_61_or_more),
        sums_due=money_to_proto(f.sums_due),
        sums_due_not_paid=money_to_proto(f.sums_due_not_paid),
        percent_due_not_paid=_decimal_out(f.percent_due_not_paid),
    )


def vat_analysis_to_proto(ledger: str, a: VatAnalysis) -> reports_pb2.VatAnalysis:
    return reports_pb2.VatAnalysis(
        ledger=ledger,
        start_date=date_to_proto(a.start),
        end_date=date_to_proto(a.end),
        totals=[
            reports_pb2.VatUseTotal(
                vat_use=_enum_out(payables_pb2.VatUse, "VAT_USE_", r.use),  # type: ignore[arg-type]
                net=money_to_proto(r.net),
                vat=money_to_proto(r.vat),
            )
            for r in a.rows
        ],
        exempt_percent=_decimal_out(a.exempt_percent),
        exempt_insignificant=a.exempt_insignificant,
    )


# --- mapping in --------------------------------------------------------------------------


def ledger_details(msg: ledger_pb2.Ledger) -> LedgerDetails:
    return LedgerDetails(
        display_name=msg.display_name,
        entity_kind=_enum_in(ledger_pb2.EntityKind, "ENTITY_KIND_", EntityKind, msg.entity_kind),
        creditors_account=msg.creditors_account,
        vat_account=msg.vat_account,
        bank_account=msg.bank_account,
        recharges_account=msg.recharges_account,
    )


def journal_lines(msg: ledger_pb2.Journal, v: Violations) -> list[LineInput]:
    return [
        LineInput(
            account=line.account,
            cost_centre=line.cost_centre,
            debit=v.parsed(_optional_money, line, "debit", f"journal.lines[{i}].debit"),
            credit=v.parsed(_optional_money, line, "credit", f"journal.lines[{i}].credit"),
            description=line.description,
            counterparty_ledger=line.counterparty_ledger,
        )
        for i, line in enumerate(msg.lines)
    ]


def invoice_details(msg: payables_pb2.Invoice) -> InvoiceDetails:
    v = Violations()
    lines = []
    for i, line in enumerate(msg.lines):
        at = f"invoice.lines[{i}]"
        vat: Decimal | None = v.parsed(_optional_money, line, "vat", f"{at}.vat")
        lines.append(
            InvoiceLine(
                account=line.account,
                cost_centre=line.cost_centre,
                description=line.description,
                quantity=v.parsed(_decimal, line.quantity, f"{at}.quantity") or ZERO,
                unit_price=v.parsed(_money, line.unit_price, f"{at}.unit_price") or ZERO,
                net=v.parsed(_money, line.net, f"{at}.net") or ZERO,
                vat=vat or ZERO,
                vat_use=_enum_in(payables_pb2.VatUse, "VAT_USE_", VatUse, line.vat_use),
                order_line=line.order_line,
            )
        )
    details = InvoiceDetails(
        supplier=msg.supplier,
        supplier_display_name=msg.supplier_display_name,
        supplier_invoice_number=msg.supplier_invoice_number,
        invoice_date=v.parsed(_date, msg.invoice_date, "invoice.invoice_date"),
        received_date=v.parsed(_date, msg.received_date, "invoice.received_date"),
        due_date=v.parsed(_date, msg.due_date, "invoice.due_date"),
        purchase_order=msg.purchase_order,
        commitment=msg.commitment,
        lines=tuple(lines),
    )
    v.raise_if_any()
    return details


def match_evidence(request: pb.MatchInvoiceRequest) -> OrderEvidence | None:
    if not request.HasField("match_data"):
        return None
    data = request.match_data
    v = Violations()
    evidence = OrderEvidence(
        order_lines=tuple(
            OrderLine(
                o.line,
                v.parsed(_decimal, o.quantity, f"match_data.order_lines[{i}].quantity") or ZERO,
                v.parsed(_money, o.unit_price, f"match_data.order_lines[{i}].unit_price") or ZERO,
            )
            for i, o in enumerate(data.order_lines)
        ),
        receipt_lines=tuple(
            ReceiptLine(
                r.line, v.parsed(_decimal, r.quantity, f"match_data.receipt_lines[{i}].quantity") or ZERO
            )
            for i, r in enumerate(data.receipt_lines)
        ),
    )
    v.raise_if_any()
    return evidence


def recharge_input(
    ledger: str,
    counterparty: str,
    *,
    amount: money_pb2.Money,
    description: str,
    posting_date: date_pb2.Date,
    income_account: str,
    cost_centre: str,
    prefix: str,
) -> service.RechargeInput:
    v = Violations()
    found = service.RechargeInput(
        ledger_id=ledger,
        counterparty=counterparty,
        amount=v.parsed(_money, amount, f"{prefix}.amount") or Decimal(0),
        description=description,
        posting_date=v.parsed(_date, posting_date, f"{prefix}.posting_date"),
        income_account=income_account,
        cost_centre=cost_centre,
    )
    v.raise_if_any()
    return found


def _in_organisation(ledger: LedgerName, organisation: str, field_path: str) -> None:
    if ledger.organisation != organisation:
        raise InvalidArgument.single(field_path, f"must be a ledger of organisations/{organisation}")


_WORKFORCE_BASES = {
    pb.ALLOCATION_BASIS_HEADCOUNT: WorkforceBasis.HEADCOUNT,
    pb.ALLOCATION_BASIS_FTE: WorkforceBasis.FTE,
}


def _workforce_request(request: pb.AllocateCostsRequest) -> dt.date:
    """The as-at date of a workforce allocation, whose shares name members only."""
    v = Violations()
    as_at = None
    if not request.HasField("as_at_date"):
        v.add("as_at_date", "is required with a workforce basis")
    else:
        as_at = v.parsed(_date, request.as_at_date, "as_at_date")
    for i, s in enumerate(request.shares):
        v.check(not s.HasField("driver"), f"shares[{i}].driver", "HR gives the drivers: leave it empty")
    v.raise_if_any()
    assert as_at is not None
    return as_at


class FinanceServicer(finance_service_pb2_grpc.FinanceServiceServicer):
    def __init__(self, kernel: ServiceKernel, catalogue: RoleCatalogue, peers: Peers, timeout: float) -> None:
        self.k = kernel
        self.catalogue = catalogue
        self.orders = ProcurementOrders(peers, timeout)
        self.workforce = HrWorkforce(peers, timeout)

    async def _ledger_page(
        self,
        ledger: LedgerName,
        request: ListRequest,
        collection: str,
        fetch: Callable[[service.FinanceUnitOfWork, JsonKey | None, int], Sequence[E]],
        key: Callable[[E], JsonKey],
        *query: str,
    ) -> tuple[Sequence[E], str]:
        """A page of one ledger's `collection`, whose `query` (a filter) the page token is
        bound to, and the next page's token ("" on the last)."""
        fingerprint = self.k.pager.fingerprint(collection, ledger, *query)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(ledger.organisation)
        found = await self.k.read(
            scope, lambda tx: fetch(service.FinanceUnitOfWork(tx), page.after, page.size + 1)
        )
        return found[: page.size], self.k.pager.next_token(page, found, key)

    # --- ledgers and chart ---------------------------------------------------------------

    async def CreateLedger(self, request: pb.CreateLedgerRequest, context: RpcContext) -> ledger_pb2.Ledger:
        parent = OrganisationName.parse(request.parent)
        details = ledger_details(request.ledger)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            ledger_pb2.Ledger,
            lambda tx: ledger_to_proto(
                service.create_ledger(service.FinanceUnitOfWork(tx), parent.code, request.ledger_id, details)
            ),
        )

    async def ListLedgers(
        self, request: pb.ListLedgersRequest, context: RpcContext
    ) -> pb.ListLedgersResponse:
        parent = OrganisationName.parse(request.parent)
        fingerprint = self.k.pager.fingerprint("ledgers", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_ledgers(
                service.FinanceUnitOfWork(tx), parent.code, page.after, page.size + 1
            ),
        )
        response = pb.ListLedgersResponse(ledgers=[ledger_to_proto(x) for x in found[: page.size]])
        response.next_page_token = self.k.pager.next_token(page, found, lambda x: (x.id,))
        return response

    async def CreateAccount(
        self, request: pb.CreateAccountRequest, context: RpcContext
    ) -> ledger_pb2.Account:
        parent = OrganisationName.parse(request.parent)
        a = request.account
        type_ = _enum_in(ledger_pb2.AccountType, "ACCOUNT_TYPE_", AccountType, a.type)
        subjective = _enum_in(
            ledger_pb2.SubjectiveHeading, "SUBJECTIVE_HEADING_", SubjectiveHeading, a.subjective
        )
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            ledger_pb2.Account,
            lambda tx: account_to_proto(
                service.create_account(
                    service.FinanceUnitOfWork(tx),
                    parent.code,
                    request.account_id,
                    display_name=a.display_name,
                    type_=type_,
                    subjective=subjective,
                )
            ),
        )

    async def ListAccounts(
        self, request: pb.ListAccountsRequest, context: RpcContext
    ) -> pb.ListAccountsResponse:
        parent = OrganisationName.parse(request.parent)
        fingerprint = self.k.pager.fingerprint("accounts", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_accounts(
                service.FinanceUnitOfWork(tx), parent.code, page.after, page.size + 1
            ),
        )
        response = pb.ListAccountsResponse(accounts=[account_to_proto(x) for x in found[: page.size]])
        response.next_page_token = self.k.pager.next_token(page, found, lambda x: (x.code,))
        return response

    async def CreateCostCentre(
        self, request: pb.CreateCostCentreRequest, context: RpcContext
    ) -> ledger_pb2.CostCentre:
        parent = OrganisationName.parse(request.parent)
        category = _enum_in(
            ledger_pb2.PoaCategory, "POA_CATEGORY_", PoaCategory, request.cost_centre.poa_category
        )
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            ledger_pb2.CostCentre,
            lambda tx: cost_centre_to_proto(
                service.create_cost_centre(
                    service.FinanceUnitOfWork(tx),
                    parent.code,
                    request.cost_centre_id,
                    request.cost_centre.display_name,
                    category,
                )
            ),
        )

    async def ListCostCentres(
        self, request: pb.ListCostCentresRequest, context: RpcContext
    ) -> pb.ListCostCentresResponse:
        parent = OrganisationName.parse(request.parent)
        fingerprint = self.k.pager.fingerprint("cost_centres", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.list_cost_centres(
                service.FinanceUnitOfWork(tx), parent.code, page.after, page.size + 1
            ),
        )
        response = pb.ListCostCentresResponse(
            cost_centres=[cost_centre_to_proto(x) for x in found[: page.size]]
        )
        response.next_page_token = self.k.pager.next_token(page, found, lambda x: (x.code,))
        return response

    # --- periods -------------------------------------------------------------------------

    async def OpenFinancialYear(
        self, request: pb.OpenFinancialYearRequest, context: RpcContext
    ) -> pb.OpenFinancialYearResponse:
        ledger = LedgerName.parse(request.ledger, "ledger")
        scope = await self.k.scope_of(str(ledger), ledger.organisation)
        return await self.k.write(
            scope,
            request,
            pb.OpenFinancialYearResponse,
            lambda tx: pb.OpenFinancialYearResponse(
                periods=[
                    period_to_proto(p)
                    for p in service.open_financial_year(
                        service.FinanceUnitOfWork(tx),
                        ledger.organisation,
                        ledger.ledger,
                        request.financial_year,
                    )
                ]
            ),
        )

    async def ListPeriods(
        self, request: pb.ListPeriodsRequest, context: RpcContext
    ) -> pb.ListPeriodsResponse:
        ledger = LedgerName.parse(request.parent, "parent")
        fingerprint = self.k.pager.fingerprint("periods", ledger)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_of(str(ledger), ledger.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.list_periods(
                service.FinanceUnitOfWork(tx), ledger.organisation, ledger.ledger, page.after, page.size + 1
            ),
        )
        response = pb.ListPeriodsResponse(periods=[period_to_proto(p) for p in found[: page.size]])
        response.next_page_token = self.k.pager.next_token(page, found, lambda p: (p.key.year, p.key.number))
        return response

    async def _change_period(self, request: Any, action: str, reason: str = "") -> ledger_pb2.Period:
        name = LedgerChildName.parse(request.name, "periods")
        key = PeriodKey.parse(name.id, "name")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            ledger_pb2.Period,
            lambda tx: period_to_proto(
                service.change_period(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    key,
                    action,
                    etag=request.etag,
                    reason=reason,
                )
            ),
        )

    async def ClosePeriod(self, request: pb.ClosePeriodRequest, context: RpcContext) -> ledger_pb2.Period:
        return await self._change_period(request, "close")

    async def ReopenPeriod(self, request: pb.ReopenPeriodRequest, context: RpcContext) -> ledger_pb2.Period:
        return await self._change_period(request, "reopen", request.reason)

    async def LockPeriod(self, request: pb.LockPeriodRequest, context: RpcContext) -> ledger_pb2.Period:
        return await self._change_period(request, "lock")

    # --- journals ------------------------------------------------------------------------

    async def PostJournal(self, request: pb.PostJournalRequest, context: RpcContext) -> ledger_pb2.Journal:
        ledger = LedgerName.parse(request.parent, "parent")
        v = Violations()
        lines = journal_lines(request.journal, v)
        posting_date = v.parsed(_date, request.journal.posting_date, "journal.posting_date")
        v.raise_if_any()
        scope = await self.k.require_in(ledger.organisation)
        return await self.k.write(
            scope,
            request,
            ledger_pb2.Journal,
            lambda tx: journal_to_proto(
                service.post_journal(
                    service.FinanceUnitOfWork(tx),
                    ledger.organisation,
                    ledger.ledger,
                    posting_date=posting_date,
                    description=request.journal.description,
                    lines=lines,
                )
            ),
        )

    async def GetJournal(self, request: pb.GetJournalRequest, context: RpcContext) -> ledger_pb2.Journal:
        name = LedgerChildName.parse(request.name, "journals")
        scope = await self.k.scope_of(str(name), name.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.get_journal(
                service.FinanceUnitOfWork(tx), name.organisation, name.ledger, name.id
            ),
        )
        return journal_to_proto(found)

    async def ListJournals(
        self, request: pb.ListJournalsRequest, context: RpcContext
    ) -> pb.ListJournalsResponse:
        ledger = LedgerName.parse(request.parent, "parent")
        found, token = await self._ledger_page(
            ledger,
            request,
            "journals",
            lambda uow, after, size: service.list_journals(
                uow, ledger.organisation, ledger.ledger, after, size
            ),
            lambda j: (j.id,),
        )
        return pb.ListJournalsResponse(journals=[journal_to_proto(j) for j in found], next_page_token=token)

    async def ReverseJournal(
        self, request: pb.ReverseJournalRequest, context: RpcContext
    ) -> ledger_pb2.Journal:
        name = LedgerChildName.parse(request.name, "journals")
        posting_date = _date(request.posting_date, "posting_date")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            ledger_pb2.Journal,
            lambda tx: journal_to_proto(
                service.reverse_journal(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    name.id,
                    posting_date=posting_date,
                    reason=request.reason,
                )
            ),
        )

    # --- budgets and commitments ---------------------------------------------------------

    async def CreateBudget(self, request: pb.CreateBudgetRequest, context: RpcContext) -> budget_pb2.Budget:
        ledger = LedgerName.parse(request.parent, "parent")
        b = request.budget
        given = service.BudgetInput(b.cost_centre, b.account, b.period, _money(b.amount, "budget.amount"))
        scope = await self.k.require_in(ledger.organisation)
        return await self.k.write(
            scope,
            request,
            budget_pb2.Budget,
            lambda tx: budget_to_proto(
                service.create_budget(
                    service.FinanceUnitOfWork(tx), ledger.organisation, ledger.ledger, given
                )
            ),
        )

    async def GetBudget(self, request: pb.GetBudgetRequest, context: RpcContext) -> budget_pb2.Budget:
        name = LedgerChildName.parse(request.name, "budgets")
        scope = await self.k.scope_of(str(name), name.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.get_budget(
                service.FinanceUnitOfWork(tx), name.organisation, name.ledger, name.id
            ),
        )
        return budget_to_proto(found)

    async def ListBudgets(
        self, request: pb.ListBudgetsRequest, context: RpcContext
    ) -> pb.ListBudgetsResponse:
        ledger = LedgerName.parse(request.parent, "parent")
        comparisons = parse_filter(request.filter, _BUDGET_FILTERS)
        found, token = await self._ledger_page(
            ledger,
            request,
            "budgets",
            lambda uow, after, size: service.list_budgets(
                uow, ledger.organisation, ledger.ledger, comparisons=comparisons, after=after, size=size
            ),
            lambda p: (p.budget.id,),
            request.filter,
        )
        return pb.ListBudgetsResponse(budgets=[budget_to_proto(b) for b in found], next_page_token=token)

    async def ReviseBudget(self, request: pb.ReviseBudgetRequest, context: RpcContext) -> budget_pb2.Budget:
        name = LedgerChildName.parse(request.name, "budgets")
        amount = _money(request.amount, "amount")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            budget_pb2.Budget,
            lambda tx: budget_to_proto(
                service.revise_budget(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    name.id,
                    amount=amount,
                    reason=request.reason,
                    etag=request.etag,
                )
            ),
        )

    async def RaiseCommitment(
        self, request: pb.RaiseCommitmentRequest, context: RpcContext
    ) -> budget_pb2.Commitment:
        ledger = LedgerName.parse(request.parent, "parent")
        c = request.commitment
        budget = LedgerChildName.parse(c.budget, "budgets", "commitment.budget")
        if (budget.organisation, budget.ledger) != (ledger.organisation, ledger.ledger):
            raise InvalidArgument.single("commitment.budget", "must be a budget of the parent ledger")
        amount = _money(c.amount, "commitment.amount")
        may_override = self.catalogue.grants(self.k.caller().roles, OVERRIDE_PERMISSION)
        scope = await self.k.require_in(ledger.organisation)
        return await self.k.write(
            scope,
            request,
            budget_pb2.Commitment,
            lambda tx: commitment_to_proto(
                service.raise_commitment(
                    service.FinanceUnitOfWork(tx),
                    ledger.organisation,
                    ledger.ledger,
                    budget.id,
                    amount=amount,
                    reference=c.reference,
                    override_reason=request.override_reason,
                    may_override=may_override,
                )
            ),
        )

    async def GetCommitment(
        self, request: pb.GetCommitmentRequest, context: RpcContext
    ) -> budget_pb2.Commitment:
        name = LedgerChildName.parse(request.name, "commitments")
        scope = await self.k.scope_of(str(name), name.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.get_commitment(
                service.FinanceUnitOfWork(tx), name.organisation, name.ledger, name.id
            ),
        )
        return commitment_to_proto(found)

    async def ListCommitments(
        self, request: pb.ListCommitmentsRequest, context: RpcContext
    ) -> pb.ListCommitmentsResponse:
        ledger = LedgerName.parse(request.parent, "parent")
        comparisons = _commitment_comparisons(request.filter, ledger)
        found, token = await self._ledger_page(
            ledger,
            request,
            "commitments",
            lambda uow, after, size: service.list_commitments(
                uow, ledger.organisation, ledger.ledger, comparisons=comparisons, after=after, size=size
            ),
            lambda c: (c.id,),
            request.filter,
        )
        return pb.ListCommitmentsResponse(
            commitments=[commitment_to_proto(c) for c in found], next_page_token=token
        )

    async def ConsumeCommitment(
        self, request: pb.ConsumeCommitmentRequest, context: RpcContext
    ) -> budget_pb2.Commitment:
        name = LedgerChildName.parse(request.name, "commitments")
        amount = _money(request.amount, "amount") if request.HasField("amount") else None
        consumed_to = _money(request.consumed_to, "consumed_to") if request.HasField("consumed_to") else None
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            budget_pb2.Commitment,
            lambda tx: commitment_to_proto(
                service.consume_commitment(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    name.id,
                    amount=amount,
                    consumed_to=consumed_to,
                    etag=request.etag,
                )
            ),
        )

    async def ReleaseCommitment(
        self, request: pb.ReleaseCommitmentRequest, context: RpcContext
    ) -> budget_pb2.Commitment:
        name = LedgerChildName.parse(request.name, "commitments")
        retain_to = _money(request.retain_to, "retain_to") if request.HasField("retain_to") else None
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            budget_pb2.Commitment,
            lambda tx: commitment_to_proto(
                service.release_commitment(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    name.id,
                    etag=request.etag,
                    retain_to=retain_to,
                )
            ),
        )

    # --- invoices and payments -----------------------------------------------------------

    async def CreateInvoice(
        self, request: pb.CreateInvoiceRequest, context: RpcContext
    ) -> payables_pb2.Invoice:
        ledger = LedgerName.parse(request.parent, "parent")
        details = invoice_details(request.invoice)
        scope = await self.k.require_in(ledger.organisation)
        today = self.k.today()
        return await self.k.write(
            scope,
            request,
            payables_pb2.Invoice,
            lambda tx: invoice_to_proto(
                service.create_invoice(
                    service.FinanceUnitOfWork(tx), ledger.organisation, ledger.ledger, details, today
                )
            ),
        )

    async def GetInvoice(self, request: pb.GetInvoiceRequest, context: RpcContext) -> payables_pb2.Invoice:
        name = LedgerChildName.parse(request.name, "invoices")
        scope = await self.k.scope_of(str(name), name.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.get_invoice(
                service.FinanceUnitOfWork(tx), name.organisation, name.ledger, name.id
            ),
        )
        return invoice_to_proto(found)

    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: RpcContext
    ) -> pb.ListInvoicesResponse:
        parent = OrganisationName.parse(request.parent, allow_wildcard=True)
        state = _enum_in(payables_pb2.InvoiceState, "INVOICE_STATE_", InvoiceState, request.state)
        fingerprint = self.k.pager.fingerprint("invoices", parent, request.state)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await (self.k.scope_everywhere() if parent.is_wildcard else self.k.scope_in(parent.code))
        found = await self.k.read(
            scope,
            lambda tx: service.list_invoices(service.FinanceUnitOfWork(tx), state, page.after, page.size + 1),
        )
        response = pb.ListInvoicesResponse(invoices=[invoice_to_proto(i) for i in found[: page.size]])
        response.next_page_token = self.k.pager.next_token(
            page, found, lambda i: (i.organisation, i.id, i.ledger)
        )
        return response

    async def MatchInvoice(
        self, request: pb.MatchInvoiceRequest, context: RpcContext
    ) -> payables_pb2.Invoice:
        name = LedgerChildName.parse(request.name, "invoices")
        stated = match_evidence(request)
        supplied: OrderEvidence | None = None
        scope = await self.k.scope_of(str(name), name.organisation)
        if (earlier := await self.k.answered(scope, request, payables_pb2.Invoice)) is not None:
            return earlier
        commitment = ""
        if stated is None:
            # Read before the write transaction: no lock is held while procurement answers.
            invoice = await self.k.read(
                scope,
                lambda tx: service.get_invoice(
                    service.FinanceUnitOfWork(tx), name.organisation, name.ledger, name.id
                ),
            )
            order = invoice.details.purchase_order
            if order and suite_order(name.organisation, order):
                placed = await self.orders.read(name.organisation, order)
                supplied, commitment = placed.evidence, placed.commitment
        orders: OrderSource = (
            SuppliedOrderSource(supplied) if stated is None else CallerOrderSource(stated, suite_order)
        )
        return await self.k.write(
            scope,
            request,
            payables_pb2.Invoice,
            lambda tx: invoice_to_proto(
                service.match_invoice(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    name.id,
                    orders=orders,
                    order_commitment=commitment,
                )
            ),
        )

    async def ApproveInvoice(
        self, request: pb.ApproveInvoiceRequest, context: RpcContext
    ) -> payables_pb2.Invoice:
        name = LedgerChildName.parse(request.name, "invoices")
        posting_date = _date(request.posting_date, "posting_date")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            payables_pb2.Invoice,
            lambda tx: invoice_to_proto(
                service.approve_invoice(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    name.id,
                    posting_date=posting_date,
                    etag=request.etag,
                )
            ),
        )

    async def CancelInvoice(
        self, request: pb.CancelInvoiceRequest, context: RpcContext
    ) -> payables_pb2.Invoice:
        name = LedgerChildName.parse(request.name, "invoices")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            payables_pb2.Invoice,
            lambda tx: invoice_to_proto(
                service.cancel_invoice(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.ledger,
                    name.id,
                    reason=request.reason,
                    etag=request.etag,
                )
            ),
        )

    async def CreatePaymentRun(
        self, request: pb.CreatePaymentRunRequest, context: RpcContext
    ) -> payables_pb2.PaymentRun:
        ledger = LedgerName.parse(request.parent, "parent")
        v = Violations()
        payment_date = v.parsed(_date, request.payment_run.payment_date, "payment_run.payment_date")
        due_by = v.parsed(_date, request.payment_run.due_by, "payment_run.due_by")
        v.raise_if_any()
        scope = await self.k.require_in(ledger.organisation)
        return await self.k.write(
            scope,
            request,
            payables_pb2.PaymentRun,
            lambda tx: payment_run_to_proto(
                service.create_payment_run(
                    service.FinanceUnitOfWork(tx),
                    ledger.organisation,
                    ledger.ledger,
                    payment_date=payment_date,
                    due_by=due_by,
                )
            ),
        )

    # --- recharges -----------------------------------------------------------------------

    async def CreateRecharge(
        self, request: pb.CreateRechargeRequest, context: RpcContext
    ) -> recharge_pb2.Recharge:
        parent = OrganisationName.parse(request.parent)
        r = request.recharge
        ledger = LedgerName.parse(r.ledger, "recharge.ledger")
        _in_organisation(ledger, parent.code, "recharge.ledger")
        counterparty = OrganisationName.parse(r.counterparty, "recharge.counterparty")
        given = recharge_input(
            ledger.ledger,
            counterparty.code,
            amount=r.amount,
            description=r.description,
            posting_date=r.posting_date,
            income_account=r.income_account,
            cost_centre=r.cost_centre,
            prefix="recharge",
        )
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            recharge_pb2.Recharge,
            lambda tx: recharge_to_proto(
                service.create_recharge(service.FinanceUnitOfWork(tx), parent.code, given)
            ),
        )

    async def AcceptRecharge(
        self, request: pb.AcceptRechargeRequest, context: RpcContext
    ) -> recharge_pb2.Recharge:
        name = ChildName.parse(request.name, "recharges")
        ledger = LedgerName.parse(request.ledger, "ledger")
        posting_date = _date(request.posting_date, "posting_date")
        # The charged organisation acts in its own books; the recharge is named under the
        # charging organisation and visible to both.
        scope = await self.k.scope_of(str(name), ledger.organisation)
        return await self.k.write(
            scope,
            request,
            recharge_pb2.Recharge,
            lambda tx: recharge_to_proto(
                service.accept_recharge(
                    service.FinanceUnitOfWork(tx),
                    ledger.organisation,
                    name.organisation,
                    name.id,
                    ledger_id=ledger.ledger,
                    expense_account=request.expense_account,
                    cost_centre=request.cost_centre,
                    posting_date=posting_date,
                    etag=request.etag,
                )
            ),
        )

    async def DeclineRecharge(
        self, request: pb.DeclineRechargeRequest, context: RpcContext
    ) -> recharge_pb2.Recharge:
        name = ChildName.parse(request.name, "recharges")
        acting_for = (
            OrganisationName.parse(request.acting_for, "acting_for").code
            if request.acting_for
            else self.k.caller().organisation
        )
        scope = await self.k.scope_of(str(name), acting_for)
        return await self.k.write(
            scope,
            request,
            recharge_pb2.Recharge,
            lambda tx: recharge_to_proto(
                service.decline_recharge(
                    service.FinanceUnitOfWork(tx),
                    acting_for,
                    name.organisation,
                    name.id,
                    reason=request.reason,
                    etag=request.etag,
                )
            ),
        )

    async def CancelRecharge(
        self, request: pb.CancelRechargeRequest, context: RpcContext
    ) -> recharge_pb2.Recharge:
        name = ChildName.parse(request.name, "recharges")
        posting_date = _date(request.posting_date, "posting_date")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            recharge_pb2.Recharge,
            lambda tx: recharge_to_proto(
                service.cancel_recharge(
                    service.FinanceUnitOfWork(tx),
                    name.organisation,
                    name.id,
                    reason=request.reason,
                    posting_date=posting_date,
                    etag=request.etag,
                )
            ),
        )

    async def GetRecharge(self, request: pb.GetRechargeRequest, context: RpcContext) -> recharge_pb2.Recharge:
        name = ChildName.parse(request.name, "recharges")
        # Either party may read it: the scope is every organisation the caller may read,
        # and the data layer shows a recharge to its two parties only.
        scope = await self.k.scope_everywhere()
        found = await self.k.read(
            scope, lambda tx: service.get_recharge(service.FinanceUnitOfWork(tx), name.organisation, name.id)
        )
        return recharge_to_proto(found)

    async def ListRecharges(
        self, request: pb.ListRechargesRequest, context: RpcContext
    ) -> pb.ListRechargesResponse:
        parent = OrganisationName.parse(request.parent, allow_wildcard=True)
        fingerprint = self.k.pager.fingerprint("recharges", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await (self.k.scope_everywhere() if parent.is_wildcard else self.k.scope_in(parent.code))
        found = await self.k.read(
            scope, lambda tx: service.list_recharges(service.FinanceUnitOfWork(tx), page.after, page.size + 1)
        )
        response = pb.ListRechargesResponse(recharges=[recharge_to_proto(r) for r in found[: page.size]])
        response.next_page_token = self.k.pager.next_token(page, found, lambda r: (r.organisation, r.id))
        return response

    async def AllocateCosts(
        self, request: pb.AllocateCostsRequest, context: RpcContext
    ) -> pb.AllocateCostsResponse:
        parent = OrganisationName.parse(request.parent)
        ledger = LedgerName.parse(request.ledger, "ledger")
        _in_organisation(ledger, parent.code, "ledger")
        given = recharge_input(
            ledger.ledger,
            "",
            amount=request.amount,
            description=request.description,
            posting_date=request.posting_date,
            income_account=request.income_account,
            cost_centre=request.cost_centre,
            prefix="allocation",
        )
        members = [
            OrganisationName.parse(s.organisation, f"shares[{i}].organisation").code
            for i, s in enumerate(request.shares)
        ]
        basis = _WORKFORCE_BASES.get(request.basis)
        scope = await self.k.require_in(parent.code)
        if basis is None:
            drivers = [_decimal(s.driver, f"shares[{i}].driver") for i, s in enumerate(request.shares)]
        else:
            as_at = _workforce_request(request)
            if (earlier := await self.k.answered(scope, request, pb.AllocateCostsResponse)) is not None:
                return earlier
            # Before the write transaction: no lock is held while HR answers.
            drivers = await self.workforce.drivers(parent.code, members, as_at, basis)
        shares = list(zip(members, drivers, strict=True))
        return await self.k.write(
            scope,
            request,
            pb.AllocateCostsResponse,
            lambda tx: pb.AllocateCostsResponse(
                recharges=[
                    recharge_to_proto(r)
                    for r in service.allocate_costs(service.FinanceUnitOfWork(tx), parent.code, given, shares)
                ],
                shares=[
                    pb.AllocationShare(organisation=f"organisations/{m}", driver=_decimal_out(d))
                    for m, d in shares
                ],
            ),
        )

    # --- reports -------------------------------------------------------------------------

    async def GetTrialBalance(
        self, request: pb.GetTrialBalanceRequest, context: RpcContext
    ) -> reports_pb2.TrialBalance:
        ledger = LedgerName.parse(request.ledger, "ledger", allow_all=True)
        scope = await self.k.scope_of(str(ledger), ledger.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.get_trial_balance(
                service.FinanceUnitOfWork(tx),
                ledger.organisation,
                ledger.ledger,
                request.financial_year,
                request.through_period,
                by_cost_centre=request.by_cost_centre,
            ),
        )
        return trial_balance_to_proto(found)

    async def GetBudgetReport(
        self, request: pb.GetBudgetReportRequest, context: RpcContext
    ) -> reports_pb2.BudgetReport:
        ledger = LedgerName.parse(request.ledger, "ledger")
        scope = await self.k.scope_of(str(ledger), ledger.organisation)
        rows = await self.k.read(
            scope,
            lambda tx: service.get_budget_report(
                service.FinanceUnitOfWork(tx),
                ledger.organisation,
                ledger.ledger,
                request.financial_year,
                request.through_period,
            ),
        )
        return budget_report_to_proto(str(ledger), request.financial_year, request.through_period, rows)

    async def GetPaymentsCompliance(
        self, request: pb.GetPaymentsComplianceRequest, context: RpcContext
    ) -> reports_pb2.PaymentsCompliance:
        organisation = OrganisationName.parse(request.organisation, "organisation")
        period_end = _date(request.period_end, "period_end")
        if period_end is None:
            raise InvalidArgument.single("period_end", "is required")
        scope = await self.k.scope_of(str(organisation), organisation.code)
        figures = await self.k.read(
            scope,
            lambda tx: service.payments_compliance(
                service.FinanceUnitOfWork(tx), organisation.code, period_end
            ),
        )
        return compliance_to_proto(organisation.code, figures)

    async def ExportSpendOver500(
        self, request: pb.ExportSpendOver500Request, context: RpcContext
    ) -> reports_pb2.SpendFile:
        ledger = LedgerName.parse(request.ledger, "ledger")
        fmt = _enum_in(reports_pb2.SpendFileFormat, "SPEND_FILE_FORMAT_", SpendFileFormat, request.format)
        v = Violations()
        v.check(fmt is not None, "format", "is required: POLICE_MONTHLY or LGTC_QUARTERLY")
        start = _required_date(v, request.start_date, "start_date")
        v.raise_if_any()
        assert fmt is not None
        assert start is not None
        scope = await self.k.scope_of(str(ledger), ledger.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.spend_over_500(
                service.FinanceUnitOfWork(tx), ledger.organisation, ledger.ledger, fmt, start
            ),
        )
        return reports_pb2.SpendFile(
            format=request.format,
            start_date=date_to_proto(found.start),
            end_date=date_to_proto(found.end),
            items=found.items,
            csv=found.csv,
        )

    async def GetVatAnalysis(
        self, request: pb.GetVatAnalysisRequest, context: RpcContext
    ) -> reports_pb2.VatAnalysis:
        ledger = LedgerName.parse(request.ledger, "ledger")
        v = Violations()
        start = _required_date(v, request.start_date, "start_date")
        end = _required_date(v, request.end_date, "end_date")
        v.raise_if_any()
        assert start is not None
        assert end is not None
        scope = await self.k.scope_of(str(ledger), ledger.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.vat_by_use(
                service.FinanceUnitOfWork(tx), ledger.organisation, ledger.ledger, start, end
            ),
        )
        return vat_analysis_to_proto(str(ledger), found)
