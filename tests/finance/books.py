"""Setting up an organisation's books through the real API, and checking they balance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import grpc
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

from backoffice.finance.v1 import finance_service_pb2 as pb
from backoffice.finance.v1 import ledger_pb2
from libs.common.proto_mapping import date_to_proto, money_from_proto, money_to_proto
from tests.support import Caller, Suite

FY = 2025
MAY = dt.date(2025, 5, 15)

ACCOUNTS = [
    ("1000", "Bank", ledger_pb2.ACCOUNT_TYPE_ASSET, ledger_pb2.SUBJECTIVE_HEADING_BALANCE_SHEET),
    ("1200", "VAT recoverable", ledger_pb2.ACCOUNT_TYPE_ASSET, ledger_pb2.SUBJECTIVE_HEADING_BALANCE_SHEET),
    (
        "1300",
        "Recharges between organisations",
        ledger_pb2.ACCOUNT_TYPE_ASSET,
        ledger_pb2.SUBJECTIVE_HEADING_BALANCE_SHEET,
    ),
    ("2000", "Creditors", ledger_pb2.ACCOUNT_TYPE_LIABILITY, ledger_pb2.SUBJECTIVE_HEADING_BALANCE_SHEET),
    (
        "3000",
        "General reserve",
        ledger_pb2.ACCOUNT_TYPE_RESERVES,
        ledger_pb2.SUBJECTIVE_HEADING_BALANCE_SHEET,
    ),
    (
        "4100",
        "Police staff pay",
        ledger_pb2.ACCOUNT_TYPE_EXPENDITURE,
        ledger_pb2.SUBJECTIVE_HEADING_EMPLOYEES,
    ),
    (
        "5100",
        "Equipment",
        ledger_pb2.ACCOUNT_TYPE_EXPENDITURE,
        ledger_pb2.SUBJECTIVE_HEADING_SUPPLIES_AND_SERVICES,
    ),
    ("5500", "Vehicle fuel", ledger_pb2.ACCOUNT_TYPE_EXPENDITURE, ledger_pb2.SUBJECTIVE_HEADING_TRANSPORT),
    (
        "5900",
        "Payments to other bodies",
        ledger_pb2.ACCOUNT_TYPE_EXPENDITURE,
        ledger_pb2.SUBJECTIVE_HEADING_THIRD_PARTY_PAYMENTS,
    ),
    ("8000", "Police grant", ledger_pb2.ACCOUNT_TYPE_INCOME, ledger_pb2.SUBJECTIVE_HEADING_INCOME),
    ("8100", "Recharge income", ledger_pb2.ACCOUNT_TYPE_INCOME, ledger_pb2.SUBJECTIVE_HEADING_INCOME),
]
COST_CENTRES = [
    ("LP100", "Leeds district response", ledger_pb2.POA_CATEGORY_LOCAL_POLICING),
    ("IN200", "Major crime", ledger_pb2.POA_CATEGORY_INVESTIGATIONS),
    ("SF300", "Finance and payroll", ledger_pb2.POA_CATEGORY_SUPPORT_FUNCTIONS),
    ("PC400", "Office of the PCC", ledger_pb2.POA_CATEGORY_OFFICE_OF_THE_PCC),
]
LEDGERS = [
    ("pcc", "Police and Crime Commissioner", ledger_pb2.ENTITY_KIND_POLICE_AND_CRIME_COMMISSIONER),
    ("chief-constable", "Chief Constable", ledger_pb2.ENTITY_KIND_CHIEF_CONSTABLE),
]


def gbp(text: str) -> money_pb2.Money:
    return money_to_proto(Decimal(text))


def amount(value: money_pb2.Money) -> Decimal:
    """The sum of a Money field; an unset one (the other side of a journal line) is 0.00."""
    if value == money_pb2.Money():
        return Decimal("0.00")
    return money_from_proto(value, "amount")


@dataclass
class Books:
    organisation: str
    officer: Caller

    @property
    def parent(self) -> str:
        return f"organisations/{self.organisation}"

    @property
    def pcc(self) -> str:
        return f"{self.parent}/ledgers/pcc"

    @property
    def cc(self) -> str:
        return f"{self.parent}/ledgers/chief-constable"

    def journal(
        self, ledger: str, day: dt.date, *lines: ledger_pb2.JournalLine, text: str = "test"
    ) -> ledger_pb2.Journal:
        return self.officer.finance.PostJournal(
            pb.PostJournalRequest(
                parent=ledger,
                journal=ledger_pb2.Journal(
                    posting_date=date_to_proto(day), description=text, lines=list(lines)
                ),
            )
        )


def dr(account: str, value: str, cost_centre: str = "", counterparty: str = "") -> ledger_pb2.JournalLine:
    return ledger_pb2.JournalLine(
        account=account, cost_centre=cost_centre, debit=gbp(value), counterparty_ledger=counterparty
    )


def cr(account: str, value: str, cost_centre: str = "", counterparty: str = "") -> ledger_pb2.JournalLine:
    return ledger_pb2.JournalLine(
        account=account, cost_centre=cost_centre, credit=gbp(value), counterparty_ledger=counterparty
    )


def set_up_books(suite: Suite, organisation: str, *, year: int = FY) -> Books:
    """A force's two entities, a small chart and cost centres, financial year `year` open."""
    officer = suite.caller(organisation, "finance.officer", subject=f"officer-{organisation}")
    parent = f"organisations/{organisation}"
    for code, name, type_, heading in ACCOUNTS:
        officer.finance.CreateAccount(
            pb.CreateAccountRequest(
                parent=parent,
                account_id=code,
                account=ledger_pb2.Account(display_name=name, type=type_, subjective=heading),
            )
        )
    for code, name, category in COST_CENTRES:
        officer.finance.CreateCostCentre(
            pb.CreateCostCentreRequest(
                parent=parent,
                cost_centre_id=code,
                cost_centre=ledger_pb2.CostCentre(display_name=name, poa_category=category),
            )
        )
    for ledger_id, name, kind in LEDGERS:
        officer.finance.CreateLedger(
            pb.CreateLedgerRequest(
                parent=parent,
                ledger_id=ledger_id,
                ledger=ledger_pb2.Ledger(
                    display_name=f"{name} ({organisation})",
                    entity_kind=kind,
                    creditors_account="2000",
                    vat_account="1200",
                    bank_account="1000",
                    recharges_account="1300",
                ),
            )
        )
        officer.finance.OpenFinancialYear(
            pb.OpenFinancialYearRequest(ledger=f"{parent}/ledgers/{ledger_id}", financial_year=year)
        )
    return Books(organisation, officer)


