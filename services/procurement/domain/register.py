"""The contracts register of the Local Government Transparency Code 2015, as CSV.

The Code asks for every contract, framework agreement or other legally enforceable agreement "with a
value that exceeds £5,000": a contract is listed when its value is strictly more than
`REGISTER_THRESHOLD` (£5,000.01 is listed, £5,000.00 is not). Its value is the whole-life value the
contract records.

Columns follow the Code's list: reference, title, department, description, supplier name and
registration (Companies House) number, value, VAT that cannot be recovered, start, end and review
dates, how it was procured, and whether the supplier is an SME or a VCSE (Y/N). Amounts are written
exactly, to two decimal places whenever the amount has no more; dates as YYYY-MM-DD. Rows keep the
order of the contracts given.

Text cells that a spreadsheet would read as a formula (starting with =, +, -, @, a tab or a carriage
return) get a leading apostrophe (OWASP's advice against CSV injection).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from decimal import Decimal

from libs.common.money import PENNY
from services.procurement.domain.contract import REGISTER_THRESHOLD, Contract
from services.procurement.domain.ocds import PROCUREMENT_METHOD_LABELS
from services.procurement.domain.supplier import Supplier

COLUMNS = (
    "Reference",
    "Title",
    "Department",
    "Description",
    "Supplier name",
    "Supplier Companies House number",
    "Value",
    "Irrecoverable VAT",
    "Start date",
    "End date",
    "Review date",
    "Procurement method",
    "SME",
    "VCSE",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def on_register(contract: Contract) -> bool:
    """Whether the Code's register lists the contract: its value exceeds £5,000."""
    value = contract.terms.value
    return value is not None and value > REGISTER_THRESHOLD


def contracts_register_csv(
    contracts: Sequence[Contract], suppliers: Mapping[str, Supplier], department_default: str
) -> tuple[str, int]:
    """CSV text (header first, CRLF line ends) and the number of contract rows. `suppliers` is keyed
    by supplier id; `department_default` fills the department of a contract that names none."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    rows = 0
    for contract in contracts:
        if not on_register(contract):
            continue
        terms = contract.terms
        supplier = suppliers.get(terms.supplier_id)
        if supplier is None:
            raise ValueError(f"the supplier of {contract.name} ({terms.supplier_id}) was not given")
        assert terms.value is not None
        method = PROCUREMENT_METHOD_LABELS[terms.procurement_method] if terms.procurement_method else ""
        writer.writerow(
            _safe(cell)
            for cell in (
                terms.reference,
                terms.title,
                terms.department or department_default,
                terms.description,
                supplier.details.display_name,
                supplier.details.companies_house_number,
                _pounds(terms.value),
                _pounds(terms.irrecoverable_vat),
                _date(terms.start_date),
                _date(terms.end_date),
                _date(terms.review_date),
                method,
                "Y" if supplier.details.sme else "N",
                "Y" if supplier.details.vcse else "N",
            )
        )
        rows += 1
    return out.getvalue(), rows


def _safe(cell: str) -> str:
    return f"'{cell}" if cell.startswith(_FORMULA_STARTS) else cell


def _pounds(amount: Decimal) -> str:
    """Exact: two decimal places unless the amount has more, which are kept rather than rounded."""
    pennies = amount.quantize(PENNY)
    return f"{pennies:f}" if pennies == amount else f"{amount.normalize():f}"


def _date(day: dt.date | None) -> str:
    return day.isoformat() if day else ""
