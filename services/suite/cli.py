"""The `backoffice` command: serve, migrate, token, orgs, audit."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from libs.common.config import Settings
from services.console.cli import console_command
from services.gateway.cli import gateway_command
from services.hr.cli import app as hr_cli
from services.suite.deploy import app as deploy_cli
from services.suite.outbox_cli import app as outbox_cli

app = typer.Typer(
    help="Shared back-office services for police forces and their partners.", no_args_is_help=True
)
orgs_app = typer.Typer(help="Reference organisations.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
app.add_typer(hr_cli, name="hr", help="HR records: bulk import of a force's people.")
app.add_typer(audit_app, name="audit")
app.add_typer(deploy_cli, name="deploy")
app.add_typer(outbox_cli, name="outbox")
app.command("gateway")(gateway_command)
app.command("console")(console_command)
console = Console()

DataDir = Annotated[
    Path | None, typer.Option(help="Where SQLite files and development keys live [default: ./var].")
]
DatabaseUrl = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(help="PostgreSQL URL for every service (each uses its own schema); default: SQLite files."),
]


def _settings(data_dir: Path | None = None, database_url: str | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    return Settings(**overrides)  # type: ignore[arg-type]


@app.command()
def serve(  # noqa: PLR0917
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on.")] = None,  # noqa: UP045
    migrate: Annotated[bool, typer.Option(help="Apply migrations before serving.")] = True,
    service: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="Only this service (repeatable); a Kubernetes pod runs one."),
    ] = None,
    metrics_port: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Serve Prometheus /metrics on this port [default: BACKOFFICE_METRICS_PORT; 0: off]."
        ),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Processes per service on the same ports (one core each) [default: 1].", min=1),
    ] = None,
) -> None:
    """Start every service (migrations applied), print their addresses; Ctrl-C stops."""
    from libs.common.logging import configure_logging
    from libs.common.metrics import serve_metrics
    from libs.common.server import PortUnavailable, run_until_signal
    from libs.common.tracing import configure_tracing, shutdown_tracing
    from services.console.cli import start_console_beside
    from services.gateway.cli import start_beside
    from services.suite.runtime import SERVICES, start_suite
    from services.suite.runtime import migrate as run_migrations

    names = service or list(SERVICES)
    if unknown := set(names) - set(SERVICES):
        choices = ", ".join(SERVICES)
        raise typer.BadParameter(
            f"unknown service {', '.join(sorted(unknown))}; choose from {choices}", param_hint="--service"
        )
    settings = _settings(data_dir, database_url)
    if host:
        settings.host = host
    if metrics_port is not None:
        settings.metrics_port = metrics_port
    if workers is not None:
        settings.workers = workers
    worker_index = int(os.environ.get(_WORKER_INDEX, "0"))
    if worker_index and settings.metrics_port:
        settings.metrics_port += worker_index  # each worker's /metrics on its own port
    configure_logging(settings.log_format, settings.log_level)
    configure_tracing(settings, names[0] if len(names) == 1 else "backoffice")
    if migrate and not worker_index:
        run_migrations(settings, names)
    children = _start_workers(settings.workers) if not worker_index else []

    async def main() -> None:
        if settings.metrics_port:
            bound = serve_metrics(settings.metrics_port)
            console.print(f"metrics on http://0.0.0.0:{bound}/metrics")
        servers = await start_suite(settings, services=names)
        for s in servers:
            console.print(f"[bold]{s.app.name}[/bold] listening on {s.address}")
        # The HTTP/JSON gateway (issue 10) beside the whole suite, in the first process only.
        stop_gateway = None if service or worker_index else await start_beside(settings, servers, console)
        # The web admin console (issue 10) likewise.
        stop_console = (
            None if service or worker_index else await start_console_beside(settings, servers, console)
        )
        console.print("Ctrl-C stops the services.", style="dim")
        await run_until_signal(servers, settings.shutdown_grace_seconds)
        for stop in (stop_console, stop_gateway):
            if stop is not None:
                await stop()

    try:
        asyncio.run(main())
    except PortUnavailable as err:
        Console(stderr=True).print(f"[red]{err}[/red]", soft_wrap=True)
        raise typer.Exit(1) from err
    finally:
        _stop_workers(children, settings.shutdown_grace_seconds)
        shutdown_tracing()


_WORKER_INDEX = "BACKOFFICE_WORKER_INDEX"


def _start_workers(count: int) -> list[subprocess.Popen[bytes]]:
    """Workers 1..count-1: the same command (migrations already applied), told their
    index; this process is worker 0."""
    children = []
    for index in range(1, count):
        env = {**os.environ, _WORKER_INDEX: str(index)}
        command = [
            sys.executable,
            "-c",
            "from services.suite.cli import main; main()",
            *sys.argv[1:],
            "--no-migrate",
        ]
        children.append(subprocess.Popen(command, env=env))  # noqa: S603  # our own command line
    return children


def _stop_workers(children: list[subprocess.Popen[bytes]], grace: float) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=grace + 5)
        except subprocess.TimeoutExpired:
            child.kill()


@app.command("migrate")
def migrate_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    service: Annotated[Optional[list[str]], typer.Option(help="Only this service (repeatable).")] = None,  # noqa: UP045
) -> None:
    """Apply each service's migrations to its database."""
    from services.suite.runtime import SERVICES, migrate

    settings = _settings(data_dir, database_url)
    names = service or list(SERVICES)
    unknown = set(names) - set(SERVICES)
    if unknown:
        raise typer.BadParameter(
            f"unknown service {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}"
        )
    migrate(settings, names)
    for name in names:
        console.print(f"{name}: migrated")


