"""Running each service's own Alembic environment, hardened.

On PostgreSQL a migrator takes an advisory lock (two never race), sets lock and statement
timeouts, runs one transaction per migration inside the service's own schema, and then
grants the service's unprivileged application role what it needs, and no more: it owns
nothing, so row-level security binds it, and it cannot change or delete audit records.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from libs.common.append_only import append_only_revocations
from libs.common.db import is_postgres, normalise_url, quote_identifier
from libs.common.kernel_tables import (
    APPEND_ONLY_TABLES,
    KERNEL_TABLE_COLUMNS,
    OUTBOX_EVENTS,
    OUTBOX_EVENTS_INDEXES,
    outbox_events_columns,
)

REPO_SERVICES = Path(__file__).resolve().parents[2] / "services"

# Rows are visible when their organisation is in the transaction's scope. With no scope
# set, string_to_array(NULL) makes the comparison NULL: nothing is visible (fail closed).
SCOPE_ARRAY = "string_to_array(NULLIF(current_setting('app.orgs', true), ''), ',')"


def tenant_predicate(*columns: str) -> str:
    return " OR ".join(f"{c} = ANY ({SCOPE_ARRAY})" for c in columns)


def enable_tenant_isolation(table: str, *columns: str) -> None:
    """Row-level security on a tenant-owned table (PostgreSQL only; SQLite relies on the
    ORM guard alone)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    predicate = tenant_predicate(*(columns or ("organisation_code",)))
    name = quote_identifier(table)
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {name} USING ({predicate}) WITH CHECK ({predicate})")


def enable_shared_isolation(table: str, participants: str, participant_key: str) -> None:
    """Row-level security for a SharedWithParticipants table: its owner, or an
    organisation its participants table lists, sees it (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    name, parts = quote_identifier(table), quote_identifier(participants)
    key = quote_identifier(participant_key)
    # Identifiers only, each checked by quote_identifier; no values are interpolated.
    predicate = (
        f"{tenant_predicate('organisation_code')} OR EXISTS (SELECT 1 FROM {parts} p "  # noqa: S608
        f"WHERE p.organisation_code = {name}.organisation_code AND p.{key} = {name}.id "
        f"AND p.counterparty_code = ANY ({SCOPE_ARRAY}))"
    )
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {name} USING ({predicate}) WITH CHECK ({predicate})")


def create_kernel_tables() -> None:
    """The audit log and idempotency tables, in a service's first migration."""
    for name, columns in KERNEL_TABLE_COLUMNS.items():
        op.create_table(name, *columns())
        enable_tenant_isolation(name)


def create_outbox_table() -> None:
    """The transactional outbox (`libs/common/outbox.py`), in a later migration of each
    service. Rows are tenant-owned; the relay, which works across organisations, sees them
    when its transaction sets `app.outbox_relay` (it never reads other tenant tables so)."""
    op.create_table(OUTBOX_EVENTS, *outbox_events_columns())
    for index, columns in OUTBOX_EVENTS_INDEXES.items():
        op.create_index(index, OUTBOX_EVENTS, list(columns))
    if op.get_bind().dialect.name != "postgresql":
        return
    relay = "current_setting('app.outbox_relay', true) = 'on'"
    predicate = f"({tenant_predicate('organisation_code')}) OR {relay}"
    name = quote_identifier(OUTBOX_EVENTS)
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {name} USING ({predicate}) WITH CHECK ({predicate})")


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    config = context.config
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(
            normalise_url(config.get_main_option("sqlalchemy.url") or ""), poolclass=NullPool
        )
        with engine.connect() as conn:
            _run(conn, target_metadata)
        return
    _run(connection, target_metadata)


def _run(connection: Connection, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transaction_per_migration=True,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def alembic_config(service: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(REPO_SERVICES / service / "migrations"))
    return config


def upgrade(service: str, url: str, *, app_role: str | None, revision: str = "head") -> None:
    """Bring a service's database (its schema on PostgreSQL) to `revision`."""
    url = normalise_url(url)
    if not is_postgres(url):
        db_path = url.removeprefix("sqlite:///")
        if db_path and db_path != url:
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=NullPool)
    config = alembic_config(service)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                schema = quote_identifier(service)
                conn.execute(text("SET lock_timeout = '10s'"))
                conn.execute(text("SET statement_timeout = '15min'"))
                conn.execute(
                    text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": f"backoffice-migrate-{service}"}
                )
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
                conn.execute(text(f"SET search_path TO {schema}"))
                conn.commit()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            if conn.dialect.name == "sqlite":
                # WAL persists in the file: the services then never need the exclusive
                # lock that switching modes takes.
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            if conn.dialect.name == "postgresql":
                if app_role:
                    grant_app_role(conn, service, app_role)
                conn.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:key))"),
                    {"key": f"backoffice-migrate-{service}"},
                )
                conn.commit()
    finally:
        engine.dispose()


def grant_app_role(conn: Connection, schema_name: str, app_role: str) -> None:
    role, schema = quote_identifier(app_role), quote_identifier(schema_name)
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": app_role}).first()
    if not exists:
        # NOLOGIN: the services reach it with SET ROLE from their login user.
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        f"REVOKE ALL ON {schema}.alembic_version FROM {role}",
        f"GRANT SELECT ON {schema}.alembic_version TO {role}",
    ]
    statements += [
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{quote_identifier(t)} FROM {role}"
        for t in APPEND_ONLY_TABLES
    ]
    # Tables a service's own migrations declared append-only (libs/common/append_only.py).
    statements += append_only_revocations(conn, schema_name, app_role)
    for statement in statements:
        conn.execute(text(statement))
