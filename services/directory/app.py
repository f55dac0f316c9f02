"""Composition root of the directory service."""

from __future__ import annotations

import grpc

from backoffice.directory.v1 import directory_service_pb2, directory_service_pb2_grpc
from libs.common.access import AccessPolicy, RoleCatalogue
from libs.common.config import Settings
from libs.common.db import Database, make_engine
from libs.common.paging import Pager
from libs.common.server import ServiceApp
from libs.common.service import ServiceKernel
from services.directory import roles
from services.directory.api.servicer import DirectoryServicer, LocalGrantSource
from services.directory.persistence.models import KERNEL

NAME = "directory"
DESCRIPTORS = [directory_service_pb2.DESCRIPTOR.services_by_name["DirectoryService"]]


def catalogue() -> RoleCatalogue:
    return RoleCatalogue(roles.ROLES, everyone=roles.EVERYONE)


def build(settings: Settings, page_secret: bytes) -> ServiceApp:
    engine = make_engine(
        settings.database_url_for(NAME),
        schema=NAME,
        role=settings.app_role_for(NAME),
        pool_size=settings.db_pool_size,
    )
    db = Database(engine, schema=NAME)
    kernel = ServiceKernel(
        name=NAME,
        db=db,
        tables=KERNEL,
        policy=AccessPolicy(LocalGrantSource(db)),
        pager=Pager(page_secret),
        pool_size=settings.db_pool_size,
    )
    servicer = DirectoryServicer(kernel)

    def register(server: grpc.aio.Server) -> None:
        directory_service_pb2_grpc.add_DirectoryServiceServicer_to_server(servicer, server)

    return ServiceApp(NAME, DESCRIPTORS, register, catalogue(), close=kernel.close)
