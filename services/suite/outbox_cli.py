"""`backoffice outbox`: the events each service has published and not yet delivered, and
the two ways shared-service staff release a parked one (both audited)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from libs.common.config import Settings
from libs.common.errors import DomainError
from libs.common.outbox import STATES

app = typer.Typer(help="The transactional outbox: list, retry and discard events.", no_args_is_help=True)
console = Console()

DataDir = Annotated[Optional[Path], typer.Option(help="Where SQLite files live [default: ./var].")]  # noqa: UP045
DatabaseUrl = Annotated[Optional[str], typer.Option(help="PostgreSQL URL; default: SQLite files.")]  # noqa: UP045
Service = Annotated[str, typer.Option(help="The publishing service.")]


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    return Settings(**overrides)  # type: ignore[arg-type]


@app.command("list")
def list_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    service: Annotated[Optional[list[str]], typer.Option(help="Only this service (repeatable).")] = None,  # noqa: UP045
    state: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="PENDING, PARKED, DELIVERED or DISCARDED (repeatable) [default: PENDING, PARKED]."),
    ] = None,
) -> None:
    """Events waiting for delivery or parked, with why."""
    from services.suite.admin import outbox_events

    states = [s.upper() for s in state or ["PENDING", "PARKED"]]
    if bad := set(states) - set(STATES):
        raise typer.BadParameter(f"unknown state {', '.join(sorted(bad))}", param_hint="--state")
    table = Table("service", "id", "organisation", "topic", "key", "state", "attempts", "last error")
    for name, e in outbox_events(_settings(data_dir, database_url), service, states):
        table.add_row(name, e.id, e.organisation, e.topic, e.key, e.state, str(e.attempts), e.last_error)
    console.print(table)


def _change(settings: Settings, service: str, event_id: str, reason: str | None) -> None:
    from services.suite.admin import KERNELS, change_outbox_event

    if service not in KERNELS:
        raise typer.BadParameter(f"choose from {', '.join(KERNELS)}", param_hint="--service")
    try:
        event = change_outbox_event(settings, service, event_id, discard_reason=reason)
    except (DomainError, ValueError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"{service} {event.id}: {event.state}")


@app.command("retry")
def retry_command(
    event_id: Annotated[str, typer.Argument(help="The event id.")],
    service: Service = "procurement",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Put a parked event back in the queue, due at once (audited)."""
    _change(_settings(data_dir, database_url), service, event_id, None)


@app.command("discard")
def discard_command(
    event_id: Annotated[str, typer.Argument(help="The event id.")],
    reason: Annotated[str, typer.Option(help="Why it will never be delivered (kept in the audit log).")],
    service: Service = "procurement",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give up on an event for good, with a reason (audited); later events of its key go on."""
    _change(_settings(data_dir, database_url), service, event_id, reason)
