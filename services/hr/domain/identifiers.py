"""National Insurance numbers and collar numbers, checked as HMRC and forces issue them."""

from __future__ import annotations

import re

_NINO = re.compile(r"^([A-Z]{2})(\d{6})([A-D])\Z")
# HMRC: neither prefix letter is D, F, I, Q, U or V; the second is not O; and these
# prefixes are never issued (BG, GB, NK, KN, TN, NT and ZZ; TN is also the temporary
# number HMRC once used, not a real NINO).
_BAD_LETTERS = set("DFIQUV")
_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_COLLAR = re.compile(r"^[A-Z0-9]{1,10}\Z")


def normalise_ni_number(value: str) -> str:
    return re.sub(r"\s", "", value).upper()


def ni_number_problem(value: str) -> str | None:
    """None if `value` (normalised) is a valid NI number; otherwise what is wrong."""
    match = _NINO.match(value)
    if not match:
        return "must be two letters, six digits and a letter A to D, for example AB123456C"
    prefix = match.group(1)
    if prefix[0] in _BAD_LETTERS or prefix[1] in _BAD_LETTERS or prefix[1] == "O":
        return (
            f"has a prefix {prefix} HMRC never issues: the letters D, F, I, Q, U and V are not used, "
            "nor O as the second letter"
        )
    if prefix in _BAD_PREFIXES:
        return f"has a prefix {prefix} HMRC never issues (BG, GB, KN, NK, NT, TN and ZZ are not allocated)"
    return None


def normalise_collar_number(value: str) -> str:
    return re.sub(r"\s", "", value).upper()


def valid_collar_number(value: str) -> bool:
    return bool(_COLLAR.match(value))
