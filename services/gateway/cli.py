"""Running the gateway: beside the services in `backoffice serve`, or alone in its own pod
(`backoffice gateway`), reaching each service at a configured gRPC target."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from libs.common.config import Settings

if TYPE_CHECKING:
    from libs.common.server import RunningServer

DEFAULT_GATEWAY_PORT = 8080


class GatewaySettings(BaseSettings):
    """BACKOFFICE_GATEWAY_PORT, BACKOFFICE_GATEWAY_TARGETS, ..."""

    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_GATEWAY_", extra="ignore")

    # HTTP port; `backoffice serve` and the gateway's pod listen on it.
    port: int = DEFAULT_GATEWAY_PORT
    # Service name -> gRPC target, e.g. {"procurement": "dns:///procurement:50051"}.
    # Missing services: the host and port of the suite's settings.
    targets: dict[str, str] = {}
    # Deadline of each gRPC call made for an HTTP request.
    timeout_seconds: float = 30.0
    # `backoffice serve` starts the gateway beside the services unless this is false.
    enabled: bool = True


async def start_beside(
    settings: Settings, servers: Sequence[RunningServer], console: Console
) -> Callable[[], Awaitable[None]] | None:
    """For `backoffice serve`: the gateway over the services just started in this process;
    prints its address like theirs and returns what stops it."""
    from services.gateway.app import start_gateway

    gateway_settings = GatewaySettings()
    if not gateway_settings.enabled:
        return None
    running = await start_gateway(
        {s.app.name: s.address for s in servers},
        host=settings.host,
        port=gateway_settings.port,
        call_timeout=gateway_settings.timeout_seconds,
    )
    console.print(f"[bold]gateway[/bold] listening on {running.url} (OpenAPI at {running.url}/openapi.json)")

    async def stop() -> None:
        await running.stop(settings.shutdown_grace_seconds)

    return stop


def _targets(settings: Settings, gateway_settings: GatewaySettings) -> dict[str, str]:
    from services.suite.registry import SERVICES

    return {
        name: gateway_settings.targets.get(name) or f"{settings.host}:{settings.port_for(name)}"
        for name in SERVICES
    }


def gateway_command(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on.")] = None,  # noqa: UP045
    port: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help=f"HTTP port [default: BACKOFFICE_GATEWAY_PORT or {DEFAULT_GATEWAY_PORT}]."),
    ] = None,
) -> None:
    """Serve only the HTTP/JSON gateway (its own pod), calling the services at
    BACKOFFICE_GATEWAY_TARGETS; Ctrl-C or SIGTERM stops it."""
    from libs.common.logging import configure_logging
    from services.gateway.app import start_gateway

    settings = Settings()
    gateway_settings = GatewaySettings()
    configure_logging(settings.log_format, settings.log_level)
    console = Console()

    async def main() -> None:
        running = await start_gateway(
            _targets(settings, gateway_settings),
            host=host or settings.host,
            port=gateway_settings.port if port is None else port,
            call_timeout=gateway_settings.timeout_seconds,
        )
        console.print(f"[bold]gateway[/bold] listening on {running.url}")
        await _until_signal()
        await running.stop(settings.shutdown_grace_seconds)

    asyncio.run(main())


async def _until_signal() -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
