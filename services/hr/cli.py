"""`backoffice hr ...`: bulk work against the HR service.

    backoffice hr import people.csv --org E23000010 --token "$TOKEN"
    backoffice hr import people-1.csv people-2.csv ... --org E23000010 --token "$TOKEN"

The import reads a whole file, checks every row (showing progress), prints a report of
every bad field of every row, and records nothing unless every row is good: then it sends
all rows in one `BatchCreatePeople` call, which the service also commits all or nothing.
Several files are several such batches, each whole or not at all, reported file by file, in
one process: the next file is checked while the one before is recorded (`--in-flight` files
at once), and a file that is refused does not stop the others (the exit code is then 1).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

import grpc
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from backoffice.hr.v1 import hr_service_pb2, hr_service_pb2_grpc, person_pb2
from libs.common.clock import YEARS_RULE, in_business_years
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
# Files whose calls may be under way at once: more would only queue on the organisation's
# audit chain.
MAX_IN_FLIGHT = 4
MAX_MESSAGE = 64 * 1024 * 1024


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
        if day is not None and in_business_years(day):
            getattr(person, column).CopyFrom(date_to_proto(day))
        elif day is not None:
            problems.append(f"{column}: {day.isoformat()} {YEARS_RULE}")
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


class _Refused(Exception):
    """A file that is not imported: why is printed already."""


@dataclass
class _Batch:
    """One file on its way: its checked rows, and the call recording them once sent."""

    path: Path
    request: hr_service_pb2.BatchCreatePeopleRequest
    # The file's line of each of the request's rows, to name a row the service refuses.
    lines: list[int] = field(default_factory=list)
    call: grpc.Future | None = None  # type: ignore[type-arg]  # grpc's stubs leave it generic


class _Lines:
    """A file's lines as csv reads them, noting where each record starts: its first line
    that is not blank (csv skips blank lines between records, and a quoted field may run
    over several lines), so that a problem is reported on the line the officer will fix."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.read = 0
        self.start = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.read += 1
        if not self.start and line.strip("\r\n"):
            self.start = self.read
        return line


def _read(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The file's rows, each with the line it starts on."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        lines = _Lines(f)
        reader = csv.DictReader(lines)
        unknown = sorted(set(reader.fieldnames or ()) - set(COLUMNS))
        if unknown:
            raise typer.BadParameter(f"unknown columns {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
        rows = []
        while True:
            lines.start = 0
            row = next(reader, None)
            if row is None:
                break
            rows.append((lines.start, row))
    if not 0 < len(rows) <= MAX_ROWS:
        raise typer.BadParameter(f"the file must hold 1 to {MAX_ROWS} rows, not {len(rows)}")
    return rows


def _checked(path: Path, org: str, label: str = "") -> _Batch:
    """The file's rows as one request, or `_Refused` after printing every problem of every row.
    `label` starts each line printed about the file (its name, when there are several)."""
    rows = _read(path)
    request = hr_service_pb2.BatchCreatePeopleRequest(parent=f"organisations/{org}")
    report = []
    lines = []
    for number, row in track(rows, description=f"{label}Checking rows", console=console):
        person, problems = person_from_row(row)
        problems += check_row(person)
        if problems:
            report += [(number, p) for p in problems]
        elif not report:
            request.requests.add(person=person, person_id=row.get("person_id", ""))
            lines.append(number)
    if report:
        _print_report(report)
        console.print(f"[red]{label}{len(report)} problem(s): nothing was imported[/red]")
        raise _Refused
    request.request_id = file_request_id(org, path.read_bytes())
    return _Batch(path, request, lines)


def file_request_id(org: str, content: bytes) -> str:
    """The same for the same file into the same organisation: a file sent again after an
    answer was lost (a deadline, a dropped connection) gets the first call's answer from the
    service rather than recording its people twice (those with no id, collar or NI number
    would be)."""
    digest = hashlib.sha256(content).hexdigest()
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"backoffice:hr-import:{org}:{digest}"))


def _send(stub: hr_service_pb2_grpc.HrServiceStub, batch: _Batch, bearer: str) -> None:
    batch.call = stub.BatchCreatePeople.future(
        batch.request, metadata=(("authorization", f"Bearer {bearer}"),), timeout=600
    )


_OUTCOME_UNKNOWN = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


def _recorded(batch: _Batch, org: str, label: str = "") -> int:
    """How many people the file's call recorded, or `_Refused` after printing why none."""
    assert batch.call is not None
    try:
        made = batch.call.result()
    except grpc.RpcError as err:
        _print_rpc_error(err, batch.lines)
        code = err.code() if isinstance(err, grpc.Call) else None
        if code in _OUTCOME_UNKNOWN:
            # The service may have recorded the file just before the answer was lost.
            console.print(
                f"[red]{label}no answer from the service ({code.name if code else 'no status'}): the "
                "file may or may not have been imported. Run the same file again: if it was, the "
                "service answers as it did then and records no one twice[/red]"
            )
        else:
            console.print(f"[red]{label}the service refused the import: nothing was imported[/red]")
        raise _Refused from None
    console.print(f"{label}imported {len(made.people)} people into organisations/{org}")
    return len(made.people)


