"""Publication from domain objects (no server): the OCDS release package and the contracts register.

The package is validated against the official OCDS 1.1.5 schemas, with no network but the package
registries. libcoveocds cannot fetch them itself here: it downloads the standard from GitHub (and
0.17.0 crashes when it cannot read the codelists). No installed PyPI package ships the schema files,
but the Open Contracting Partnership's own sdists on PyPI carry byte-for-byte copies as test
fixtures; `ocds_schema_1_1_5/` holds those official files unmodified, with their provenance and
sums (see its README). The test checks them, then validates twice: with libcoveocds's own
schema validation (its SchemaOCDS reading a local standard zip, lib-cove's validator, sockets
closed) and with plain jsonschema.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import socket
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from libs.common.records import RecordInfo
from services.procurement.domain.contract import (
    Contract,
    ContractKind,
    ContractTerms,
    ProcurementMethod,
    ocid_for,
)
from services.procurement.domain.ocds import dumps, release_package
from services.procurement.domain.register import COLUMNS, contracts_register_csv
from services.procurement.domain.supplier import Supplier, SupplierDetails

LEAD = "X00000001"  # the shared-service unit that lets the contract
FORCE = "E23000010"  # a participating force
COUNCIL = "E06000014"  # a participating council
CREATED = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
PUBLISHED = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)

# --- the official schemas, from the Open Contracting Partnership's sdists on PyPI ---------------------

TAG = "1__1__5"
SCHEMAS = Path(__file__).with_name("ocds_schema_1_1_5")
SCHEMA_URL = f"https://standard.open-contracting.org/schema/{TAG}/{{}}"
SCHEMA_FILES = (
    "release-package-schema.json",
    "release-schema.json",
    "versioned-release-validation-schema.json",
)


@pytest.fixture(scope="session")
def ocds_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official schemas (vendored, see ocds_schema_1_1_5/README.md), checked against
    their recorded sums and ids, in the layout libcoveocds reads a standard zip from."""
    sums = dict(line.split()[::-1] for line in (SCHEMAS / "SHA256SUMS").read_text().splitlines())
    target = tmp_path_factory.mktemp(f"ocds-standard-{TAG}")
    with zipfile.ZipFile(target / "standard.zip", "w") as z:
        z.writestr(f"standard-{TAG}/", "")
        for name in SCHEMA_FILES:
            data = (SCHEMAS / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sums[name], f"{name} differs from the official file"
            assert json.loads(data)["id"] == SCHEMA_URL.format(name)
            (target / name).write_bytes(data)
            z.writestr(f"standard-{TAG}/schema/{name}", data)
    return target


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"validation tried the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def libcoveocds_errors(package: dict[str, object], schemas: Path) -> list[str]:
    """libcoveocds's schema validation of a package, as cove-ocds runs it, from the local standard."""
    from libcove.lib.common import get_schema_validation_errors  # type: ignore[import-untyped]
    from libcoveocds.config import LibCoveOCDSConfig  # type: ignore[import-untyped]
    from libcoveocds.schema import SchemaOCDS  # type: ignore[import-untyped]

    config = LibCoveOCDSConfig()
    config.config["context"] = "api"
    config.config["standard_zip"] = (schemas / "standard.zip").as_uri()
    schema = SchemaOCDS(select_version="1.1", package_data=package, lib_cove_ocds_config=config)
    assert schema.version == "1.1" and not schema.extensions
    errors = get_schema_validation_errors(package, schema, "-", {}, {})
    # Grouped by message, each with the paths where it occurs.
    return [
        f"{place['path']}: {json.loads(key)['message']}" for key, places in errors.items() for place in places
    ]


def jsonschema_errors(package: dict[str, object], schemas: Path) -> list[str]:
    from jsonschema import Draft4Validator, FormatChecker  # type: ignore[import-untyped]
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    release = json.loads((schemas / "release-schema.json").read_text())
    registry = Registry().with_resource(release["id"], Resource.from_contents(release, DRAFT4))
    validator = Draft4Validator(
        json.loads((schemas / "release-package-schema.json").read_text()),
        registry=registry,
        format_checker=FormatChecker(),
    )
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(package)]


