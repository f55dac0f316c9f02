"""Frameworks and contracts that organisations call off."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

from libs.common.errors import FailedPrecondition, Violations
from libs.common.money import MAX_AMOUNT, ZERO, has_places
from libs.common.names import valid_organisation_code
from libs.common.records import RecordInfo
from services.procurement.domain.cpv import cpv_problem

MAX_TITLE = 200
MAX_DESCRIPTION = 2000
REGISTER_THRESHOLD = Decimal(5000)
UPDATABLE = frozenset(
    {
        "title",
        "description",
        "department",
        "value",
        "irrecoverable_vat",
        "end_date",
        "review_date",
        "participants",
    }
)


class ContractKind(enum.Enum):
    CONTRACT = "CONTRACT"
    FRAMEWORK = "FRAMEWORK"


class ProcurementMethod(enum.Enum):
    OPEN = "OPEN"
    COMPETITIVE_FLEXIBLE = "COMPETITIVE_FLEXIBLE"
    DIRECT_AWARD = "DIRECT_AWARD"
    FRAMEWORK_CALL_OFF = "FRAMEWORK_CALL_OFF"
    BELOW_THRESHOLD = "BELOW_THRESHOLD"


class ContractState(enum.Enum):
    PENDING = "PENDING"
    LIVE = "LIVE"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Allocation:
    organisation: str
    quantity: Decimal
    value: Decimal


@dataclass(frozen=True)
class ContractTerms:
    """What the letting organisation states; checked by `checked`."""

    reference: str
    title: str
    description: str
    department: str
    supplier_id: str
    kind: ContractKind | None
    cpv_codes: tuple[str, ...]
    value: Decimal | None
    irrecoverable_vat: Decimal
    start_date: dt.date | None
    end_date: dt.date | None
    review_date: dt.date | None
    procurement_method: ProcurementMethod | None
    participants: tuple[str, ...]

    def checked(self, owner: str, prefix: str = "contract") -> ContractTerms:
        v = Violations()
        v.check(
            0 < len(self.reference.strip()) <= 50, f"{prefix}.reference", "is required, at most 50 characters"
        )
        v.check(
            0 < len(self.title.strip()) <= MAX_TITLE,
            f"{prefix}.title",
            f"is required, at most {MAX_TITLE} characters",
        )
        v.check(
            len(self.description) <= MAX_DESCRIPTION,
            f"{prefix}.description",
            f"at most {MAX_DESCRIPTION} characters",
        )
        v.check(len(self.department) <= 200, f"{prefix}.department", "at most 200 characters")
        v.check(
            bool(self.supplier_id),
            f"{prefix}.supplier",
            "is required: a supplier of the same organisation's register",
        )
        v.check(self.kind is not None, f"{prefix}.kind", "is required")
        v.check(self.procurement_method is not None, f"{prefix}.procurement_method", "is required")
        if not self.cpv_codes:
            v.add(f"{prefix}.cpv_codes", "name at least one CPV code")
        for i, code in enumerate(self.cpv_codes):
            if problem := cpv_problem(code):
                v.add(f"{prefix}.cpv_codes[{i}]", problem)
        if self.value is None:
            v.add(f"{prefix}.value", "is required")
        else:
            v.check(
                ZERO <= self.value <= MAX_AMOUNT and has_places(self.value, 2),
                f"{prefix}.value",
                "must be from zero to £100 trillion, in whole pence",
            )
        v.check(
            ZERO <= self.irrecoverable_vat <= MAX_AMOUNT and has_places(self.irrecoverable_vat, 2),
            f"{prefix}.irrecoverable_vat",
            "must be from zero to £100 trillion, in whole pence",
        )
        v.check(self.start_date is not None, f"{prefix}.start_date", "is required")
        v.check(self.end_date is not None, f"{prefix}.end_date", "is required")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            v.add(f"{prefix}.end_date", "must not be before the start date")
        for i, code in enumerate(self.participants):
            if not valid_organisation_code(code):
                v.add(f"{prefix}.participants[{i}]", "must be organisations/{code}")
            elif code == owner:
                v.add(
                    f"{prefix}.participants[{i}]", "the letting organisation calls off without being listed"
                )
        if len(set(self.participants)) != len(self.participants):
            v.add(f"{prefix}.participants", "names an organisation twice")
        v.raise_if_any()
        return self


@dataclass(frozen=True)
class Contract:
    organisation: str
    id: str
    terms: ContractTerms
    ocid: str
    supplier_debarred: bool
    allocations: tuple[Allocation, ...]
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/contracts/{self.id}"

    @property
    def supplier_name(self) -> str:
        return f"organisations/{self.organisation}/suppliers/{self.terms.supplier_id}"

    def state(self, today: dt.date) -> ContractState:
        assert self.terms.start_date is not None and self.terms.end_date is not None
        if today < self.terms.start_date:
            return ContractState.PENDING
        if today > self.terms.end_date:
            return ContractState.EXPIRED
        return ContractState.LIVE

    def may_call_off(self, organisation: str) -> bool:
        return organisation == self.organisation or organisation in self.terms.participants

    def require_orderable(self, organisation: str, today: dt.date) -> None:
        state = self.state(today)
        if state is not ContractState.LIVE:
            raise FailedPrecondition(
                f"{self.name} is {state.value.lower()} on {today.isoformat()}: call-offs run from "
                f"{self.terms.start_date} to {self.terms.end_date}",
                reason="CONTRACT_NOT_LIVE",
                metadata={"contract": self.name, "state": state.value},
            )
        if self.supplier_debarred:
            raise FailedPrecondition(
                f"the supplier of {self.name} is debarred: no new orders",
                reason="SUPPLIER_DEBARRED",
                metadata={"contract": self.name, "supplier": self.supplier_name},
            )
        if not self.may_call_off(organisation):
            raise FailedPrecondition(
                f"organisations/{organisation} does not participate in {self.name}",
                reason="NOT_A_PARTICIPANT",
                metadata={"contract": self.name},
            )


def ocid_for(prefix: str, organisation: str, contract_id: str) -> str:
    return f"{prefix}-{organisation.lower()}-{contract_id}"
