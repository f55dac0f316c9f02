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


def test_the_same_file_sent_again_records_no_one_twice(suite: Suite, tmp_path: Path) -> None:
    """Say the first answer was lost (a deadline): the officer runs the same file again. A
    member of staff with no id, collar or NI number has nothing a clash would find."""
    unkeyed = [",police staff,Alex,Jones,,,female,indian,2021-09-01\n"]
    for _ in range(2):
        code, output = _run(suite, tmp_path, unkeyed)
        assert code == 0 and "imported 1 people" in output, output
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    assert len(hr.hr.ListPeople(pb.ListPeopleRequest(parent=f"organisations/{WEST_YORKSHIRE}")).people) == 1
    # Another file (another person of the same name) is another request.
    code, output = _run(suite, tmp_path, [",police staff,Alex,Jones,,,female,indian,2022-09-01\n"])
    assert code == 0 and "imported 1 people" in output, output
    assert len(hr.hr.ListPeople(pb.ListPeopleRequest(parent=f"organisations/{WEST_YORKSHIRE}")).people) == 2


def _run_files(suite: Suite, tmp_path: Path, files: dict[str, list[str]], *options: str) -> tuple[int, str]:
    paths = []
    for name, lines in files.items():
        path = tmp_path / name
        path.write_text(HEADER + "".join(lines), encoding="utf-8")
        paths.append(str(path))
    root = typer.Typer()
    root.add_typer(hr_cli, name="hr")
    token = suite.token(WEST_YORKSHIRE, "hr.officer")
    args = ["hr", "import", *paths, "--org", WEST_YORKSHIRE, "--token", token]
    result = CliRunner().invoke(
        root, [*args, "--target", suite.addresses["hr"], *options], env={"COLUMNS": "200"}
    )
    return result.exit_code, result.output


def _family_names(suite: Suite) -> list[str]:
    hr = suite.caller(WEST_YORKSHIRE, "hr.officer")
    names, token = [], ""
    while True:
        page = hr.hr.ListPeople(
            pb.ListPeopleRequest(parent=f"organisations/{WEST_YORKSHIRE}", page_size=1000, page_token=token)
        )
        names += [p.family_name for p in page.people]
        if not (token := page.next_page_token):
            return sorted(names)


def test_several_files_each_whole_or_not_at_all(suite: Suite, tmp_path: Path) -> None:
    files = {
        "good.csv": GOOD,
        "bad.csv": ["p-five,police_officer,Lee,Bad,,,male,arab,2024-01-01\n"],
        "clash.csv": ["p-six,police_staff,Kim,Clash,,CE123456A,female,arab,2024-01-01\n"],
        "odd.csv": [],
        "also-good.csv": ["p-seven,pcso,Jo,Later,,,female,arab,2024-02-01\n"],
    }
    code, output = _run_files(suite, tmp_path, files)
    assert code == 1, output
    assert "good.csv: imported 2 people" in output
    assert "bad.csv: 1 problem(s): nothing was imported" in output and "collar_number" in output
    assert "clash.csv: the service refused the import" in output and "PERSON_ALREADY_EXISTS" in output
    assert "odd.csv: the file must hold 1 to 10000 rows, not 0: nothing was imported" in output
    assert "also-good.csv: imported 1 people" in output
    assert "2 of 5 files imported: 3 people" in output
    assert _family_names(suite) == ["Jones", "Later", "Smith"]


def test_files_recorded_together_that_share_a_person(suite: Suite, tmp_path: Path) -> None:
    """Two calls at once whose files share an NI number (on PostgreSQL the later insert waits
    for the earlier's row and is refused once that commits). One file is recorded, calls under
    way together committing in either order; the other is refused for the clash, naming its
    line."""
    a = [f"a-{n},police_staff,Alex,A{n},,AB{n:06d}C,female,arab,2020-01-01\n" for n in range(3000)]
    b = [f"b-{n},police_staff,Alex,B{n},,CE{n:06d}A,female,arab,2020-01-01\n" for n in range(3000)]
    b[-1] = "b-last,police_staff,Alex,Last,,AB002999C,female,arab,2020-01-01\n"
    files = {"a.csv": a, "b.csv": b, "c.csv": [GOOD[0]]}
    code, output = _run_files(suite, tmp_path, files, "--in-flight", "2")
    assert code == 1, output
    assert "c.csv: imported 1 people" in output
    assert "2 of 3 files imported: 3001 people" in output
    assert "PERSON_ALREADY_EXISTS: a person with national insurance number AB002999C" in output
    names = _family_names(suite)
    if "a.csv: imported 3000 people" in output:
        assert "b.csv: the service refused the import" in output and "│ 3001 │" in output
        assert "Last" not in names and "A2999" in names
    else:
        assert "b.csv: imported 3000 people" in output
        assert "a.csv: the service refused the import" in output and "│ 3001 │" in output
        assert "Last" in names and "A2999" not in names


def test_problems_are_reported_on_the_files_own_lines(suite: Suite, tmp_path: Path) -> None:
    """ "Every problem with its line": a blank line (an export's separating or trailing line,
    which csv skips) or a quoted field over several lines must not shift the numbers of the
    rows after it; a row is named by the line it starts on (review finding)."""
    lines = [
        GOOD[1],  # line 2
        "\n",  # line 3
        ",police staff,,Brown,,,female,indian,2021-09-01\n",  # line 4: no given name
        ',police staff,,"Brown\nSmith",,,female,indian,2021-09-01\n',  # lines 5-6: no given name
        "\n",  # line 7
        "\n",  # line 8
        ",police staff,Kim,Lee,,,female,indian,2021-13-01\n",  # line 9: no such month
    ]
    code, output = _run(suite, tmp_path, lines)
    assert code == 1, output
    reported = [
        line.split()[1] for line in output.splitlines() if "given_name" in line or "join_date" in line
    ]
    # Line 9's date is no date, so it is reported missing too.
    assert reported == ["4", "5", "9", "9"], output


def test_a_row_the_service_refuses_is_named_by_its_line(suite: Suite, tmp_path: Path) -> None:
    """The service names a clash by its row in the request; the report turns it back into the
    file's line, blank lines counted."""
    code, output = _run(suite, tmp_path, [GOOD[0]])
    assert code == 0, output
    clash = ["\n", "p-new,police_officer,New,Person,555,,male,arab,2024-01-01\n", "\n", GOOD[0]]
    code, output = _run(suite, tmp_path, clash)
    assert code == 1 and "PERSON_ALREADY_EXISTS" in output, output
    assert "│ 5    │ PERSON_ALREADY_EXISTS" in output, output