# --- domain objects ------------------------------------------------------------------------------------


def info(at: dt.datetime = CREATED) -> RecordInfo:
    return RecordInfo.new("users/officer", LEAD, at)


def make_supplier(
    supplier_id: str = "acme",
    name: str = "Acme Protective Ltd",
    company: str = "01234567",
    *,
    sme: bool = True,
    vcse: bool = False,
) -> Supplier:
    details = SupplierDetails(name, company, "", ("1 Mill Lane", "Leeds"), "LS1 4AP", sme, vcse).checked()
    return Supplier(LEAD, supplier_id, details, info())


def make_contract(
    contract_id: str = "body-armour",
    *,
    value: str = "12345.67",
    reference: str = "YHSS-2026-001",
    title: str = "Covert body armour",
    description: str = "Covert body armour for officers",
    department: str = "Commercial",
    supplier_id: str = "acme",
    participants: tuple[str, ...] = (FORCE, COUNCIL),
    method: ProcurementMethod = ProcurementMethod.OPEN,
    start: dt.date = dt.date(2026, 4, 1),
    end: dt.date = dt.date(2028, 3, 31),
    review: dt.date | None = dt.date(2027, 3, 1),
    vat: str = "0",
    created: dt.datetime = CREATED,
) -> Contract:
    terms = ContractTerms(
        reference=reference,
        title=title,
        description=description,
        department=department,
        supplier_id=supplier_id,
        kind=ContractKind.FRAMEWORK,
        cpv_codes=("35811200-4", "18143000-3"),
        value=Decimal(value),
        irrecoverable_vat=Decimal(vat),
        start_date=start,
        end_date=end,
        review_date=review,
        procurement_method=method,
        participants=participants,
    ).checked(LEAD)
    return Contract(
        LEAD, contract_id, terms, ocid_for("ocds-b0ffce", LEAD, contract_id), False, (), info(created)
    )


def package_for(
    contract: Contract | None = None, supplier: Supplier | None = None, published: dt.datetime = PUBLISHED
) -> dict[str, object]:
    return release_package(
        contract or make_contract(),
        supplier or make_supplier(),
        "Yorkshire Shared Services",
        published=published,
        publisher_name="Shared back-office services",
        uri="urn:backoffice:organisations/X00000001/contracts/body-armour:ocds",
        participant_names={FORCE: "West Yorkshire Police"},
    )


def as_json(package: dict[str, object]) -> dict[str, object]:
    """The package as a consumer reads the published text."""
    parsed: dict[str, object] = json.loads(dumps(package))
    return parsed


def releases(package: dict[str, object]) -> list[dict[str, object]]:
    found = package["releases"]
    assert isinstance(found, list)
    return found


# --- OCDS ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_network")
def test_package_passes_libcoveocds_schema_validation_offline(ocds_schemas: Path) -> None:
    assert libcoveocds_errors(as_json(package_for()), ocds_schemas) == []


@pytest.mark.usefixtures("no_network")
def test_every_method_and_state_validates_against_the_release_package_schema(ocds_schemas: Path) -> None:
    for method in ProcurementMethod:
        for start, end in (
            (dt.date(2026, 7, 1), dt.date(2027, 1, 1)),  # pending
            (dt.date(2026, 1, 1), dt.date(2027, 1, 1)),  # active
            (dt.date(2025, 1, 1), dt.date(2026, 1, 1)),
        ):  # terminated
            contract = make_contract(method=method, start=start, end=end, description="", participants=())
            package = as_json(package_for(contract, make_supplier(company="")))
            assert jsonschema_errors(package, ocds_schemas) == [], (method, start)


