"""Exact money: Decimal pounds in the domain, integer pence in the database."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")
ZERO = Decimal("0.00")


def whole_pence(amount: Decimal) -> bool:
    return amount == amount.quantize(PENNY)


def to_pence(amount: Decimal) -> int:
    """Pounds (in whole pence) to integer pence; refuses fractions of a penny."""
    if not whole_pence(amount):
        raise ValueError(f"{amount} is not a whole number of pence")
    return int(amount * 100)


def from_pence(pence: int) -> Decimal:
    return (Decimal(pence) / 100).quantize(PENNY)


def round_pence(amount: Decimal) -> Decimal:
    return amount.quantize(PENNY, rounding=ROUND_HALF_UP)


def split_by_drivers(amount: Decimal, drivers: Sequence[Decimal]) -> list[Decimal]:
    """Split `amount` (whole pence) in proportion to `drivers` so that the parts add up to
    it exactly: each part is rounded down to the penny and the pence left over go, one
    each, to the largest remainders (ties to the earlier driver)."""
    total = sum(drivers, Decimal(0))
    if total <= 0 or any(d < 0 for d in drivers):
        raise ValueError("drivers must be non-negative and not all zero")
    pence = to_pence(amount)
    exact = [Decimal(pence) * d / total for d in drivers]
    floors = [int(e) for e in exact]
    left = pence - sum(floors)
    order = sorted(range(len(drivers)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [from_pence(p) for p in floors]
