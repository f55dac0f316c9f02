"""What every service's composition root builds the same way: engine, database, kernel."""

from __future__ import annotations

from libs.common.access import AccessPolicy, GrantSource, RoleCatalogue
from libs.common.config import Settings
from libs.common.db import Database, check_unprivileged, make_engine
from libs.common.kernel_tables import KernelTables
from libs.common.paging import Pager
from libs.common.service import ServiceKernel


def build_database(name: str, settings: Settings) -> Database:
    engine = make_engine(
        settings.database_url_for(name),
        schema=name,
        role=settings.app_role_for(name),
        pool_size=settings.db_pool_size,
    )
    # Before anything is served: row-level security is the tenancy, and a superuser, a
    # role with BYPASSRLS or the tables' owner would read every organisation's rows.
    try:
        check_unprivileged(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, schema=name)


def build_kernel(
    name: str,
    settings: Settings,
    page_secret: bytes,
    grants: GrantSource,
    tables: KernelTables,
    *,
    catalogue: RoleCatalogue | None = None,
    db: Database | None = None,
) -> ServiceKernel:
    return ServiceKernel(
        name=name,
        db=db or build_database(name, settings),
        tables=tables,
        policy=AccessPolicy(grants),
        pager=Pager(page_secret),
        catalogue=catalogue,
        pool_size=settings.db_pool_size,
    )