@pytest.mark.usefixtures("no_network")
def test_the_validators_do_find_errors(ocds_schemas: Path) -> None:
    package = as_json(package_for())
    broken = releases(package)[1]
    broken["tender"]["procurementMethod"] = "restricted"  # type: ignore[index]
    broken["tag"] = ["notice"]
    del releases(package)[2]["initiationType"]
    package["publishedDate"] = "1 June 2026"
    errors = sorted(jsonschema_errors(package, ocds_schemas))
    assert len(errors) == 4
    assert errors[0] == "publishedDate: '1 June 2026' is not a 'date-time'"
    assert errors[1].startswith("releases/1/tag/0: 'notice' is not one of ['planning', ")
    assert errors[2] == (
        "releases/1/tender/procurementMethod: 'restricted' is not one of "
        "['open', 'selective', 'limited', 'direct', None]"
    )
    assert errors[3] == "releases/2: 'initiationType' is a required property"
    # lib-cove leaves closed codelists (the enums) to its codelist check, which needs the codelist
    # CSVs that cannot be had offline: jsonschema above covers them.
    assert sorted(libcoveocds_errors(package, ocds_schemas)) == [
        "publishedDate: Date is not in the correct format",
        "releases/2: 'initiationType' is missing but required",
    ]


def test_four_releases_of_one_contracting_process() -> None:
    contract = make_contract()
    package = as_json(package_for(contract))
    assert package["version"] == "1.1"
    assert package["publishedDate"] == "2026-06-01T12:00:00Z"
    found = releases(package)
    assert [r["tag"] for r in found] == [["planning"], ["tender"], ["award"], ["contract"]]
    assert {r["ocid"] for r in found} == {contract.ocid}
    assert len({r["id"] for r in found}) == 4
    assert {r["initiationType"] for r in found} == {"tender"}
    assert {r["date"] for r in found} == {"2026-03-02T09:30:00Z"}
    planning, tender, award, signed = found
    assert planning["tender"]["status"] == "planned"  # type: ignore[index]
    assert tender["tender"]["status"] == "active"  # type: ignore[index]
    assert award["tender"]["status"] == "complete"  # type: ignore[index]
    assert "awards" not in tender and "contracts" not in award
    assert signed["contracts"][0]["awardID"] == signed["awards"][0]["id"]  # type: ignore[index]


def test_release_dates_are_never_after_the_package_is_published() -> None:
    package = as_json(package_for(make_contract(created=PUBLISHED + dt.timedelta(hours=3))))
    assert {r["date"] for r in releases(package)} == {package["publishedDate"]}


def test_tender_items_method_and_periods() -> None:
    tender = releases(as_json(package_for()))[1]["tender"]
    assert tender["id"] == "YHSS-2026-001"  # type: ignore[index]
    assert tender["items"] == [  # type: ignore[index]
        {"id": "1", "classification": {"scheme": "CPV", "id": "35811200"}},
        {"id": "2", "classification": {"scheme": "CPV", "id": "18143000"}},
    ]
    assert tender["mainProcurementCategory"] == "goods"  # type: ignore[index]
    assert (tender["procurementMethod"], tender["procurementMethodDetails"]) == (  # type: ignore[index]
        "open",
        "Open procedure",
    )
    # Agreement dates are Europe/London dates: BST on both of these.
    assert tender["contractPeriod"] == {  # type: ignore[index]
        "startDate": "2026-04-01T00:00:00+01:00",
        "endDate": "2028-03-31T23:59:59+01:00",
    }


@pytest.mark.parametrize(
    ("method", "code", "details"),
    [
        (ProcurementMethod.OPEN, "open", "Open procedure"),
        (ProcurementMethod.COMPETITIVE_FLEXIBLE, "selective", "Competitive flexible procedure"),
        (ProcurementMethod.DIRECT_AWARD, "direct", "Direct award"),
        (ProcurementMethod.FRAMEWORK_CALL_OFF, "selective", "Award under framework"),
        (ProcurementMethod.BELOW_THRESHOLD, None, "Below threshold - unknown"),
    ],
)
def test_procurement_methods_map_to_the_closed_codelist(
    method: ProcurementMethod, code: str | None, details: str
) -> None:
    tender = releases(as_json(package_for(make_contract(method=method))))[1]["tender"]
    assert tender.get("procurementMethod") == code  # type: ignore[attr-defined]
    assert tender["procurementMethodDetails"] == details  # type: ignore[index]


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        (dt.date(2026, 6, 2), dt.date(2027, 1, 1), "pending"),
        (dt.date(2026, 6, 1), dt.date(2026, 6, 1), "active"),
        (dt.date(2025, 1, 1), dt.date(2026, 5, 31), "terminated"),
    ],
)
def test_contract_status_follows_its_dates(start: dt.date, end: dt.date, status: str) -> None:
    signed = releases(as_json(package_for(make_contract(start=start, end=end))))[3]
    assert signed["contracts"][0]["status"] == status  # type: ignore[index]


