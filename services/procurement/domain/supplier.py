"""The supplier register's rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

from libs.common.errors import Violations
from libs.common.records import RecordInfo
from services.procurement.domain.identifiers import (
    normalise_company_number,
    normalise_vat_number,
    valid_company_number,
    vat_number_problem,
)

MAX_NAME = 200
MAX_ADDRESS_LINES = 6
UPDATABLE = frozenset(
    {"display_name", "companies_house_number", "vat_number", "address_lines", "postcode", "sme", "vcse"}
)


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
        v.raise_if_any()
        return replace(
            self,
            display_name=name,
            companies_house_number=company,
            vat_number=vat,
            address_lines=lines,
            postcode=postcode,
        )

    def with_changes(self, changes: SupplierDetails, paths: frozenset[str]) -> SupplierDetails:
        return replace(self, **{p: getattr(changes, p) for p in paths})


@dataclass(frozen=True)
class Supplier:
    organisation: str
    id: str
    details: SupplierDetails
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/suppliers/{self.id}"

    def audit_view(self) -> dict[str, object]:
        return {"name": self.name, "version": self.info.version, **dataclasses.asdict(self.details)}
