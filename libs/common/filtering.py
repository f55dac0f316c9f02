"""A small AIP-160 filter language: comparisons joined by AND.

    display_name = "Acme Ltd" AND sme = true AND postcode != "LS1 1AA"
    display_name:"acme"          (has: a case-insensitive substring match)

Each List declares which fields it filters on and their types; anything else is
INVALID_ARGUMENT on `filter`, with the position of the problem.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from libs.common.errors import InvalidArgument


class FieldType(enum.Enum):
    STRING = "string"
    BOOL = "bool"
    INT = "int"
    DATE = "date"
    ENUM = "enum"


OPERATORS = ("<=", ">=", "!=", "=", "<", ">", ":")
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|=|<|>|:)|(?P<word>[A-Za-z0-9_.\-+]+))'
)


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: str | bool | int | dt.date


def _error(description: str) -> InvalidArgument:
    return InvalidArgument.single("filter", description)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _error(f"cannot read the filter at character {pos + 1}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


_ESCAPE = re.compile(r"\\(.)")


def _unquote(raw: str) -> str:
    """The text of a quoted value; the escapes are \\", \\' and \\\\."""

    def unescape(match: re.Match[str]) -> str:
        if match.group(1) not in ('"', "'", "\\"):
            raise _error(f"unknown escape \\{match.group(1)} in {raw}: only \\\", \\' and \\\\ are allowed")
        return match.group(1)

    return _ESCAPE.sub(unescape, raw[1:-1])


def _convert(field_name: str, field_type: FieldType, kind: str, raw: str) -> str | bool | int | dt.date:
    text = _unquote(raw) if kind == "string" else raw
    try:
        if field_type is FieldType.BOOL:
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if field_type is FieldType.INT:
            number = int(text)
            if not -(2**31) <= number < 2**31:  # the columns' range on PostgreSQL
                raise _error(f"{field_name} takes a whole number of at most 10 digits, not {raw}")
            return number
        if field_type is FieldType.DATE:
            return dt.date.fromisoformat(text)
    except ValueError:
        raise _error(f"{field_name} takes a {field_type.value}, not {raw}") from None
    return text


def parse_filter(text: str, fields: Mapping[str, FieldType]) -> list[Comparison]:
    """Parse `text` into comparisons over the declared `fields` (all joined by AND)."""
    if not text.strip():
        return []
    tokens = _tokens(text)
    comparisons: list[Comparison] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise _error('expected a comparison such as field = "value"')
        (k1, name), (k2, op), (k3, raw) = tokens[i], tokens[i + 1], tokens[i + 2]
        if k1 != "word" or name in ("AND", "OR", "NOT"):
            raise _error(f"expected a field name, found {name!r}")
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise _error(f"cannot filter on {name!r}; the fields are: {known}")
        if k2 != "op":
            raise _error(f"expected one of {' '.join(OPERATORS)} after {name}")
        if k3 not in ("word", "string"):
            raise _error(f"expected a value after {name} {op}")
        field_type = fields[name]
        if op == ":" and field_type is not FieldType.STRING:
            raise _error(f"{name} is not text: use = instead of :")
        if op in ("<", "<=", ">", ">=") and field_type in (FieldType.BOOL, FieldType.ENUM):
            raise _error(f"{name} cannot be ordered: use = or !=")
        comparisons.append(Comparison(name, op, _convert(name, field_type, k3, raw)))
        i += 3
        if i == len(tokens):
            return comparisons
        if tokens[i] != ("word", "AND"):
            raise _error(f"only AND joins comparisons here, found {tokens[i][1]!r}")
        i += 1
