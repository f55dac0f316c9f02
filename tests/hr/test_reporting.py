"""Workforce statistics and the gender pay gap against hand-computed fixtures; training and
vetting expiry."""

from __future__ import annotations

import grpc
from google.type import date_pb2, money_pb2

from backoffice.hr.v1 import compliance_pb2, establishment_pb2, person_pb2, reporting_pb2
from backoffice.hr.v1 import hr_service_pb2 as pb
from libs.common.proto_mapping import date_to_proto
from tests.hr.helpers import D, add_person, assign, gbp, grade, officer, post, staff, unit
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Caller, Suite, failure

WEST = f"organisations/{WEST_YORKSHIRE}"
FTE, HEADS = reporting_pb2.MEASURE_FTE, reporting_pb2.MEASURE_HEADCOUNT
OFFICER, STAFF, SPECIAL = (
    person_pb2.WORKER_TYPE_POLICE_OFFICER,
    person_pb2.WORKER_TYPE_POLICE_STAFF,
    person_pb2.WORKER_TYPE_SPECIAL_CONSTABLE,
)


def _rows(figures: object) -> list[tuple[int, str, int, int, str]]:
    return [(f.worker_type, f.category, f.measure, f.headcount, f.fte) for f in figures]  # type: ignore[attr-defined]


