"""Procurement's use cases: take a unit of work and plain values, return domain objects."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Sequence

from libs.common.errors import AlreadyExists, NotFound
from libs.common.filtering import Comparison
from libs.common.names import check_resource_id
from libs.common.paging import JsonKey
from libs.common.records import RecordInfo, check_etag
from libs.common.service import Transaction
from services.procurement.domain.supplier import Supplier, SupplierDetails
from services.procurement.persistence.repository import SqlSupplierRepository, SupplierRepository


class ProcurementUnitOfWork:
    def __init__(self, tx: Transaction, suppliers: SupplierRepository | None = None) -> None:
        self.tx = tx
        self.suppliers: SupplierRepository = suppliers or SqlSupplierRepository(tx.session)


def new_id(prefix: str) -> str:
    """Ids that sort by creation time (milliseconds, then randomness), so keyset pages
    list resources oldest first."""
    return f"{prefix}-{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _company_taken(organisation: str, number: str) -> AlreadyExists:
    return AlreadyExists(
        f"a supplier with Companies House number {number} is already in the register",
        reason="SUPPLIER_ALREADY_REGISTERED",
        metadata={"companies_house_number": number},
    )


def create_supplier(
    uow: ProcurementUnitOfWork, organisation: str, details: SupplierDetails, supplier_id: str = ""
) -> Supplier:
    if supplier_id:
        check_resource_id(supplier_id, "supplier_id")
    details = details.checked()
    if supplier_id and uow.suppliers.get(organisation, supplier_id):
        raise AlreadyExists(
            f"organisations/{organisation}/suppliers/{supplier_id} already exists",
            reason="SUPPLIER_ALREADY_REGISTERED",
            metadata={"supplier_id": supplier_id},
        )
    if details.companies_house_number and uow.suppliers.by_company_number(
        organisation, details.companies_house_number
    ):
        raise _company_taken(organisation, details.companies_house_number)
    supplier = Supplier(
        organisation=organisation,
        id=supplier_id or new_id("s"),
        details=details,
        info=RecordInfo.new(uow.tx.principal_id, uow.tx.acting_organisation, _now()),
    )
    uow.suppliers.add(supplier)
    uow.tx.audit.record(organisation, supplier.name, None, supplier.audit_view())
    return supplier


def get_supplier(uow: ProcurementUnitOfWork, organisation: str, supplier_id: str) -> Supplier:
    supplier = uow.suppliers.get(organisation, supplier_id)
    if supplier is None:
        raise NotFound(f"organisations/{organisation}/suppliers/{supplier_id}")
    return supplier


def list_suppliers(
    uow: ProcurementUnitOfWork, comparisons: Sequence[Comparison], after: JsonKey | None, size: int
) -> list[Supplier]:
    return uow.suppliers.page(comparisons, after, size)


def update_supplier(
    uow: ProcurementUnitOfWork,
    organisation: str,
    *,
    supplier_id: str,
    changes: SupplierDetails,
    paths: frozenset[str],
    etag: str,
) -> Supplier:
    current = get_supplier(uow, organisation, supplier_id)
    check_etag(current.name, etag, current.info)
    details = current.details.with_changes(changes, paths).checked()
    number = details.companies_house_number
    if number and number != current.details.companies_house_number:
        other = uow.suppliers.by_company_number(organisation, number)
        if other is not None and other.id != supplier_id:
            raise _company_taken(organisation, number)
    updated = Supplier(
        organisation,
        supplier_id,
        details,
        current.info.touched(uow.tx.principal_id, uow.tx.acting_organisation, _now()),
    )
    uow.suppliers.save(updated)
    uow.tx.audit.record(organisation, updated.name, current.audit_view(), updated.audit_view())
    return updated
