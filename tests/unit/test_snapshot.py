"""The audit log's picture of a domain object (`records.snapshot`)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

from libs.common.records import snapshot


class Colour(enum.Enum):
    RED = "red"


class Kind(enum.StrEnum):
    A = "a"


class Level(enum.IntEnum):
    ONE = 1


@dataclass(frozen=True)
class Line:
    quantity: Decimal
    kind: Kind
    level: Level
    due: dt.date | None


@dataclass(frozen=True)
class Order:
    id: str
    colour: Colour
    placed: dt.datetime
    lines: tuple[Line, ...]
    tags: list[str]
    flag: bool
    count: int
    ratio: float
    note: str | None


def test_snapshot_is_plain_json_values_all_the_way_down() -> None:
    placed = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    order = Order(
        "po-1",
        Colour.RED,
        placed,
        (
            Line(Decimal("1.50"), Kind.A, Level.ONE, dt.date(2026, 12, 1)),
            Line(Decimal("2"), Kind.A, Level.ONE, None),
        ),
        ["x"],
        True,
        3,
        0.5,
        None,
    )
    got = snapshot(order)
    assert got == {
        "id": "po-1",
        "colour": "red",
        "placed": placed.isoformat(),
        "lines": [
            {"quantity": "1.50", "kind": "a", "level": 1, "due": "2026-12-01"},
            {"quantity": "2", "kind": "a", "level": 1, "due": None},
        ],
        "tags": ["x"],
        "flag": True,
        "count": 3,
        "ratio": 0.5,
        "note": None,
    }
    # Enums become their values, not str or int subclasses that print as their names.
    line = got["lines"][0]  # type: ignore[index]
    assert type(line["kind"]) is str and type(line["level"]) is int
