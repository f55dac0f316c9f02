"""The models declare what the migrations build, on each backend: a column, an index, a
constraint or a table added to one and not the other fails here, not in a database that a
migration left short of what the code expects (or with an index nobody declared)."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from libs.common.config import Settings
from libs.common.db import is_postgres, quote_identifier
from services.suite.registry import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_build_what_the_models_declare(settings: Settings, service: str) -> None:
    url = settings.database_url_for(service)
    models = importlib.import_module(f"services.{service}.persistence.models")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if is_postgres(url):
                # Each service's tables live in its own schema (libs/common/migrations.py).
                conn.execute(text(f"SET search_path TO {quote_identifier(service)}"))
            found = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    finally:
        engine.dispose()
    # On PostgreSQL the migrations mark append-only tables with a comment, which only they
    # read (libs/common/append_only.py); the models need not repeat it.
    differences = [d for d in found if not (isinstance(d, tuple) and d[0] == "remove_table_comment")]
    assert differences == [], f"{service}: the migrations and the models differ: {differences}"