def _aborted(batch: _Batch) -> bool:
    assert batch.call is not None
    err = batch.call.exception()
    return isinstance(err, grpc.Call) and err.code() is grpc.StatusCode.ABORTED


def _channel(target: str) -> grpc.Channel:
    # A response names every person recorded: 10,000 of them can pass gRPC's default 4 MB.
    return grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", MAX_MESSAGE)])


@app.command("import")
def import_people(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="CSV files with a header row; see `COLUMNS` in services/hr/cli.py. Each file "
            "is imported whole or not at all, on its own.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    org: Annotated[str, typer.Option(help="The organisation the people join, e.g. E23000010.")],
    token: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Bearer token (default: $BACKOFFICE_TOKEN)."),
    ] = None,
    target: Annotated[str, typer.Option(help="The HR service's address.")] = "127.0.0.1:50052",
    in_flight: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_IN_FLIGHT,
            help="Files being recorded at once. The next file is checked meanwhile, so 1 already "
            "keeps the service busy.",
        ),
    ] = 1,
) -> None:
    """Import people from CSV files: all rows of a file or none of them.

    Files are checked and recorded in order; a file with a problem is reported and not
    imported, the others still are, and the exit code is then 1."""
    bearer = token or os.environ.get("BACKOFFICE_TOKEN", "")
    if not bearer:
        raise typer.BadParameter("give --token or set BACKOFFICE_TOKEN", param_hint="--token")
    if len(paths) == 1:
        # One file: its problems are the command's, as they always were.
        try:
            batch = _checked(paths[0], org)
            with _channel(target) as channel:
                _send(hr_service_pb2_grpc.HrServiceStub(channel), batch, bearer)
                with console.status(f"Recording {len(batch.request.requests)} people"):
                    _recorded(batch, org)
        except _Refused:
            raise typer.Exit(1) from None
        return
    _import_files(paths, org, bearer, target, in_flight)


def _import_files(paths: list[Path], org: str, bearer: str, target: str, in_flight: int) -> None:
    """Each file is checked while the ones before it are recorded (`in_flight` calls at most),
    and reported in order."""
    imported: list[int] = []
    refused: list[Path] = []
    sent: deque[_Batch] = deque()

    with _channel(target) as channel:
        stub = hr_service_pb2_grpc.HrServiceStub(channel)

        def finish() -> None:
            batch = sent.popleft()
            label = f"{batch.path.name}: "
            if in_flight > 1 and _aborted(batch):
                # It may have waited on a file sent with it (the same person in both, or the
                # organisation's audit chain) past the database's lock timeout: once those
                # are recorded, it is sent again, alone, and recorded or refused for what it is.
                for other in sent:
                    assert other.call is not None
                    other.call.exception()
                _send(stub, batch, bearer)
            try:
                imported.append(_recorded(batch, org, label))
            except _Refused:
                refused.append(batch.path)

        for path in paths:
            label = f"{path.name}: "
            try:
                batch = _checked(path, org, label)
            except typer.BadParameter as err:
                console.print(f"[red]{label}{err.message}: nothing was imported[/red]")
                refused.append(path)
                continue
            except _Refused:
                refused.append(path)
                continue
            while len(sent) >= in_flight:
                finish()
            _send(stub, batch, bearer)
            sent.append(batch)
        while sent:
            finish()
    console.print(
        f"{len(imported)} of {len(paths)} files imported: {sum(imported)} people into organisations/{org}"
    )
    if refused:
        refused.sort(key=paths.index)
        console.print(f"[red]not imported: {', '.join(str(p) for p in refused)}[/red]")
        raise typer.Exit(1)


def _print_report(report: list[tuple[int, str]]) -> None:
    table = Table("line", "problem")
    for number, problem in report:
        table.add_row(str(number), problem)
    console.print(table)


def _print_rpc_error(err: grpc.RpcError, lines: list[int]) -> None:
    """The service's refusal, a row it names (`requests[i]`, ErrorInfo `row`) reported on
    the file's line of that row (`lines[i]`; 0 when it names none)."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    def line_of(row: str) -> int:
        index = int(row) if row.isdigit() else -1
        return lines[index] if 0 <= index < len(lines) else 0

    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    report = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            for v in bad.field_violations:
                index, _, field = v.field.partition("].")
                line = line_of(index.removeprefix("requests[")) if index.startswith("requests[") else 0
                report.append((line, f"{field or v.field}: {v.description}"))
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            line = line_of(info.metadata.get("row", ""))
            report.append((line, f"{info.reason}: {err.details()}"))
    _print_report(report or [(0, str(err))])
