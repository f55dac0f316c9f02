"""Violations.raise_with: fields that could not be read, reported with the rest."""

from __future__ import annotations

import pytest

from libs.common.errors import FieldViolation, InvalidArgument, Violations


def _check() -> None:
    raise InvalidArgument(
        [FieldViolation("start_date", "is required"), FieldViolation("reason", "is required")]
    )


def test_a_field_that_could_not_be_read_keeps_its_own_description() -> None:
    v = Violations()
    v.add("start_date", "must be a full calendar date")
    with pytest.raises(InvalidArgument) as raised:
        v.raise_with(_check)
    assert [(f.field, f.description) for f in raised.value.violations] == [
        ("start_date", "must be a full calendar date"),
        ("reason", "is required"),
    ]


def test_nothing_kept_means_nothing_checked() -> None:
    Violations().raise_with(_check)  # the service checks the terms itself


def test_a_check_that_passes_still_raises_what_is_kept() -> None:
    v = Violations()
    v.add("end_date", "must fall in the years 1900 to 2999")
    with pytest.raises(InvalidArgument) as raised:
        v.raise_with(lambda: None)
    assert [f.field for f in raised.value.violations] == ["end_date"]