@app.command()
def token(
    org: Annotated[str, typer.Option(help="The holder's home organisation code, e.g. E23000013.")],
    role: Annotated[list[str], typer.Option(help="A role to grant (repeatable).")],
    subject: Annotated[str, typer.Option(help="Who the token is for.")] = "developer",
    ttl_minutes: Annotated[int, typer.Option(help="Minutes until it expires.")] = 60,
    data_dir: DataDir = None,
) -> None:
    """Mint a development token with the local signing key (created on first run)."""
    from libs.common.access import OPERATOR_ROLE
    from libs.common.auth import TokenIssuer
    from libs.common.names import valid_organisation_code

    if not valid_organisation_code(org):
        raise typer.BadParameter(f"{org!r} is not an organisation code", param_hint="--org")
    if OPERATOR_ROLE in role and any(not r.startswith("platform.") for r in role):
        raise typer.BadParameter("platform operators may not hold business roles", param_hint="--role")
    issuer = TokenIssuer.from_settings(_settings(data_dir))
    print(issuer.mint(subject, org, role, ttl=dt.timedelta(minutes=ttl_minutes)))  # noqa: T201


@orgs_app.command("list")
def orgs_list(
    kind: Annotated[
        str | None, typer.Option(help="FORCE, PARTNER, SHARED_SERVICE_UNIT or NATIONAL_BODY.")
    ] = None,
) -> None:
    """Print the reference organisations shipped with the suite."""
    from libs.common.reference import KINDS, reference_organisations

    if kind and kind.upper() not in KINDS:
        raise typer.BadParameter(f"choose from {', '.join(KINDS)}", param_hint="--kind")
    table = Table("code", "name", "kind", "country")
    for o in reference_organisations():
        if kind is None or o.kind == kind.upper():
            table.add_row(o.code, o.display_name, o.kind, o.country)
    console.print(table)


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    service: Annotated[Optional[list[str]], typer.Option(help="Only this service (repeatable).")] = None,  # noqa: UP045
) -> None:
    """Check every organisation's audit chain; exit 1 if any record was edited or removed."""
    from services.suite.admin import verify_audit

    settings = _settings(data_dir, database_url)
    broken = 0
    for name, report in verify_audit(settings, service):
        if report.intact:
            console.print(f"{name} {report.organisation}: {report.records} records, intact")
        else:
            broken += 1
            for problem in report.problems:
                console.print(f"[red]{name} {report.organisation}: {problem}[/red]")
    if broken:
        console.print(f"[red]{broken} audit chain(s) broken[/red]")
        raise typer.Exit(1)
    console.print("all audit chains intact")


def main() -> None:
    app()
