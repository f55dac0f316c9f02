"""A contract as an OCDS 1.1 release package: one contracting process (one `ocid`) told in four
releases, planning, tender, award and contract, as Find a Tender tells a procurement in notices.

Mapping choices, and where they come from:

- Parties. The letting organisation runs the procurement and calls off from it: roles `buyer` and
  `procuringEntity`, and it is the release's `buyer` and `tender.procuringEntity`. Each participating
  organisation calls off and pays: role `buyer` (the role Find a Tender gives every buying
  organisation). The supplier has roles `tenderer` and `supplier` from the award on; the planning and
  tender releases, told as they would have been at the time, do not name it.
- Identifiers. A supplier with a Companies House number is `GB-COH-{number}` (the org-id.guide scheme
  Find a Tender uses). Public bodies here are known by GSS code (or the project's `X` code), which no
  org-id.guide scheme holds, and their PPONs (`GB-PPON`, Find a Tender's own scheme) are not recorded:
  they are identified under `ORGANISATION_SCHEME`, a project-local scheme that is not registered with
  org-id.guide. Replace it with `GB-PPON` once the bodies' PPONs are held.
- `procurementMethodDetails` uses Find a Tender's labels for the Procurement Act 2023 routes; the
  closed `method` codelist gets the nearest code (see `_METHODS`). A below-threshold procurement does
  not record whether it was advertised, so it carries no `procurementMethod`, like Find a Tender's
  "Below threshold - unknown".
- Items: one per CPV code, classified with scheme `CPV` and the eight-digit code without its check
  digit, as Find a Tender writes it. `mainProcurementCategory` comes from the first code's division.
- Dates. Agreement dates are Europe/London dates: a period runs from 00:00:00 on the start date to
  23:59:59 on the end date. A release's `date` is when the contract was recorded (the contract
  release: when it last changed), never later than the package's `publishedDate`, as OCDS requires.
  Release ids carry the contract's version, so a changed contract is told in new releases.
- Contract status, as at the publication date: `pending` before the start date, `active` until the
  end date, `terminated` after it.
- Amounts are Decimal in the package; `dumps` writes them as exact JSON numbers, never via float.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from zoneinfo import ZoneInfo

from services.procurement.domain.contract import Contract, ContractState, ProcurementMethod
from services.procurement.domain.supplier import Supplier

OCDS_VERSION = "1.1"
CURRENCY = "GBP"
ORGANISATION_SCHEME = "XI-BACKOFFICE"
COMPANIES_HOUSE_SCHEME = "GB-COH"
_LONDON = ZoneInfo("Europe/London")

# ProcurementMethod -> (OCDS `method` code or None, Find a Tender's procurementMethodDetails label)
_METHODS: dict[ProcurementMethod, tuple[str | None, str]] = {
    ProcurementMethod.OPEN: ("open", "Open procedure"),
    # Only suppliers that meet the conditions of participation go on to tender.
    ProcurementMethod.COMPETITIVE_FLEXIBLE: ("selective", "Competitive flexible procedure"),
    ProcurementMethod.DIRECT_AWARD: ("direct", "Direct award"),
    # Only the framework's suppliers can be awarded a call-off.
    ProcurementMethod.FRAMEWORK_CALL_OFF: ("selective", "Award under framework"),
    ProcurementMethod.BELOW_THRESHOLD: (None, "Below threshold - unknown"),
}
PROCUREMENT_METHOD_LABELS: dict[ProcurementMethod, str] = {m: label for m, (_, label) in _METHODS.items()}

_CONTRACT_STATUS = {
    ContractState.PENDING: "pending",
    ContractState.LIVE: "active",
    ContractState.EXPIRED: "terminated",
}


def release_package(
    contract: Contract,
    supplier: Supplier,
    buyer_name: str,
    *,
    published: dt.datetime,
    publisher_name: str,
    uri: str,
    participant_names: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The release package for one contract. `buyer_name` names the letting organisation;
    `participant_names` (organisation code -> name) the others, which otherwise go by their
    resource name. Naive datetimes are taken as UTC."""
    terms = contract.terms
    if supplier.id != terms.supplier_id or supplier.organisation != contract.organisation:
        raise ValueError(f"{supplier.name} is not the supplier of {contract.name}")
    if terms.value is None or terms.start_date is None or terms.end_date is None:
        raise ValueError(f"{contract.name} has no value or dates: it cannot be published")
    if terms.procurement_method is None:
        raise ValueError(f"{contract.name} has no procurement method: it cannot be published")
    published = _utc(published)
    names = participant_names or {}

    lead = _organisation_party(contract.organisation, buyer_name, ["buyer", "procuringEntity"])
    buyers = [lead] + [
        _organisation_party(code, names.get(code, f"organisations/{code}"), ["buyer"])
        for code in terms.participants
    ]
    lead_ref = {"id": lead["id"], "name": buyer_name}
    supplier_party = _supplier_party(supplier)
    supplier_ref = {"id": supplier_party["id"], "name": supplier_party["name"]}

    value = _value(terms.value)
    period = {"startDate": _start_of(terms.start_date), "endDate": _end_of(terms.end_date)}
    method, method_details = _METHODS[terms.procurement_method]
    tender: dict[str, object] = {"id": terms.reference, "title": terms.title}
    if terms.description:
        tender["description"] = terms.description
    tender["items"] = [
        {"id": str(i), "classification": {"scheme": "CPV", "id": code.split("-")[0]}}
        for i, code in enumerate(terms.cpv_codes, start=1)
    ]
    if terms.cpv_codes:
        tender["mainProcurementCategory"] = _category(terms.cpv_codes[0])
    tender["value"] = value
    if method is not None:
        tender["procurementMethod"] = method
    tender["procurementMethodDetails"] = method_details
    tender["procuringEntity"] = lead_ref
    tender["contractPeriod"] = period

    created = _timestamp(min(_utc(contract.info.create_time), published))
    changed = _timestamp(min(_utc(contract.info.update_time), published))
    version = contract.info.version

    award_id = f"{contract.id}-award"
    award: dict[str, object] = {
        "id": award_id,
        "title": terms.title,
        "status": "active",
        "date": created,
        "value": value,
        "suppliers": [supplier_ref],
        "contractPeriod": period,
    }
    as_at = published.astimezone(_LONDON).date()
    contract_block: dict[str, object] = {"id": contract.id, "awardID": award_id, "title": terms.title}
    if terms.description:
        contract_block["description"] = terms.description
    contract_block.update(
        {"status": _CONTRACT_STATUS[contract.state(as_at)], "period": period, "value": value}
    )

    def release(tag: str, date: str, parties: list[dict[str, object]], **blocks: object) -> dict[str, object]:
        return {
            "ocid": contract.ocid,
            "id": f"{contract.ocid}-{tag}-v{version}",
            "date": date,
            "tag": [tag],
            "initiationType": "tender",
            "language": "en",
            "parties": parties,
            "buyer": lead_ref,
            **blocks,
        }

    releases = [
        release(
            "planning",
            created,
            buyers,
            planning={"budget": {"description": terms.title, "amount": value}},
            tender={"id": terms.reference, "title": terms.title, "status": "planned"},
        ),
        release("tender", created, buyers, tender={**tender, "status": "active"}),
        release(
            "award",
            created,
            [*buyers, supplier_party],
            tender={**tender, "status": "complete"},
            awards=[award],
        ),
        release(
            "contract",
            changed,
            [*buyers, supplier_party],
            tender={**tender, "status": "complete"},
            awards=[award],
            contracts=[contract_block],
        ),
    ]
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": _timestamp(published),
        "publisher": {"name": publisher_name},
        "releases": releases,
    }


