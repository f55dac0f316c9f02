"""Fixtures: every integration test runs on SQLite and on PostgreSQL.

PostgreSQL: one migrated template database per run, cloned for each test, with the
services' unprivileged roles created by the real migrations; all dropped at the end. In
CI (CI=true) an unreachable server fails the run; elsewhere its tests skip with a reason.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from libs.common.config import Settings
from services.suite.runtime import migrate
from tests.support import Suite, running_suite

PG_ADMIN = os.environ.get("BACKOFFICE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{dbname}".replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass
class PostgresRun:
    prefix: str
    template: str
    counter: itertools.count[int]

    @property
    def app_role_prefix(self) -> str:
        return f"{self.prefix}_app"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)


def _postgres_unreachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"PostgreSQL at {PG_ADMIN} is unreachable ({str(err).strip().splitlines()[0]})"
    return None


@pytest.fixture(scope="session")
def postgres_run() -> Iterator[PostgresRun]:
    reason = _postgres_unreachable()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    prefix = f"bo_test_{secrets.token_hex(4)}"
    run = PostgresRun(prefix, f"{prefix}_template", itertools.count(1))
    with run.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(run.template)))
    migrate(
        Settings(
            database_url=_url(run.template),
            app_role_prefix=run.app_role_prefix,
            data_dir=Path("/nonexistent"),
        )
    )
    try:
        yield run
    finally:
        with run.admin() as conn:
            names = [
                str(r[0])
                for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)
                )
            ]
            for name in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            roles = [
                str(r[0])
                for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"{prefix}%",))
            ]
            for role in roles:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sqlite-template")
    migrate(Settings(data_dir=directory))
    return directory


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    yield from _settings(backend, tmp_path, request)


@pytest.fixture
def postgres_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """For what only PostgreSQL has (row-level security, roles)."""
    yield from _settings("postgres", tmp_path, request)


@pytest.fixture
def postgres_suite(postgres_settings: Settings) -> Iterator[Suite]:
    with running_suite(postgres_settings, migrated=True) as s:
        yield s


def _settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        for db in template.glob("*.db"):
            shutil.copy(db, tmp_path / db.name)
        yield Settings(data_dir=tmp_path, grants_cache_seconds=0, shutdown_grace_seconds=5)
        return
    run: PostgresRun = request.getfixturevalue("postgres_run")
    name = f"{run.prefix}_{next(run.counter)}"
    with run.admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(run.template)
            )
        )
    try:
        yield Settings(
            data_dir=tmp_path,
            database_url=_url(name),
            app_role_prefix=run.app_role_prefix,
            grants_cache_seconds=0,
            shutdown_grace_seconds=5,
        )
    finally:
        with run.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def suite(settings: Settings) -> Iterator[Suite]:
    with running_suite(settings, migrated=True) as s:
        yield s
