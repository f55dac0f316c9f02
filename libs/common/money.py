"""Exact money: Decimal pounds, rounded half up to the penny where a rule says so."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")
ZERO = Decimal(0)
# The largest amount a field of a request takes: £100 trillion, far above any public
# contract, and small enough that 500 lines of it in pence still fit a 64-bit integer.
MAX_AMOUNT = Decimal(10) ** 14


def has_places(amount: Decimal, places: int) -> bool:
    """Whether `amount` has at most `places` decimal places (2: whole pence)."""
    # By the digits, not by quantize or normalize, which round or raise past the context's
    # 28 digits (a quantity of 1e30, or of 31 places).
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        return False  # NaN or infinity
    text = "".join(map(str, digits))
    if not text.strip("0"):
        return True  # zero
    return exponent + len(text) - len(text.rstrip("0")) >= -places


def to_pennies(amount: Decimal) -> Decimal:
    return amount.quantize(PENNY, rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, places: int) -> int:
    """An exact integer count of 10**-places units (pence are places=2); refuses to round."""
    scaled = amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {places} decimal places")
    return int(scaled)


def from_minor(units: int, places: int) -> Decimal:
    return Decimal(units).scaleb(-places)


def format_pounds(amount: Decimal) -> str:
    return f"{to_pennies(amount):.2f}"