def dumps(package: Mapping[str, object]) -> str:
    """JSON text with Decimals written as exact JSON numbers (12345.67 stays 12345.67). Floats are
    refused: money never passes through binary floating point here."""
    return _encode(package, 0)


def _encode(value: object, level: int) -> str:
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(value, Mapping):
        members = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {key!r}")
            members.append(f"{inner}{json.dumps(key)}: {_encode(item, level + 1)}")
        return "{\n" + ",\n".join(members) + f"\n{pad}}}" if members else "{}"
    if isinstance(value, list | tuple):
        items = [f"{inner}{_encode(item, level + 1)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]" if items else "[]"
    return _scalar(value)


def _scalar(value: object) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not written: use Decimal for amounts")
    if value is None or isinstance(value, bool | int | str):
        # json writes these exactly: null, true/false, integers, escaped strings.
        return json.dumps(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _organisation_party(code: str, name: str, roles: list[str]) -> dict[str, object]:
    return {
        "id": f"{ORGANISATION_SCHEME}-{code}",
        "name": name,
        "identifier": {"scheme": ORGANISATION_SCHEME, "id": code},
        "roles": roles,
    }


def _supplier_party(supplier: Supplier) -> dict[str, object]:
    details = supplier.details
    party: dict[str, object] = {"name": details.display_name}
    if details.companies_house_number:
        party["id"] = f"{COMPANIES_HOUSE_SCHEME}-{details.companies_house_number}"
        party["identifier"] = {"scheme": COMPANIES_HOUSE_SCHEME, "id": details.companies_house_number}
    else:
        party["id"] = f"{ORGANISATION_SCHEME}-{supplier.name}"
    address: dict[str, object] = {}
    if details.address_lines:
        address["streetAddress"] = ", ".join(details.address_lines)
    if details.postcode:
        address["postalCode"] = details.postcode
    if address:
        party["address"] = address
    party["roles"] = ["tenderer", "supplier"]
    # `details` is free-form in OCDS; `scale` follows the partyDetails scale extension's codes.
    party["details"] = {"scale": "sme" if details.sme else "large", "vcse": details.vcse}
    return party


def _value(amount: Decimal) -> dict[str, object]:
    return {"amount": amount, "currency": CURRENCY}


def _category(cpv_code: str) -> str:
    division = int(cpv_code[:2])
    if division == 45:
        return "works"
    return "services" if division >= 50 else "goods"


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _timestamp(moment: dt.datetime) -> str:
    return _utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def _start_of(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(0, 0, 0), tzinfo=_LONDON).isoformat()


def _end_of(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=_LONDON).isoformat()
