"""Administrative commands that run as the database owner, outside any tenant scope."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from libs.common.audit import ChainReport, verify_chains
from libs.common.config import Settings
from libs.common.db import ALL_ORGANISATIONS, Database, make_engine
from libs.common.kernel_tables import KernelTables
from services.suite.registry import SERVICE_APPS

KERNELS: dict[str, KernelTables] = {m.NAME: m.KERNEL for m in SERVICE_APPS}


def verify_audit(
    settings: Settings, services: Sequence[str] | None = None
) -> Iterator[tuple[str, ChainReport]]:
    for name in services or KERNELS:
        db = Database(make_engine(settings.database_url_for(name), schema=name, pool_size=1), schema=name)
        try:
            with db.session(ALL_ORGANISATIONS, write=False) as session:
                for report in verify_chains(session, KERNELS[name]):
                    yield name, report
        finally:
            db.dispose()
