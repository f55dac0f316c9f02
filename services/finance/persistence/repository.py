"""Finance's repositories: domain objects in, domain objects out."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from libs.common.db import in_scope
from libs.common.filtering import Comparison
from libs.common.paging import JsonKey
from libs.common.persistence import (
    apply_filter,
    insert_values,
    keyset_after,
    read_by_key,
    record_info,
    record_values,
    update_by_key,
    values_of,
)
from services.finance.domain.budgets import Budget, Commitment, CommitmentState
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
from services.finance.domain.invoices import (
    Invoice,
    InvoiceDetails,
    InvoiceLine,
    InvoiceState,
    MatchState,
    PaymentRun,
    VatUse,
    invoice_number_key,
    purchase_order_key,
)
from services.finance.domain.journals import Journal, JournalLine, JournalSource
from services.finance.domain.matching import Discrepancy, OrderEvidence, OrderLine, ReceiptLine
from services.finance.domain.money import from_pence, to_pence
from services.finance.domain.periods import Period, PeriodKey, PeriodState
from services.finance.domain.recharges import Recharge, RechargeState
from services.finance.persistence.models import (
    AccountBalanceRow,
    AccountRow,
    BalanceRow,
    BudgetRevisionRow,
    BudgetRow,
    CommitmentRow,
    CostCentreRow,
    InvoiceLineRow,
    InvoiceRow,
    JournalLineRow,
    JournalRow,
    LedgerRow,
    PaymentRunRow,
    PeriodRow,
    RechargeRow,
)

# --- chart: ledgers, accounts, cost centres, periods -------------------------------------


class ChartRepository(Protocol):
    def ledger(self, organisation: str, ledger_id: str) -> Ledger | None: ...
    def ledgers(self, organisation: str, after: JsonKey | None, size: int) -> list[Ledger]: ...
    def ledger_ids(self, organisation: str) -> frozenset[str]: ...
    def add_ledger(self, ledger: Ledger) -> None: ...
    def account(self, organisation: str, code: str) -> Account | None: ...
    def accounts(self, organisation: str, codes: Iterable[str] | None = None) -> dict[str, Account]: ...
    def account_page(self, organisation: str, after: JsonKey | None, size: int) -> list[Account]: ...
    def add_account(self, account: Account) -> None: ...
    def cost_centres(
        self, organisation: str, codes: Iterable[str] | None = None
    ) -> dict[str, CostCentre]: ...
    def cost_centre_page(self, organisation: str, after: JsonKey | None, size: int) -> list[CostCentre]: ...
    def add_cost_centre(self, cost_centre: CostCentre) -> None: ...
    def period(
        self,
        organisation: str,
        ledger_id: str,
        key: PeriodKey,
        *,
        for_posting: bool = False,
        lock: bool = False,
    ) -> Period | None: ...
    def periods(
        self, organisation: str, ledger_id: str, after: JsonKey | None, size: int
    ) -> list[Period]: ...
    def add_periods(self, periods: Sequence[Period]) -> None: ...
    def save_period(self, period: Period) -> None: ...


def _ledger(row: LedgerRow) -> Ledger:
    return Ledger(
        row.organisation_code,
        row.id,
        LedgerDetails(
            row.display_name,
            EntityKind(row.entity_kind),
            row.creditors_account,
            row.vat_account,
            row.bank_account,
            row.recharges_account,
        ),
        record_info(row),
    )


def _account(row: AccountRow) -> Account:
    return Account(
        row.organisation_code,
        row.code,
        row.display_name,
        AccountType(row.type),
        SubjectiveHeading(row.subjective),
        record_info(row),
    )


def _cost_centre(row: CostCentreRow) -> CostCentre:
    return CostCentre(
        row.organisation_code, row.code, row.display_name, PoaCategory(row.poa_category), record_info(row)
    )


def _period(row: PeriodRow) -> Period:
    return Period(
        row.organisation_code,
        row.ledger_id,
        PeriodKey(row.financial_year, row.number),
        PeriodState(row.state),
        record_info(row),
    )


class SqlChartRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def ledger(self, organisation: str, ledger_id: str) -> Ledger | None:
        row = self._session.get(LedgerRow, (organisation, ledger_id))
        return _ledger(row) if row else None

    def ledgers(self, organisation: str, after: JsonKey | None, size: int) -> list[Ledger]:
        stmt = select(LedgerRow).where(LedgerRow.organisation_code == organisation)
        stmt = keyset_after(stmt, [LedgerRow.id], after).limit(size)
        return [_ledger(r) for r in self._session.scalars(stmt)]

    def ledger_ids(self, organisation: str) -> frozenset[str]:
        return frozenset(
            self._session.scalars(select(LedgerRow.id).where(LedgerRow.organisation_code == organisation))
        )

    def add_ledger(self, ledger: Ledger) -> None:
        d = ledger.details
        assert d.entity_kind is not None
        self._session.add(
            LedgerRow(
                organisation_code=ledger.organisation,
                id=ledger.id,
                display_name=d.display_name,
                entity_kind=d.entity_kind.value,
                creditors_account=d.creditors_account,
                vat_account=d.vat_account,
                bank_account=d.bank_account,
                recharges_account=d.recharges_account,
                **record_values(ledger.info),
            )
        )
        self._session.flush()

    def account(self, organisation: str, code: str) -> Account | None:
        row = self._session.get(AccountRow, (organisation, code))
        return _account(row) if row else None

    def accounts(self, organisation: str, codes: Iterable[str] | None = None) -> dict[str, Account]:
        stmt = select(AccountRow).where(AccountRow.organisation_code == organisation)
        if codes is not None:
            stmt = stmt.where(AccountRow.code.in_(sorted(set(codes))))
        return {r.code: _account(r) for r in self._session.scalars(stmt)}

    def account_page(self, organisation: str, after: JsonKey | None, size: int) -> list[Account]:
        stmt = select(AccountRow).where(AccountRow.organisation_code == organisation)
        return [
            _account(r)
            for r in self._session.scalars(keyset_after(stmt, [AccountRow.code], after).limit(size))
        ]

    def add_account(self, account: Account) -> None:
        self._session.add(
            AccountRow(
                organisation_code=account.organisation,
                code=account.code,
                display_name=account.display_name,
                type=account.type.value,
                subjective=account.subjective.value,
                **record_values(account.info),
            )
        )
        self._session.flush()

    def cost_centres(self, organisation: str, codes: Iterable[str] | None = None) -> dict[str, CostCentre]:
        stmt = select(CostCentreRow).where(CostCentreRow.organisation_code == organisation)
        if codes is not None:
            stmt = stmt.where(CostCentreRow.code.in_(sorted(set(codes))))
        return {r.code: _cost_centre(r) for r in self._session.scalars(stmt)}

    def cost_centre_page(self, organisation: str, after: JsonKey | None, size: int) -> list[CostCentre]:
        stmt = select(CostCentreRow).where(CostCentreRow.organisation_code == organisation)
        stmt = keyset_after(stmt, [CostCentreRow.code], after).limit(size)
        return [_cost_centre(r) for r in self._session.scalars(stmt)]

    def add_cost_centre(self, cost_centre: CostCentre) -> None:
        self._session.add(
            CostCentreRow(
                organisation_code=cost_centre.organisation,
                code=cost_centre.code,
                display_name=cost_centre.display_name,
                poa_category=cost_centre.poa_category.value,
                **record_values(cost_centre.info),
            )
        )
        self._session.flush()

    def period(
        self,
        organisation: str,
        ledger_id: str,
        key: PeriodKey,
        *,
        for_posting: bool = False,
        lock: bool = False,
    ) -> Period | None:
        stmt = select(PeriodRow).where(
            PeriodRow.organisation_code == organisation,
            PeriodRow.ledger_id == ledger_id,
            PeriodRow.financial_year == key.year,
            PeriodRow.number == key.number,
        )
        if for_posting:
            # A share lock: a concurrent close waits for this posting to commit, and a
            # posting after the close sees it closed.
            stmt = stmt.with_for_update(read=True)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        row = self._session.scalars(stmt).first()
        return _period(row) if row else None

    def periods(self, organisation: str, ledger_id: str, after: JsonKey | None, size: int) -> list[Period]:
        stmt = select(PeriodRow).where(
            PeriodRow.organisation_code == organisation, PeriodRow.ledger_id == ledger_id
        )
        stmt = keyset_after(stmt, [PeriodRow.financial_year, PeriodRow.number], after).limit(size)
        return [_period(r) for r in self._session.scalars(stmt)]

    def add_periods(self, periods: Sequence[Period]) -> None:
        for p in periods:
            self._session.add(
                PeriodRow(
                    organisation_code=p.organisation,
                    ledger_id=p.ledger,
                    financial_year=p.key.year,
                    number=p.key.number,
                    state=p.state.value,
                    **record_values(p.info),
                )
            )
        self._session.flush()

    def save_period(self, period: Period) -> None:
        row = self._session.get(
            PeriodRow, (period.organisation, period.ledger, period.key.year, period.key.number)
        )
        assert row is not None
        row.state = period.state.value
        for key, value in record_values(period.info).items():
            setattr(row, key, value)
        self._session.flush()


# --- journals and balances ---------------------------------------------------------------


class JournalRepository(Protocol):
    def get(self, organisation: str, ledger_id: str, journal_id: str) -> Journal | None: ...
    def page(self, organisation: str, ledger_id: str, after: JsonKey | None, size: int) -> list[Journal]: ...
    def add(self, journal: Journal) -> None: ...
    def net(
        self, organisation: str, ledger_id: str, key: PeriodKey, account: str, cost_centre: str
    ) -> Decimal: ...
    def nets(
        self, organisation: str, ledger_id: str, year: int, through: int
    ) -> dict[tuple[int, str, str], Decimal]:
        """Debits less credits by (period, account, cost centre) up to a period, at once."""
        ...

    def balances(
        self,
        organisation: str,
        ledger_ids: Sequence[str],
        year: int,
        through: int,
        *,
        by_cost_centre: bool,
        eliminate: bool,
    ) -> list[tuple[str, str, Decimal]]: ...


@functools.cache
def _upsert_statement(dialect: str, table: Any, keys: tuple[str, ...], add: tuple[str, ...]) -> Any:
    # Built once, values bound at execution: built with its values each time, it was compiled
    # each time too, two fifths of a posting.
    stmt: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: table.c[c] + stmt.excluded[c] for c in add}
    )


def _upsert(
    session: Session, table: Any, rows: list[dict[str, Any]], keys: tuple[str, ...], add: tuple[str, ...]
) -> None:
    """Adds `add` of each row to the row of its `keys`, creating it: in the order given, in
    one execution."""
    if rows:
        session.execute(_upsert_statement(session.get_bind().dialect.name, table, keys, add), rows)


# In line order, so a journal's lines need no sorting.
_LINES_OF_JOURNALS = (
    select(
        JournalLineRow.journal_id,
        JournalLineRow.account_code,
        JournalLineRow.cost_centre_code,
        JournalLineRow.debit_pence,
        JournalLineRow.credit_pence,
        JournalLineRow.description,
        JournalLineRow.counterparty_ledger,
    )
    .where(
        JournalLineRow.organisation_code == bindparam("org"),
        JournalLineRow.ledger_id == bindparam("ledger"),
        JournalLineRow.journal_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(JournalLineRow.journal_id, JournalLineRow.line_no)
)


# A Core statement, built once: every commitment runs it (the budget's actual), and through
# the ORM it cost a tenth of the commitment. The scope is checked by hand (`net`).
_BALANCES = BalanceRow.__table__.c
_NET = select(func.coalesce(func.sum(_BALANCES.debit_pence - _BALANCES.credit_pence), 0)).where(
    _BALANCES.organisation_code == bindparam("o"),
    _BALANCES.ledger_id == bindparam("l"),
    _BALANCES.financial_year == bindparam("y"),
    _BALANCES.period == bindparam("p"),
    _BALANCES.account_code == bindparam("a"),
    _BALANCES.cost_centre_code == bindparam("c"),
)


class SqlJournalRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _journal(self, row: JournalRow, lines: list[JournalLine], reversed_by: str) -> Journal:
        return Journal(
            organisation=row.organisation_code,
            ledger=row.ledger_id,
            id=row.id,
            posting_date=row.posting_date,
            period=PeriodKey(row.financial_year, row.period),
            description=row.description,
            source=JournalSource(row.source),
            lines=tuple(lines),
            info=record_info(row),
            source_resource=row.source_resource,
            reversal_of=row.reversal_of or "",
            reversed_by=reversed_by,
        )

    def _hydrate(self, rows: Sequence[JournalRow]) -> list[Journal]:
        if not rows:
            return []
        org, ledger = rows[0].organisation_code, rows[0].ledger_id
        ids = [r.id for r in rows]
        lines: dict[str, list[JournalLine]] = {i: [] for i in ids}
        # Tuples, not instances: a page of journals is a thousand lines, and an ORM instance
        # (or a lookup by name on a row) each cost more than the rest of the call.
        found_lines = self._session.execute(_LINES_OF_JOURNALS, {"org": org, "ledger": ledger, "ids": ids})
        for (
            journal_id,
            account,
            cost_centre,
            debit,
            credit,
            description,
            counterparty,
        ) in found_lines.tuples():
            lines[journal_id].append(
                JournalLine(
                    account, cost_centre, from_pence(debit), from_pence(credit), description, counterparty
                )
            )
        found = self._session.execute(
            select(JournalRow.reversal_of, JournalRow.id).where(
                JournalRow.organisation_code == org,
                JournalRow.ledger_id == ledger,
                JournalRow.reversal_of.in_(ids),
            )
        )
        reversals = dict(found.tuples().all())
        return [self._journal(r, lines[r.id], reversals.get(r.id, "") or "") for r in rows]

    def get(self, organisation: str, ledger_id: str, journal_id: str) -> Journal | None:
        key = {"organisation_code": organisation, "ledger_id": ledger_id, "id": journal_id}
        row = read_by_key(self._session, JournalRow, key)
        return self._hydrate([row])[0] if row else None

    def page(self, organisation: str, ledger_id: str, after: JsonKey | None, size: int) -> list[Journal]:
        stmt = select(JournalRow).where(
            JournalRow.organisation_code == organisation, JournalRow.ledger_id == ledger_id
        )
        rows = list(self._session.scalars(keyset_after(stmt, [JournalRow.id], after).limit(size)))
        return self._hydrate(rows)

    def add(self, journal: Journal) -> None:
        """The journal, its lines, and its effect on the balances, in one transaction."""
        self._session.add(
            JournalRow(
                organisation_code=journal.organisation,
                ledger_id=journal.ledger,
                id=journal.id,
                posting_date=journal.posting_date,
                financial_year=journal.period.year,
                period=journal.period.number,
                description=journal.description,
                source=journal.source.value,
                source_resource=journal.source_resource,
                reversal_of=journal.reversal_of or None,
                **record_values(journal.info),
            )
        )
        self._session.flush()
        effect: dict[tuple[str, str, str], list[int]] = {}
        for n, line in enumerate(journal.lines, start=1):
            debit, credit = to_pence(line.debit), to_pence(line.credit)
            self._session.add(
                JournalLineRow(
                    organisation_code=journal.organisation,
                    ledger_id=journal.ledger,
                    journal_id=journal.id,
                    line_no=n,
                    account_code=line.account,
                    cost_centre_code=line.cost_centre,
                    debit_pence=debit,
                    credit_pence=credit,
                    description=line.description,
                    counterparty_ledger=line.counterparty_ledger,
                )
            )
            totals = effect.setdefault((line.account, line.cost_centre, line.counterparty_ledger), [0, 0])
            totals[0] += debit
            totals[1] += credit
        self._session.flush()
        by_account: dict[tuple[str, str], list[int]] = {}
        for (account, _, counterparty), (debit, credit) in effect.items():
            totals = by_account.setdefault((account, counterparty), [0, 0])
            totals[0] += debit
            totals[1] += credit
        period = {
            "organisation_code": journal.organisation,
            "ledger_id": journal.ledger,
            "financial_year": journal.period.year,
            "period": journal.period.number,
        }
        _upsert(
            self._session,
            AccountBalanceRow.__table__,
            [
                period
                | {"account_code": account, "counterparty_ledger": counterparty}
                | {"debit_pence": debit, "credit_pence": credit}
                for (account, counterparty), (debit, credit) in sorted(by_account.items())
            ],
            (*period, "account_code", "counterparty_ledger"),
            ("debit_pence", "credit_pence"),
        )
        # In key order, so that concurrent postings lock balance rows in the same order.
        _upsert(
            self._session,
            BalanceRow.__table__,
            [
                period
                | {
                    "account_code": account,
                    "cost_centre_code": cost_centre,
                    "counterparty_ledger": counterparty,
                }
                | {"debit_pence": debit, "credit_pence": credit}
                for (account, cost_centre, counterparty), (debit, credit) in sorted(effect.items())
            ],
            (*period, "account_code", "cost_centre_code", "counterparty_ledger"),
            ("debit_pence", "credit_pence"),
        )

    def net(
        self, organisation: str, ledger_id: str, key: PeriodKey, account: str, cost_centre: str
    ) -> Decimal:
        """Debits less credits on an account and cost centre in one period."""
        if not in_scope(self._session, organisation):  # what the tenant filter would add
            return from_pence(0)
        params = {
            "o": organisation,
            "l": ledger_id,
            "y": key.year,
            "p": key.number,
            "a": account,
            "c": cost_centre,
        }
        return from_pence(int(self._session.execute(_NET, params).scalar_one()))

    def nets(
        self, organisation: str, ledger_id: str, year: int, through: int
    ) -> dict[tuple[int, str, str], Decimal]:
        rows = self._session.execute(
            select(
                BalanceRow.period,
                BalanceRow.account_code,
                BalanceRow.cost_centre_code,
                func.sum(BalanceRow.debit_pence - BalanceRow.credit_pence),
            )
            .where(
                BalanceRow.organisation_code == organisation,
                BalanceRow.ledger_id == ledger_id,
                BalanceRow.financial_year == year,
                BalanceRow.period <= through,
            )
            .group_by(BalanceRow.period, BalanceRow.account_code, BalanceRow.cost_centre_code)
        )
        return {(int(p), a, c): from_pence(int(total or 0)) for p, a, c, total in rows}

    def balances(
        self,
        organisation: str,
        ledger_ids: Sequence[str],
        year: int,
        through: int,
        *,
        by_cost_centre: bool,
        eliminate: bool,
    ) -> list[tuple[str, str, Decimal]]:
        """(account, cost centre or "", net debit) from the maintained balances: per
        account from `account_balances`, per cost centre from `ledger_balances`. With
        `eliminate`, the lines two of the ledgers tagged as between them are left out when
        the two sides agree (their tagged income and expenditure nets to zero, and so do
        their tagged balance-sheet accounts); a pair that does not agree
        (one side missing, or a different amount) stays in, so that the group still
        balances and the difference shows where it is."""
        table: Any = BalanceRow if by_cost_centre else AccountBalanceRow
        keys = [table.account_code, *([table.cost_centre_code] if by_cost_centre else [])]
        keys += [table.ledger_id, table.counterparty_ledger]
        stmt = (
            select(*keys, func.sum(table.debit_pence - table.credit_pence))
            .where(
                table.organisation_code == organisation,
                table.ledger_id.in_(list(ledger_ids)),
                table.financial_year == year,
                table.period <= through,
            )
            .group_by(*keys)
        )
        # (account, cost centre or "", ledger, the ledger it is tagged as between, net pence)
        rows = [
            (r[0], r[1] if by_cost_centre else "", r[-3], r[-2], int(r[-1]))
            for r in self._session.execute(stmt).tuples()
        ]
        agreed: set[frozenset[str]] = set()
        if eliminate:
            # Agreed per class of account: the income and expenditure both sides tag as between
            # them nets to zero, and so do the balances (debtor against creditor). All their
            # tagged lines together would always net to zero when each side tags both lines
            # of its own journals, whatever the other side booked, or if it booked nothing.
            tagged = {account for account, _, _, tag, _ in rows if tag}
            revenue = {
                code
                for code, kind in self._session.execute(
                    select(AccountRow.code, AccountRow.type).where(
                        AccountRow.organisation_code == organisation, AccountRow.code.in_(tagged)
                    )
                ).tuples()
                if AccountType(kind).is_revenue
            }
            pairs: dict[frozenset[str], list[int]] = {}
            for account, _, ledger, tag, net in rows:
                if tag:
                    sums = pairs.setdefault(frozenset((ledger, tag)), [0, 0])
                    sums[account in revenue] += net
            agreed = {pair for pair, sums in pairs.items() if sums == [0, 0]}
        totals: dict[tuple[str, str], int] = {}
        for account, centre, ledger, tag, net in rows:
            if tag and frozenset((ledger, tag)) in agreed:
                continue
            totals[(account, centre)] = totals.get((account, centre), 0) + net
        return [(a, c, from_pence(n)) for (a, c), n in sorted(totals.items())]


# --- budgets and commitments -------------------------------------------------------------


class BudgetRepository(Protocol):
    def get(
        self, organisation: str, ledger_id: str, budget_id: str, *, lock: bool = False
    ) -> Budget | None: ...
    def find(
        self, organisation: str, ledger_id: str, cost_centre: str, account: str, key: PeriodKey
    ) -> Budget | None: ...
    def add(self, budget: Budget) -> None: ...
    def save(self, budget: Budget) -> None: ...
    def add_revision(
        self, budget: Budget, previous: Decimal, reason: str, principal: str, time: dt.datetime
    ) -> None: ...
    def for_year(self, organisation: str, ledger_id: str, year: int, through: int) -> list[Budget]: ...
    def page(
        self,
        organisation: str,
        ledger_id: str,
        comparisons: Sequence[Comparison],
        after: JsonKey | None,
        size: int,
    ) -> list[Budget]:
        """A ledger's budgets in the order they were set (by id), those matching every
        comparison of `BUDGET_FILTERS`' fields."""
        ...

    def commitment(
        self, organisation: str, ledger_id: str, commitment_id: str, *, lock: bool = False
    ) -> Commitment | None: ...
    def commitments_page(
        self,
        organisation: str,
        ledger_id: str,
        comparisons: Sequence[Comparison],
        after: JsonKey | None,
        size: int,
    ) -> list[Commitment]:
        """A ledger's commitments in the order they were raised, those matching every
        comparison of `COMMITMENT_FILTERS`' fields or of `state` (a `CommitmentState`)."""
        ...

    def add_commitment(self, commitment: Commitment) -> None: ...
    def save_commitment(self, commitment: Commitment) -> None: ...


