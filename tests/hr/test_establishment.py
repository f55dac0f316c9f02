"""Grades, units, posts and assignments; vacancies and "as at" questions over history."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.type import money_pb2

from backoffice.hr.v1 import establishment_pb2, person_pb2
from backoffice.hr.v1 import hr_service_pb2 as pb
from libs.common.proto_mapping import date_to_proto
from tests.hr.helpers import D, add_person, assign, gbp, grade, officer, post, staff, unit
from tests.support import SOUTH_YORKSHIRE, WEST_YORKSHIRE, Suite, failure

WEST = f"organisations/{WEST_YORKSHIRE}"


def _establishment(c: object, day: D) -> dict[str, tuple[str, str, list[str]]]:
    got = c.hr.GetEstablishment(pb.GetEstablishmentRequest(parent=WEST, as_at_date=date_to_proto(day)))  # type: ignore[attr-defined]
    return {
        line.post_display_name: (line.strength_fte, line.vacancy_fte, list(line.holders))
        for line in got.lines
    }


def test_as_at_history_movers_leavers_and_vacancies(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    constable = grade(hr, WEST_YORKSHIRE, "Constable", establishment_pb2.RANK_CONSTABLE)
    sergeant = grade(hr, WEST_YORKSHIRE, "Sergeant", establishment_pb2.RANK_SERGEANT, salary=45000)
    response = unit(hr, WEST_YORKSHIRE)
    pc_post = post(hr, WEST_YORKSHIRE, response.name, constable.name, budget="2")
    ps_post = post(hr, WEST_YORKSHIRE, response.name, sergeant.name, title="Response Sergeant")
    p1 = add_person(hr, WEST_YORKSHIRE, officer(collar="1"))
    p2 = add_person(hr, WEST_YORKSHIRE, officer(collar="2"))
    first = assign(hr, WEST_YORKSHIRE, p1.name, pc_post.name)
    assert first.rank == establishment_pb2.RANK_CONSTABLE and first.grade == constable.name
    assign(hr, WEST_YORKSHIRE, p2.name, pc_post.name, fte="0.5", start=D(2021, 1, 1))
    promoted = hr.hr.MovePerson(
        pb.MovePersonRequest(
            name=p1.name,
            post=ps_post.name,
            fte="1",
            pay_point="2",
            effective_date=date_to_proto(D(2023, 4, 1)),
        )
    )
    assert promoted.rank == establishment_pb2.RANK_SERGEANT
    # A bad move names the request's own fields.
    bad_move = failure(hr.hr.MovePerson, pb.MovePersonRequest(name=p2.name, post=ps_post.name, fte="1.5"))
    assert bad_move.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_move.violations) == {"fte", "effective_date"}

    assert _establishment(hr, D(2022, 4, 1)) == {
        "Response Constable": ("1.5", "0.5", sorted([p1.name, p2.name])),
        "Response Sergeant": ("0", "1", []),
    }
    assert _establishment(hr, D(2023, 4, 1)) == {
        "Response Constable": ("0.5", "1.5", [p2.name]),
        "Response Sergeant": ("1", "0", [p1.name]),
    }
    # Who held the constable post on 1 April 2022, and what did p1 hold on 1 April 2023?
    held = hr.hr.ListAssignments(
        pb.ListAssignmentsRequest(parent=WEST, post=pc_post.name, as_at_date=date_to_proto(D(2022, 4, 1)))
    )
    assert sorted(a.person for a in held.assignments) == sorted([p1.name, p2.name])
    now = hr.hr.ListAssignments(
        pb.ListAssignmentsRequest(parent=WEST, person=p1.name, as_at_date=date_to_proto(D(2023, 4, 1)))
    )
    assert [a.post for a in now.assignments] == [ps_post.name]
    history = hr.hr.ListAssignments(pb.ListAssignmentsRequest(parent=WEST, person=p1.name)).assignments
    assert [(a.post, a.end_date.year, a.end_date.month, a.end_date.day) for a in history] == [
        (pc_post.name, 2023, 3, 31),
        (ps_post.name, 0, 0, 0),
    ]
    # A second post that would take p2 above 1 FTE.
    f = failure(assign, hr, WEST_YORKSHIRE, p2.name, ps_post.name, "0.6", D(2021, 6, 1))
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "FTE_EXCEEDED"
    # The leaver's assignments end with their service; the post falls vacant.
    left = hr.hr.RecordLeaver(
        pb.RecordLeaverRequest(
            name=p2.name,
            leaving_date=date_to_proto(D(2024, 1, 31)),
            leaving_reason=person_pb2.LEAVING_REASON_RETIREMENT,
        )
    )
    assert left.leaving_date.year == 2024 and left.leaving_reason == person_pb2.LEAVING_REASON_RETIREMENT
    assert _establishment(hr, D(2024, 2, 1))["Response Constable"] == ("0", "2", [])
    assert _establishment(hr, D(2024, 1, 31))["Response Constable"] == ("0.5", "1.5", [p2.name])
    again = failure(
        hr.hr.RecordLeaver,
        pb.RecordLeaverRequest(
            name=p2.name,
            leaving_date=date_to_proto(D(2024, 2, 1)),
            leaving_reason=person_pb2.LEAVING_REASON_OTHER,
        ),
    )
    assert again.code is grpc.StatusCode.FAILED_PRECONDITION and again.reason == "PERSON_ALREADY_LEFT"
    f = failure(assign, hr, WEST_YORKSHIRE, p2.name, pc_post.name, "0.5", D(2024, 3, 1))
    assert f.reason == "NOT_IN_SERVICE"


def test_bad_input_on_every_establishment_create(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    f = failure(
        hr.hr.CreateGrade,
        pb.CreateGradeRequest(
            parent=WEST,
            grade=establishment_pb2.Grade(
                pay_points=[
                    establishment_pb2.PayPoint(code="1", annual_salary=gbp(0)),
                    establishment_pb2.PayPoint(code="1", annual_salary=gbp(100)),
                ]
            ),
        ),
    )
    assert set(f.violations) == {
        "grade.display_name",
        "grade.pay_points[0].annual_salary",
        "grade.pay_points[1].code",
    }
    f = failure(
        hr.hr.CreateOrgUnit, pb.CreateOrgUnitRequest(parent=WEST, org_unit=establishment_pb2.OrgUnit())
    )
    assert set(f.violations) == {"org_unit.display_name"}
    f = failure(
        hr.hr.CreateOrgUnit,
        pb.CreateOrgUnitRequest(
            parent=WEST,
            org_unit=establishment_pb2.OrgUnit(display_name="x", parent_unit=f"{WEST}/orgUnits/none"),
        ),
    )
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "ORG_UNIT_NOT_FOUND"
    f = failure(
        hr.hr.CreatePost,
        pb.CreatePostRequest(
            parent=WEST,
            post=establishment_pb2.Post(
                worker_type=person_pb2.WORKER_TYPE_POLICE_OFFICER,
                budgeted_fte="-1",
                start_date=date_to_proto(D(2024, 1, 1)),
                end_date=date_to_proto(D(2023, 1, 1)),
            ),
        ),
    )
    assert set(f.violations) == {
        "post.display_name",
        "post.org_unit",
        "post.budgeted_fte",
        "post.end_date",
        "post.grade",
    }
    scale6 = grade(hr, WEST_YORKSHIRE, "Scale 6")
    u = unit(hr, WEST_YORKSHIRE)
    f = failure(post, hr, WEST_YORKSHIRE, u.name, scale6.name)
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "GRADE_MISMATCH"
    analyst = post(
        hr,
        WEST_YORKSHIRE,
        u.name,
        scale6.name,
        title="Analyst",
        worker_type=person_pb2.WORKER_TYPE_POLICE_STAFF,
    )
    f = failure(
        hr.hr.CreateAssignment,
        pb.CreateAssignmentRequest(parent=WEST, assignment=establishment_pb2.Assignment(fte="1.5")),
    )
    assert set(f.violations) == {
        "assignment.person",
        "assignment.post",
        "assignment.fte",
        "assignment.start_date",
    }
    pc = add_person(hr, WEST_YORKSHIRE, officer())
    f = failure(assign, hr, WEST_YORKSHIRE, pc.name, analyst.name)
    assert f.reason == "WORKER_TYPE_MISMATCH"
    clerk = add_person(hr, WEST_YORKSHIRE, staff())
    f = failure(assign, hr, WEST_YORKSHIRE, clerk.name, analyst.name, "1", D(2020, 4, 1), "99")
    assert f.reason == "PAY_POINT_NOT_FOUND"
    f = failure(assign, hr, WEST_YORKSHIRE, clerk.name, analyst.name, "1", D(2019, 4, 1))
    assert f.reason == "NOT_IN_SERVICE"
    f = failure(assign, hr, WEST_YORKSHIRE, f"organisations/{SOUTH_YORKSHIRE}/people/p-x", analyst.name)
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "assignment.person" in f.violations


def test_establishment_is_the_forces_own(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")
    g = grade(hr, WEST_YORKSHIRE, "Constable", establishment_pb2.RANK_CONSTABLE)
    p = post(hr, WEST_YORKSHIRE, unit(hr, WEST_YORKSHIRE).name, g.name)
    assert failure(south.hr.GetPost, pb.GetPostRequest(name=p.name)).code is grpc.StatusCode.NOT_FOUND
    assert not south.hr.ListPosts(pb.ListPostsRequest(parent=WEST)).posts
    f = failure(south.hr.GetEstablishment, pb.GetEstablishmentRequest(parent=WEST))
    assert f.code is grpc.StatusCode.NOT_FOUND
    # The planner reads the establishment but cannot change it.
    assert [
        line.post for line in planner.hr.GetEstablishment(pb.GetEstablishmentRequest(parent=WEST)).lines
    ] == [p.name]
    f = failure(grade, planner, WEST_YORKSHIRE, "Sergeant", establishment_pb2.RANK_SERGEANT)
    assert f.code is grpc.StatusCode.PERMISSION_DENIED


def test_a_post_leaves_the_establishment_once_nobody_holds_it(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    constable = grade(hr, WEST_YORKSHIRE, "Constable", establishment_pb2.RANK_CONSTABLE)
    pc_post = post(hr, WEST_YORKSHIRE, unit(hr, WEST_YORKSHIRE).name, constable.name)
    held = assign(hr, WEST_YORKSHIRE, add_person(hr, WEST_YORKSHIRE, officer(collar="7")).name, pc_post.name)
    last_day = D(2024, 3, 31)

    def end(day: D, etag: str = "") -> establishment_pb2.Post:
        return hr.hr.EndPost(pb.EndPostRequest(name=pc_post.name, end_date=date_to_proto(day), etag=etag))

    occupied = failure(end, last_day)
    assert occupied.code is grpc.StatusCode.FAILED_PRECONDITION and occupied.reason == "POST_OCCUPIED"
    assert occupied.metadata["assignment"] == held.name
    assert hr.hr.GetPost(pb.GetPostRequest(name=pc_post.name)) == pc_post  # nothing written
    hr.hr.EndAssignment(pb.EndAssignmentRequest(name=held.name, end_date=date_to_proto(last_day)))
    stale = failure(end, last_day, etag='W/"999"')
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"

    ended = end(last_day, etag=pc_post.etag)
    assert (ended.end_date.year, ended.end_date.month, ended.end_date.day) == (2024, 3, 31)
    assert ended.etag != pc_post.etag
    assert "Response Constable" in _establishment(hr, last_day)
    assert "Response Constable" not in _establishment(hr, D(2024, 4, 1))
    in_april = hr.hr.ListPosts(pb.ListPostsRequest(parent=WEST, as_at_date=date_to_proto(D(2024, 4, 1))))
    assert not in_april.posts
    # It may be brought forward, never pushed back, never before it started.
    later = failure(end, D(2024, 6, 30))
    assert later.code is grpc.StatusCode.FAILED_PRECONDITION and later.reason == "POST_ENDED"
    assert failure(end, D(2019, 1, 1)).violations.keys() == {"end_date"}
    assert failure(hr.hr.EndPost, pb.EndPostRequest(name=pc_post.name)).violations.keys() == {"end_date"}
    # Another force's post is not found; a planner may not change the establishment.
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")
    request = pb.EndPostRequest(name=pc_post.name, end_date=date_to_proto(D(2024, 1, 31)))
    assert failure(south.hr.EndPost, request).code is grpc.StatusCode.NOT_FOUND
    assert failure(planner.hr.EndPost, request).code is grpc.StatusCode.PERMISSION_DENIED


def test_a_pay_award_changes_a_grades_points_but_keeps_those_in_use(suite: Suite) -> None:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    constable = grade(hr, WEST_YORKSHIRE, "Constable", establishment_pb2.RANK_CONSTABLE)
    grade(hr, WEST_YORKSHIRE, "Sergeant", establishment_pb2.RANK_SERGEANT, salary=45000)
    pc_post = post(hr, WEST_YORKSHIRE, unit(hr, WEST_YORKSHIRE).name, constable.name)
    assign(hr, WEST_YORKSHIRE, add_person(hr, WEST_YORKSHIRE, officer(collar="9")).name, pc_post.name)

    def update(changes: establishment_pb2.Grade, *paths: str) -> establishment_pb2.Grade:
        return hr.hr.UpdateGrade(
            pb.UpdateGradeRequest(grade=changes, update_mask=FieldMask(paths=list(paths)))
        )

    def points(*pairs: tuple[str, int]) -> list[establishment_pb2.PayPoint]:
        return [establishment_pb2.PayPoint(code=c, annual_salary=gbp(pounds)) for c, pounds in pairs]

    # The 2025 award: point 1 up, point 2 up, and a new point 3.
    award = establishment_pb2.Grade(
        name=constable.name, etag=constable.etag, pay_points=points(("1", 31000), ("2", 32700), ("3", 34000))
    )
    awarded = update(award, "pay_points")
    assert [(p.code, p.annual_salary.units) for p in awarded.pay_points] == [
        ("1", 31000),
        ("2", 32700),
        ("3", 34000),
    ]
    assert awarded.rank == establishment_pb2.RANK_CONSTABLE and awarded.display_name == "Constable"
    assert hr.hr.GetGrade(pb.GetGradeRequest(name=constable.name)) == awarded
    # The constable is on point 1: it stays; point 3, which nobody holds, may go.
    in_use = failure(
        update, establishment_pb2.Grade(name=constable.name, pay_points=points(("2", 32700))), "pay_points"
    )
    assert in_use.code is grpc.StatusCode.FAILED_PRECONDITION and in_use.reason == "PAY_POINT_IN_USE"
    assert in_use.metadata["pay_point"] == "1"
    trimmed = update(
        establishment_pb2.Grade(name=constable.name, pay_points=points(("1", 31000), ("2", 32700))),
        "pay_points",
    )
    assert [p.code for p in trimmed.pay_points] == ["1", "2"]
    # Renamed; not to another grade's name; the rank never changes; a stale etag is refused.
    renamed = update(
        establishment_pb2.Grade(name=constable.name, display_name="Police Constable"), "display_name"
    )
    assert renamed.display_name == "Police Constable"
    taken = failure(
        update, establishment_pb2.Grade(name=constable.name, display_name="Sergeant"), "display_name"
    )
    assert taken.code is grpc.StatusCode.ALREADY_EXISTS and taken.reason == "GRADE_ALREADY_EXISTS"
    rank = failure(
        update, establishment_pb2.Grade(name=constable.name, rank=establishment_pb2.RANK_SERGEANT), "rank"
    )
    assert set(rank.violations) == {"update_mask"}
    stale = failure(
        update, establishment_pb2.Grade(name=constable.name, etag=constable.etag, display_name="X"), "*"
    )
    assert stale.code is grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    empty = failure(update, establishment_pb2.Grade(name=constable.name), "pay_points")
    assert set(empty.violations) == {"grade.pay_points"}
    unreadable = failure(
        update,
        establishment_pb2.Grade(
            name=constable.name,
            pay_points=[
                establishment_pb2.PayPoint(
                    code="1", annual_salary=money_pb2.Money(currency_code="EUR", units=1)
                ),
                establishment_pb2.PayPoint(
                    code="2", annual_salary=money_pb2.Money(currency_code="GBP", nanos=10**9)
                ),
            ],
        ),
        "pay_points",
    )
    assert set(unreadable.violations) == {
        "grade.pay_points[0].annual_salary.currency_code",
        "grade.pay_points[1].annual_salary.nanos",
    }
    # Another force's grade is not found; a planner may not change it.
    south = suite.caller(SOUTH_YORKSHIRE, "hr.officer")
    planner = suite.caller(WEST_YORKSHIRE, "hr.workforce_planner")
    request = pb.UpdateGradeRequest(
        grade=establishment_pb2.Grade(name=constable.name, display_name="PC"),
        update_mask=FieldMask(paths=["display_name"]),
    )
    assert failure(south.hr.UpdateGrade, request).code is grpc.StatusCode.NOT_FOUND
    assert failure(planner.hr.UpdateGrade, request).code is grpc.StatusCode.PERMISSION_DENIED
