"""The audit chain's hashing: canonical JSON and record_hash (no database)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.audit import GENESIS, canonical_json, record_hash

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)

FIELDS: dict[str, Any] = {
    "organisation_code": "E23000013",
    "chain_seq": 7,
    "occurred_at": dt.datetime(2026, 3, 31, 12, 0, 0, 123456, tzinfo=dt.UTC),
    "principal": "E23000013/alice",
    "acting_organisation": None,
    "method": "/backoffice.procurement.v1.ProcurementService/CreateSupplier",
    "resource": "organisations/E23000013/suppliers/acme-ltd",
    "request_id": "req-1",
    "before": None,
    "after": canonical_json({"display_name": "Acme Ltd", "version": 1}),
}

CHANGED: dict[str, Any] = {
    "organisation_code": "E23000014",
    "chain_seq": 8,
    "occurred_at": FIELDS["occurred_at"] + dt.timedelta(microseconds=1),
    "principal": "E23000013/bob",
    "acting_organisation": "X00000001",
    "method": "/backoffice.procurement.v1.ProcurementService/UpdateSupplier",
    "resource": "organisations/E23000013/suppliers/acme-ltd2",
    "request_id": None,
    "before": canonical_json({}),
    "after": canonical_json({"display_name": "Acme Ltd", "version": 2}),
}


def test_hash_is_stable_sha256_hex() -> None:
    digest = record_hash(GENESIS, FIELDS)
    assert digest == record_hash(GENESIS, dict(FIELDS))
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_changed_covers_every_hashed_field() -> None:
    assert set(CHANGED) == set(FIELDS)
    assert all(CHANGED[k] != FIELDS[k] for k in FIELDS)


@pytest.mark.parametrize("key", sorted(FIELDS))
def test_hash_changes_when_a_field_changes(key: str) -> None:
    assert record_hash(GENESIS, {**FIELDS, key: CHANGED[key]}) != record_hash(GENESIS, FIELDS)


def test_hash_changes_with_previous_hash() -> None:
    assert record_hash("1" * 64, FIELDS) != record_hash(GENESIS, FIELDS)


def test_extra_fields_are_ignored() -> None:
    # verify_chains hashes whole database rows, which also hold id, prev_hash and hash.
    row = {**FIELDS, "id": 99, "prev_hash": GENESIS, "hash": "x"}
    assert record_hash(GENESIS, row) == record_hash(GENESIS, FIELDS)


def test_naive_time_is_taken_as_utc() -> None:
    naive = FIELDS["occurred_at"].replace(tzinfo=None)
    assert record_hash(GENESIS, {**FIELDS, "occurred_at": naive}) == record_hash(GENESIS, FIELDS)


def test_same_instant_in_another_zone_hashes_the_same() -> None:
    bst = dt.timezone(dt.timedelta(hours=1))
    moment = FIELDS["occurred_at"].astimezone(bst)
    assert record_hash(GENESIS, {**FIELDS, "occurred_at": moment}) == record_hash(GENESIS, FIELDS)


@DETERMINISTIC
@given(st.sampled_from(sorted(FIELDS)), st.text(min_size=1))
def test_any_text_change_changes_the_hash(key: str, suffix: str) -> None:
    if key in ("chain_seq", "occurred_at"):
        return
    value = FIELDS[key]
    changed = (value or "") + suffix
    assert record_hash(GENESIS, {**FIELDS, key: changed}) != record_hash(GENESIS, FIELDS)


def test_canonical_json_none() -> None:
    assert canonical_json(None) is None


def test_canonical_json_key_order_independent() -> None:
    a = canonical_json({"b": 1, "a": {"y": [1, 2], "x": None}, "c": "£5"})
    b = canonical_json({"c": "£5", "a": {"x": None, "y": [1, 2]}, "b": 1})
    assert a == b == '{"a":{"x":null,"y":[1,2]},"b":1,"c":"£5"}'


def test_canonical_json_is_sensitive_to_values() -> None:
    assert canonical_json({"a": 1}) != canonical_json({"a": 2})
    assert canonical_json({"a": [1, 2]}) != canonical_json({"a": [2, 1]})


def test_canonical_json_stringifies_other_values() -> None:
    assert canonical_json({"d": dt.date(2026, 3, 31)}) == '{"d":"2026-03-31"}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


@DETERMINISTIC
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6))
def test_canonical_json_key_order_property(value: dict[str, Any]) -> None:
    assert canonical_json(_reordered(value)) == canonical_json(value)
