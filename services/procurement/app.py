"""Composition root of the procurement service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from backoffice.procurement.v1 import procurement_service_pb2, procurement_service_pb2_grpc
from libs.common.access import AccessPolicy, GrantSource, RoleCatalogue
from libs.common.config import Settings
from libs.common.db import Database, make_engine
from libs.common.paging import Pager
from libs.common.server import ServiceApp
from libs.common.service import ServiceKernel
from services.procurement import roles
from services.procurement.api.servicer import ProcurementServicer
from services.procurement.persistence.models import KERNEL

NAME = "procurement"
DESCRIPTORS = [procurement_service_pb2.DESCRIPTOR.services_by_name["ProcurementService"]]


def catalogue() -> RoleCatalogue:
    return RoleCatalogue(roles.ROLES)


def build(
    settings: Settings,
    page_secret: bytes,
    grants: GrantSource,
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> ServiceApp:
    engine = make_engine(
        settings.database_url_for(NAME),
        schema=NAME,
        role=settings.app_role_for(NAME),
        pool_size=settings.db_pool_size,
    )
    kernel = ServiceKernel(
        name=NAME,
        db=Database(engine, schema=NAME),
        tables=KERNEL,
        policy=AccessPolicy(grants),
        pager=Pager(page_secret),
        pool_size=settings.db_pool_size,
    )
    servicer = ProcurementServicer(kernel)

    def register(server: grpc.aio.Server) -> None:
        procurement_service_pb2_grpc.add_ProcurementServiceServicer_to_server(servicer, server)

    async def close() -> None:
        await kernel.close()
        if on_close is not None:
            await on_close()

    return ServiceApp(NAME, DESCRIPTORS, register, catalogue(), close=close)
