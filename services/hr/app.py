"""Composition root of the HR service."""

from __future__ import annotations

import grpc

from backoffice.hr.v1 import hr_service_pb2, hr_service_pb2_grpc
from libs.common.access import GrantSource, RoleCatalogue
from libs.common.app import build_kernel
from libs.common.config import Settings
from libs.common.outbox import Discarded
from libs.common.server import ServiceApp
from services.hr import roles
from services.hr.api.servicer import HrServicer
from services.hr.persistence.models import KERNEL

NAME = "hr"
DESCRIPTORS = [hr_service_pb2.DESCRIPTOR.services_by_name["HrService"]]
__all__ = ["DESCRIPTORS", "KERNEL", "NAME", "OUTBOX_DISCARDED", "build", "catalogue"]
# It publishes no events.
OUTBOX_DISCARDED: dict[str, Discarded] = {}


def catalogue() -> RoleCatalogue:
    return RoleCatalogue(roles.ROLES)


def build(settings: Settings, page_secret: bytes, grants: GrantSource) -> ServiceApp:
    kernel = build_kernel(NAME, settings, page_secret, grants, KERNEL)
    servicer = HrServicer(kernel)

    def register(server: grpc.aio.Server) -> None:
        hr_service_pb2_grpc.add_HrServiceServicer_to_server(servicer, server)

    return ServiceApp(NAME, DESCRIPTORS, register, catalogue(), close=kernel.close, kernel=kernel)