def _budget(row: BudgetRow) -> Budget:
    return Budget(
        row.organisation_code,
        row.ledger_id,
        row.id,
        row.cost_centre_code,
        row.account_code,
        PeriodKey(row.financial_year, row.period),
        from_pence(row.amount_pence),
        from_pence(row.committed_pence),
        row.revisions,
        record_info(row),
    )


def _commitment(row: CommitmentRow) -> Commitment:
    return Commitment(
        row.organisation_code,
        row.ledger_id,
        row.id,
        row.budget_id,
        from_pence(row.amount_pence),
        from_pence(row.consumed_pence),
        from_pence(row.released_pence),
        row.reference,
        row.override_reason,
        record_info(row),
    )


# What ListBudgets and ListCommitments filter on, by the field names of their API.
BUDGET_FILTERS = {
    "cost_centre": BudgetRow.cost_centre_code,
    "account": BudgetRow.account_code,
    "financial_year": BudgetRow.financial_year,
}
COMMITMENT_FILTERS = {"budget": CommitmentRow.budget_id, "reference": CommitmentRow.reference}


class SqlBudgetRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, organisation: str, ledger_id: str, budget_id: str, *, lock: bool = False) -> Budget | None:
        # Locked for a commitment: commitments against one budget queue here, so that the
        # check and the change see the same committed sum.
        key = {"organisation_code": organisation, "ledger_id": ledger_id, "id": budget_id}
        row = read_by_key(self._session, BudgetRow, key, lock=lock)
        return _budget(row) if row else None

    def find(
        self, organisation: str, ledger_id: str, cost_centre: str, account: str, key: PeriodKey
    ) -> Budget | None:
        # Budgets are read as plain values and written with Core statements, never as
        # instances, so that no instance in the session can be older than the row.
        budgets = values_of(BudgetRow)
        found = budgets.read(
            self._session,
            budgets.select().where(
                BudgetRow.organisation_code == organisation,
                BudgetRow.ledger_id == ledger_id,
                BudgetRow.cost_centre_code == cost_centre,
                BudgetRow.account_code == account,
                BudgetRow.financial_year == key.year,
                BudgetRow.period == key.number,
            ),
        )
        return _budget(found[0]) if found else None

    def _values(self, b: Budget) -> dict[str, Any]:
        return {
            "cost_centre_code": b.cost_centre,
            "account_code": b.account,
            "financial_year": b.period.year,
            "period": b.period.number,
            "amount_pence": to_pence(b.amount),
            "committed_pence": to_pence(b.committed),
            "revisions": b.revisions,
            **record_values(b.info),
        }

    def add(self, budget: Budget) -> None:
        key = {"organisation_code": budget.organisation, "ledger_id": budget.ledger, "id": budget.id}
        insert_values(self._session, BudgetRow, key | self._values(budget))

    def save(self, budget: Budget) -> None:
        key = {"organisation_code": budget.organisation, "ledger_id": budget.ledger, "id": budget.id}
        update_by_key(self._session, BudgetRow, key, self._values(budget))

    def add_revision(
        self, budget: Budget, previous: Decimal, reason: str, principal: str, time: dt.datetime
    ) -> None:
        self._session.add(
            BudgetRevisionRow(
                organisation_code=budget.organisation,
                ledger_id=budget.ledger,
                budget_id=budget.id,
                revision=budget.revisions,
                previous_pence=to_pence(previous),
                amount_pence=to_pence(budget.amount),
                reason=reason,
                principal=principal,
                time=time,
            )
        )
        self._session.flush()

    def for_year(self, organisation: str, ledger_id: str, year: int, through: int) -> list[Budget]:
        budgets = values_of(BudgetRow)
        stmt = budgets.select().where(
            BudgetRow.organisation_code == organisation,
            BudgetRow.ledger_id == ledger_id,
            BudgetRow.financial_year == year,
            BudgetRow.period <= through,
        )
        return [_budget(r) for r in budgets.read(self._session, stmt)]

    def page(
        self,
        organisation: str,
        ledger_id: str,
        comparisons: Sequence[Comparison],
        after: JsonKey | None,
        size: int,
    ) -> list[Budget]:
        budgets = values_of(BudgetRow)
        stmt = budgets.select().where(
            BudgetRow.organisation_code == organisation, BudgetRow.ledger_id == ledger_id
        )
        stmt = keyset_after(apply_filter(stmt, comparisons, BUDGET_FILTERS), [BudgetRow.id], after).limit(
            size
        )
        return [_budget(r) for r in budgets.read(self._session, stmt)]

    def commitment(
        self, organisation: str, ledger_id: str, commitment_id: str, *, lock: bool = False
    ) -> Commitment | None:
        key = {"organisation_code": organisation, "ledger_id": ledger_id, "id": commitment_id}
        row = read_by_key(self._session, CommitmentRow, key, lock=lock)
        return _commitment(row) if row else None

    def commitments_page(
        self,
        organisation: str,
        ledger_id: str,
        comparisons: Sequence[Comparison],
        after: JsonKey | None,
        size: int,
    ) -> list[Commitment]:
        rows = values_of(CommitmentRow)
        stmt = rows.select().where(
            CommitmentRow.organisation_code == organisation, CommitmentRow.ledger_id == ledger_id
        )
        columns = [c for c in comparisons if c.field != "state"]
        for c in comparisons:
            if c.field == "state":
                # As `Commitment.state`: open while anything is left of it.
                wanted_open = (c.value == CommitmentState.OPEN.value) == (c.op == "=")
                open_pence = (
                    CommitmentRow.amount_pence - CommitmentRow.consumed_pence - CommitmentRow.released_pence
                )
                stmt = stmt.where(open_pence > 0 if wanted_open else open_pence <= 0)
        stmt = apply_filter(stmt, columns, COMMITMENT_FILTERS)
        stmt = keyset_after(stmt, [CommitmentRow.id], after).limit(size)
        return [_commitment(r) for r in rows.read(self._session, stmt)]

    def _commitment_values(self, c: Commitment) -> dict[str, Any]:
        return {
            "budget_id": c.budget_id,
            "amount_pence": to_pence(c.amount),
            "consumed_pence": to_pence(c.consumed),
            "released_pence": to_pence(c.released),
            "reference": c.reference,
            "override_reason": c.override_reason,
            **record_values(c.info),
        }

    def add_commitment(self, commitment: Commitment) -> None:
        insert_values(
            self._session,
            CommitmentRow,
            self._commitment_key(commitment) | self._commitment_values(commitment),
        )

    def save_commitment(self, commitment: Commitment) -> None:
        update_by_key(
            self._session,
            CommitmentRow,
            self._commitment_key(commitment),
            self._commitment_values(commitment),
        )

    @staticmethod
    def _commitment_key(c: Commitment) -> dict[str, Any]:
        return {"organisation_code": c.organisation, "ledger_id": c.ledger, "id": c.id}


