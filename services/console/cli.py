"""Running the console: beside the services in `backoffice serve`, or alone in its own pod
(`backoffice console`), calling the services at their gRPC targets.

(`services/suite/cli.py` also has a `console`: rich's terminal Console that prints
addresses. It is passed here as `out`.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console as Terminal

from libs.common.config import Settings

if TYPE_CHECKING:
    from libs.common.auth import TokenIssuer
    from libs.common.server import RunningServer
    from services.console.app import RunningConsole


def _issuer(settings: Settings) -> TokenIssuer | None:
    """The development sign-in's token issuer, when it is enabled (never in production)."""
    if not settings.console_dev_sign_in_enabled():
        return None
    from libs.common.auth import TokenIssuer

    return TokenIssuer.from_settings(settings)


async def _start(
    settings: Settings,
    targets: Mapping[str, str],
    *,
    host: str,
    port: int,
    call_timeout: float | None = None,
) -> RunningConsole:
    """The console as the settings say, for both commands: the development sign-in's
    issuer when it is on, and `Secure` cookies unless told otherwise (Settings
    `console_secure_cookies_enabled`)."""
    from services.console.app import start_console
    from services.console.clients import DEFAULT_TIMEOUT_SECONDS

    return await start_console(
        targets,
        issuer=_issuer(settings),
        host=host,
        port=port,
        call_timeout=DEFAULT_TIMEOUT_SECONDS if call_timeout is None else call_timeout,
        secure_cookies=settings.console_secure_cookies_enabled(),
    )


async def start_console_beside(
    settings: Settings, servers: Sequence[RunningServer], out: Terminal
) -> Callable[[], Awaitable[None]] | None:
    """For `backoffice serve`: the console over the services just started in this process;
    prints its address like theirs and returns what stops it."""
    if not settings.console_enabled:
        return None
    running = await _start(
        settings, {s.app.name: s.address for s in servers}, host=settings.host, port=settings.console_port
    )
    sign_in = "development sign-in on" if running.console.issuer else "identity-provider tokens only"
    out.print(f"[bold]console[/bold] listening on {running.url} ({sign_in})")

    async def stop() -> None:
        await running.stop(settings.shutdown_grace_seconds)

    return stop


def console_command(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on.")] = None,  # noqa: UP045
    port: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="HTTP port [default: BACKOFFICE_CONSOLE_PORT or 8081]."),
    ] = None,
) -> None:
    """Serve only the web admin console (its own pod), calling the services at
    BACKOFFICE_GATEWAY_TARGETS (the same targets as the gateway); Ctrl-C or SIGTERM stops it."""
    import asyncio

    from libs.common.logging import configure_logging
    from services.gateway.cli import GatewaySettings, _targets, _until_signal

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    out = Terminal()
    gateway_settings = GatewaySettings()

    async def main() -> None:
        running = await _start(
            settings,
            _targets(settings, gateway_settings),
            host=host or settings.host,
            port=settings.console_port if port is None else port,
            call_timeout=gateway_settings.timeout_seconds,
        )
        out.print(f"[bold]console[/bold] listening on {running.url}")
        await _until_signal()
        await running.stop(settings.shutdown_grace_seconds)

    asyncio.run(main())
