"""Conversions shared by every servicer: dates, timestamps, audit metadata, money, masks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from google.protobuf import field_mask_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.type import date_pb2, decimal_pb2, money_pb2

from backoffice.common.v1 import metadata_pb2
from libs.common.clock import YEARS_RULE, in_business_years
from libs.common.errors import FieldViolation, InvalidArgument, Violations
from libs.common.money import MAX_AMOUNT
from libs.common.records import RecordInfo

NANOS = Decimal(1_000_000_000)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    # Integer arithmetic on the timedelta: what FromDatetime does, at a fraction of its cost
    # (it goes through a time tuple), which counts on a page of a hundred records.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    since = moment - _EPOCH
    seconds = since.days * 86_400 + since.seconds
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=since.microseconds * 1000)


def date_to_proto(day: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def date_from_proto(value: date_pb2.Date, field_path: str) -> dt.date | None:
    """None for an unset date; INVALID_ARGUMENT for a partial or impossible one."""
    if value.year == value.month == value.day == 0:
        return None
    try:
        return dt.date(value.year, value.month, value.day)
    except ValueError:
        raise InvalidArgument.single(
            field_path, "must be a full calendar date (year, month and day)"
        ) from None


def business_date_from_proto(value: date_pb2.Date, field_path: str) -> dt.date | None:
    """`date_from_proto`, and a day in the years the services compute within
    (`libs.common.clock.in_business_years`): HR's and finance's dates."""
    day = date_from_proto(value, field_path)
    if day is not None and not in_business_years(day):
        raise InvalidArgument.single(field_path, YEARS_RULE)
    return day


def date_or_violation(value: date_pb2.Date, field_path: str, violations: Violations) -> dt.date | None:
    """The date, or None with its problem added to the request's other bad fields."""
    return violations.parsed(date_from_proto, value, field_path)


def audit_metadata(info: RecordInfo) -> metadata_pb2.AuditMetadata:
    return metadata_pb2.AuditMetadata(
        create_time=timestamp(info.create_time),
        update_time=timestamp(info.update_time),
        create_principal=info.create_principal,
        update_principal=info.update_principal,
        update_acting_organisation=info.update_acting_organisation or "",
    )


def money_to_proto(amount: Decimal, currency: str = "GBP") -> money_pb2.Money:
    if amount != amount.quantize(Decimal("1e-9")):
        raise ValueError(f"{amount} has more precision than Money carries (nine decimal places)")
    units = int(amount)  # truncates toward zero, as Money's units and nanos share a sign
    nanos = int((amount - units) * NANOS)
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def money_from_proto(value: money_pb2.Money, field_path: str, *, currency: str = "GBP") -> Decimal:
    if value.currency_code != currency:
        raise InvalidArgument.single(f"{field_path}.currency_code", f"must be {currency}")
    if (value.units > 0 and value.nanos < 0) or (value.units < 0 and value.nanos > 0):
        raise InvalidArgument.single(field_path, "units and nanos must have the same sign")
    if abs(value.nanos) >= 1_000_000_000:
        raise InvalidArgument.single(f"{field_path}.nanos", "must be below one unit")
    amount = Decimal(value.units) + Decimal(value.nanos) / NANOS
    if abs(amount) > MAX_AMOUNT:
        # Else the pence overflow the database's 64-bit integers: INTERNAL, not a reason.
        raise InvalidArgument.single(field_path, "must be at most £100 trillion either way")
    return amount


def decimal_to_proto(value: Decimal) -> decimal_pb2.Decimal:
    return decimal_pb2.Decimal(value=f"{value.normalize():f}")


def decimal_from_proto(value: decimal_pb2.Decimal, field_path: str) -> Decimal | None:
    """None when unset; INVALID_ARGUMENT for anything but a plain decimal number."""
    text = value.value.strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise InvalidArgument.single(field_path, f"{text!r} is not a decimal number") from None
    if not number.is_finite():
        raise InvalidArgument.single(field_path, "must be a finite number")
    return number


def mask_paths(
    mask: field_mask_pb2.FieldMask,
    allowed: frozenset[str],
    field_path: str = "update_mask",
    *,
    by_name_only: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """The paths of an update mask; `*` means every allowed path but those changed
    `by_name_only`; others are refused."""
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgument.single(
            field_path, f"name the fields to change: {', '.join(sorted(allowed))}, or *"
        )
    if paths == ["*"]:
        return allowed - by_name_only
    bad = [p for p in paths if p not in allowed]
    if bad:
        raise InvalidArgument.single(
            field_path,
            f"cannot change {', '.join(bad)}; the fields that change are {', '.join(sorted(allowed))}",
        )
    return frozenset(paths)


def nul_fields(message: Message, prefix: str = "") -> list[str]:
    """The paths of the text fields of `message` (nested, repeated and map fields too) that
    hold U+0000: protobuf allows it, PostgreSQL's text cannot store it."""
    found: list[str] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        entry = field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None
        if entry is not None and entry.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    found.append(f"{path}[{key!r}]")
                found.extend(_nul_in(item, f"{path}[{key!r}]"))
        elif field.is_repeated:
            for i, item in enumerate(value):
                found.extend(_nul_in(item, f"{path}[{i}]"))
        else:
            found.extend(_nul_in(value, path))
    return found


def _nul_in(value: object, path: str) -> list[str]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, Message):
        return nul_fields(value, f"{path}.")
    return []


def check_text_storable(request: Message) -> None:
    """INVALID_ARGUMENT naming every text field that holds U+0000, so that a request
    carrying one is refused alike on every backend (PostgreSQL cannot store it, SQLite
    would), and nothing reaches the database."""
    if b"\x00" not in request.SerializeToString():
        return  # the common case, at the cost of one serialisation in C
    if found := nul_fields(request):
        raise InvalidArgument(
            [FieldViolation(path, "must not contain the NUL character (U+0000)") for path in found]
        )