# --- invoices and payment runs -----------------------------------------------------------


class InvoiceRepository(Protocol):
    def get(
        self, organisation: str, ledger_id: str, invoice_id: str, *, lock: bool = False
    ) -> Invoice | None: ...
    def by_number(self, organisation: str, supplier: str, number: str) -> Invoice | None:
        """The supplier's invoice of that number (by its key: case, spaces and punctuation
        aside), in any of the organisation's ledgers, unless cancelled."""
        ...

    def add(self, invoice: Invoice) -> None: ...
    def save(self, invoice: Invoice) -> None: ...
    def due(self, organisation: str, ledger_id: str, due_by: dt.date, paid_on: dt.date) -> list[Invoice]:
        """Approved invoices due by `due_by` whose liability is posted on or before
        `paid_on`: a payment never comes before the debt it settles."""
        ...

    def for_compliance(self, organisation: str, start: dt.date, end: dt.date) -> list[Invoice]: ...
    def posted_between(
        self, organisation: str, ledger_id: str, start: dt.date, end: dt.date
    ) -> list[Invoice]: ...
    def add_payment_run(self, run: PaymentRun) -> None: ...
    def page(self, state: InvoiceState | None, after: JsonKey | None, size: int) -> list[Invoice]:
        """The invoices in the call's scope, oldest first (ids are time-ordered)."""
        ...

    def billed_net(self, organisation: str, ledger_id: str, commitment: str) -> Decimal:
        """The net sum of the approved (or paid) invoices against a commitment."""
        ...

    def take_turn_on_order(self, organisation: str, purchase_order: str) -> None:
        """Waits until no other transaction is matching or approving an invoice of this
        purchase order, and holds the turn to the end of this one: two approvals against
        one order then take turns, and the second counts what the first billed."""
        ...

    def billed_on_order(self, invoice: Invoice) -> dict[str, Decimal]:
        """The quantity of each order line the organisation's other approved (or paid)
        invoices of the same purchase order have billed, in any of its ledgers."""
        ...


