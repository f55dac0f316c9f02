"""`backoffice hr import people.csv`: every bad row reported, all rows or none."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from backoffice.hr.v1 import hr_service_pb2 as pb
from services.hr.cli import app as hr_cli
from tests.support import WEST_YORKSHIRE, Suite

COLUMNS = [
    "person_id",
    "worker_type",
    "given_name",
    "family_name",
    "collar_number",
    "national_insurance_number",
    "sex",
    "ethnicity",
    "join_date",
]
HEADER = ",".join(COLUMNS) + "\n"
GOOD = [
    "p-one,police_officer,Sam,Smith,101,AB123456C,male,white_british,2020-04-01\n",
    ",police staff,Alex,Jones,,CE123456A,female,indian,2021-09-01\n",
]


def _run(suite: Suite, tmp_path: Path, lines: list[str]) -> tuple[int, str]:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(HEADER + "".join(lines), encoding="utf-8")
    token = suite.token(WEST_YORKSHIRE, "hr.officer")
    root = typer.Typer()
    root.add_typer(hr_cli, name="hr")
    result = CliRunner().invoke(
        root,
        [
            "hr",
            "import",
            str(csv_file),
            "--org",
            WEST_YORKSHIRE,
            "--token",
            token,
            "--target",
            suite.addresses["hr"],
        ],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.output


def test_import_reports_every_bad_row_and_imports_nothing(suite: Suite, tmp_path: Path) -> None:
    bad = [
        *GOOD,
        "p-three,police_officer,,Brown,,QQ123456C,male,white_british,2020-13-01\n",
        "p-four,pcso,Kim,Lee,,,unknown,arab,2022-01-01\n",
    ]
    code, output = _run(suite, tmp_path, bad)
    assert code == 1, output
    for expected in ("given_name", "collar_number", "national_insurance_number", "join_date", "sex"):
        assert expected in output
    assert "nothing was imported" in output
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    assert not hr.hr.ListPeople(pb.ListPeopleRequest(parent=f"organisations/{WEST_YORKSHIRE}")).people


def test_import_records_all_rows_and_refuses_a_clash_whole(suite: Suite, tmp_path: Path) -> None:
    code, output = _run(suite, tmp_path, GOOD)
    assert code == 0, output
    assert "imported 2 people" in output
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    people = hr.hr.ListPeople(pb.ListPeopleRequest(parent=f"organisations/{WEST_YORKSHIRE}")).people
    assert len(people) == 2
    # A second file whose second row clashes with a recorded collar number: nothing more.
    code, output = _run(
        suite, tmp_path, ["p-new,police_officer,New,Person,555,,male,arab,2024-01-01\n", GOOD[0]]
    )
    assert code == 1 and "PERSON_ALREADY_EXISTS" in output
    assert len(hr.hr.ListPeople(pb.ListPeopleRequest(parent=f"organisations/{WEST_YORKSHIRE}")).people) == 2
