"""Composition root of the procurement service."""

from __future__ import annotations

import grpc

from backoffice.procurement.v1 import procurement_service_pb2, procurement_service_pb2_grpc
from libs.common.access import GrantSource, RoleCatalogue
from libs.common.app import build_kernel
from libs.common.config import Settings
from libs.common.outbox import OutboxRelay
from libs.common.server import ServiceApp
from services.procurement import roles
from services.procurement.api.finance_events import DISCARDED, HANDLERS
from services.procurement.api.servicer import ProcurementServicer
from services.procurement.persistence.models import KERNEL

NAME = "procurement"
DESCRIPTORS = [procurement_service_pb2.DESCRIPTOR.services_by_name["ProcurementService"]]
__all__ = ["DESCRIPTORS", "KERNEL", "NAME", "OUTBOX_DISCARDED", "build", "catalogue"]
OUTBOX_DISCARDED = DISCARDED


def catalogue() -> RoleCatalogue:
    return RoleCatalogue(roles.ROLES)


def build(settings: Settings, page_secret: bytes, grants: GrantSource) -> ServiceApp:
    kernel = build_kernel(NAME, settings, page_secret, grants, KERNEL, catalogue=catalogue())
    relay = OutboxRelay(NAME, kernel.db, KERNEL, HANDLERS, settings.relay_settings())
    kernel.on_published = relay.wake
    servicer = ProcurementServicer(kernel, settings.ocds_prefix, relay)

    def register(server: grpc.aio.Server) -> None:
        procurement_service_pb2_grpc.add_ProcurementServiceServicer_to_server(servicer, server)

    return ServiceApp(
        NAME,
        DESCRIPTORS,
        register,
        catalogue(),
        close=kernel.close,
        kernel=kernel,
        relay=relay,
        discarded=OUTBOX_DISCARDED,
    )
