"""Finance's use cases: take a unit of work and plain values, return domain objects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from libs.common.money import has_places
from libs.common.names import check_resource_id, new_id
from libs.common.paging import JsonKey
from libs.common.records import RecordInfo, check_etag
from libs.common.service import Transaction
from services.finance.domain.budgets import (
    Budget,
    BudgetPosition,
    Commitment,
    check_amount,
    check_commitment,
    check_reason,
)
from services.finance.domain.chart import (
    Account,
    AccountType,
    CostCentre,
    Ledger,
    LedgerDetails,
    PoaCategory,
    SubjectiveHeading,
    check_account,
    check_cost_centre,
)
from services.finance.domain.compliance import (
    ComplianceFigures,
    PaymentFact,
    compliance_figures,
    six_month_period,
)
from services.finance.domain.invoices import (
    Invoice,
    InvoiceDetails,
    InvoiceState,
    MatchState,
    PaymentRun,
    payment_lines,
    posting_lines,
    purchase_order_key,
)
from services.finance.domain.journals import (
    MAX_DESCRIPTION,
    ChartView,
    Journal,
    JournalLine,
    JournalSource,
    LineInput,
    balanced,
    check_description,
    checked_lines,
)
from services.finance.domain.matching import (
    DEFAULT_TOLERANCE,
    OrderSource,
    Tolerance,
    evidence_view,
    three_way_match,
)
from services.finance.domain.money import ZERO, split_by_drivers
from services.finance.domain.periods import (
    PERIODS_PER_YEAR,
    Period,
    PeriodKey,
    check_postable,
    check_through_period,
    check_year,
    year_periods,
)
from services.finance.domain.recharges import Recharge, RechargeState, charged_lines, charging_lines
from services.finance.domain.reports import BudgetReportRow, TrialBalance, budget_by_poa, trial_balance
from services.finance.domain.spend import SpendFileFormat, SpendItem, file_range, over_threshold, spend_csv
from services.finance.domain.vat import VatAnalysis, months_between, vat_analysis
from services.finance.persistence.repository import (
    BudgetRepository,
    ChartRepository,
    InvoiceRepository,
    JournalRepository,
    RechargeRepository,
    SqlBudgetRepository,
    SqlChartRepository,
    SqlInvoiceRepository,
    SqlJournalRepository,
    SqlRechargeRepository,
)

ALL_LEDGERS = "-"


class FinanceUnitOfWork:
    def __init__(
        self,
        tx: Transaction,
        *,
        chart: ChartRepository | None = None,
        journals: JournalRepository | None = None,
        budgets: BudgetRepository | None = None,
        invoices: InvoiceRepository | None = None,
        recharges: RechargeRepository | None = None,
    ) -> None:
        self.tx = tx
        self.chart: ChartRepository = chart or SqlChartRepository(tx.session)
        self.journals: JournalRepository = journals or SqlJournalRepository(tx.session)
        self.budgets: BudgetRepository = budgets or SqlBudgetRepository(tx.session)
        self.invoices: InvoiceRepository = invoices or SqlInvoiceRepository(tx.session)
        self.recharges: RechargeRepository = recharges or SqlRechargeRepository(tx.session)

    def new_info(self) -> RecordInfo:
        return RecordInfo.new(self.tx.principal_id, self.tx.acting_organisation, _now())

    def touched(self, info: RecordInfo) -> RecordInfo:
        return info.touched(self.tx.principal_id, self.tx.acting_organisation, _now())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ledger_name(organisation: str, ledger_id: str) -> str:
    return f"organisations/{organisation}/ledgers/{ledger_id}"


# --- ledgers, chart, periods -------------------------------------------------------------


def create_ledger(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, details: LedgerDetails
) -> Ledger:
    check_resource_id(ledger_id, "ledger_id")
    details = details.checked()
    if uow.chart.ledger(organisation, ledger_id) is not None:
        raise AlreadyExists(
            f"{_ledger_name(organisation, ledger_id)} already exists", reason="LEDGER_ALREADY_EXISTS"
        )
    ledger = Ledger(organisation, ledger_id, details, uow.new_info())
    uow.chart.add_ledger(ledger)
    uow.tx.audit.record(organisation, ledger.name, None, ledger.audit_view())
    return ledger


def require_ledger(uow: FinanceUnitOfWork, organisation: str, ledger_id: str) -> Ledger:
    ledger = uow.chart.ledger(organisation, ledger_id)
    if ledger is None:
        raise NotFound(_ledger_name(organisation, ledger_id))
    return ledger


def list_ledgers(uow: FinanceUnitOfWork, organisation: str, after: JsonKey | None, size: int) -> list[Ledger]:
    return uow.chart.ledgers(organisation, after, size)


def create_account(
    uow: FinanceUnitOfWork,
    organisation: str,
    code: str,
    *,
    display_name: str,
    type_: AccountType | None,
    subjective: SubjectiveHeading | None,
) -> Account:
    name, checked_type, checked_subjective = check_account(code, display_name, type_, subjective)
    if uow.chart.account(organisation, code) is not None:
        raise AlreadyExists(
            f"account {code} is already in the chart of organisations/{organisation}",
            reason="ACCOUNT_ALREADY_EXISTS",
        )
    account = Account(organisation, code, name, checked_type, checked_subjective, uow.new_info())
    uow.chart.add_account(account)
    uow.tx.audit.record(organisation, account.name, None, account.audit_view())
    return account


def list_accounts(
    uow: FinanceUnitOfWork, organisation: str, after: JsonKey | None, size: int
) -> list[Account]:
    return uow.chart.account_page(organisation, after, size)


def create_cost_centre(
    uow: FinanceUnitOfWork, organisation: str, code: str, display_name: str, category: PoaCategory | None
) -> CostCentre:
    name, checked_category = check_cost_centre(code, display_name, category)
    if uow.chart.cost_centres(organisation, [code]):
        raise AlreadyExists(
            f"cost centre {code} already exists in organisations/{organisation}",
            reason="COST_CENTRE_ALREADY_EXISTS",
        )
    cost_centre = CostCentre(organisation, code, name, checked_category, uow.new_info())
    uow.chart.add_cost_centre(cost_centre)
    uow.tx.audit.record(organisation, cost_centre.name, None, cost_centre.audit_view())
    return cost_centre


def list_cost_centres(
    uow: FinanceUnitOfWork, organisation: str, after: JsonKey | None, size: int
) -> list[CostCentre]:
    return uow.chart.cost_centre_page(organisation, after, size)


def open_financial_year(uow: FinanceUnitOfWork, organisation: str, ledger_id: str, year: int) -> list[Period]:
    check_year(year, "financial_year")
    ledger = require_ledger(uow, organisation, ledger_id)
    if uow.chart.period(organisation, ledger_id, PeriodKey(year, 1)) is not None:
        raise AlreadyExists(
            f"financial year {year} of {ledger.name} is already open", reason="YEAR_ALREADY_OPEN"
        )
    periods = year_periods(organisation, ledger_id, year, uow.new_info())
    uow.chart.add_periods(periods)
    uow.tx.audit.record(
        organisation,
        f"{ledger.name}/periods",
        None,
        {"financial_year": year, "opened": [str(p.key) for p in periods]},
    )
    return periods


def list_periods(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, after: JsonKey | None, size: int
) -> list[Period]:
    require_ledger(uow, organisation, ledger_id)
    return uow.chart.periods(organisation, ledger_id, after, size)


def change_period(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    key: PeriodKey,
    action: str,
    *,
    etag: str,
    reason: str = "",
) -> Period:
    name = f"{_ledger_name(organisation, ledger_id)}/periods/{key}"
    if action == "reopen":
        v = Violations()
        reason = check_reason(v, reason, "reason")
        v.raise_if_any()
    current = uow.chart.period(organisation, ledger_id, key, lock=True)
    if current is None:
        raise NotFound(name)
    check_etag(name, etag, current.info)
    info = uow.touched(current.info)
    changed = {"close": current.closed, "reopen": current.reopened, "lock": current.locked}[action](info)
    uow.chart.save_period(changed)
    after = changed.audit_view()
    if reason:
        after["reason"] = reason
    uow.tx.audit.record(organisation, name, current.audit_view(), after)
    return changed


# --- journals ----------------------------------------------------------------------------


def _post(
    uow: FinanceUnitOfWork,
    ledger: Ledger,
    posting_date: dt.date,
    description: str,
    lines: Sequence[JournalLine],
    *,
    source: JournalSource,
    source_resource: str = "",
    reversal_of: str = "",
) -> Journal:
    """Every posting path comes through here: open period, balanced lines, balances kept."""
    if not balanced(lines) or len(lines) < 2:
        raise RuntimeError(f"refusing to post an unbalanced {source.value} journal")
    lines = [replace(line, description=line.description[:MAX_DESCRIPTION]) for line in lines]
    description = description[:MAX_DESCRIPTION]
    period = uow.chart.period(ledger.organisation, ledger.id, PeriodKey.of(posting_date), for_posting=True)
    key = check_postable(period, ledger.name, posting_date)
    journal = Journal(
        organisation=ledger.organisation,
        ledger=ledger.id,
        id=new_id("j"),
        posting_date=posting_date,
        period=key,
        description=description,
        source=source,
        lines=tuple(lines),
        info=uow.new_info(),
        source_resource=source_resource,
        reversal_of=reversal_of,
    )
    uow.journals.add(journal)
    uow.tx.audit.record(ledger.organisation, journal.name, None, journal.audit_view())
    return journal


def _chart_view(uow: FinanceUnitOfWork, organisation: str, lines: Sequence[LineInput]) -> ChartView:
    return ChartView(
        accounts=uow.chart.accounts(organisation, [line.account for line in lines]),
        cost_centres=frozenset(uow.chart.cost_centres(organisation, [line.cost_centre for line in lines])),
        ledgers=uow.chart.ledger_ids(organisation),
    )


def post_journal(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    *,
    posting_date: dt.date | None,
    description: str,
    lines: Sequence[LineInput],
) -> Journal:
    ledger = require_ledger(uow, organisation, ledger_id)
    v = Violations()
    text = check_description(v, description, "journal.description")
    v.check(posting_date is not None, "journal.posting_date", "is required")
    try:
        checked = checked_lines(lines, _chart_view(uow, organisation, lines), ledger_id)
    except InvalidArgument as err:
        v.items.extend(err.violations)
    v.raise_if_any()
    assert posting_date is not None
    return _post(uow, ledger, posting_date, text, checked, source=JournalSource.MANUAL)


def get_journal(uow: FinanceUnitOfWork, organisation: str, ledger_id: str, journal_id: str) -> Journal:
    journal = uow.journals.get(organisation, ledger_id, journal_id)
    if journal is None:
        raise NotFound(f"{_ledger_name(organisation, ledger_id)}/journals/{journal_id}")
    return journal


def list_journals(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, after: JsonKey | None, size: int
) -> list[Journal]:
    return uow.journals.page(organisation, ledger_id, after, size)


def reverse_journal(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    journal_id: str,
    *,
    posting_date: dt.date | None,
    reason: str,
) -> Journal:
    """Reverses a manual journal. A journal an invoice, a payment run or a recharge posted
    is that document's effect on the books: reversing it alone would leave the document
    saying one thing and the ledger another (an approved invoice with no liability, a
    recharge income gone while the other side can still accept it), so it is corrected
    through its document."""
    v = Violations()
    reason = check_reason(v, reason, "reason")
    v.check(posting_date is not None, "posting_date", "is required")
    v.raise_if_any()
    assert posting_date is not None
    original = get_journal(uow, organisation, ledger_id, journal_id)
    if original.source not in (JournalSource.MANUAL, JournalSource.REVERSAL):
        raise FailedPrecondition(
            f"{original.name} was posted by {original.source_resource}: it is corrected through "
            "that document, not by reversing its journal",
            reason="NOT_A_MANUAL_JOURNAL",
            metadata={"source": original.source.value, "source_resource": original.source_resource},
        )
    return _reverse(uow, organisation, ledger_id, original, posting_date=posting_date, reason=reason)


def _reverse(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    original: Journal,
    *,
    posting_date: dt.date,
    reason: str,
) -> Journal:
    if original.reversal_of:
        raise FailedPrecondition(
            f"{original.name} is itself a reversal; post a new journal instead", reason="IS_A_REVERSAL"
        )
    if original.reversed_by:
        raise FailedPrecondition(
            f"{original.name} was already reversed",
            reason="ALREADY_REVERSED",
            metadata={
                "reversed_by": f"{_ledger_name(organisation, ledger_id)}/journals/{original.reversed_by}"
            },
        )
    if posting_date < original.posting_date:
        # Else the reversal lands in a period, or a year, that never carried the posting:
        # one year's accounts would show a credit for a cost booked in the next.
        raise InvalidArgument.single(
            "posting_date",
            f"cannot be before {original.posting_date.isoformat()}, when {original.name} was posted",
        )
    ledger = require_ledger(uow, organisation, ledger_id)
    return _post(
        uow,
        ledger,
        posting_date,
        f"Reversal of {original.id}: {reason}",
        [line.reversed() for line in original.lines],
        source=JournalSource.REVERSAL,
        source_resource=original.name,
        reversal_of=original.id,
    )


# --- budgets and commitments -------------------------------------------------------------


@dataclass(frozen=True)
class BudgetInput:
    cost_centre: str
    account: str
    period: str
    amount: Decimal


def _position(uow: FinanceUnitOfWork, budget: Budget) -> BudgetPosition:
    actual = uow.journals.net(
        budget.organisation, budget.ledger, budget.period, budget.account, budget.cost_centre
    )
    return BudgetPosition(budget, actual)


def _budget(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, budget_id: str, *, lock: bool
) -> Budget:
    budget = uow.budgets.get(organisation, ledger_id, budget_id, lock=lock)
    if budget is None:
        raise NotFound(f"{_ledger_name(organisation, ledger_id)}/budgets/{budget_id}")
    return budget


def create_budget(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, given: BudgetInput
) -> BudgetPosition:
    ledger = require_ledger(uow, organisation, ledger_id)
    v = Violations()
    key: PeriodKey | None = None
    try:
        key = PeriodKey.parse(given.period, "budget.period")
    except InvalidArgument as err:
        v.items.extend(err.violations)
    check_amount(v, given.amount, "budget.amount", positive=False)
    account = uow.chart.account(organisation, given.account)
    v.check(
        account is not None and account.type is AccountType.EXPENDITURE,
        "budget.account",
        f"{given.account!r} is not an expenditure account of the chart",
    )
    v.check(
        bool(uow.chart.cost_centres(organisation, [given.cost_centre])),
        "budget.cost_centre",
        f"{given.cost_centre!r} is not a cost centre of the organisation",
    )
    v.raise_if_any()
    assert key is not None
    existing = uow.budgets.find(organisation, ledger_id, given.cost_centre, given.account, key)
    if existing is not None:
        raise AlreadyExists(
            f"{ledger.name} already has a budget for {given.cost_centre}, {given.account} in {key}: "
            f"{existing.name}; revise that one",
            reason="BUDGET_ALREADY_EXISTS",
            metadata={"budget": existing.name},
        )
    budget = Budget(
        organisation,
        ledger_id,
        new_id("b"),
        given.cost_centre,
        given.account,
        key,
        given.amount,
        ZERO,
        0,
        uow.new_info(),
    )
    uow.budgets.add(budget)
    uow.tx.audit.record(organisation, budget.name, None, budget.audit_view())
    return _position(uow, budget)


def get_budget(uow: FinanceUnitOfWork, organisation: str, ledger_id: str, budget_id: str) -> BudgetPosition:
    return _position(uow, _budget(uow, organisation, ledger_id, budget_id, lock=False))


def list_budgets(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    *,
    comparisons: Sequence[Comparison],
    after: JsonKey | None,
    size: int,
) -> list[BudgetPosition]:
    require_ledger(uow, organisation, ledger_id)
    budgets = uow.budgets.page(organisation, ledger_id, comparisons, after, size)
    # One grouped read of the running balances per financial year on the page, as the
    # budget report does, not one per budget.
    nets = {
        year: uow.journals.nets(organisation, ledger_id, year, PERIODS_PER_YEAR)
        for year in {b.period.year for b in budgets}
    }
    return [
        BudgetPosition(b, nets[b.period.year].get((b.period.number, b.account, b.cost_centre), ZERO))
        for b in budgets
    ]


def revise_budget(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    budget_id: str,
    *,
    amount: Decimal,
    reason: str,
    etag: str,
) -> BudgetPosition:
    v = Violations()
    check_amount(v, amount, "amount", positive=False)
    reason = check_reason(v, reason, "reason")
    v.raise_if_any()
    current = _budget(uow, organisation, ledger_id, budget_id, lock=True)
    check_etag(current.name, etag, current.info)
    revised = replace(current, amount=amount, revisions=current.revisions + 1, info=uow.touched(current.info))
    uow.budgets.save(revised)
    uow.budgets.add_revision(revised, current.amount, reason, uow.tx.principal_id, _now())
    uow.tx.audit.record(
        organisation, revised.name, current.audit_view(), {**revised.audit_view(), "reason": reason}
    )
    return _position(uow, revised)


def raise_commitment(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    budget_id: str,
    *,
    amount: Decimal,
    reference: str,
    override_reason: str,
    may_override: bool,
) -> Commitment:
    v = Violations()
    check_amount(v, amount, "commitment.amount", positive=True)
    v.check(len(reference) <= 200, "commitment.reference", "at most 200 characters")
    v.check(len(override_reason) <= 500, "override_reason", "at most 500 characters")
    v.raise_if_any()
    budget = _budget(uow, organisation, ledger_id, budget_id, lock=True)
    check_commitment(_position(uow, budget), amount, override_reason.strip(), may_override=may_override)
    commitment = Commitment(
        organisation,
        ledger_id,
        new_id("c"),
        budget_id,
        amount,
        ZERO,
        ZERO,
        reference.strip(),
        override_reason.strip(),
        uow.new_info(),
    )
    uow.budgets.add_commitment(commitment)
    _recommit(uow, budget, amount)
    uow.tx.audit.record(organisation, commitment.name, None, commitment.audit_view())
    return commitment


def _recommit(uow: FinanceUnitOfWork, budget: Budget, change: Decimal) -> None:
    """Adds `change` to the budget's committed sum (the caller holds the row's lock)."""
    changed = replace(budget, committed=budget.committed + change, info=uow.touched(budget.info))
    uow.budgets.save(changed)


def _commitment(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, commitment_id: str, *, lock: bool = False
) -> Commitment:
    found = uow.budgets.commitment(organisation, ledger_id, commitment_id, lock=lock)
    if found is None:
        raise NotFound(f"{_ledger_name(organisation, ledger_id)}/commitments/{commitment_id}")
    return found


def get_commitment(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, commitment_id: str
) -> Commitment:
    return _commitment(uow, organisation, ledger_id, commitment_id)


def list_commitments(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    *,
    comparisons: Sequence[Comparison],
    after: JsonKey | None,
    size: int,
) -> list[Commitment]:
    require_ledger(uow, organisation, ledger_id)
    return uow.budgets.commitments_page(organisation, ledger_id, comparisons, after, size)


def consume_commitment(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    commitment_id: str,
    *,
    amount: Decimal | None,
    consumed_to: Decimal | None = None,
    etag: str,
) -> Commitment:
    """Consumes `amount` more, or up to the cumulative `consumed_to` (exactly one)."""
    v = Violations()
    if (amount is None) == (consumed_to is None):
        v.add("amount", "give an amount or consumed_to, not both")
    if amount is not None:
        check_amount(v, amount, "amount", positive=True)
    if consumed_to is not None:
        check_amount(v, consumed_to, "consumed_to", positive=False)
    v.raise_if_any()
    # Commitment, then budget: the order every path takes these locks in.
    current = _commitment(uow, organisation, ledger_id, commitment_id, lock=True)
    check_etag(current.name, etag, current.info)
    if amount is not None:
        return _consume(uow, current, current.consuming(amount, uow.touched(current.info)))
    assert consumed_to is not None
    return _consume(uow, current, current.consuming_to(consumed_to, uow.touched(current.info)))


def _consume(uow: FinanceUnitOfWork, current: Commitment, changed: Commitment) -> Commitment:
    """Saves a commitment's consumption and gives what it used back to the budget's
    committed sum (the caller holds the commitment's lock)."""
    used = changed.consumed - current.consumed
    if used == 0:
        # Earlier invoices (or a receipt, before receipts stopped consuming) used as much
        # already: recorded, changing nothing.
        uow.tx.audit.record(current.organisation, current.name, current.audit_view(), current.audit_view())
        return current
    budget = _budget(uow, current.organisation, current.ledger, current.budget_id, lock=True)
    uow.budgets.save_commitment(changed)
    _recommit(uow, budget, -used)
    uow.tx.audit.record(current.organisation, changed.name, current.audit_view(), changed.audit_view())
    return changed


def release_commitment(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    commitment_id: str,
    *,
    etag: str,
    retain_to: Decimal | None = None,
) -> Commitment:
    """Releases what is open, keeping open what `retain_to` (the value received so far)
    exceeds the consumed sum by: goods received but not yet invoiced stay committed."""
    if retain_to is not None:
        v = Violations()
        check_amount(v, retain_to, "retain_to", positive=False)
        v.raise_if_any()
    current = _commitment(uow, organisation, ledger_id, commitment_id, lock=True)
    check_etag(current.name, etag, current.info)
    budget = _budget(uow, organisation, ledger_id, current.budget_id, lock=True)
    changed = current.releasing(uow.touched(current.info), retain_to or ZERO)
    released = changed.released - current.released
    if released:
        uow.budgets.save_commitment(changed)
        _recommit(uow, budget, -released)
    # A release of nothing (all that is open was received) is recorded, changing nothing.
    uow.tx.audit.record(organisation, changed.name, current.audit_view(), changed.audit_view())
    return changed


# --- invoices and payments ---------------------------------------------------------------


def _control(uow: FinanceUnitOfWork, ledger: Ledger, field: str) -> str:
    code: str = getattr(ledger.details, field)
    if not code or uow.chart.account(ledger.organisation, code) is None:
        raise FailedPrecondition(
            f"{ledger.name} has no {field.replace('_', ' ')} in the chart: set it on the ledger",
            reason="CONTROL_ACCOUNT_MISSING",
            metadata={"field": field},
        )
    return code


def _commitment_id(organisation: str, ledger_id: str, name: str) -> str:
    prefix = f"{_ledger_name(organisation, ledger_id)}/commitments/"
    return name.removeprefix(prefix) if name.startswith(prefix) else ""


def create_invoice(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, details: InvoiceDetails, today: dt.date
) -> Invoice:
    require_ledger(uow, organisation, ledger_id)
    accounts = uow.chart.accounts(organisation, [line.account for line in details.lines])
    cost_centres = frozenset(
        uow.chart.cost_centres(organisation, [line.cost_centre for line in details.lines])
    )
    if details.commitment:
        commitment_id = _commitment_id(organisation, ledger_id, details.commitment)
        if not commitment_id or uow.budgets.commitment(organisation, ledger_id, commitment_id) is None:
            raise InvalidArgument.single("invoice.commitment", "must be a commitment of the same ledger")
    details = details.checked(organisation, accounts, cost_centres, today)
    if captured := uow.invoices.by_number(organisation, details.supplier, details.supplier_invoice_number):
        raise AlreadyExists(
            f"invoice {details.supplier_invoice_number} of {details.supplier} is already captured, as "
            f"{captured.name} (number {captured.details.supplier_invoice_number}: numbers are "
            "compared without case, spaces or punctuation)",
            reason="DUPLICATE_INVOICE",
            metadata={"invoice": captured.name},
        )
    invoice = Invoice(
        organisation,
        ledger_id,
        new_id("i"),
        details,
        InvoiceState.RECEIVED,
        MatchState.UNMATCHED,
        (),
        uow.new_info(),
    )
    uow.invoices.add(invoice)
    uow.tx.audit.record(organisation, invoice.name, None, invoice.audit_view())
    return invoice


def get_invoice(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, invoice_id: str, *, lock: bool = False
) -> Invoice:
    invoice = uow.invoices.get(organisation, ledger_id, invoice_id, lock=lock)
    if invoice is None:
        raise NotFound(f"{_ledger_name(organisation, ledger_id)}/invoices/{invoice_id}")
    return invoice


def list_invoices(
    uow: FinanceUnitOfWork, state: InvoiceState | None, after: JsonKey | None, size: int
) -> list[Invoice]:
    return uow.invoices.page(state, after, size)


def _invoice_in_turn(uow: FinanceUnitOfWork, organisation: str, ledger_id: str, invoice_id: str) -> Invoice:
    """The invoice, locked for a change, and then the turn on its purchase order. While a
    call waits for the turn it holds only its own invoice's row, which no holder of the
    turn wants (the count of what others billed reads without locking), so the two locks
    cannot wait on each other."""
    invoice = get_invoice(uow, organisation, ledger_id, invoice_id, lock=True)
    if invoice.details.purchase_order:
        uow.invoices.take_turn_on_order(organisation, purchase_order_key(invoice.details.purchase_order))
    return invoice


def match_invoice(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    invoice_id: str,
    *,
    orders: OrderSource,
    order_commitment: str = "",
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> Invoice:
    """Matches the invoice against its order's evidence; an invoice that names no
    commitment takes `order_commitment` (the order's), when it is of the same ledger."""
    current = _invoice_in_turn(uow, organisation, ledger_id, invoice_id)
    current.require_received()
    order = current.details.purchase_order
    if not order:
        raise FailedPrecondition(f"{current.name} has no purchase order to match", reason="NO_PURCHASE_ORDER")
    evidence = orders.evidence(organisation, order)
    if evidence is None:
        raise FailedPrecondition(
            f"purchase order {order} is not an order of the suite's procurement service: "
            "supply its lines and receipts as match_data",
            reason="ORDER_DATA_UNAVAILABLE",
        )
    billed_before = uow.invoices.billed_on_order(current)
    found = three_way_match(current.billed_lines(), evidence, tolerance, billed_before)
    details = current.details
    if not details.commitment and _commitment_id(organisation, ledger_id, order_commitment):
        details = replace(details, commitment=order_commitment)
    matched = replace(
        current,
        details=details,
        match_state=MatchState.OUT_OF_TOLERANCE if found else MatchState.MATCHED,
        discrepancies=tuple(found),
        info=uow.touched(current.info),
        match_evidence=evidence,
    )
    uow.invoices.save(matched)
    # The evidence is part of the change: what the match was made on, and who stated it.
    after = {**matched.audit_view(), "match_evidence": evidence_view(evidence, orders.origin)}
    uow.tx.audit.record(organisation, matched.name, current.audit_view(), after)
    return matched


def cancel_invoice(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, invoice_id: str, *, reason: str, etag: str
) -> Invoice:
    """Cancels an invoice captured in error, before approval: nothing was posted, so nothing
    is reversed, and its number may be captured again."""
    current = get_invoice(uow, organisation, ledger_id, invoice_id, lock=True)
    check_etag(current.name, etag, current.info)
    cancelled = current.cancelled(reason, uow.touched(current.info))
    uow.invoices.save(cancelled)
    uow.tx.audit.record(organisation, cancelled.name, current.audit_view(), cancelled.audit_view())
    return cancelled


def approve_invoice(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    invoice_id: str,
    *,
    posting_date: dt.date | None,
    etag: str,
) -> Invoice:
    if posting_date is None:
        raise InvalidArgument.single("posting_date", "is required")
    current = _invoice_in_turn(uow, organisation, ledger_id, invoice_id)
    check_etag(current.name, etag, current.info)
    current.check_approvable()
    if current.info.create_principal == uow.tx.principal_id:
        raise PermissionDenied(
            "the person who captured an invoice may not approve it", reason="SEGREGATION_OF_DUTIES"
        )
    if current.match_evidence is not None:
        # Other invoices of the order may have been approved since this one was matched.
        billed_before = uow.invoices.billed_on_order(current)
        found = three_way_match(current.billed_lines(), current.match_evidence, already_billed=billed_before)
        if found:
            raise FailedPrecondition(
                f"{current.name} no longer matches: other invoices of purchase order "
                f"{current.details.purchase_order} were approved since it was matched; "
                f"match it again ({found[0].description})",
                reason="MATCH_STALE",
                metadata={"discrepancies": str(len(found))},
            )
    ledger = require_ledger(uow, organisation, ledger_id)
    details = current.details
    recoverable = sum((line.recoverable_vat for line in details.lines), ZERO)
    lines = posting_lines(
        details,
        vat_account=_control(uow, ledger, "vat_account") if recoverable > 0 else "",
        creditors_account=_control(uow, ledger, "creditors_account"),
    )
    journal = _post(
        uow,
        ledger,
        posting_date,
        f"{details.supplier_display_name} invoice {details.supplier_invoice_number}",
        lines,
        source=JournalSource.INVOICE,
        source_resource=current.name,
    )
    commitment_id = _commitment_id(organisation, ledger_id, details.commitment)
    if commitment_id:
        # Invoices consume the commitment up to what they have billed of it in all, net
        # like the order it commits: this is what moves goods received from committed to
        # actual. (Receipts from before they stopped consuming may have consumed as much.)
        commitment = _commitment(uow, organisation, ledger_id, commitment_id, lock=True)
        billed = uow.invoices.billed_net(organisation, ledger_id, details.commitment) + details.net_total
        _consume(uow, commitment, commitment.consuming_to(billed, uow.touched(commitment.info)))
    approved = replace(
        current,
        state=InvoiceState.APPROVED,
        journal=journal.name,
        posting_date=posting_date,
        info=uow.touched(current.info),
    )
    uow.invoices.save(approved)
    uow.tx.audit.record(organisation, approved.name, current.audit_view(), approved.audit_view())
    return approved


def create_payment_run(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    *,
    payment_date: dt.date | None,
    due_by: dt.date | None,
) -> PaymentRun:
    if payment_date is None:
        raise InvalidArgument.single("payment_run.payment_date", "is required")
    cutoff = due_by or payment_date
    ledger = require_ledger(uow, organisation, ledger_id)
    due = uow.invoices.due(organisation, ledger_id, cutoff, payment_date)
    run_id = new_id("p")
    run_name = f"{ledger.name}/paymentRuns/{run_id}"
    journal_name = ""
    if due:
        lines = payment_lines(
            due,
            bank_account=_control(uow, ledger, "bank_account"),
            creditors_account=_control(uow, ledger, "creditors_account"),
        )
        journal = _post(
            uow,
            ledger,
            payment_date,
            f"Payment run {run_id}",
            lines,
            source=JournalSource.PAYMENT,
            source_resource=run_name,
        )
        journal_name = journal.name
    for invoice in due:
        paid = replace(
            invoice,
            state=InvoiceState.PAID,
            payment_run=run_name,
            paid_date=payment_date,
            info=uow.touched(invoice.info),
        )
        uow.invoices.save(paid)
        uow.tx.audit.record(organisation, paid.name, invoice.audit_view(), paid.audit_view())
    run = PaymentRun(
        organisation,
        ledger_id,
        run_id,
        payment_date,
        cutoff,
        journal_name,
        sum((i.details.gross_total for i in due), ZERO),
        tuple(i.name for i in due),
        uow.new_info(),
    )
    uow.invoices.add_payment_run(run)
    uow.tx.audit.record(organisation, run.name, None, run.audit_view())
    return run


def payments_compliance(uow: FinanceUnitOfWork, organisation: str, period_end: dt.date) -> ComplianceFigures:
    start, end = six_month_period(period_end)
    facts = [
        PaymentFact(i.details.received_date, i.details.due_date, i.details.gross_total, i.paid_date)
        for i in uow.invoices.for_compliance(organisation, start, end)
        if i.details.received_date is not None and i.details.due_date is not None
    ]
    return compliance_figures(facts, start, end)


# --- recharges ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RechargeInput:
    ledger_id: str
    counterparty: str
    amount: Decimal
    description: str
    posting_date: dt.date | None
    income_account: str
    cost_centre: str


def _check_recharge(
    uow: FinanceUnitOfWork, organisation: str, given: RechargeInput, prefix: str, v: Violations
) -> str:
    description = check_description(v, given.description, f"{prefix}.description")
    check_amount(v, given.amount, f"{prefix}.amount", positive=True)
    v.check(given.posting_date is not None, f"{prefix}.posting_date", "is required")
    income = uow.chart.account(organisation, given.income_account)
    v.check(
        income is not None and income.type is AccountType.INCOME,
        f"{prefix}.income_account",
        f"{given.income_account!r} is not an income account of the chart",
    )
    v.check(
        bool(uow.chart.cost_centres(organisation, [given.cost_centre])),
        f"{prefix}.cost_centre",
        f"{given.cost_centre!r} is not a cost centre of the organisation",
    )
    return description


def _raise_recharge(
    uow: FinanceUnitOfWork, ledger: Ledger, given: RechargeInput, description: str, allocation: str = ""
) -> Recharge:
    assert given.posting_date is not None
    recharge = Recharge(
        organisation=ledger.organisation,
        id=new_id("r"),
        ledger=ledger.id,
        counterparty=given.counterparty,
        amount=given.amount,
        description=description,
        posting_date=given.posting_date,
        income_account=given.income_account,
        cost_centre=given.cost_centre,
        state=RechargeState.RAISED,
        journal="",
        info=uow.new_info(),
        allocation=allocation,
    )
    journal = _post(
        uow,
        ledger,
        given.posting_date,
        f"Recharge {recharge.id} to {given.counterparty}: {description}",
        charging_lines(recharge, _control(uow, ledger, "recharges_account")),
        source=JournalSource.RECHARGE,
        source_resource=recharge.name,
    )
    recharge = replace(recharge, journal=journal.name)
    uow.recharges.add(recharge)
    uow.tx.audit.record(ledger.organisation, recharge.name, None, recharge.audit_view())
    return recharge


def create_recharge(uow: FinanceUnitOfWork, organisation: str, given: RechargeInput) -> Recharge:
    ledger = require_ledger(uow, organisation, given.ledger_id)
    v = Violations()
    description = _check_recharge(uow, organisation, given, "recharge", v)
    v.check(given.counterparty != organisation, "recharge.counterparty", "must be another organisation")
    v.raise_if_any()
    return _raise_recharge(uow, ledger, given, description)


def get_recharge(uow: FinanceUnitOfWork, organisation: str, recharge_id: str) -> Recharge:
    """Visible to either party: the data layer's scope decides."""
    found = uow.recharges.get(organisation, recharge_id)
    if found is None:
        raise NotFound(f"organisations/{organisation}/recharges/{recharge_id}")
    return found


def list_recharges(uow: FinanceUnitOfWork, after: JsonKey | None, size: int) -> list[Recharge]:
    return uow.recharges.page(after, size)


def decline_recharge(
    uow: FinanceUnitOfWork, acting_for: str, charging: str, recharge_id: str, *, reason: str, etag: str
) -> Recharge:
    v = Violations()
    reason = check_reason(v, reason, "reason")
    v.raise_if_any()
    current = uow.recharges.get(charging, recharge_id, lock=True)
    if current is None:
        raise NotFound(f"organisations/{charging}/recharges/{recharge_id}")
    check_etag(current.name, etag, current.info)
    declined = current.declined(acting_for, reason, uow.touched(current.info))
    uow.recharges.save(declined)
    uow.tx.audit.record(acting_for, declined.name, current.audit_view(), declined.audit_view())
    return declined


def cancel_recharge(
    uow: FinanceUnitOfWork,
    charging: str,
    recharge_id: str,
    *,
    reason: str,
    posting_date: dt.date | None,
    etag: str,
) -> Recharge:
    """Withdraws a recharge the other side has not accepted: the charging journal is
    reversed in the charging organisation's own ledger, and the recharge names the reversal."""
    v = Violations()
    reason = check_reason(v, reason, "reason")
    v.check(posting_date is not None, "posting_date", "is required")
    v.raise_if_any()
    current = uow.recharges.get(charging, recharge_id, lock=True)
    if current is None:
        raise NotFound(f"organisations/{charging}/recharges/{recharge_id}")
    check_etag(current.name, etag, current.info)
    current.require_cancellable()
    assert posting_date is not None
    charge = get_journal(uow, charging, current.ledger, current.journal.rsplit("/", 1)[1])
    reversal = _reverse(uow, charging, current.ledger, charge, posting_date=posting_date, reason=reason)
    cancelled = current.cancelled(reason, reversal.name, uow.touched(current.info))
    uow.recharges.save(cancelled)
    uow.tx.audit.record(charging, cancelled.name, current.audit_view(), cancelled.audit_view())
    return cancelled


def accept_recharge(
    uow: FinanceUnitOfWork,
    charged: str,
    charging: str,
    recharge_id: str,
    *,
    ledger_id: str,
    expense_account: str,
    cost_centre: str,
    posting_date: dt.date | None,
    etag: str,
) -> Recharge:
    current = uow.recharges.get(charging, recharge_id, lock=True)
    if current is None or current.counterparty != charged:
        raise NotFound(f"organisations/{charging}/recharges/{recharge_id}")
    check_etag(current.name, etag, current.info)
    current.require_raised()
    ledger = require_ledger(uow, charged, ledger_id)
    v = Violations()
    account = uow.chart.account(charged, expense_account)
    v.check(
        account is not None and account.type is AccountType.EXPENDITURE,
        "expense_account",
        f"{expense_account!r} is not an expenditure account of the chart",
    )
    v.check(
        bool(uow.chart.cost_centres(charged, [cost_centre])),
        "cost_centre",
        f"{cost_centre!r} is not a cost centre of the organisation",
    )
    v.check(posting_date is not None, "posting_date", "is required")
    v.raise_if_any()
    assert posting_date is not None
    journal = _post(
        uow,
        ledger,
        posting_date,
        f"Recharge {current.id} from {charging}: {current.description}",
        charged_lines(current, expense_account, cost_centre, _control(uow, ledger, "recharges_account")),
        source=JournalSource.RECHARGE,
        source_resource=current.name,
    )
    accepted = replace(
        current,
        state=RechargeState.ACCEPTED,
        counterparty_ledger=ledger.name,
        counterparty_journal=journal.name,
        info=uow.touched(current.info),
    )
    uow.recharges.save(accepted)
    uow.tx.audit.record(charged, accepted.name, current.audit_view(), accepted.audit_view())
    return accepted


SHARE_MARK = " (share)"


# Drivers are counts, FTEs or areas: a bound keeps the split's arithmetic inside Decimal's
# precision (a driver of 1E+999999999 overflowed it: INTERNAL).
MAX_DRIVER = Decimal(10) ** 12


def allocate_costs(
    uow: FinanceUnitOfWork,
    organisation: str,
    given: RechargeInput,
    shares: Sequence[tuple[str, Decimal]],
) -> list[Recharge]:
    """Splits `given.amount` over the members by their drivers and raises a recharge to
    each member whose share is not zero."""
    ledger = require_ledger(uow, organisation, given.ledger_id)
    v = Violations()
    description = _check_recharge(uow, organisation, given, "allocation", v)
    v.check(bool(shares), "shares", "name at least one member organisation")
    seen: set[str] = set()
    for i, (member, driver) in enumerate(shares):
        v.check(member != organisation, f"shares[{i}].organisation", "must be another organisation")
        v.check(member not in seen, f"shares[{i}].organisation", "names a member twice")
        seen.add(member)
        v.check(
            ZERO <= driver <= MAX_DRIVER and has_places(driver, 6),
            f"shares[{i}].driver",
            "must be at least zero and at most a trillion, to at most six decimal places",
        )
    if shares and all(d >= 0 for _, d in shares):
        v.check(sum((d for _, d in shares), Decimal(0)) > 0, "shares", "the drivers must not all be zero")
    v.raise_if_any()
    parts = split_by_drivers(given.amount, [d for _, d in shares])
    allocation = new_id("al")
    # The marker must fit in the recharge's description whatever length the caller used.
    share_description = f"{description[: MAX_DESCRIPTION - len(SHARE_MARK)]}{SHARE_MARK}"
    return [
        _raise_recharge(
            uow,
            ledger,
            replace(given, counterparty=member, amount=part),
            share_description,
            allocation,
        )
        for (member, _), part in zip(shares, parts, strict=True)
        if part > 0
    ]


# --- reports -----------------------------------------------------------------------------


def get_trial_balance(
    uow: FinanceUnitOfWork,
    organisation: str,
    ledger_id: str,
    year: int,
    through: int,
    *,
    by_cost_centre: bool,
) -> TrialBalance:
    check_year(year, "financial_year")
    through = check_through_period(through)
    if ledger_id == ALL_LEDGERS:
        ledger_ids = sorted(uow.chart.ledger_ids(organisation))
    else:
        ledger_ids = [require_ledger(uow, organisation, ledger_id).id]
    nets = uow.journals.balances(
        organisation,
        ledger_ids,
        year,
        through,
        by_cost_centre=by_cost_centre,
        eliminate=ledger_id == ALL_LEDGERS,
    )
    names = {a.code: a.display_name for a in uow.chart.accounts(organisation, [n[0] for n in nets]).values()}
    return trial_balance(_ledger_name(organisation, ledger_id), year, through, nets, names)


def get_budget_report(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, year: int, through: int
) -> list[BudgetReportRow]:
    check_year(year, "financial_year")
    through = check_through_period(through)
    require_ledger(uow, organisation, ledger_id)
    budgets = uow.budgets.for_year(organisation, ledger_id, year, through)
    centres = uow.chart.cost_centres(organisation, [b.cost_centre for b in budgets])
    # One grouped read of the running balances, not one query per budget.
    nets = uow.journals.nets(organisation, ledger_id, year, through)
    positions = [
        BudgetPosition(b, nets.get((b.period.number, b.account, b.cost_centre), ZERO)) for b in budgets
    ]
    return budget_by_poa(positions, {code: c.poa_category for code, c in centres.items()})


_HEADING_LABELS = {h: h.value.replace("_", " ").capitalize() for h in SubjectiveHeading}


@dataclass(frozen=True)
class SpendFile:
    format: SpendFileFormat
    start: dt.date
    end: dt.date
    items: int
    csv: str


def spend_over_500(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, fmt: SpendFileFormat, start: dt.date
) -> SpendFile:
    first, last = file_range(fmt, start)
    ledger = require_ledger(uow, organisation, ledger_id)
    invoices = uow.invoices.posted_between(organisation, ledger_id, first, last)
    lines = [line for i in invoices for line in i.details.lines]
    accounts = uow.chart.accounts(organisation, [line.account for line in lines])
    centres = uow.chart.cost_centres(organisation, [line.cost_centre for line in lines])
    items = []
    for invoice in invoices:
        d = invoice.details
        largest = max(d.lines, key=lambda line: line.cost)
        account = accounts[largest.account]
        assert invoice.posting_date is not None
        items.append(
            SpendItem(
                body=ledger.details.display_name,
                date=invoice.posting_date,
                transaction=invoice.id,
                recipient=d.supplier_display_name,
                department=centres[largest.cost_centre].display_name,
                expense_type=account.display_name,
                purpose="; ".join(dict.fromkeys(line.description for line in d.lines)),
                amount=sum((line.cost for line in d.lines), ZERO),
                irrecoverable_vat=sum((line.vat - line.recoverable_vat for line in d.lines), ZERO),
                merchant_category=_HEADING_LABELS[account.subjective],
            )
        )
    chosen = over_threshold(items)
    return SpendFile(fmt, first, last, len(chosen), spend_csv(fmt, chosen))


def vat_by_use(
    uow: FinanceUnitOfWork, organisation: str, ledger_id: str, start: dt.date, end: dt.date
) -> VatAnalysis:
    months_between(start, end)
    require_ledger(uow, organisation, ledger_id)
    invoices = uow.invoices.posted_between(organisation, ledger_id, start, end)
    return vat_analysis([line for i in invoices for line in i.details.lines], start, end)
