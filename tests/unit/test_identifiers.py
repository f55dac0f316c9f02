"""UK VAT and Companies House identifiers, against a reference written from HMRC's
published description of the modulus 97 and 9755 checks (not from the product code)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.procurement.domain.identifiers import (
    normalise_company_number,
    normalise_vat_number,
    valid_company_number,
    vat_check_digits_valid,
    vat_number_problem,
)

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)

WEIGHTS = (8, 7, 6, 5, 4, 3, 2)


def _weighted(seven: str) -> int:
    return sum(int(d) * w for d, w in zip(seven, WEIGHTS, strict=True))


def ref_check_digits(seven: str, *, scheme_9755: bool = False) -> str:
    """HMRC: weight the first seven digits 8..2 and add them (plus 55 for the 9755 scheme),
    subtract 97 until the result is negative; the check digits are its absolute value."""
    total = _weighted(seven) + (55 if scheme_9755 else 0)
    while total >= 0:
        total -= 97
    return f"{-total:02d}"


def ref_valid(nine: str) -> bool:
    """Weighted sum of the first seven plus the check digits is a multiple of 97 (mod 97),
    or is so after adding 55 (9755)."""
    total = _weighted(nine[:7]) + int(nine[7:])
    return total % 97 == 0 or (total + 55) % 97 == 0


seven_digits = st.text(alphabet="0123456789", min_size=7, max_size=7)


# --- hand-computed examples -------------------------------------------------------------


def test_reference_agrees_with_hand_computation() -> None:
    # 1*8 + 2*7 + 3*6 + 4*5 + 5*4 + 6*3 + 7*2 = 112; 112 + 82 = 194 = 2 * 97.
    assert _weighted("1234567") == 112
    assert ref_check_digits("1234567") == "82"
    # 9755: 112 + 55 = 167; 167 + 27 = 194 = 2 * 97.
    assert ref_check_digits("1234567", scheme_9755=True) == "27"


@pytest.mark.parametrize(
    "number",
    [
        "GB123456782",  # modulus 97
        "GB123456727",  # 9755
        "GB123456782001",  # branch: first nine digits checked
        "GB123456727999",
        "GBGD001",
        "GBGD000",
        "GBGD499",
        "GBHA500",
        "GBHA999",
    ],
)
def test_valid_vat_numbers(number: str) -> None:
    assert vat_number_problem(number) is None


@pytest.mark.parametrize(
    "number",
    [
        "GB123456783",
        "GB123456781",
        "GB123456783001",  # branch with a bad base number
        "GB123456728",
    ],
)
def test_bad_check_digits(number: str) -> None:
    problem = vat_number_problem(number)
    assert problem is not None
    assert "check digits" in problem


@pytest.mark.parametrize(
    "number",
    [
        "GBGD500",  # GD (government departments) is 000-499
        "GBGD999",
        "GBHA499",  # HA (health authorities) is 500-999
        "GBHA000",
        "GBGD01",
        "GBGD0001",
        "GBXX001",
        "GB12345678",  # 8 digits
        "GB1234567820",  # 10 digits
        "GB12345678200",  # 11 digits
        "GB1234567820011",  # 13 digits
        "XI123456782",  # Northern Ireland prefix is not GB
        "123456782",  # not normalised
        "",
    ],
)
def test_malformed_vat_numbers(number: str) -> None:
    problem = vat_number_problem(number)
    assert problem is not None
    assert "must be GB" in problem


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GB 123 4567 82", "GB123456782"),
        ("123 4567 82", "GB123456782"),
        ("123456782", "GB123456782"),
        ("gb123456782", "GB123456782"),
        ("gb 123.4567-82", "GB123456782"),
        ("\tGB123456782\n", "GB123456782"),
        ("gbgd001", "GBGD001"),
        ("GB123456782 001", "GB123456782001"),
        ("", ""),
    ],
)
def test_normalise_vat_number(raw: str, expected: str) -> None:
    assert normalise_vat_number(raw) == expected


def test_normalised_bare_digits_validate() -> None:
    assert vat_number_problem(normalise_vat_number("123 4567 82")) is None


# --- properties against the reference ----------------------------------------------------


@DETERMINISTIC
@given(seven_digits)
def test_mod97_check_digits_validate(seven: str) -> None:
    nine = seven + ref_check_digits(seven)
    assert ref_valid(nine)
    assert vat_check_digits_valid(nine)
    assert vat_number_problem("GB" + nine) is None
    assert vat_number_problem("GB" + nine + "001") is None


@DETERMINISTIC
@given(seven_digits)
def test_9755_check_digits_validate(seven: str) -> None:
    nine = seven + ref_check_digits(seven, scheme_9755=True)
    assert ref_valid(nine)
    assert vat_check_digits_valid(nine)
    assert vat_number_problem("GB" + nine) is None


@DETERMINISTIC
@given(
    seven_digits,
    st.booleans(),
    st.sampled_from([7, 8]),
    st.integers(min_value=1, max_value=9),
)
def test_single_digit_change_of_check_digits(
    seven: str, scheme_9755: bool, position: int, shift: int
) -> None:
    nine = seven + ref_check_digits(seven, scheme_9755=scheme_9755)
    digits = list(nine)
    digits[position] = str((int(digits[position]) + shift) % 10)
    changed = "".join(digits)
    assert changed != nine
    # The product agrees with the reference, whichever scheme the change lands on...
    assert vat_check_digits_valid(changed) == ref_valid(changed)
    # ...and, in fact, it never lands on one: one digit moves the total by +-1..9 or
    # +-10..90, never by a multiple of 97 nor by +-55 or +-42 (97 - 55) modulo 97.
    assert not ref_valid(changed)
    assert vat_number_problem("GB" + changed) is not None


@DETERMINISTIC
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_any_nine_digits_agree_with_reference(nine: str) -> None:
    assert vat_check_digits_valid(nine) == ref_valid(nine)
    assert (vat_number_problem("GB" + nine) is None) == ref_valid(nine)


@DETERMINISTIC
@given(
    st.text(alphabet="0123456789", min_size=9, max_size=9),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
)
def test_branch_numbers_check_the_first_nine_digits(nine: str, branch: str) -> None:
    assert (vat_number_problem("GB" + nine + branch) is None) == ref_valid(nine)


# --- Companies House ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234567", "01234567"),
        ("123", "00000123"),
        ("12345678", "12345678"),
        ("sc123456", "SC123456"),
        ("Sc 123 456", "SC123456"),
        ("oc123456", "OC123456"),
        ("123456789", "123456789"),  # too long: not padded, not truncated
        ("", ""),
    ],
)
def test_normalise_company_number(raw: str, expected: str) -> None:
    assert normalise_company_number(raw) == expected


@pytest.mark.parametrize("number", ["01234567", "12345678", "SC123456", "NI123456", "OC123456", "R0123456"])
def test_valid_company_numbers(number: str) -> None:
    assert valid_company_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "XX123456",
        "123456789",
        "1234567",  # not padded
        "SC12345",
        "SC1234567",
        "sc123456",  # not normalised
        "SC12345A",
        "",
    ],
)
def test_invalid_company_numbers(number: str) -> None:
    assert not valid_company_number(number)


def test_short_company_number_is_valid_once_normalised() -> None:
    assert valid_company_number(normalise_company_number("1234567"))
    assert valid_company_number(normalise_company_number("sc123456"))
    assert not valid_company_number(normalise_company_number("123456789"))
