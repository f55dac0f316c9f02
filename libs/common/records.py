"""Bookkeeping every resource carries: who made and changed it, when, and its version
(from which its etag comes, AIP-154)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import functools
from dataclasses import dataclass, replace
from typing import cast

from libs.common.errors import EtagMismatch


@dataclass(frozen=True)
class RecordInfo:
    create_time: dt.datetime
    update_time: dt.datetime
    create_principal: str
    update_principal: str
    update_acting_organisation: str | None
    version: int

    @classmethod
    def new(cls, principal: str, acting: str | None, now: dt.datetime) -> RecordInfo:
        return cls(now, now, principal, principal, acting, 1)

    def touched(self, principal: str, acting: str | None, now: dt.datetime) -> RecordInfo:
        return replace(
            self,
            update_time=now,
            update_principal=principal,
            update_acting_organisation=acting,
            version=self.version + 1,
        )

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


def check_etag(resource_name: str, given: str, current: RecordInfo) -> None:
    """An empty etag skips the check; any other must match the current version."""
    if given and given != current.etag:
        raise EtagMismatch(resource_name, current.etag)


_SCALARS = (str, int, float, bool, type(None))
_SCALAR, _SEQUENCE, _DATACLASS, _LEAF = range(4)
# How each type's values are made plain, found once per type: the audit log snapshots a
# changed resource twice per change, field by field.
_KINDS: dict[type, int] = dict.fromkeys(_SCALARS, _SCALAR)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _kind(cls: type) -> int:
    if issubclass(cls, tuple | list):
        kind = _SEQUENCE
    elif dataclasses.is_dataclass(cls):
        kind = _DATACLASS
    else:
        kind = _LEAF
    _KINDS[cls] = kind
    return kind


def _plain(v: object) -> object:
    cls: type = type(v)
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _kind(cls)
    if kind == _SCALAR:
        return v
    if kind == _SEQUENCE:
        return [_plain(x) for x in cast("tuple[object, ...] | list[object]", v)]
    if kind == _DATACLASS:
        return {name: _plain(getattr(v, name)) for name in _field_names(cls)}
    return _leaf(v)


def _leaf(v: object) -> object:
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    return v


def snapshot(value: object) -> dict[str, object]:
    """A JSON-safe picture of a domain object for the audit log's before and after."""
    result = _plain(value)
    assert isinstance(result, dict)
    return result
