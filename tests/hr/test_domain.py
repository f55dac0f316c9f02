"""HR's rules on their own: no server, no database."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from libs.common.errors import FailedPrecondition, InvalidArgument, Violations
from libs.common.records import RecordInfo
from services.hr.domain.absence import LeaveTerms, entitlement
from services.hr.domain.establishment import Assignment, AssignmentTerms, check_fte_capacity
from services.hr.domain.identifiers import ni_number_problem, normalise_ni_number
from services.hr.domain.paygap import PayTerms, pay_gap, quartiles
from services.hr.domain.person import ETHNIC_GROUPS, Ethnicity, PersonDetails, Sex, WorkerType
from services.hr.domain.values import Period, leave_year_of, parse_decimal

INFO = RecordInfo.new("x", None, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("AB123456C", True),
        ("ab 12 34 56 d", True),
        ("CE123456A", True),
        ("AB123456E", False),  # suffix A-D only
        ("AB12345C", False),
        ("DA123456A", False),  # D never first
        ("AD123456A", False),  # D never second
        ("FA123456A", False),
        ("QA123456A", False),
        ("AO123456A", False),  # O never second
        ("OA123456A", True),  # O may be first
        ("BG123456A", False),
        ("GB123456A", False),
        ("NK123456A", False),
        ("KN123456A", False),
        ("TN123456A", False),
        ("NT123456A", False),
        ("ZZ123456A", False),
    ],
)
def test_ni_number_rules(number: str, ok: bool) -> None:
    assert (ni_number_problem(normalise_ni_number(number)) is None) is ok


def test_ethnicity_matches_the_ons_2021_reference() -> None:
    path = Path(__file__).resolve().parents[2] / "services" / "hr" / "reference" / "ethnicity_ons_2021.csv"
    with path.open(encoding="utf-8") as f:
        categories = {row["category"]: row["group"] for row in csv.DictReader(f)}
    assert len(categories) == 19
    assert {e.value for e in Ethnicity} - {"Not stated", "Prefer not to say"} == set(categories)
    assert categories == ETHNIC_GROUPS
    assert Ethnicity.ROMA.group == "White" and Ethnicity.PREFER_NOT_TO_SAY.group == "Not stated"


def test_collar_number_depends_on_worker_type() -> None:
    details = PersonDetails("A", "B", Sex.MALE, Ethnicity.ARAB, collar_number=" ab 12 ")
    assert details.checked(WorkerType.SPECIAL_CONSTABLE).collar_number == "AB12"
    with pytest.raises(InvalidArgument) as err:
        details.checked(WorkerType.PCSO)
    assert [v.field for v in err.value.violations] == ["person.collar_number"]


def _assignment(fte: str, start: dt.date, end: dt.date | None = None) -> Assignment:
    return Assignment("E23000010", f"a-{fte}-{start}", AssignmentTerms("p", "post", fte, start), end, INFO)


def test_fte_capacity_checks_every_day_the_total_can_change() -> None:
    existing = [
        _assignment("0.5", dt.date(2024, 1, 1), dt.date(2024, 6, 30)),
        _assignment("0.4", dt.date(2024, 7, 1)),
    ]
    check_fte_capacity(existing, Decimal("0.5"), Period(dt.date(2024, 2, 1), dt.date(2024, 6, 30)))
    check_fte_capacity(existing, Decimal("0.6"), Period(dt.date(2024, 7, 1)))
    with pytest.raises(FailedPrecondition) as err:
        check_fte_capacity(existing, Decimal("0.6"), Period(dt.date(2024, 5, 1)))
    assert err.value.reason == "FTE_EXCEEDED" and err.value.metadata["date"] == "2024-05-01"
    with pytest.raises(FailedPrecondition):
        check_fte_capacity(existing, Decimal("0.61"), Period(dt.date(2024, 6, 15)))


def test_leave_year_and_entitlement() -> None:
    year = leave_year_of(dt.date(2025, 3, 31))
    assert year == Period(dt.date(2024, 4, 1), dt.date(2025, 3, 31))
    assert leave_year_of(dt.date(2025, 4, 1)).start == dt.date(2025, 4, 1)
    full = [_assignment("1", dt.date(2020, 1, 1))]
    assert entitlement(Decimal(27), full, year) == Decimal(27)
    # Half the year full-time, half at 0.5: 25 x 0.75 = 18.75 -> 19 (rounded up to a half day).
    half = [
        _assignment("1", dt.date(2020, 1, 1), dt.date(2024, 9, 30)),
        _assignment("0.5", dt.date(2024, 10, 1)),
    ]
    exact = Decimal(25) * (Decimal(183) + Decimal("0.5") * 182) / 365
    assert Decimal("18.5") < exact <= Decimal(19)
    assert entitlement(Decimal(25), half, year) == Decimal(19)
    assert entitlement(None, full, year) == 0


def _pay(hourly: int, *, full: bool = True, bonus: int = 0) -> PayTerms:
    return PayTerms(
        "p", dt.date(2024, 3, 31), Decimal(hourly * 35), Decimal(0), 7, "35", Decimal(bonus), full
    )


def test_quartiles_spread_ties_and_split_unevenly_lowest_first() -> None:
    ranked = [(Decimal(10), Sex.MALE)] * 2 + [(Decimal(10), Sex.FEMALE)] * 2 + [(Decimal(20), Sex.MALE)]
    got = quartiles(ranked)
    assert [q.headcount for q in got] == [2, 1, 1, 1]
    # The four on 10 an hour fill three quartiles: their two women go one to the first and
    # (the half left over, to the lower band) one to the second.
    assert [(q.male_percent, q.female_percent) for q in got] == [
        (Decimal("50.0"), Decimal("50.0")),
        (Decimal("0.0"), Decimal("100.0")),
        (Decimal("100.0"), Decimal("0.0")),
        (Decimal("100.0"), Decimal("0.0")),
    ]


def test_quartiles_give_each_band_a_tie_groups_proportion_of_women_and_men() -> None:
    """SI 2017/172 reg 13(2): one pay rate across several bands, the same proportions in each,
    whatever order the records came in (alternating put all four women in the lower two)."""
    for ranked in (
        [(Decimal(10), Sex.FEMALE)] * 4 + [(Decimal(10), Sex.MALE)] * 12,
        [(Decimal(10), Sex.MALE)] * 12 + [(Decimal(10), Sex.FEMALE)] * 4,
    ):
        got = quartiles(ranked)
        assert [(q.headcount, q.female_percent) for q in got] == [(4, Decimal("25.0"))] * 4
    # Rates below and above the tie keep their places; the tie's 3 women and 3 men share
    # the two middle bands' six places between them in proportion.
    ranked = (
        [(Decimal(5), Sex.FEMALE)] * 2
        + [(Decimal(10), Sex.FEMALE)] * 3
        + [(Decimal(10), Sex.MALE)] * 3
        + [(Decimal(30), Sex.MALE)] * 2
    )
    got = quartiles(ranked)
    assert [q.headcount for q in got] == [3, 3, 2, 2]
    # Band 1: two on 5 and one of the tie (a woman: the half left over goes lower);
    # band 2: three of the tie; band 3: the tie's last two; band 4: the two on 30.
    assert [q.female_percent for q in got] == [
        Decimal("100.0"),
        Decimal("33.3"),
        Decimal("50.0"),
        Decimal("0.0"),
    ]


def test_pay_gap_without_women_or_bonuses_is_undefined_not_zero() -> None:
    report = pay_gap([(Sex.MALE, _pay(10)), (Sex.MALE, _pay(20)), (Sex.NOT_STATED, _pay(5))])
    assert report.relevant_employees == 2
    assert report.mean_hourly_gap is None and report.mean_bonus_gap is None
    assert report.male_bonus_percent == Decimal("0.0") and report.female_bonus_percent is None
    report = pay_gap([(Sex.MALE, _pay(20)), (Sex.FEMALE, _pay(15))])
    assert report.mean_hourly_gap == Decimal("25.0") and report.median_hourly_gap == Decimal("25.0")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("25", True),
        ("25.5", True),
        ("0", True),
        ("25." + "0" * 40, True),  # trailing zeros are not places
        ("25.25", False),
        ("61", False),
        ("-0.5", False),
        # Beyond the decimal context's 28 digits, where quantize raised InvalidOperation.
        ("123456789012345678901234567890.123", False),
        ("1" + "0" * 40, False),
        ("1E+30", False),
        ("-1E+30", False),
        ("1E-40", False),
        ("25.0000000000000000000000000000001", False),
    ],
)
def test_a_decimal_is_judged_by_its_digits_however_many(text: str, ok: bool) -> None:
    v = Violations()
    value = parse_decimal(text, "days", v, places=1, minimum=Decimal(0), maximum=Decimal(60))
    assert (value is not None, [i.field for i in v.items]) == ((True, []) if ok else (False, ["days"]))


def test_leave_days_beyond_a_year_are_a_bad_field_not_an_error() -> None:
    terms = LeaveTerms("p", dt.date(2024, 5, 1), dt.date(2024, 5, 2), "1E+30")
    with pytest.raises(InvalidArgument) as err:
        terms.checked()
    assert [v.field for v in err.value.violations] == ["leave_request.days"]