def check_books_balance(suite: Suite, organisation: str, year: int = FY) -> None:
    """Every ledger's trial balance, and the group's, nets to zero; and each ledger's TB
    by cost centre agrees with its TB by account."""
    auditor = suite.caller(organisation, "finance.auditor", subject="auditor")
    ledgers = [
        x.name
        for x in auditor.finance.ListLedgers(
            pb.ListLedgersRequest(parent=f"organisations/{organisation}")
        ).ledgers
    ]
    for ledger in [*ledgers, f"organisations/{organisation}/ledgers/-"]:
        per_account: dict[bool, dict[str, Decimal]] = {}
        for by_cost_centre in (False, True):
            tb = auditor.finance.GetTrialBalance(
                pb.GetTrialBalanceRequest(ledger=ledger, financial_year=year, by_cost_centre=by_cost_centre)
            )
            assert amount(tb.total_debit) == amount(tb.total_credit), (ledger, tb)
            nets: dict[str, Decimal] = {}
            for row in tb.rows:
                nets[row.account] = nets.get(row.account, Decimal(0)) + amount(row.debit) - amount(row.credit)
            per_account[by_cost_centre] = {a: n for a, n in nets.items() if n}
        assert per_account[False] == per_account[True], ledger


def reason_of(err: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call (its code's name when it has none)."""
    status = rpc_status.from_call(cast(grpc.Call, err))
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return str(cast(grpc.Call, err).code())
