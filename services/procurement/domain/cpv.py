"""Common Procurement Vocabulary codes (Regulation (EC) 213/2008, kept in UK law)."""

from __future__ import annotations

import re

_CPV = re.compile(r"^(\d{2})(\d{6})-\d\Z")


def cpv_problem(code: str) -> str | None:
    """None for a well-formed CPV code: eight digits, a hyphen, a check digit, in a
    division from 03 to 98. (The check digit itself is not verified: its algorithm is not
    part of the published vocabulary.)"""
    match = _CPV.match(code)
    if not match:
        return "must be a CPV code: eight digits, a hyphen and a check digit, such as 30192000-1"
    if not 3 <= int(match.group(1)) <= 98:
        return "is not in a CPV division (03 to 98)"
    return None