def test_parties_carry_the_roles_find_a_tender_maps_to() -> None:
    found = releases(as_json(package_for()))
    for release in found:
        parties = {p["id"]: p for p in release["parties"]}  # type: ignore[attr-defined]
        lead = parties["XI-BACKOFFICE-X00000001"]
        assert lead["roles"] == ["buyer", "procuringEntity"]
        assert lead["identifier"] == {"scheme": "XI-BACKOFFICE", "id": LEAD}
        assert release["buyer"] == {"id": lead["id"], "name": "Yorkshire Shared Services"}
        assert parties["XI-BACKOFFICE-E23000010"]["roles"] == ["buyer"]
        assert parties["XI-BACKOFFICE-E23000010"]["name"] == "West Yorkshire Police"
        assert parties["XI-BACKOFFICE-E06000014"]["roles"] == ["buyer"]
        if release["tag"] in (["planning"], ["tender"]):
            assert "GB-COH-01234567" not in parties  # the winner is not known yet
            continue
        supplier = parties["GB-COH-01234567"]
        assert supplier["roles"] == ["tenderer", "supplier"]
        assert supplier["identifier"] == {"scheme": "GB-COH", "id": "01234567"}
        assert supplier["details"] == {"scale": "sme", "vcse": False}
        assert release["awards"][0]["suppliers"] == [  # type: ignore[index]
            {"id": "GB-COH-01234567", "name": "Acme Protective Ltd"}
        ]
    assert found[1]["tender"]["procuringEntity"]["id"] == "XI-BACKOFFICE-X00000001"  # type: ignore[index]


def test_a_supplier_without_a_company_number_has_a_local_id() -> None:
    package = as_json(package_for(supplier=make_supplier(company="")))
    supplier = releases(package)[3]["parties"][-1]  # type: ignore[index]
    assert supplier["id"] == "XI-BACKOFFICE-organisations/X00000001/suppliers/acme"
    assert "identifier" not in supplier


def test_the_wrong_supplier_is_refused() -> None:
    with pytest.raises(ValueError, match="is not the supplier"):
        package_for(supplier=make_supplier(supplier_id="other"))


def test_amounts_are_exact_json_numbers() -> None:
    text = dumps(package_for(make_contract(value="12345.67")))
    parsed = json.loads(text, parse_float=Decimal)
    amounts = []
    for release in parsed["releases"]:
        for block in (release["tender"], *release.get("awards", []), *release.get("contracts", [])):
            if "value" in block:
                amounts.append(block["value"])
        if "planning" in release:
            amounts.append(release["planning"]["budget"]["amount"])
    assert len(amounts) == 7  # budget; tender x3; award x2; contract
    assert all(a == {"amount": Decimal("12345.67"), "currency": "GBP"} for a in amounts)
    assert '"amount": 12345.67,' in text
    # A value binary floating point cannot hold stays exact too.
    big = json.loads(dumps(package_for(make_contract(value="98765432109876.01"))), parse_float=Decimal)
    assert big["releases"][3]["contracts"][0]["value"]["amount"] == Decimal("98765432109876.01")


def test_dumps_refuses_floats_and_non_finite_amounts() -> None:
    with pytest.raises(TypeError, match="floats"):
        dumps({"amount": 12345.67})
    with pytest.raises(ValueError, match="not a JSON number"):
        dumps({"amount": Decimal("NaN")})
    assert json.loads(dumps({"a": [1, True, None, '£5 "x"', Decimal("1E+3")], "b": {}, "c": []})) == {
        "a": [1, True, None, '£5 "x"', 1000],
        "b": {},
        "c": [],
    }


