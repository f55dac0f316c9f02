"""UK company and VAT identifiers, checked as HMRC and Companies House define them."""

from __future__ import annotations

import re

# Companies House: eight digits (England and Wales), or a two-letter jurisdiction or type
# prefix and six digits (SC Scotland, NI Northern Ireland, OC/SO/NC LLPs, LP/SL limited
# partnerships, R0 pre-1929 Northern Ireland, ...).
_COMPANY = re.compile(
    r"^(?:\d{8}|(?:SC|NI|OC|SO|NC|LP|SL|NL|R0|RC|SE|SP|IP|SR|SA|SF|AC|FC|GE|GN|GS|IC|IS|NA|NF|NO|NP|NR|NV|NZ|OE|PC|ZC)\d{6})$"
)
_VAT_STANDARD = re.compile(r"^GB(\d{9}|\d{12})\Z")
_VAT_GOVERNMENT = re.compile(r"^GB(GD[0-4]\d{2}|HA[5-9]\d{2})\Z")


def normalise_company_number(value: str) -> str:
    """Upper-case, spaces removed, and all-digit numbers zero-padded to eight."""
    text = value.replace(" ", "").upper()
    if text.isdigit() and len(text) < 8:
        text = text.zfill(8)
    return text


def valid_company_number(value: str) -> bool:
    return bool(_COMPANY.match(value))


def normalise_vat_number(value: str) -> str:
    text = re.sub(r"[\s.-]", "", value).upper()
    if text and text[0].isdigit():
        text = "GB" + text
    return text


def vat_check_digits_valid(nine_digits: str) -> bool:
    """HMRC's modulus 97 check, and the 9755 variant used for numbers issued since 2010:
    weights 8..2 over the first seven digits plus the two check digits."""
    total = sum(int(d) * w for d, w in zip(nine_digits[:7], range(8, 1, -1), strict=True))
    total += int(nine_digits[7:9])
    return total % 97 == 0 or (total + 55) % 97 == 0


def vat_number_problem(value: str) -> str | None:
    """None if `value` (normalised) is a valid UK VAT number; otherwise what is wrong."""
    if _VAT_GOVERNMENT.match(value):
        return None
    match = _VAT_STANDARD.match(value)
    if not match:
        return "must be GB and 9 digits (12 for a branch), or GBGD/GBHA and 3 digits"
    if not vat_check_digits_valid(match.group(1)[:9]):
        return "has check digits that do not match: check the number with the supplier"
    return None
