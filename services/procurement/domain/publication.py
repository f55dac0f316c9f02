"""Publication as the service offers it: an OCDS release package (JSON text) and the
contracts register (CSV text)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from services.procurement.domain.contract import Contract
from services.procurement.domain.ocds import dumps, release_package
from services.procurement.domain.register import contracts_register_csv
from services.procurement.domain.supplier import Supplier

PUBLISHER = "Shared back-office services"


def ocds_package(contract: Contract, supplier: Supplier, names: Mapping[str, str]) -> str:
    published = dt.datetime.now(dt.UTC)
    package = release_package(
        contract,
        supplier,
        names.get(contract.organisation, contract.organisation),
        published=published,
        publisher_name=PUBLISHER,
        uri=f"urn:backoffice:{contract.name}:ocds",
        participant_names=names,
    )
    return dumps(package)


def register_csv(
    contracts: Sequence[Contract], suppliers: Mapping[str, Supplier], department: str
) -> tuple[str, int]:
    return contracts_register_csv(contracts, suppliers, department)
