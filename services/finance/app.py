"""Composition root of the finance service."""

from __future__ import annotations

import grpc

from backoffice.finance.v1 import finance_service_pb2, finance_service_pb2_grpc
from libs.common.access import GrantSource, RoleCatalogue
from libs.common.app import build_kernel
from libs.common.config import Settings
from libs.common.outbox import Discarded
from libs.common.peers import Peers
from libs.common.server import ServiceApp
from services.finance import roles
from services.finance.api.servicer import FinanceServicer
from services.finance.persistence.models import KERNEL

NAME = "finance"
DESCRIPTORS = [finance_service_pb2.DESCRIPTOR.services_by_name["FinanceService"]]
__all__ = ["DESCRIPTORS", "KERNEL", "NAME", "OUTBOX_DISCARDED", "build", "catalogue"]
# It publishes no events.
OUTBOX_DISCARDED: dict[str, Discarded] = {}


def catalogue() -> RoleCatalogue:
    return RoleCatalogue(roles.ROLES)


def build(settings: Settings, page_secret: bytes, grants: GrantSource) -> ServiceApp:
    kernel = build_kernel(NAME, settings, page_secret, grants, KERNEL)
    peers = Peers()
    servicer = FinanceServicer(kernel, catalogue(), peers, settings.peer_timeout_seconds)

    def register(server: grpc.aio.Server) -> None:
        finance_service_pb2_grpc.add_FinanceServiceServicer_to_server(servicer, server)

    return ServiceApp(
        NAME, DESCRIPTORS, register, catalogue(), close=kernel.close, kernel=kernel, peers=peers
    )
