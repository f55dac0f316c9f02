"""Money, date and timestamp conversions between domain values and protos."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from google.type import date_pb2, money_pb2
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backoffice.procurement.v1 import procurement_service_pb2, requisition_pb2
from libs.common.errors import InvalidArgument
from libs.common.money import MAX_AMOUNT
from libs.common.proto_mapping import (
    date_from_proto,
    date_to_proto,
    money_from_proto,
    money_to_proto,
    nul_fields,
    timestamp,
)

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)

INT64_MAX = 2**63 - 1

amounts = st.decimals(
    min_value=-MAX_AMOUNT,
    max_value=MAX_AMOUNT,
    places=9,
    allow_nan=False,
    allow_infinity=False,
)


def _only_violation(err: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    [violation] = err.value.violations
    return violation.field, violation.description


@DETERMINISTIC
@given(amounts)
@example(Decimal("0"))
@example(Decimal("-0.000000001"))
@example(Decimal("0.999999999"))
@example(Decimal("-1.5"))
@example(Decimal("1E+3"))
@example(Decimal("99999999999999.999999999"))
@example(Decimal("-99999999999999.999999999"))
def test_money_round_trip(amount: Decimal) -> None:
    proto = money_to_proto(amount)
    assert proto.currency_code == "GBP"
    # Money's units and nanos share the amount's sign.
    assert proto.units * proto.nanos >= 0
    assert abs(proto.nanos) < 1_000_000_000
    back = money_from_proto(proto, "amount")
    assert back == amount
    assert str(back.normalize()) == str(amount.normalize())


@DETERMINISTIC
@given(
    st.integers(min_value=0, max_value=int(MAX_AMOUNT) - 1),
    st.integers(min_value=0, max_value=999_999_999),
    st.booleans(),
)
def test_money_proto_round_trip(units: int, nanos: int, negative: bool) -> None:
    sign = -1 if negative else 1
    proto = money_pb2.Money(currency_code="GBP", units=sign * units, nanos=sign * nanos)
    assert money_to_proto(money_from_proto(proto, "amount")) == proto


@pytest.mark.parametrize("units", [int(MAX_AMOUNT) + 1, -int(MAX_AMOUNT) - 1, INT64_MAX])
def test_money_beyond_what_the_books_hold_is_refused(units: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        money_from_proto(money_pb2.Money(currency_code="GBP", units=units), "journal.lines[0].debit")
    assert [v.field for v in err.value.violations] == ["journal.lines[0].debit"]
    assert money_from_proto(money_pb2.Money(currency_code="GBP", units=int(MAX_AMOUNT)), "x") == MAX_AMOUNT


@pytest.mark.parametrize(
    ("amount", "units", "nanos"),
    [
        ("12.34", 12, 340_000_000),
        ("-12.34", -12, -340_000_000),
        ("-0.5", 0, -500_000_000),
        ("0.000000001", 0, 1),
    ],
)
def test_money_to_proto_examples(amount: str, units: int, nanos: int) -> None:
    assert money_to_proto(Decimal(amount)) == money_pb2.Money(currency_code="GBP", units=units, nanos=nanos)


@pytest.mark.parametrize(("units", "nanos"), [(1, -1), (-1, 1), (5, -500_000_000), (-5, 1)])
def test_mismatched_signs(units: int, nanos: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        money_from_proto(money_pb2.Money(currency_code="GBP", units=units, nanos=nanos), "line.price")
    field, description = _only_violation(err)
    assert field == "line.price"
    assert "same sign" in description


@pytest.mark.parametrize(("units", "nanos"), [(0, -1), (0, 1), (0, 999_999_999)])
def test_zero_units_take_either_sign(units: int, nanos: int) -> None:
    proto = money_pb2.Money(currency_code="GBP", units=units, nanos=nanos)
    assert money_from_proto(proto, "x") == Decimal(nanos) / Decimal(10**9)


@pytest.mark.parametrize("nanos", [1_000_000_000, -1_000_000_000, 2_000_000_000])
def test_nanos_of_a_unit_or_more(nanos: int) -> None:
    units = 1 if nanos > 0 else -1
    with pytest.raises(InvalidArgument) as err:
        money_from_proto(money_pb2.Money(currency_code="GBP", units=units, nanos=nanos), "price")
    assert _only_violation(err)[0] == "price.nanos"


@pytest.mark.parametrize("currency", ["EUR", "USD", "gbp", ""])
def test_other_currency(currency: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        money_from_proto(money_pb2.Money(currency_code=currency, units=1), "order.total")
    field, description = _only_violation(err)
    assert field == "order.total.currency_code"
    assert "GBP" in description


def test_currency_parameter() -> None:
    proto = money_to_proto(Decimal("3.5"), "EUR")
    assert proto.currency_code == "EUR"
    assert money_from_proto(proto, "x", currency="EUR") == Decimal("3.5")
    with pytest.raises(InvalidArgument):
        money_from_proto(proto, "x")


def test_unset_date_is_none() -> None:
    assert date_from_proto(date_pb2.Date(), "agreement.end_date") is None


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(2026, 2, 30), (2025, 2, 29), (2026, 13, 1), (2026, 0, 0), (2026, 1, 0), (0, 1, 1), (0, 0, 1)],
)
def test_impossible_or_partial_date(year: int, month: int, day: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        date_from_proto(date_pb2.Date(year=year, month=month, day=day), "agreement.start_date")
    assert _only_violation(err)[0] == "agreement.start_date"


@DETERMINISTIC
@given(st.dates(min_value=dt.date(1, 1, 1)))
def test_date_round_trip(day: dt.date) -> None:
    assert date_from_proto(date_to_proto(day), "d") == day


def test_leap_day() -> None:
    assert date_from_proto(date_pb2.Date(year=2024, month=2, day=29), "d") == dt.date(2024, 2, 29)


def test_money_refuses_precision_it_cannot_carry() -> None:
    with pytest.raises(ValueError, match="precision"):
        money_to_proto(Decimal("0.0000000019"))


@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-5))]
        ),
    )
)
@settings(derandomize=True, database=None, deadline=None, max_examples=500)
def test_timestamp_is_what_protobuf_makes_of_the_same_instant(moment: dt.datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(moment.astimezone(dt.UTC))
    assert timestamp(moment) == expected
    assert timestamp(moment.astimezone(dt.UTC).replace(tzinfo=None)) == expected  # naive is UTC


def test_nul_fields_names_every_text_field_holding_nul_nested_repeated_and_mapped() -> None:
    request = procurement_service_pb2.CreateRequisitionRequest(
        parent="organisations/E23000010",
        requisition=requisition_pb2.Requisition(
            title="ok\x00",
            lines=[
                requisition_pb2.RequisitionLine(description="fine"),
                requisition_pb2.RequisitionLine(description="bad\x00", cost_centre="\x00"),
            ],
        ),
        request_id="\x00",
    )
    assert sorted(nul_fields(request)) == [
        "request_id",
        "requisition.lines[1].cost_centre",
        "requisition.lines[1].description",
        "requisition.title",
    ]
    mapped = struct_pb2.Struct()
    mapped.update({"a\x00": "x", "b": "y\x00", "c": {"d": "z\x00"}, "e": "fine"})
    assert sorted(nul_fields(mapped)) == [
        "fields['a\\x00']",
        "fields['b'].string_value",
        "fields['c'].struct_value.fields['d'].string_value",
    ]
    assert (
        nul_fields(procurement_service_pb2.CreateRequisitionRequest(parent="organisations/E23000010")) == []
    )
