"""The supplier register's repository."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from libs.common.filtering import Comparison
from libs.common.paging import JsonKey
from libs.common.persistence import apply_filter, keyset_after, record_info, record_values
from services.procurement.domain.supplier import Supplier, SupplierDetails
from services.procurement.persistence.models import SupplierRow


class SupplierRepository(Protocol):
    def get(self, organisation: str, supplier_id: str) -> Supplier | None: ...
    def by_company_number(self, organisation: str, number: str) -> Supplier | None: ...
    def add(self, supplier: Supplier) -> None: ...
    def save(self, supplier: Supplier) -> None: ...
    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Supplier]: ...


def _supplier(row: SupplierRow) -> Supplier:
    return Supplier(
        organisation=row.organisation_code,
        id=row.id,
        details=SupplierDetails(
            display_name=row.display_name,
            companies_house_number=row.companies_house_number or "",
            vat_number=row.vat_number or "",
            address_lines=tuple(row.address_lines.split("\n")) if row.address_lines else (),
            postcode=row.postcode,
            sme=row.sme,
            vcse=row.vcse,
        ),
        info=record_info(row),
    )


def _values(s: Supplier) -> dict[str, object]:
    d = s.details
    return {
        "display_name": d.display_name,
        "companies_house_number": d.companies_house_number or None,
        "vat_number": d.vat_number or None,
        "address_lines": "\n".join(d.address_lines),
        "postcode": d.postcode,
        "sme": d.sme,
        "vcse": d.vcse,
        **record_values(s.info),
    }


class SqlSupplierRepository:
    FILTERS: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "display_name": SupplierRow.display_name,
        "companies_house_number": SupplierRow.companies_house_number,
        "vat_number": SupplierRow.vat_number,
        "postcode": SupplierRow.postcode,
        "sme": SupplierRow.sme,
        "vcse": SupplierRow.vcse,
    }

    def __init__(self, session: Session) -> None:
        self._session = session

    def _row(self, organisation: str, supplier_id: str) -> SupplierRow | None:
        return self._session.scalars(
            select(SupplierRow).where(
                SupplierRow.organisation_code == organisation, SupplierRow.id == supplier_id
            )
        ).first()

    def get(self, organisation: str, supplier_id: str) -> Supplier | None:
        row = self._row(organisation, supplier_id)
        return _supplier(row) if row else None

    def by_company_number(self, organisation: str, number: str) -> Supplier | None:
        row = self._session.scalars(
            select(SupplierRow).where(
                SupplierRow.organisation_code == organisation,
                SupplierRow.companies_house_number == number,
            )
        ).first()
        return _supplier(row) if row else None

    def add(self, supplier: Supplier) -> None:
        self._session.add(
            SupplierRow(organisation_code=supplier.organisation, id=supplier.id, **_values(supplier))
        )
        self._session.flush()

    def save(self, supplier: Supplier) -> None:
        row = self._row(supplier.organisation, supplier.id)
        assert row is not None
        for key, value in _values(supplier).items():
            setattr(row, key, value)
        self._session.flush()

    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Supplier]:
        stmt = apply_filter(select(SupplierRow), comparisons, self.FILTERS)
        stmt = keyset_after(stmt, [SupplierRow.organisation_code, SupplierRow.id], after).limit(size)
        return [_supplier(r) for r in self._session.scalars(stmt)]
