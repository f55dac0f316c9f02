"""The supplier register's rules: SupplierDetails.checked and with_changes."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from libs.common.audit import canonical_json
from libs.common.errors import InvalidArgument
from libs.common.records import RecordInfo
from services.procurement.domain.supplier import (
    MAX_ADDRESS_LINES,
    MAX_NAME,
    UPDATABLE,
    BankDetails,
    Debarment,
    Supplier,
    SupplierDetails,
)


def _fields(err: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in err.value.violations]


def test_good_details_are_normalised() -> None:
    details = SupplierDetails(
        display_name="  Acme Ltd  ",
        companies_house_number="1234567",
        vat_number="123 4567 82",
        address_lines=("  1 High Street ", "   ", "", "Leeds"),
        postcode="  ls1   1aa ",
        sme=True,
    ).checked()
    assert details == SupplierDetails(
        display_name="Acme Ltd",
        companies_house_number="01234567",
        vat_number="GB123456782",
        address_lines=("1 High Street", "Leeds"),
        postcode="LS1 1AA",
        sme=True,
        vcse=False,
    )


def test_checked_is_idempotent() -> None:
    once = SupplierDetails("Acme", "sc123456", "gb123456782", ("a",), "sw1a 1aa").checked()
    assert once.checked() == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sw1a 1aa", "SW1A 1AA"),
        ("SW1A    1AA", "SW1A 1AA"),
        ("\tsw1a\n1aa ", "SW1A 1AA"),
        ("m1 1ae", "M1 1AE"),
        ("", ""),
    ],
)
def test_postcode_normalised(raw: str, expected: str) -> None:
    assert SupplierDetails("Acme", postcode=raw).checked().postcode == expected


def test_empty_identifiers_are_allowed() -> None:
    details = SupplierDetails("Acme").checked()
    assert details.companies_house_number == ""
    assert details.vat_number == ""


def test_every_bad_field_is_reported_at_once() -> None:
    details = SupplierDetails(
        display_name="   ",
        companies_house_number="XX123456",
        vat_number="GB123456783",
        address_lines=tuple(f"line {i}" for i in range(MAX_ADDRESS_LINES + 1)),
        postcode="A" * 11,
    )
    with pytest.raises(InvalidArgument) as err:
        details.checked()
    assert _fields(err) == [
        "supplier.display_name",
        "supplier.companies_house_number",
        "supplier.vat_number",
        "supplier.address_lines",
        "supplier.postcode",
    ]
    assert all(v.description for v in err.value.violations)
    assert err.value.reason == "INVALID_ARGUMENT"
    # The message names every field too.
    for field in _fields(err):
        assert field in err.value.message


def test_prefix_is_used_for_field_paths() -> None:
    with pytest.raises(InvalidArgument) as err:
        SupplierDetails("", vat_number="nonsense").checked(prefix="request.supplier")
    assert _fields(err) == ["request.supplier.display_name", "request.supplier.vat_number"]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("", False),
        (" ", False),
        ("A", True),
        ("A" * MAX_NAME, True),
        ("A" * (MAX_NAME + 1), False),
        ("  " + "A" * MAX_NAME + "  ", True),
    ],
)
def test_display_name_length(name: str, ok: bool) -> None:
    details = SupplierDetails(name)
    if ok:
        assert details.checked().display_name == name.strip()
    else:
        with pytest.raises(InvalidArgument) as err:
            details.checked()
        assert _fields(err) == ["supplier.display_name"]


def test_address_line_limit_counts_non_blank_lines() -> None:
    lines = (*(f"line {i}" for i in range(MAX_ADDRESS_LINES)), "  ", "")
    checked = SupplierDetails("Acme", address_lines=lines).checked()
    assert len(checked.address_lines) == MAX_ADDRESS_LINES


def test_vat_problem_describes_check_digits() -> None:
    with pytest.raises(InvalidArgument) as err:
        SupplierDetails("Acme", vat_number="GB123456783").checked()
    [violation] = err.value.violations
    assert violation.field == "supplier.vat_number"
    assert "check digits" in violation.description


def test_government_vat_number_accepted() -> None:
    assert SupplierDetails("HMRC", vat_number="gbgd001").checked().vat_number == "GBGD001"


BASE = SupplierDetails(
    display_name="Acme Ltd",
    companies_house_number="01234567",
    vat_number="GB123456782",
    address_lines=("1 High Street",),
    postcode="LS1 1AA",
    sme=False,
    vcse=False,
)
CHANGES = SupplierDetails(
    display_name="Acme Holdings",
    companies_house_number="SC123456",
    vat_number="GB123456727",
    address_lines=("2 Low Road", "Glasgow"),
    postcode="G1 1AA",
    sme=True,
    vcse=True,
)


def test_updatable_covers_every_field() -> None:
    assert {f.name for f in dataclasses.fields(SupplierDetails)} == UPDATABLE


@pytest.mark.parametrize("path", sorted(UPDATABLE))
def test_with_changes_applies_only_the_masked_path(path: str) -> None:
    result = BASE.with_changes(CHANGES, frozenset({path}))
    for field in UPDATABLE:
        source = CHANGES if field == path else BASE
        assert getattr(result, field) == getattr(source, field), field


def test_with_changes_several_paths() -> None:
    result = BASE.with_changes(CHANGES, frozenset({"display_name", "sme"}))
    assert result == dataclasses.replace(BASE, display_name="Acme Holdings", sme=True)


def test_with_changes_empty_mask_changes_nothing() -> None:
    assert BASE.with_changes(CHANGES, frozenset()) == BASE


def test_with_changes_all_paths() -> None:
    assert BASE.with_changes(CHANGES, UPDATABLE) == CHANGES


def test_the_audit_view_keeps_every_detail_but_the_bank_account() -> None:
    """What the audit log records of a supplier: each detail as it is, the bank account
    by its name, sort code and last four digits, and a debarment in full."""
    details = SupplierDetails(
        "Acme Ltd",
        vat_number="GB123456782",
        address_lines=("1 High Street", "Leeds"),
        postcode="LS1 1AA",
        sme=True,
        bank_details=BankDetails("Acme Ltd", "402020", "31926819"),
    )
    made = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
    info = RecordInfo.new("X00000101/alice", None, made)
    debarment = Debarment("fraud", dt.date(2026, 11, 24), made, "X00000101/alice")
    supplier = Supplier("X00000101", "s-1", details, info, debarment)
    view = supplier.audit_view()
    expected = {
        **dataclasses.asdict(details),
        "bank_details": {"account_name": "Acme Ltd", "sort_code": "402020", "account_number": "****6819"},
    }
    assert {k: view[k] for k in expected} == expected
    assert view["debarment"] == dataclasses.asdict(debarment)
    assert view["name"] == supplier.name and view["version"] == 1
    recorded = canonical_json(view)
    assert recorded is not None and "31926819" not in recorded
