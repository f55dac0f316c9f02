"""Starting the suite: every service in one process (as `backoffice serve` and the tests
do), wired to each other by address."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence

from libs.common.auth import TokenIssuer, TokenVerifier
from libs.common.config import Settings
from libs.common.db import is_postgres
from libs.common.grants import DirectoryGrantSource
from libs.common.migrations import upgrade
from libs.common.peers import ServiceTokens, service_role
from libs.common.server import RunningServer, create_server
from services.suite.registry import SERVICE_APPS, SERVICES

__all__ = ["SERVICES", "migrate", "start_suite"]

SERVICE_ROLES = ("service.grants_reader",)


def migrate(settings: Settings, services: Sequence[str] = SERVICES) -> None:
    for name in services:
        url = settings.database_url_for(name)
        upgrade(name, url, app_role=settings.app_role_for(name) if is_postgres(url) else None)


def page_secret(settings: Settings, issuer_key_pem: bytes) -> bytes:
    if settings.page_token_secret:
        return settings.page_token_secret.encode()
    return hashlib.sha256(b"page-tokens:" + issuer_key_pem).digest()


async def start_suite(
    settings: Settings, *, ephemeral_ports: bool = False, services: Sequence[str] = SERVICES
) -> list[RunningServer]:
    verifier = TokenVerifier.from_settings(settings)
    issuer = TokenIssuer.from_settings(settings)
    secret = page_secret(settings, settings.signing_key_path().read_bytes())
    started: list[RunningServer] = []

    def port(name: str) -> int:
        return 0 if ephemeral_ports else settings.port_for(name)

    try:
        # The directory first: it answers the others' access questions. A pod that runs
        # another service alone reaches it at BACKOFFICE_DIRECTORY_TARGET.
        directory_module, *others = SERVICE_APPS
        reuse = settings.workers > 1 and not ephemeral_ports
        target = settings.directory_target
        if directory_module.NAME in services:
            directory_app = directory_module.build(settings, secret, None)
            directory = await create_server(
                directory_app, verifier, host=settings.host, port=port("directory"), reuse_port=reuse
            )
            started.append(directory)
            target = target or directory.address
        elif not target:
            raise ValueError("without the directory in this process, set BACKOFFICE_DIRECTORY_TARGET")
        for module in others:
            if module.NAME not in services:
                continue
            grants = DirectoryGrantSource(
                target,
                ServiceTokens(issuer, module.NAME, SERVICE_ROLES),
                ttl_seconds=settings.grants_cache_seconds,
            )
            app = module.build(settings, secret, grants)
            app.close = _closing_both(app.close, grants.close)
            started.append(
                await create_server(
                    app, verifier, host=settings.host, port=port(module.NAME), reuse_port=reuse
                )
            )
        start_relays(settings, issuer, started)
    except BaseException:
        for server in started:
            await server.stop(0)
        raise
    return started


def start_relays(settings: Settings, issuer: TokenIssuer, started: Sequence[RunningServer]) -> None:
    """Wires every service's calls to the others (its peers, its outbox relay) and starts
    the relays."""
    addresses = {s.app.name: s.address for s in started}

    def resolve(name: str) -> str:
        return (
            settings.service_targets.get(name)
            or addresses.get(name)
            or f"{settings.host}:{settings.port_for(name)}"
        )

    for server in started:
        app = server.app
        tokens = ServiceTokens(issuer, app.name, (service_role(app.name),))
        if app.peers is not None:
            app.peers.configure(resolve, tokens)
            app.close = _closing_both(app.peers.close, app.close)
        if app.relay is not None:
            app.relay.configure(resolve, tokens)
            app.relay.start()
            app.close = _closing_both(app.relay.stop, app.close)


Closer = Callable[[], Awaitable[None]]


def _closing_both(first: Closer, second: Closer) -> Closer:
    async def close() -> None:
        await first()
        await second()

    return close
