"""`backoffice hr ...`: bulk work against the HR service.

    backoffice hr import people.csv --org E23000010 --token "$TOKEN"

The import reads the whole file, checks every row (showing progress), prints a report of
every bad field of every row, and records nothing unless every row is good: then it sends
all rows in one `BatchCreatePeople` call, which the service also commits all or nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Optional

import grpc
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from backoffice.hr.v1 import hr_service_pb2, hr_service_pb2_grpc, person_pb2
from libs.common.errors import InvalidArgument
from libs.common.proto_mapping import date_to_proto
from services.hr.domain.person import check_new_person

app = typer.Typer(help="HR: people, establishment and workforce reporting.", no_args_is_help=True)
console = Console()

COLUMNS = (
    "person_id",
    "worker_type",
    "given_name",
    "family_name",
    "preferred_name",
    "collar_number",
    "national_insurance_number",
    "birth_date",
    "sex",
    "ethnicity",
    "email",
    "phone",
    "postcode",
    "join_date",
    "full_time_leave_days",
)
MAX_ROWS = 10_000


def _enum(proto_enum: object, prefix: str, text: str) -> int:
    name = prefix + text.strip().upper().replace(" ", "_")
    try:
        return int(proto_enum.Value(name))  # type: ignore[attr-defined]
    except ValueError:
        return 0


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def person_from_row(row: dict[str, str]) -> tuple[person_pb2.Person, list[str]]:
    """The row as a Person message, and the problems no message can carry (bad dates)."""
    problems = []
    person = person_pb2.Person(
        worker_type=_enum(person_pb2.WorkerType, "WORKER_TYPE_", row.get("worker_type", "")),  # type: ignore[arg-type]
        given_name=row.get("given_name", ""),
        family_name=row.get("family_name", ""),
        preferred_name=row.get("preferred_name", ""),
        collar_number=row.get("collar_number", ""),
        national_insurance_number=row.get("national_insurance_number", ""),
        sex=_enum(person_pb2.Sex, "SEX_", row.get("sex", "")),  # type: ignore[arg-type]
        ethnicity=_enum(person_pb2.Ethnicity, "ETHNICITY_", row.get("ethnicity", "")),  # type: ignore[arg-type]
        email=row.get("email", ""),
        phone=row.get("phone", ""),
        postcode=row.get("postcode", ""),
        full_time_leave_days=row.get("full_time_leave_days", ""),
    )
    for column in ("birth_date", "join_date"):
        text = row.get(column, "")
        day = _date(text)
        if day is not None:
            getattr(person, column).CopyFrom(date_to_proto(day))
        elif text.strip():
            problems.append(f"{column}: {text!r} is not a date (YYYY-MM-DD)")
    return person, problems


def check_row(person: person_pb2.Person) -> list[str]:
    """The same checks the service makes, so the report lists every problem at once."""
    from services.hr.api.mapping import person_details, worker_type_in

    try:
        join = _date(f"{person.join_date.year:04d}-{person.join_date.month:02d}-{person.join_date.day:02d}")
        check_new_person(worker_type_in(person.worker_type), person_details(person), join, prefix="")
    except InvalidArgument as err:
        return [f"{v.field.lstrip('.')}: {v.description}" for v in err.violations]
    return []


@app.command("import")
def import_people(
    path: Annotated[
        Path, typer.Argument(help="CSV file with a header row; see `COLUMNS` in services/hr/cli.py.")
    ],
    org: Annotated[str, typer.Option(help="The organisation the people join, e.g. E23000010.")],
    token: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Bearer token (default: $BACKOFFICE_TOKEN)."),
    ] = None,
    target: Annotated[str, typer.Option(help="The HR service's address.")] = "127.0.0.1:50052",
) -> None:
    """Import people from a CSV file: all rows or none."""
    bearer = token or os.environ.get("BACKOFFICE_TOKEN", "")
    if not bearer:
        raise typer.BadParameter("give --token or set BACKOFFICE_TOKEN", param_hint="--token")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        unknown = sorted(set(reader.fieldnames or ()) - set(COLUMNS))
        if unknown:
            raise typer.BadParameter(f"unknown columns {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
        rows = list(reader)
    if not 0 < len(rows) <= MAX_ROWS:
        raise typer.BadParameter(f"the file must hold 1 to {MAX_ROWS} rows, not {len(rows)}")
    requests, report = [], []
    for number, row in track(list(enumerate(rows, start=2)), description="Checking rows", console=console):
        person, problems = person_from_row(row)
        problems += check_row(person)
        report += [(number, p) for p in problems]
        requests.append(hr_service_pb2.CreatePersonRequest(person=person, person_id=row.get("person_id", "")))
    if report:
        _print_report(report)
        console.print(f"[red]{len(report)} problem(s): nothing was imported[/red]")
        raise typer.Exit(1)
    with grpc.insecure_channel(target) as channel:
        stub = hr_service_pb2_grpc.HrServiceStub(channel)
        with console.status(f"Recording {len(requests)} people"):
            try:
                made = stub.BatchCreatePeople(
                    hr_service_pb2.BatchCreatePeopleRequest(parent=f"organisations/{org}", requests=requests),
                    metadata=(("authorization", f"Bearer {bearer}"),),
                    timeout=600,
                )
            except grpc.RpcError as err:
                _print_rpc_error(err)
                console.print("[red]the service refused the import: nothing was imported[/red]")
                raise typer.Exit(1) from None
    console.print(f"imported {len(made.people)} people into organisations/{org}")


def _print_report(report: list[tuple[int, str]]) -> None:
    table = Table("line", "problem")
    for number, problem in report:
        table.add_row(str(number), problem)
    console.print(table)


def _print_rpc_error(err: grpc.RpcError) -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    report = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            for v in bad.field_violations:
                index, _, field = v.field.partition("].")
                line = int(index.removeprefix("requests[")) + 2 if index.startswith("requests[") else 0
                report.append((line, f"{field or v.field}: {v.description}"))
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            line = int(info.metadata["row"]) + 2 if "row" in info.metadata else 0
            report.append((line, f"{info.reason}: {err.details()}"))
    _print_report(report or [(0, str(err))])
