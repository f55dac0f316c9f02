"""Append-only tables of a service (ledger postings and the like), declared in its own
migrations.

`protect_append_only(table)` in a migration does two things:
1. a trigger refuses UPDATE and DELETE on the table for everyone, on PostgreSQL and on
   SQLite alike (a later migration that must change rows drops it first);
2. on PostgreSQL it marks the table (a comment), so that `grant_app_role`, which runs after
   every migration and grants the service's role DML on all its tables, revokes UPDATE,
   DELETE and TRUNCATE on marked tables again (`append_only_revocations`).

The kernel's own append-only tables (the audit log) are listed in `kernel_tables`; this is
the same promise for the tables a service declares.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from libs.common.db import quote_identifier

MARKER = "backoffice:append-only"

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION backoffice_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def protect_append_only(table: str) -> None:
    name = quote_identifier(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            f"CREATE TRIGGER {quote_identifier(f'{table}_append_only')} BEFORE UPDATE OR DELETE ON {name} "
            "FOR EACH ROW EXECUTE FUNCTION backoffice_refuse_change()"
        )
        op.execute(f"COMMENT ON TABLE {name} IS '{MARKER}'")
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {quote_identifier(f'{table}_no_{action.lower()}')} BEFORE {action} ON {name} "
            f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only'); END"
        )


def append_only_tables(conn: Connection, schema: str) -> list[str]:
    """The tables of `schema` that a migration marked append-only (PostgreSQL)."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind = 'r' "
            "AND obj_description(c.oid, 'pg_class') = :marker ORDER BY c.relname"
        ),
        {"schema": schema, "marker": MARKER},
    )
    return [str(r[0]) for r in rows]


def append_only_revocations(conn: Connection, schema: str, role: str) -> list[str]:
    """The statements that take UPDATE, DELETE and TRUNCATE on marked tables from `role`."""
    return [
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {quote_identifier(schema)}.{quote_identifier(t)} "
        f"FROM {quote_identifier(role)}"
        for t in append_only_tables(conn, schema)
    ]