# --- the contracts register -----------------------------------------------------------------------------


def register_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_register_lists_contracts_over_five_thousand_pounds() -> None:
    contracts = [
        make_contract("just-over", reference="R-1", value="5000.01"),
        make_contract("at-threshold", reference="R-2", value="5000.00"),
        make_contract("under", reference="R-3", value="4999.99"),
        make_contract("large", reference="R-4", value="250000"),
    ]
    text, count = contracts_register_csv(contracts, {"acme": make_supplier()}, "Procurement")
    rows = register_rows(text)
    assert count == 2 == len(rows)
    assert [r["Reference"] for r in rows] == ["R-1", "R-4"]
    assert [r["Value"] for r in rows] == ["5000.01", "250000.00"]
    assert text.startswith(",".join(COLUMNS) + "\r\n")


def test_register_row_has_the_codes_fields() -> None:
    supplier = make_supplier("cic", "Community Kit CIC", "SC123456", sme=False, vcse=True)
    contract = make_contract(
        supplier_id="cic",
        value="12345.6",
        vat="123.4",
        department="",
        method=ProcurementMethod.COMPETITIVE_FLEXIBLE,
        review=None,
    )
    text, count = contracts_register_csv([contract], {"cic": supplier}, "Procurement")
    assert count == 1
    assert register_rows(text) == [
        {
            "Reference": "YHSS-2026-001",
            "Title": "Covert body armour",
            "Department": "Procurement",
            "Description": "Covert body armour for officers",
            "Supplier name": "Community Kit CIC",
            "Supplier Companies House number": "SC123456",
            "Value": "12345.60",
            "Irrecoverable VAT": "123.40",
            "Start date": "2026-04-01",
            "End date": "2028-03-31",
            "Review date": "",
            "Procurement method": "Competitive flexible procedure",
            "SME": "N",
            "VCSE": "Y",
        }
    ]


def test_register_writes_sme_and_vcse_flags() -> None:
    suppliers = {
        "small": make_supplier("small", "Small Ltd", "", sme=True, vcse=False),
        "charity": make_supplier("charity", "Charity", "", sme=False, vcse=True),
    }
    contracts = [
        make_contract("a", reference="A", supplier_id="small"),
        make_contract("b", reference="B", supplier_id="charity"),
    ]
    rows = register_rows(contracts_register_csv(contracts, suppliers, "Procurement")[0])
    assert [(r["SME"], r["VCSE"]) for r in rows] == [("Y", "N"), ("N", "Y")]


def test_register_escapes_formula_like_cells() -> None:
    supplier = make_supplier(name="@SUM(A1:A9)")
    contract = make_contract(
        title='=HYPERLINK("http://evil.example","x")',
        description="+1+2",
        department="-Fleet",
        reference="R=1",
    )
    rows = register_rows(contracts_register_csv([contract], {"acme": supplier}, "Procurement")[0])
    assert rows[0]["Title"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[0]["Description"] == "'+1+2"
    assert rows[0]["Department"] == "'-Fleet"
    assert rows[0]["Supplier name"] == "'@SUM(A1:A9)"
    assert rows[0]["Reference"] == "R=1"  # only a leading sign is a formula


def test_register_keeps_amounts_exact() -> None:
    contract = make_contract(value="98765432109876.10")
    rows = register_rows(contracts_register_csv([contract], {"acme": make_supplier()}, "Procurement")[0])
    assert rows[0]["Value"] == "98765432109876.10"  # as entered: no float, no rounding


def test_register_needs_each_listed_contracts_supplier() -> None:
    with pytest.raises(ValueError, match="supplier of organisations/X00000001/contracts/body-armour"):
        contracts_register_csv([make_contract()], {}, "Procurement")
    assert contracts_register_csv([make_contract(value="10")], {}, "Procurement") == (
        ",".join(COLUMNS) + "\r\n",
        0,
    )
