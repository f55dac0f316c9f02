"""Test support: a suite of real servers on ephemeral ports in a background event loop,
and real gRPC clients that present real tokens."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
import psycopg
import pytest
from alembic import command
from grpc_status import rpc_status
from sqlalchemy import text

from backoffice.directory.v1 import directory_service_pb2_grpc
from backoffice.finance.v1 import finance_service_pb2_grpc
from backoffice.hr.v1 import hr_service_pb2_grpc
from backoffice.procurement.v1 import procurement_service_pb2_grpc
from libs.common.auth import TokenIssuer
from libs.common.config import Settings
from libs.common.db import make_engine
from libs.common.grpc_errors import refusal_details
from libs.common.migrations import alembic_config
from libs.common.server import RunningServer
from services.suite.runtime import migrate, start_suite

UNIT = "X00000101"  # Yorkshire and the Humber Police Shared Services (reference data)
OTHER_UNIT = "X00000102"
WEST_YORKSHIRE = "E23000010"
SOUTH_YORKSHIRE = "E23000011"
CUMBRIA = "E23000002"
LEEDS = "E08000035"  # a partner council


class Caller:
    """A person (or system) of one organisation with some roles, holding real stubs."""

    def __init__(self, suite: Suite, token: str) -> None:
        self.token = token
        self._channels: list[grpc.Channel] = []
        self.directory: directory_service_pb2_grpc.DirectoryServiceStub = (
            directory_service_pb2_grpc.DirectoryServiceStub(self._channel(suite.addresses["directory"]))
        )
        self.procurement: procurement_service_pb2_grpc.ProcurementServiceStub = (
            procurement_service_pb2_grpc.ProcurementServiceStub(self._channel(suite.addresses["procurement"]))
        )
        self.hr: hr_service_pb2_grpc.HrServiceStub = hr_service_pb2_grpc.HrServiceStub(
            self._channel(suite.addresses["hr"])
        )
        self.finance: finance_service_pb2_grpc.FinanceServiceStub = (
            finance_service_pb2_grpc.FinanceServiceStub(self._channel(suite.addresses["finance"]))
        )

    def _channel(self, address: str) -> grpc.Channel:
        channel = grpc.insecure_channel(address)
        self._channels.append(channel)
        return grpc.intercept_channel(channel, _AuthInterceptor(self.token))

    def close(self) -> None:
        for c in self._channels:
            c.close()


class _AuthInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = list(details.metadata or [])
        if self._token:
            metadata.append(("authorization", f"Bearer {self._token}"))
        new = _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        return continuation(new, request)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


@dataclass
class Suite:
    settings: Settings
    servers: list[RunningServer]
    loop: asyncio.AbstractEventLoop
    addresses: dict[str, str]
    issuer: TokenIssuer
    callers: list[Caller] = field(default_factory=list)

    def token(self, organisation: str, *roles: str, subject: str = "tester", **kwargs: Any) -> str:
        return self.issuer.mint(subject, organisation, roles, **kwargs)

    def caller(self, organisation: str, *roles: str, subject: str = "tester") -> Caller:
        c = Caller(self, self.token(organisation, *roles, subject=subject))
        self.callers.append(c)
        return c

    def caller_with_token(self, token: str) -> Caller:
        c = Caller(self, token)
        self.callers.append(c)
        return c

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)


@contextlib.contextmanager
def running_suite(settings: Settings, *, migrated: bool = False) -> Iterator[Suite]:
    if not migrated:
        migrate(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers = asyncio.run_coroutine_threadsafe(start_suite(settings, ephemeral_ports=True), loop).result(60)
    suite = Suite(
        settings, servers, loop, {s.app.name: s.address for s in servers}, TokenIssuer.from_settings(settings)
    )
    try:
        yield suite
    finally:
        for c in suite.callers:
            c.close()
        for s in servers:
            asyncio.run_coroutine_threadsafe(s.stop(0), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class RpcFailure:
    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str]
    violations: dict[str, str]


def failure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> RpcFailure:
    """Call `fn`, expect it to fail, and return the decoded google.rpc.Status."""
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as err:
        status = rpc_status.from_call(cast(grpc.Call, err))
        reason, metadata, violations = refusal_details(status) if status is not None else ("", {}, [])
        return RpcFailure(err.code(), err.details() or "", reason, metadata, dict(violations))
    raise AssertionError(f"{getattr(fn, '__name__', fn)} succeeded but was expected to fail")


def today() -> dt.date:
    from libs.common.clock import today_london

    return today_london()


def postgres_dsn(settings: Settings) -> str:
    """The suite's PostgreSQL URL as psycopg takes it."""
    assert settings.database_url
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def wait_until_a_transaction_waits_for_a_lock(settings: Settings, what: str, timeout: float = 30) -> None:
    """Waits until another session of the suite's PostgreSQL database waits for a lock
    (`pg_stat_activity`); fails, naming `what`, if none does within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(postgres_dsn(settings), autocommit=True, connect_timeout=5) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{what} never waited for the lock")
            time.sleep(0.05)


def audit_after(settings: Settings, service: str, resource: str) -> list[str]:
    """The "after" (JSON) of each audit record of a service's resource, oldest first."""
    return audit_column(settings, service, resource, "after")


def audit_column(settings: Settings, service: str, resource: str, column: str) -> list[str]:
    """One column of each audit record of a service's resource, oldest first, read as the
    database's owner."""
    rows = execute_as_owner(
        settings,
        service,
        f'SELECT "{column}" FROM audit_records WHERE resource = :r ORDER BY id',
        r=resource,
    )
    return [row[0] for row in rows]


def downgrade(settings: Settings, service: str, revision: str) -> None:
    """Takes a service's database back to `revision` by its migrations' downgrades, as
    its owner: to test a later migration on data an earlier schema held."""
    engine = make_engine(settings.database_url_for(service), schema=service)
    config = alembic_config(service)
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
            conn.commit()
    finally:
        engine.dispose()


def execute_as_owner(
    settings: Settings, service: str, statement: str, **params: Any
) -> list[tuple[Any, ...]]:
    """One statement on a service's database as its owner (row-level security aside), and
    the rows it returns."""
    engine = make_engine(settings.database_url_for(service), schema=service)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()