def _invoice(row: InvoiceRow, lines: list[InvoiceLineRow]) -> Invoice:
    return Invoice(
        organisation=row.organisation_code,
        ledger=row.ledger_id,
        id=row.id,
        details=InvoiceDetails(
            supplier=row.supplier,
            supplier_display_name=row.supplier_display_name,
            supplier_invoice_number=row.supplier_invoice_number,
            invoice_date=row.invoice_date,
            received_date=row.received_date,
            due_date=row.due_date,
            purchase_order=row.purchase_order,
            commitment=row.commitment,
            lines=tuple(
                InvoiceLine(
                    account=line.account_code,
                    cost_centre=line.cost_centre_code,
                    description=line.description,
                    quantity=Decimal(line.quantity),
                    unit_price=Decimal(line.unit_price),
                    net=from_pence(line.net_pence),
                    vat=from_pence(line.vat_pence),
                    vat_use=VatUse(line.vat_use),
                    order_line=line.order_line,
                )
                for line in sorted(lines, key=lambda x: x.line_no)
            ),
        ),
        state=InvoiceState(row.state),
        match_state=MatchState(row.match_state),
        discrepancies=tuple(Discrepancy(int(i), str(c), str(d)) for i, c, d in json.loads(row.discrepancies)),
        info=record_info(row),
        journal=row.journal_id,
        posting_date=row.posting_date,
        payment_run=row.payment_run_id,
        paid_date=row.paid_date,
        match_evidence=_evidence(row.match_evidence),
        cancellation_reason=row.cancellation_reason,
    )