def test_workforce_statistics_and_joiners_and_leavers(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")
    u = unit(hr, WEST_YORKSHIRE).name
    pc = post(
        hr,
        WEST_YORKSHIRE,
        u,
        grade(hr, WEST_YORKSHIRE, "PC", establishment_pb2.RANK_CONSTABLE).name,
        budget="5",
    )
    ps = post(hr, WEST_YORKSHIRE, u, grade(hr, WEST_YORKSHIRE, "PS", establishment_pb2.RANK_SERGEANT).name)
    clerk = post(hr, WEST_YORKSHIRE, u, grade(hr, WEST_YORKSHIRE, "S6").name, worker_type=STAFF, budget="3")
    a = add_person(hr, WEST_YORKSHIRE, officer(collar="1"))  # male, White
    b = add_person(
        hr,
        WEST_YORKSHIRE,
        officer(collar="2", sex=person_pb2.SEX_FEMALE, ethnicity=person_pb2.ETHNICITY_CARIBBEAN),
    )
    leaver = add_person(hr, WEST_YORKSHIRE, officer(collar="3"))
    s1 = add_person(hr, WEST_YORKSHIRE, staff())  # female, Indian
    s2 = add_person(
        hr, WEST_YORKSHIRE, staff(join_date=date_to_proto(D(2024, 2, 1)), sex=person_pb2.SEX_NOT_STATED)
    )
    add_person(
        hr,
        WEST_YORKSHIRE,
        officer(collar="S9", worker_type=SPECIAL, ethnicity=person_pb2.ETHNICITY_NOT_STATED),
    )
    assign(hr, WEST_YORKSHIRE, a.name, pc.name)
    assign(hr, WEST_YORKSHIRE, b.name, ps.name, fte="0.5")
    assign(hr, WEST_YORKSHIRE, leaver.name, pc.name)
    assign(hr, WEST_YORKSHIRE, s1.name, clerk.name, fte="0.8")
    assign(hr, WEST_YORKSHIRE, s2.name, clerk.name, fte="0.25", start=D(2024, 2, 1))
    hr.hr.RecordLeaver(
        pb.RecordLeaverRequest(
            name=leaver.name,
            leaving_date=date_to_proto(D(2024, 1, 31)),
            leaving_reason=person_pb2.LEAVING_REASON_RESIGNATION,
        )
    )

    stats = planner.hr.GetWorkforceStatistics(
        pb.GetWorkforceStatisticsRequest(parent=WEST, as_at_date=date_to_proto(D(2024, 3, 31)))
    ).strength
    assert _rows(stats.by_worker_type) == [
        (OFFICER, "", FTE, 2, "1.5"),
        (STAFF, "", FTE, 2, "1.05"),
        (SPECIAL, "", HEADS, 1, "0"),
    ]
    assert _rows(stats.by_rank) == [
        (OFFICER, "Constable", FTE, 1, "1"),
        (OFFICER, "Sergeant", FTE, 1, "0.5"),
        (SPECIAL, "Not recorded", HEADS, 1, "0"),
    ]
    assert _rows(stats.by_sex) == [
        (OFFICER, "Female", FTE, 1, "0.5"),
        (OFFICER, "Male", FTE, 1, "1"),
        (STAFF, "Female", FTE, 1, "0.8"),
        (STAFF, "Not stated", FTE, 1, "0.25"),
        (SPECIAL, "Male", HEADS, 1, "0"),
    ]
    assert _rows(stats.by_ethnic_group) == [
        (OFFICER, "Black, Black British, Black Welsh, Caribbean or African", FTE, 1, "0.5"),
        (OFFICER, "White", FTE, 1, "1"),
        (STAFF, "Asian, Asian British or Asian Welsh", FTE, 2, "1.05"),
        (SPECIAL, "Not stated", HEADS, 1, "0"),
    ]
    # A day earlier in history: the leaver is still counted, the joiner not yet.
    before = planner.hr.GetWorkforceStatistics(
        pb.GetWorkforceStatisticsRequest(parent=WEST, as_at_date=date_to_proto(D(2024, 1, 31)))
    ).strength
    assert _rows(before.by_worker_type)[:2] == [(OFFICER, "", FTE, 3, "2.5"), (STAFF, "", FTE, 1, "0.8")]

    moves = planner.hr.GetJoinersAndLeavers(
        pb.GetJoinersAndLeaversRequest(
            parent=WEST, start_date=date_to_proto(D(2023, 4, 1)), end_date=date_to_proto(D(2024, 3, 31))
        )
    )
    assert _rows(moves.joiners.by_worker_type) == [(STAFF, "", FTE, 1, "0.25")]
    assert _rows(moves.leavers.by_rank) == [(OFFICER, "Constable", FTE, 1, "1")]
    f = failure(
        planner.hr.GetJoinersAndLeavers,
        pb.GetJoinersAndLeaversRequest(
            parent=WEST, start_date=date_to_proto(D(2024, 4, 1)), end_date=date_to_proto(D(2024, 3, 31))
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and set(f.violations) == {"end_date"}
    f = failure(planner.hr.GetWorkforceStatistics, pb.GetWorkforceStatisticsRequest(parent=WEST))
    assert set(f.violations) == {"as_at_date"}
    south = suite.caller(SOUTH_YORKSHIRE, "hr.workforce_planner")
    f = failure(
        south.hr.GetWorkforceStatistics,
        pb.GetWorkforceStatisticsRequest(parent=WEST, as_at_date=date_to_proto(D(2024, 3, 31))),
    )
    assert f.code is grpc.StatusCode.NOT_FOUND


def _pay(
    c: Caller, person: str, ordinary: int, bonus: int = 0, full_pay: bool = True
) -> reporting_pb2.PayRecord:
    return c.hr.CreatePayRecord(
        pb.CreatePayRecordRequest(
            parent=WEST,
            pay_record=reporting_pb2.PayRecord(
                person=person,
                snapshot_date=date_to_proto(D(2024, 3, 31)),
                ordinary_pay=gbp(ordinary),
                pay_period_days=7,
                weekly_hours="35",
                annual_bonus_pay=gbp(bonus),
                full_pay=full_pay,
            ),
        )
    )


def test_gender_pay_gap_six_measures(suite: Suite) -> None:
    """Hand-computed: a week's pay over 35 hours, so hourly pay is pay / 35.

    Full-pay men earn 30, 20, 10 an hour (mean 20, median 20); women 25, 15, 10 (mean
    16.67, median 15): mean gap 3.33/20 = 16.7%, median gap 5/20 = 25.0%. Bonuses: men
    1000 and 500 (mean and median 750), women 300 and 200 (250): both gaps 66.7%. Two of
    three men and two of four women had a bonus: 66.7% and 50.0%. Quartiles of six:
    2, 2, 1, 1 people: [W 10, M 10], [W 15, M 20], [W 25], [M 30]. The woman on sick pay
    counts for bonuses only; the special constable not at all."""
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")

    def man(n: int) -> str:
        return add_person(hr, WEST_YORKSHIRE, officer(collar=f"M{n}")).name

    def woman(n: int) -> str:
        return add_person(hr, WEST_YORKSHIRE, staff(family=f"W{n}")).name

    _pay(hr, man(1), 1050, bonus=1000)
    _pay(hr, man(2), 700, bonus=500)
    _pay(hr, man(3), 350)
    _pay(hr, woman(1), 875, bonus=300)
    _pay(hr, woman(2), 525)
    _pay(hr, woman(3), 350)
    _pay(hr, woman(4), 700, bonus=200, full_pay=False)
    special = add_person(hr, WEST_YORKSHIRE, officer(collar="S1", worker_type=SPECIAL)).name
    _pay(hr, special, 5000, bonus=5000)

    report = planner.hr.GetGenderPayGap(
        pb.GetGenderPayGapRequest(parent=WEST, snapshot_date=date_to_proto(D(2024, 3, 31)))
    )
    assert (report.relevant_employees, report.full_pay_relevant_employees) == (7, 6)
    assert report.mean_hourly_pay_gap_percent == "16.7"
    assert report.median_hourly_pay_gap_percent == "25.0"
    assert report.mean_bonus_gap_percent == "66.7"
    assert report.median_bonus_gap_percent == "66.7"
    assert (report.male_bonus_percent, report.female_bonus_percent) == ("66.7", "50.0")
    assert [(q.quartile, q.headcount, q.male_percent, q.female_percent) for q in report.quartiles] == [
        (1, 2, "50.0", "50.0"),
        (2, 2, "50.0", "50.0"),
        (3, 1, "0.0", "100.0"),
        (4, 1, "100.0", "0.0"),
    ]
    f = failure(_pay, hr, special, 100)
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.reason == "PAY_RECORD_EXISTS"
    f = failure(
        hr.hr.CreatePayRecord, pb.CreatePayRecordRequest(parent=WEST, pay_record=reporting_pb2.PayRecord())
    )
    assert set(f.violations) == {
        "pay_record.person",
        "pay_record.snapshot_date",
        "pay_record.ordinary_pay",
        "pay_record.pay_period_days",
        "pay_record.weekly_hours",
    }
    # What cannot be read is named alongside the rest, not alone.
    f = failure(
        hr.hr.CreatePayRecord,
        pb.CreatePayRecordRequest(
            parent=WEST,
            pay_record=reporting_pb2.PayRecord(
                person="organisations/E23000012/people/x",
                snapshot_date=date_pb2.Date(year=2026, month=3, day=32),
                ordinary_pay=money_pb2.Money(currency_code="EUR", units=100),
                annual_bonus_pay=money_pb2.Money(currency_code="GBP", units=1, nanos=-5),
                pay_period_days=30,
                weekly_hours="37",
            ),
        ),
    )
    assert set(f.violations) == {
        "pay_record.person",
        "pay_record.snapshot_date",
        "pay_record.ordinary_pay.currency_code",
        "pay_record.annual_bonus_pay",
    }
    f = failure(
        planner.hr.CreatePayRecord,
        pb.CreatePayRecordRequest(parent=WEST, pay_record=reporting_pb2.PayRecord()),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED


def test_only_people_employed_on_the_snapshot_date_are_relevant_employees(suite: Suite) -> None:
    """A man who has left (or leaves, recorded later, before the date) and a woman who joins
    after it are no relevant employees: the gap is the other two's, (20 - 15) / 20."""
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")
    stays = add_person(hr, WEST_YORKSHIRE, officer(collar="M1")).name
    leaves = add_person(hr, WEST_YORKSHIRE, officer(collar="M2")).name
    woman = add_person(hr, WEST_YORKSHIRE, staff(family="W1")).name
    joiner = add_person(hr, WEST_YORKSHIRE, staff(family="W2", join_date=date_to_proto(D(2024, 6, 1)))).name
    _pay(hr, stays, 700)
    _pay(hr, woman, 525)
    _pay(hr, leaves, 1050)  # kept before the leaver was recorded
    hr.hr.RecordLeaver(
        pb.RecordLeaverRequest(
            name=leaves,
            leaving_date=date_to_proto(D(2024, 1, 31)),
            leaving_reason=person_pb2.LEAVING_REASON_RETIREMENT,
        )
    )
    f = failure(_pay, hr, joiner, 175)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "NOT_IN_SERVICE"
    f = failure(_pay, hr, leaves, 1050)  # a leaver by the date has none to add
    assert f.reason == "NOT_IN_SERVICE"
    report = planner.hr.GetGenderPayGap(
        pb.GetGenderPayGapRequest(parent=WEST, snapshot_date=date_to_proto(D(2024, 3, 31)))
    )
    assert report.relevant_employees == 2
    assert (report.mean_hourly_pay_gap_percent, report.median_hourly_pay_gap_percent) == ("25.0", "25.0")
    # The measures are of 31 March: another day is refused, for the records and the report.
    f = failure(
        planner.hr.GetGenderPayGap,
        pb.GetGenderPayGapRequest(parent=WEST, snapshot_date=date_to_proto(D(2024, 4, 5))),
    )
    assert set(f.violations) == {"snapshot_date"} and "31 March" in f.violations["snapshot_date"]
    f = failure(
        hr.hr.CreatePayRecord,
        pb.CreatePayRecordRequest(
            parent=WEST,
            pay_record=reporting_pb2.PayRecord(
                person=stays,
                snapshot_date=date_to_proto(D(2024, 4, 5)),
                ordinary_pay=gbp(700),
                pay_period_days=7,
                weekly_hours="35",
            ),
        ),
    )
    assert set(f.violations) == {"pay_record.snapshot_date"}


def test_training_and_vetting_expiring_within_n_days(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    person = add_person(hr, WEST_YORKSHIRE, officer()).name

    def vetting(level: int, expiry: D) -> compliance_pb2.VettingClearance:
        return hr.hr.CreateVettingClearance(
            pb.CreateVettingClearanceRequest(
                parent=WEST,
                vetting_clearance=compliance_pb2.VettingClearance(
                    person=person,
                    level=level,  # type: ignore[arg-type]
                    granted_date=date_to_proto(D(2020, 1, 1)),
                    expiry_date=date_to_proto(expiry),
                ),
            )
        )

    far = vetting(compliance_pb2.VETTING_LEVEL_MV, D(2026, 1, 1))
    soon = vetting(compliance_pb2.VETTING_LEVEL_NPPV3, D(2024, 6, 30))
    sooner = vetting(compliance_pb2.VETTING_LEVEL_SC, D(2024, 6, 1))
    vetting(compliance_pb2.VETTING_LEVEL_RV, D(2024, 5, 1))  # already expired on the day asked
    expiring = hr.hr.ListVettingClearances(
        pb.ListVettingClearancesRequest(
            parent=WEST, expires_within_days=30, as_at_date=date_to_proto(D(2024, 5, 31)), page_size=1
        )
    )
    assert [v.name for v in expiring.vetting_clearances] == [sooner.name]
    more = hr.hr.ListVettingClearances(
        pb.ListVettingClearancesRequest(
            parent=WEST,
            expires_within_days=30,
            as_at_date=date_to_proto(D(2024, 5, 31)),
            page_size=1,
            page_token=expiring.next_page_token,
        )
    )
    assert [v.name for v in more.vetting_clearances] == [soon.name] and not more.next_page_token
    assert (
        len(hr.hr.ListVettingClearances(pb.ListVettingClearancesRequest(parent=WEST)).vetting_clearances) == 4
    )
    assert far.level == compliance_pb2.VETTING_LEVEL_MV
    taser = hr.hr.CreateTrainingRecord(
        pb.CreateTrainingRecordRequest(
            parent=WEST,
            training_record=compliance_pb2.TrainingRecord(
                person=person,
                course="Taser",
                accreditation=True,
                completed_date=date_to_proto(D(2023, 6, 1)),
                expiry_date=date_to_proto(D(2024, 6, 1)),
            ),
        )
    )
    hr.hr.CreateTrainingRecord(
        pb.CreateTrainingRecordRequest(
            parent=WEST,
            training_record=compliance_pb2.TrainingRecord(
                person=person, course="First aid", completed_date=date_to_proto(D(2023, 6, 1))
            ),
        )
    )
    expiring_training = hr.hr.ListTrainingRecords(
        pb.ListTrainingRecordsRequest(
            parent=WEST, expires_within_days=7, as_at_date=date_to_proto(D(2024, 5, 28))
        )
    )
    assert [t.name for t in expiring_training.training_records] == [taser.name]
    f = failure(
        hr.hr.CreateVettingClearance,
        pb.CreateVettingClearanceRequest(parent=WEST, vetting_clearance=compliance_pb2.VettingClearance()),
    )
    assert set(f.violations) == {
        "vetting_clearance.person",
        "vetting_clearance.level",
        "vetting_clearance.granted_date",
        "vetting_clearance.expiry_date",
    }
    f = failure(
        hr.hr.CreateTrainingRecord,
        pb.CreateTrainingRecordRequest(
            parent=WEST,
            training_record=compliance_pb2.TrainingRecord(
                completed_date=date_to_proto(D(2024, 1, 1)), expiry_date=date_to_proto(D(2023, 1, 1))
            ),
        ),
    )
    assert set(f.violations) == {
        "training_record.person",
        "training_record.course",
        "training_record.expiry_date",
    }
    f = failure(hr.hr.ListTrainingRecords, pb.ListTrainingRecordsRequest(parent=WEST, expires_within_days=-1))
    assert set(f.violations) == {"expires_within_days"}
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    assert not south.hr.ListVettingClearances(pb.ListVettingClearancesRequest(parent=WEST)).vetting_clearances
    manager = suite.caller(WEST_YORKSHIRE, "hr.line_manager")
    f = failure(manager.hr.ListVettingClearances, pb.ListVettingClearancesRequest(parent=WEST))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED
