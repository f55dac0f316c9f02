"""The AIP-160 filter subset: comparisons joined by AND."""

from __future__ import annotations

import datetime as dt

import pytest

from libs.common.errors import InvalidArgument
from libs.common.filtering import Comparison, FieldType, parse_filter

FIELDS = {
    "display_name": FieldType.STRING,
    "postcode": FieldType.STRING,
    "sme": FieldType.BOOL,
    "version": FieldType.INT,
    "start_date": FieldType.DATE,
    "state": FieldType.ENUM,
}


def _violation(text: str) -> str:
    with pytest.raises(InvalidArgument) as err:
        parse_filter(text, FIELDS)
    [violation] = err.value.violations
    assert violation.field == "filter"
    return violation.description


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_filter(text: str) -> None:
    assert parse_filter(text, FIELDS) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('display_name = "Acme Ltd"', [Comparison("display_name", "=", "Acme Ltd")]),
        ('display_name="Acme Ltd"', [Comparison("display_name", "=", "Acme Ltd")]),
        ('postcode != "LS1 1AA"', [Comparison("postcode", "!=", "LS1 1AA")]),
        ('display_name:"acme"', [Comparison("display_name", ":", "acme")]),
        ("display_name = Acme", [Comparison("display_name", "=", "Acme")]),
        ('display_name = ""', [Comparison("display_name", "=", "")]),
        ("sme = true", [Comparison("sme", "=", True)]),
        ("sme != false", [Comparison("sme", "!=", False)]),
        ('sme = "true"', [Comparison("sme", "=", True)]),
        ("version < 3", [Comparison("version", "<", 3)]),
        ("version <= 3", [Comparison("version", "<=", 3)]),
        ("version > -3", [Comparison("version", ">", -3)]),
        ("version >= 0", [Comparison("version", ">=", 0)]),
        ("start_date >= 2024-02-29", [Comparison("start_date", ">=", dt.date(2024, 2, 29))]),
        ('start_date < "2026-04-01"', [Comparison("start_date", "<", dt.date(2026, 4, 1))]),
        ("state = ACTIVE", [Comparison("state", "=", "ACTIVE")]),
        ("state != ENDED", [Comparison("state", "!=", "ENDED")]),
    ],
)
def test_single_comparisons(text: str, expected: list[Comparison]) -> None:
    assert parse_filter(text, FIELDS) == expected


def test_and_chain() -> None:
    text = 'display_name = "Acme Ltd" AND sme = true AND postcode != "LS1 1AA" AND version >= 2'
    assert parse_filter(text, FIELDS) == [
        Comparison("display_name", "=", "Acme Ltd"),
        Comparison("sme", "=", True),
        Comparison("postcode", "!=", "LS1 1AA"),
        Comparison("version", ">=", 2),
    ]


def test_extra_whitespace_is_ignored() -> None:
    assert parse_filter("  sme   =  true    AND   version<2  ", FIELDS) == [
        Comparison("sme", "=", True),
        Comparison("version", "<", 2),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'display_name = "Say \"hello\""', 'Say "hello"'),
        (r'display_name = "back\\slash"', "back\\slash"),
        (r'display_name = "O\'Neill & Sons"', "O'Neill & Sons"),
        ('display_name = "AND OR NOT"', "AND OR NOT"),
        ('display_name = "a = b"', "a = b"),
    ],
)
def test_quoted_strings(text: str, value: str) -> None:
    assert parse_filter(text, FIELDS) == [Comparison("display_name", "=", value)]


def test_non_ascii_quoted_string_is_kept() -> None:
    assert parse_filter('display_name = "Café"', FIELDS) == [Comparison("display_name", "=", "Café")]


@pytest.mark.parametrize("escape", [r"\x", r"\N", r"\u12"])
def test_malformed_escape_is_invalid_argument(escape: str) -> None:
    _violation(f'display_name = "a{escape}"')


def test_unknown_field_lists_known_fields() -> None:
    description = _violation('colour = "red"')
    assert "'colour'" in description
    assert "display_name, postcode, sme, start_date, state, version" in description


def test_or_is_rejected() -> None:
    description = _violation("sme = true OR version = 2")
    assert "only AND" in description
    assert "'OR'" in description


def test_juxtaposed_comparisons_are_rejected() -> None:
    assert "only AND" in _violation("sme = true version = 2")


@pytest.mark.parametrize("text", ["sme = true AND", "sme = true AND   ", "sme = true AND version"])
def test_trailing_and(text: str) -> None:
    assert "expected a comparison" in _violation(text)


@pytest.mark.parametrize("text", ["sme =", "sme", "version >= "])
def test_missing_value(text: str) -> None:
    assert "expected a comparison" in _violation(text)


def test_operator_in_place_of_value() -> None:
    assert "expected a value after sme =" in _violation("sme = = true")


def test_missing_operator() -> None:
    assert "expected one of" in _violation("sme true AND")


@pytest.mark.parametrize("text", ["AND sme = true", "NOT sme = true", '"sme" = true', "= true x"])
def test_not_a_field_name(text: str) -> None:
    assert "expected a field name" in _violation(text)


@pytest.mark.parametrize("field", ["sme", "version", "start_date", "state"])
def test_has_operator_only_on_text(field: str) -> None:
    description = _violation(f"{field}:x")
    assert description == f"{field} is not text: use = instead of :"


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize("field", ["sme", "state"])
def test_ordering_on_bool_or_enum(field: str, op: str) -> None:
    assert _violation(f"{field} {op} true") == f"{field} cannot be ordered: use = or !="


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sme = TRUE", "sme takes a bool, not TRUE"),
        ("sme = 1", "sme takes a bool, not 1"),
        ("version = two", "version takes a int, not two"),
        ("version = 1.5", "version takes a int, not 1.5"),
        ("start_date = 2026-02-30", "start_date takes a date, not 2026-02-30"),
        ('start_date = "yesterday"', 'start_date takes a date, not "yesterday"'),
    ],
)
def test_wrong_value_type(text: str, expected: str) -> None:
    assert _violation(text) == expected


@pytest.mark.parametrize("text", ['display_name = "unterminated', "sme = true & version = 2", "sme = (true)"])
def test_unreadable_text_gives_position(text: str) -> None:
    assert "cannot read the filter at character" in _violation(text)


def test_a_whole_number_beyond_the_columns_range_is_invalid_not_an_overflow() -> None:
    assert "at most 10 digits" in _violation("version = 99999999999999999999")
    assert "at most 10 digits" in _violation("version = 2147483648")
    assert parse_filter("version = -2147483648", FIELDS)[0].value == -(2**31)