def _evidence(stored: str) -> OrderEvidence | None:
    if not stored:
        return None
    found = json.loads(stored)
    return OrderEvidence(
        order_lines=tuple(OrderLine(str(n), Decimal(q), Decimal(p)) for n, q, p in found["order_lines"]),
        receipt_lines=tuple(ReceiptLine(str(n), Decimal(q)) for n, q in found["receipt_lines"]),
    )


def _evidence_json(evidence: OrderEvidence | None) -> str:
    if evidence is None:
        return ""
    return json.dumps(
        {
            "order_lines": [[o.line, str(o.quantity), str(o.unit_price)] for o in evidence.order_lines],
            "receipt_lines": [[r.line, str(r.quantity)] for r in evidence.receipt_lines],
        }
    )


_ORDER_TURN = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


class SqlInvoiceRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _hydrate(self, rows: Sequence[InvoiceRow]) -> list[Invoice]:
        if not rows:
            return []
        keys = {(r.organisation_code, r.ledger_id, r.id) for r in rows}
        lines: dict[tuple[str, str, str], list[InvoiceLineRow]] = {k: [] for k in keys}
        orgs = sorted({r.organisation_code for r in rows})
        for line in self._session.scalars(
            select(InvoiceLineRow).where(
                InvoiceLineRow.organisation_code.in_(orgs),
                InvoiceLineRow.invoice_id.in_(sorted({r.id for r in rows})),
            )
        ):
            key = (line.organisation_code, line.ledger_id, line.invoice_id)
            if key in lines:
                lines[key].append(line)
        return [_invoice(r, lines[(r.organisation_code, r.ledger_id, r.id)]) for r in rows]

    def get(
        self, organisation: str, ledger_id: str, invoice_id: str, *, lock: bool = False
    ) -> Invoice | None:
        # Locked for a change, so that two approvals of one invoice cannot both post it.
        row = self._session.get(
            InvoiceRow, (organisation, ledger_id, invoice_id), with_for_update=lock, populate_existing=lock
        )
        return self._hydrate([row])[0] if row else None

    def by_number(self, organisation: str, supplier: str, number: str) -> Invoice | None:
        row = self._session.scalars(
            select(InvoiceRow).where(
                InvoiceRow.organisation_code == organisation,
                InvoiceRow.supplier == supplier,
                InvoiceRow.supplier_invoice_key == invoice_number_key(number),
                InvoiceRow.state != InvoiceState.CANCELLED.value,
            )
        ).first()
        return self._hydrate([row])[0] if row else None

    def _values(self, i: Invoice) -> dict[str, Any]:
        d = i.details
        return {
            "supplier": d.supplier,
            "supplier_display_name": d.supplier_display_name,
            "supplier_invoice_number": d.supplier_invoice_number,
            "supplier_invoice_key": invoice_number_key(d.supplier_invoice_number),
            "invoice_date": d.invoice_date,
            "received_date": d.received_date,
            "due_date": d.due_date,
            "purchase_order": d.purchase_order,
            "purchase_order_key": purchase_order_key(d.purchase_order),
            "commitment": d.commitment,
            "state": i.state.value,
            "match_state": i.match_state.value,
            "discrepancies": json.dumps([[x.line, x.code, x.description] for x in i.discrepancies]),
            "journal_id": i.journal,
            "posting_date": i.posting_date,
            "payment_run_id": i.payment_run,
            "paid_date": i.paid_date,
            "gross_pence": to_pence(d.gross_total),
            "match_evidence": _evidence_json(i.match_evidence),
            "cancellation_reason": i.cancellation_reason,
            **record_values(i.info),
        }

    def add(self, invoice: Invoice) -> None:
        self._session.add(
            InvoiceRow(
                organisation_code=invoice.organisation,
                ledger_id=invoice.ledger,
                id=invoice.id,
                **self._values(invoice),
            )
        )
        for n, line in enumerate(invoice.details.lines, start=1):
            assert line.vat_use is not None
            self._session.add(
                InvoiceLineRow(
                    organisation_code=invoice.organisation,
                    ledger_id=invoice.ledger,
                    invoice_id=invoice.id,
                    line_no=n,
                    account_code=line.account,
                    cost_centre_code=line.cost_centre,
                    description=line.description,
                    quantity=str(line.quantity),
                    unit_price=str(line.unit_price),
                    net_pence=to_pence(line.net),
                    vat_pence=to_pence(line.vat),
                    vat_use=line.vat_use.value,
                    order_line=line.order_line,
                )
            )
        self._session.flush()

    def save(self, invoice: Invoice) -> None:
        row = self._session.get(InvoiceRow, (invoice.organisation, invoice.ledger, invoice.id))
        assert row is not None
        for key, value in self._values(invoice).items():
            setattr(row, key, value)
        self._session.flush()

    def due(self, organisation: str, ledger_id: str, due_by: dt.date, paid_on: dt.date) -> list[Invoice]:
        stmt = (
            select(InvoiceRow)
            .where(
                InvoiceRow.organisation_code == organisation,
                InvoiceRow.ledger_id == ledger_id,
                InvoiceRow.state == InvoiceState.APPROVED.value,
                InvoiceRow.due_date <= due_by,
                InvoiceRow.posting_date <= paid_on,
                # Never paid before it arrived: the days to pay (regulation 38) would go negative.
                InvoiceRow.received_date <= paid_on,
            )
            .order_by(InvoiceRow.due_date, InvoiceRow.id)
            .with_for_update()
        )
        return self._hydrate(list(self._session.scalars(stmt)))

    def for_compliance(self, organisation: str, start: dt.date, end: dt.date) -> list[Invoice]:
        """Invoices paid in, or due in, the period (every ledger of the organisation); a
        cancelled one was never owed."""
        stmt = select(InvoiceRow).where(
            InvoiceRow.organisation_code == organisation,
            InvoiceRow.state != InvoiceState.CANCELLED.value,
            ((InvoiceRow.paid_date >= start) & (InvoiceRow.paid_date <= end))
            | ((InvoiceRow.due_date >= start) & (InvoiceRow.due_date <= end)),
        )
        return self._hydrate(list(self._session.scalars(stmt)))

    def posted_between(
        self, organisation: str, ledger_id: str, start: dt.date, end: dt.date
    ) -> list[Invoice]:
        stmt = select(InvoiceRow).where(
            InvoiceRow.organisation_code == organisation,
            InvoiceRow.ledger_id == ledger_id,
            InvoiceRow.posting_date >= start,
            InvoiceRow.posting_date <= end,
        )
        return self._hydrate(list(self._session.scalars(stmt)))

    def page(self, state: InvoiceState | None, after: JsonKey | None, size: int) -> list[Invoice]:
        stmt = select(InvoiceRow)
        if state is not None:
            stmt = stmt.where(InvoiceRow.state == state.value)
        stmt = keyset_after(stmt, [InvoiceRow.organisation_code, InvoiceRow.id, InvoiceRow.ledger_id], after)
        return self._hydrate(list(self._session.scalars(stmt.limit(size))))

    def take_turn_on_order(self, organisation: str, purchase_order: str) -> None:
        # A lock of its own rather than the order's invoice rows: those span ledgers and
        # are locked in other orders elsewhere (a payment run by due date). SQLite's
        # writers take turns anyway.
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(_ORDER_TURN, {"key": f"invoices:{organisation}:{purchase_order}"})

    def billed_on_order(self, invoice: Invoice) -> dict[str, Decimal]:
        order = purchase_order_key(invoice.details.purchase_order)
        others = [
            (ledger, invoice_id)
            for ledger, invoice_id, state in self._session.execute(
                select(InvoiceRow.ledger_id, InvoiceRow.id, InvoiceRow.state).where(
                    InvoiceRow.organisation_code == invoice.organisation,
                    InvoiceRow.purchase_order_key == order,
                )
            ).tuples()
            if state in (InvoiceState.APPROVED.value, InvoiceState.PAID.value)
            and (ledger, invoice_id) != (invoice.ledger, invoice.id)
        ]
        billed: dict[str, Decimal] = {}
        if not others:
            return billed
        line = InvoiceLineRow
        lines = select(line.ledger_id, line.invoice_id, line.order_line, line.quantity).where(
            InvoiceLineRow.organisation_code == invoice.organisation,
            InvoiceLineRow.invoice_id.in_(sorted({i for _, i in others})),
        )
        wanted = set(others)
        for ledger, invoice_id, order_line, quantity in self._session.execute(lines).tuples():
            if (ledger, invoice_id) in wanted:
                billed[order_line] = billed.get(order_line, Decimal(0)) + Decimal(quantity)
        return billed

    def billed_net(self, organisation: str, ledger_id: str, commitment: str) -> Decimal:
        stmt = (
            select(func.coalesce(func.sum(InvoiceLineRow.net_pence), 0))
            .join(
                InvoiceRow,
                (InvoiceRow.organisation_code == InvoiceLineRow.organisation_code)
                & (InvoiceRow.ledger_id == InvoiceLineRow.ledger_id)
                & (InvoiceRow.id == InvoiceLineRow.invoice_id),
            )
            .where(
                InvoiceRow.organisation_code == organisation,
                InvoiceRow.ledger_id == ledger_id,
                InvoiceRow.commitment == commitment,
                InvoiceRow.state.in_((InvoiceState.APPROVED.value, InvoiceState.PAID.value)),
            )
        )
        return from_pence(int(self._session.scalar(stmt) or 0))

    def add_payment_run(self, run: PaymentRun) -> None:
        self._session.add(
            PaymentRunRow(
                organisation_code=run.organisation,
                ledger_id=run.ledger,
                id=run.id,
                payment_date=run.payment_date,
                due_by=run.due_by,
                journal_id=run.journal,
                total_pence=to_pence(run.total),
                invoices="\n".join(run.invoices),
                **record_values(run.info),
            )
        )
        self._session.flush()


