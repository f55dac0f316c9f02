"""The supplier register's rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, replace

from libs.common.errors import FailedPrecondition, Violations
from libs.common.records import RecordInfo
from services.procurement.domain.identifiers import (
    normalise_company_number,
    normalise_vat_number,
    valid_company_number,
    vat_number_problem,
)

MAX_NAME = 200
MAX_ADDRESS_LINES = 6
MAX_REASON = 500
UPDATABLE = frozenset(
    {
        "display_name",
        "companies_house_number",
        "vat_number",
        "address_lines",
        "postcode",
        "sme",
        "vcse",
        "bank_details",
    }
)
# Changed only when the mask names them: `*` from a caller who cannot read them (and so
# sends none) must not erase the account suppliers are paid into.
UPDATED_BY_NAME_ONLY = frozenset({"bank_details"})
_SORT_CODE = re.compile(r"^\d{6}\Z")
_ACCOUNT = re.compile(r"^\d{8}\Z")


@dataclass(frozen=True)
class BankDetails:
    """OFFICIAL-SENSITIVE: returned only to finance roles."""

    account_name: str
    sort_code: str
    account_number: str

    def checked(self, prefix: str, v: Violations) -> BankDetails:
        name = self.account_name.strip()
        sort_code = re.sub(r"[\s-]", "", self.sort_code)
        account = re.sub(r"\s", "", self.account_number)
        v.check(0 < len(name) <= 140, f"{prefix}.account_name", "is required, at most 140 characters")
        v.check(bool(_SORT_CODE.match(sort_code)), f"{prefix}.sort_code", "must be six digits")
        v.check(bool(_ACCOUNT.match(account)), f"{prefix}.account_number", "must be eight digits")
        return BankDetails(name, sort_code, account)

    def audit_view(self) -> dict[str, str]:
        return {
            "account_name": self.account_name,
            "sort_code": self.sort_code,
            "account_number": "****" + self.account_number[-4:],
        }


@dataclass(frozen=True)
class SupplierDetails:
    """What a buyer states about a supplier; checked and normalised by `checked`."""

    display_name: str
    companies_house_number: str = ""
    vat_number: str = ""
    address_lines: tuple[str, ...] = ()
    postcode: str = ""
    sme: bool = False
    vcse: bool = False
    bank_details: BankDetails | None = None

    def checked(self, prefix: str = "supplier") -> SupplierDetails:
        v = Violations()
        name = self.display_name.strip()
        v.check(
            0 < len(name) <= MAX_NAME, f"{prefix}.display_name", f"is required, at most {MAX_NAME} characters"
        )
        company = normalise_company_number(self.companies_house_number)
        if company:
            v.check(
                valid_company_number(company),
                f"{prefix}.companies_house_number",
                "must be 8 characters: 8 digits, or a prefix such as SC, NI or OC and 6 digits",
            )
        vat = normalise_vat_number(self.vat_number)
        if vat and (problem := vat_number_problem(vat)):
            v.add(f"{prefix}.vat_number", problem)
        lines = tuple(line.strip() for line in self.address_lines if line.strip())
        v.check(
            len(lines) <= MAX_ADDRESS_LINES, f"{prefix}.address_lines", f"at most {MAX_ADDRESS_LINES} lines"
        )
        postcode = " ".join(self.postcode.upper().split())
        v.check(len(postcode) <= 10, f"{prefix}.postcode", "is not a UK postcode")
        bank = self.bank_details.checked(f"{prefix}.bank_details", v) if self.bank_details else None
        v.raise_if_any()
        return replace(
            self,
            display_name=name,
            companies_house_number=company,
            vat_number=vat,
            address_lines=lines,
            postcode=postcode,
            bank_details=bank,
        )

    def with_changes(self, changes: SupplierDetails, paths: frozenset[str]) -> SupplierDetails:
        return replace(self, **{p: getattr(changes, p) for p in paths})


@dataclass(frozen=True)
class Debarment:
    reason: str
    debarment_date: dt.date
    record_time: dt.datetime
    recorded_by: str


@dataclass(frozen=True)
class Supplier:
    organisation: str
    id: str
    details: SupplierDetails
    info: RecordInfo
    debarment: Debarment | None = None

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/suppliers/{self.id}"

    @property
    def debarred(self) -> bool:
        return self.debarment is not None

    def require_not_debarred(self) -> None:
        if self.debarment is not None:
            raise FailedPrecondition(
                f"{self.name} is debarred ({self.debarment.reason}, from "
                f"{self.debarment.debarment_date.isoformat()}): no new contracts or orders",
                reason="SUPPLIER_DEBARRED",
                metadata={"supplier": self.name},
            )

    def debarred_by(self, debarment: Debarment, info: RecordInfo) -> Supplier:
        if self.debarment is not None:
            raise FailedPrecondition(
                f"{self.name} is already debarred",
                reason="SUPPLIER_ALREADY_DEBARRED",
                metadata={"supplier": self.name},
            )
        return replace(self, debarment=debarment, info=info)

    def debarment_lifted(self, info: RecordInfo) -> Supplier:
        if self.debarment is None:
            raise FailedPrecondition(
                f"{self.name} is not debarred",
                reason="SUPPLIER_NOT_DEBARRED",
                metadata={"supplier": self.name},
            )
        return replace(self, debarment=None, info=info)

    def audit_view(self) -> dict[str, object]:
        # One level deep: every field but the bank details (replaced below) is a string, a
        # flag or a tuple of strings, which `dataclasses.asdict` would deep-copy for
        # nothing (60-80 µs of a CreateSupplier's ~950 µs of CPU).
        details = {f.name: getattr(self.details, f.name) for f in dataclasses.fields(self.details)}
        # Enough for an auditor to see the payee account change (the step of mandate fraud)
        # without the log holding the account number itself.
        bank = self.details.bank_details
        details["bank_details"] = bank.audit_view() if bank else None
        debarment = dataclasses.asdict(self.debarment) if self.debarment else None
        return {"name": self.name, "version": self.info.version, "debarment": debarment, **details}


def check_reason(reason: str, field_path: str = "reason", *, required: bool = True) -> str:
    """The reason stripped; INVALID_ARGUMENT when longer than MAX_REASON or, if `required`,
    empty (closing an order in full needs none, closing it short one: the order says)."""
    text = reason.strip()
    v = Violations()
    if required:
        v.check(0 < len(text) <= MAX_REASON, field_path, f"is required, at most {MAX_REASON} characters")
    else:
        v.check(len(text) <= MAX_REASON, field_path, f"at most {MAX_REASON} characters")
    v.raise_if_any()
    return text
