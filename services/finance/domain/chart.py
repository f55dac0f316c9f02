"""Accounting entities, the chart of accounts and cost centres."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from libs.common.errors import Violations
from libs.common.records import RecordInfo

CODE = re.compile(r"^[0-9A-Z]{3,12}\Z")
CODE_RULE = "must be 3 to 12 upper-case letters and digits"
MAX_NAME = 200


class EntityKind(enum.Enum):
    POLICE_AND_CRIME_COMMISSIONER = "POLICE_AND_CRIME_COMMISSIONER"
    CHIEF_CONSTABLE = "CHIEF_CONSTABLE"
    OTHER_BODY = "OTHER_BODY"


class AccountType(enum.Enum):
    ASSET = "ASSET"
    LIABILITY = "LIABILITY"
    RESERVES = "RESERVES"
    INCOME = "INCOME"
    EXPENDITURE = "EXPENDITURE"

    @property
    def is_revenue(self) -> bool:
        """Income and expenditure: analysed by cost centre."""
        return self in (AccountType.INCOME, AccountType.EXPENDITURE)


class SubjectiveHeading(enum.Enum):
    EMPLOYEES = "EMPLOYEES"
    PREMISES = "PREMISES"
    TRANSPORT = "TRANSPORT"
    SUPPLIES_AND_SERVICES = "SUPPLIES_AND_SERVICES"
    THIRD_PARTY_PAYMENTS = "THIRD_PARTY_PAYMENTS"
    CAPITAL_FINANCING = "CAPITAL_FINANCING"
    INCOME = "INCOME"
    BALANCE_SHEET = "BALANCE_SHEET"


# Which subjective headings suit which account types.
_HEADINGS = {
    AccountType.ASSET: {SubjectiveHeading.BALANCE_SHEET},
    AccountType.LIABILITY: {SubjectiveHeading.BALANCE_SHEET},
    AccountType.RESERVES: {SubjectiveHeading.BALANCE_SHEET},
    AccountType.INCOME: {SubjectiveHeading.INCOME},
    AccountType.EXPENDITURE: {
        SubjectiveHeading.EMPLOYEES,
        SubjectiveHeading.PREMISES,
        SubjectiveHeading.TRANSPORT,
        SubjectiveHeading.SUPPLIES_AND_SERVICES,
        SubjectiveHeading.THIRD_PARTY_PAYMENTS,
        SubjectiveHeading.CAPITAL_FINANCING,
    },
}


class PoaCategory(enum.Enum):
    """CIPFA Police Objective Analysis top-level categories (see docs/finance.md)."""

    LOCAL_POLICING = "LOCAL_POLICING"
    DEALING_WITH_THE_PUBLIC = "DEALING_WITH_THE_PUBLIC"
    CRIMINAL_JUSTICE_ARRANGEMENTS = "CRIMINAL_JUSTICE_ARRANGEMENTS"
    ROAD_POLICING = "ROAD_POLICING"
    OPERATIONAL_SUPPORT = "OPERATIONAL_SUPPORT"
    INTELLIGENCE = "INTELLIGENCE"
    INVESTIGATIONS = "INVESTIGATIONS"
    PUBLIC_PROTECTION = "PUBLIC_PROTECTION"
    INVESTIGATIVE_SUPPORT = "INVESTIGATIVE_SUPPORT"
    NATIONAL_POLICING = "NATIONAL_POLICING"
    SUPPORT_FUNCTIONS = "SUPPORT_FUNCTIONS"
    CENTRAL_COSTS = "CENTRAL_COSTS"
    OFFICE_OF_THE_PCC = "OFFICE_OF_THE_PCC"


def check_code(v: Violations, value: str, field_path: str) -> None:
    v.check(bool(CODE.match(value)), field_path, CODE_RULE)


def check_name(v: Violations, value: str, field_path: str) -> str:
    name = value.strip()
    v.check(0 < len(name) <= MAX_NAME, field_path, f"is required, at most {MAX_NAME} characters")
    return name


@dataclass(frozen=True)
class LedgerDetails:
    display_name: str
    entity_kind: EntityKind | None
    creditors_account: str = ""
    vat_account: str = ""
    bank_account: str = ""
    recharges_account: str = ""

    def checked(self, prefix: str = "ledger") -> LedgerDetails:
        v = Violations()
        name = check_name(v, self.display_name, f"{prefix}.display_name")
        v.check(self.entity_kind is not None, f"{prefix}.entity_kind", "is required")
        for field in ("creditors_account", "vat_account", "bank_account", "recharges_account"):
            value = getattr(self, field)
            if value:
                check_code(v, value, f"{prefix}.{field}")
        v.raise_if_any()
        return LedgerDetails(
            name,
            self.entity_kind,
            self.creditors_account,
            self.vat_account,
            self.bank_account,
            self.recharges_account,
        )


@dataclass(frozen=True)
class Ledger:
    organisation: str
    id: str
    details: LedgerDetails
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.id}"

    def audit_view(self) -> dict[str, object]:
        d = self.details
        return {
            "name": self.name,
            "display_name": d.display_name,
            "entity_kind": d.entity_kind.value if d.entity_kind else None,
            "creditors_account": d.creditors_account,
            "vat_account": d.vat_account,
            "bank_account": d.bank_account,
            "recharges_account": d.recharges_account,
        }


@dataclass(frozen=True)
class Account:
    organisation: str
    code: str
    display_name: str
    type: AccountType
    subjective: SubjectiveHeading
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/accounts/{self.code}"

    def audit_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "type": self.type.value,
            "subjective": self.subjective.value,
        }


def check_account(
    code: str, display_name: str, type_: AccountType | None, subjective: SubjectiveHeading | None
) -> tuple[str, AccountType, SubjectiveHeading]:
    v = Violations()
    check_code(v, code, "account_id")
    name = check_name(v, display_name, "account.display_name")
    v.check(type_ is not None, "account.type", "is required")
    v.check(subjective is not None, "account.subjective", "is required")
    if type_ is not None and subjective is not None:
        v.check(
            subjective in _HEADINGS[type_],
            "account.subjective",
            f"{subjective.value} does not suit a {type_.value} account; use one of "
            + ", ".join(sorted(h.value for h in _HEADINGS[type_])),
        )
    v.raise_if_any()
    assert type_ is not None
    assert subjective is not None
    return name, type_, subjective


@dataclass(frozen=True)
class CostCentre:
    organisation: str
    code: str
    display_name: str
    poa_category: PoaCategory
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/costCentres/{self.code}"

    def audit_view(self) -> dict[str, object]:
        return {"name": self.name, "display_name": self.display_name, "poa_category": self.poa_category.value}


def check_cost_centre(code: str, display_name: str, category: PoaCategory | None) -> tuple[str, PoaCategory]:
    v = Violations()
    check_code(v, code, "cost_centre_id")
    name = check_name(v, display_name, "cost_centre.display_name")
    v.check(category is not None, "cost_centre.poa_category", "is required")
    v.raise_if_any()
    assert category is not None
    return name, category