# --- recharges ---------------------------------------------------------------------------


class RechargeRepository(Protocol):
    def get(self, organisation: str, recharge_id: str, *, lock: bool = False) -> Recharge | None: ...
    def add(self, recharge: Recharge) -> None: ...
    def save(self, recharge: Recharge) -> None: ...
    def page(self, after: JsonKey | None, size: int) -> list[Recharge]: ...


def _recharge(row: RechargeRow) -> Recharge:
    return Recharge(
        organisation=row.organisation_code,
        id=row.id,
        ledger=row.ledger_id,
        counterparty=row.counterparty_code,
        amount=from_pence(row.amount_pence),
        description=row.description,
        posting_date=row.posting_date,
        income_account=row.income_account,
        cost_centre=row.cost_centre_code,
        state=RechargeState(row.state),
        journal=row.journal_id,
        info=record_info(row),
        counterparty_ledger=row.counterparty_ledger_id,
        counterparty_journal=row.counterparty_journal_id,
        allocation=row.allocation_id,
        decline_reason=row.decline_reason,
        cancel_reason=row.cancel_reason,
        cancellation_journal=row.cancellation_journal_id,
    )


class SqlRechargeRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, organisation: str, recharge_id: str, *, lock: bool = False) -> Recharge | None:
        stmt = select(RechargeRow).where(
            RechargeRow.organisation_code == organisation, RechargeRow.id == recharge_id
        )
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        row = self._session.scalars(stmt).first()
        return _recharge(row) if row else None

    def _values(self, r: Recharge) -> dict[str, Any]:
        return {
            "counterparty_code": r.counterparty,
            "ledger_id": r.ledger,
            "amount_pence": to_pence(r.amount),
            "description": r.description,
            "posting_date": r.posting_date,
            "income_account": r.income_account,
            "cost_centre_code": r.cost_centre,
            "state": r.state.value,
            "journal_id": r.journal,
            "counterparty_ledger_id": r.counterparty_ledger,
            "counterparty_journal_id": r.counterparty_journal,
            "allocation_id": r.allocation,
            "decline_reason": r.decline_reason,
            "cancel_reason": r.cancel_reason,
            "cancellation_journal_id": r.cancellation_journal,
            **record_values(r.info),
        }

    def add(self, recharge: Recharge) -> None:
        self._session.add(
            RechargeRow(organisation_code=recharge.organisation, id=recharge.id, **self._values(recharge))
        )
        self._session.flush()

    def save(self, recharge: Recharge) -> None:
        row = self._session.scalars(
            select(RechargeRow).where(
                RechargeRow.organisation_code == recharge.organisation, RechargeRow.id == recharge.id
            )
        ).first()
        assert row is not None
        for key, value in self._values(recharge).items():
            setattr(row, key, value)
        self._session.flush()

    def page(self, after: JsonKey | None, size: int) -> list[Recharge]:
        """The recharges in the call's scope (either party), oldest first."""
        stmt = keyset_after(select(RechargeRow), [RechargeRow.organisation_code, RechargeRow.id], after)
        return [_recharge(r) for r in self._session.scalars(stmt.limit(size))]
