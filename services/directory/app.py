"""Composition root of the directory service."""

from __future__ import annotations

import grpc

from backoffice.directory.v1 import directory_service_pb2, directory_service_pb2_grpc
from libs.common.access import GrantSource, RoleCatalogue
from libs.common.app import build_database, build_kernel
from libs.common.config import Settings
from libs.common.outbox import Discarded
from libs.common.server import ServiceApp
from services.directory import roles
from services.directory.api.servicer import DirectoryServicer, LocalGrantSource
from services.directory.persistence.models import KERNEL

NAME = "directory"
DESCRIPTORS = [directory_service_pb2.DESCRIPTOR.services_by_name["DirectoryService"]]
__all__ = ["DESCRIPTORS", "KERNEL", "NAME", "OUTBOX_DISCARDED", "build", "catalogue"]
# It publishes no events.
OUTBOX_DISCARDED: dict[str, Discarded] = {}


def catalogue() -> RoleCatalogue:
    return RoleCatalogue(roles.ROLES, everyone=roles.EVERYONE)


def build(settings: Settings, page_secret: bytes, grants: GrantSource | None = None) -> ServiceApp:
    """The directory answers its own access questions from its tables; `grants` is unused."""
    db = build_database(NAME, settings)
    kernel = build_kernel(NAME, settings, page_secret, LocalGrantSource(db), KERNEL, db=db)
    servicer = DirectoryServicer(kernel)

    def register(server: grpc.aio.Server) -> None:
        directory_service_pb2_grpc.add_DirectoryServiceServicer_to_server(servicer, server)

    return ServiceApp(NAME, DESCRIPTORS, register, catalogue(), close=kernel.close, kernel=kernel)
