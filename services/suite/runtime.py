"""Starting the suite: every service in one process (as `backoffice serve` and the tests
do), wired to each other by address."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence

from libs.common.auth import TokenIssuer, TokenVerifier
from libs.common.config import Settings
from libs.common.context import PrincipalKind
from libs.common.db import is_postgres
from libs.common.grants import DirectoryGrantSource
from libs.common.migrations import upgrade
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


class ServiceTokens:
    """Short-lived tokens the services present to each other, re-minted before expiry."""

    def __init__(self, issuer: TokenIssuer, subject: str, roles: Sequence[str] = SERVICE_ROLES) -> None:
        self._issuer = issuer
        self._subject = subject
        self._roles = tuple(roles)
        self._token = ""
        self._expires = 0.0

    def __call__(self) -> str:
        if time.monotonic() > self._expires:
            self._token = self._issuer.mint(
                self._subject, "", self._roles, ttl=dt.timedelta(minutes=10), kind=PrincipalKind.SERVICE
            )
            self._expires = time.monotonic() + 300
        return self._token


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
                target, ServiceTokens(issuer, module.NAME), ttl_seconds=settings.grants_cache_seconds
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


def service_role(name: str) -> str:
    """The least-privilege role a service's own calls to the others carry: each receiving
    service grants `service.{caller}` only the permissions that caller's events need."""
    return f"service.{name}"


def start_relays(settings: Settings, issuer: TokenIssuer, started: Sequence[RunningServer]) -> None:
    """Starts the outbox relay of every service that publishes, wired to the others."""
    addresses = {s.app.name: s.address for s in started}

    def resolve(name: str) -> str:
        return (
            settings.service_targets.get(name)
            or addresses.get(name)
            or f"{settings.host}:{settings.port_for(name)}"
        )

    for server in started:
        relay = server.app.relay
        if relay is None:
            continue
        relay.start(resolve, ServiceTokens(issuer, server.app.name, (service_role(server.app.name),)))
        server.app.close = _closing_both(relay.stop, server.app.close)


Closer = Callable[[], Awaitable[None]]


def _closing_both(first: Closer, second: Closer) -> Closer:
    async def close() -> None:
        await first()
        await second()

    return close
