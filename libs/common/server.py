"""Server bootstrap: `create_server(app, ...) -> RunningServer` binds (port 0 in tests),
with health, reflection and the interceptors; `run_until_signal` drains on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from libs.common import operations
from libs.common.access import RoleCatalogue
from libs.common.auth import TokenVerifier
from libs.common.grpc_access import rules_of
from libs.common.interceptors import AuthInterceptor, CallPipeline, ErrorInterceptor, LoggingInterceptor
from libs.common.logging import get_logger
from libs.common.outbox import Discarded, OutboxRelay
from libs.common.peers import Peers
from libs.common.service import ServiceKernel

log = get_logger("backoffice.server")

# Clients re-resolve (and so spread over new pods) when the server ages connections out.
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_connection_age_ms", 5 * 60 * 1000),
    ("grpc.max_connection_age_grace_ms", 30 * 1000),
    ("grpc.so_reuseport", 0),
    # A bulk request (10,000 people with every field at its longest is ~6 MiB) must fit.
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


async def _nothing() -> None:
    return None


class _GenericHandlersOnly:
    """What the generated `add_*Servicer_to_server` functions see of the server.

    They register each service twice: as a generic handler and as "registered methods". For
    every registered method grpc.aio keeps a pending request future, and its accept loop
    waits on all of them for each call that arrives (`asyncio.wait`, O(methods)): with
    procurement's ~50 methods that was about a tenth of a Get. The generic handler alone
    serves the same methods, so registration stops there.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, _service: str, _handlers: object) -> None:
        return None


@dataclass
class ServiceApp:
    """One back-office service, ready to be served: built by its composition root."""

    name: str
    descriptors: Sequence[ServiceDescriptor]
    register: Callable[[grpc.aio.Server], None]
    catalogue: RoleCatalogue
    close: Callable[[], Awaitable[None]] = _nothing
    # The relay of the events it publishes, if it publishes any (started by start_suite).
    relay: OutboxRelay | None = None
    # Its calls to the other services (wired by start_suite), if it makes any.
    peers: Peers | None = None
    # The kernel its business methods stand on: the operations API (outbox, audit) is
    # served over it too.
    kernel: ServiceKernel | None = None
    # What follows when operations discard one of its events, by topic.
    discarded: Mapping[str, Discarded] = field(default_factory=dict)


@dataclass
class RunningServer:
    app: ServiceApp
    server: grpc.aio.Server
    port: int
    health: HealthServicer
    address: str = field(default="")

    async def stop(self, grace: float) -> None:
        """Stop taking calls (health goes NOT_SERVING), let calls in flight finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.app.close()


async def create_server(
    app: ServiceApp,
    verifier: TokenVerifier,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    reuse_port: bool = False,
) -> RunningServer:
    """`reuse_port` lets several worker processes listen on one port (SO_REUSEPORT): the
    kernel spreads connections over them. Off by default, so that a port already taken is
    an error rather than a silent second listener."""
    # Every service also answers the operations API about its own outbox and audit log.
    kernel = app.kernel
    descriptors = [*app.descriptors, *([operations.DESCRIPTOR] if kernel is not None else [])]
    server = grpc.aio.server(
        interceptors=[
            CallPipeline(
                LoggingInterceptor(app.name),
                ErrorInterceptor(),
                AuthInterceptor(verifier, rules_of(*descriptors), app.catalogue),
            )
        ],
        options=[(k, 1 if k == "grpc.so_reuseport" and reuse_port else v) for k, v in SERVER_OPTIONS],
    )
    registrar = cast(grpc.aio.Server, _GenericHandlersOnly(server))
    app.register(registrar)
    if kernel is not None:
        operations.register(registrar, kernel, app.discarded)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, registrar)
    names = [d.full_name for d in descriptors]
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,  # its one method adds one future to the wait; it must see the real aio server
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as err:  # grpc's "Failed to bind", with no reason
        raise PortUnavailable(app.name, host, port) from err
    if bound == 0:
        raise PortUnavailable(app.name, host, port)
    await server.start()
    for name in ["", *names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(app, server, bound, health, address=f"{host}:{bound}")
    log.info("serving", service=app.name, address=running.address)
    return running


class PortUnavailable(OSError):
    """A service cannot listen where it was told to: said in one line, for the operator."""

    def __init__(self, service: str, host: str, port: int) -> None:
        # The default ports lie in Linux's ephemeral range (32768-60999): another program's
        # outgoing connection may hold one for a moment.
        super().__init__(
            f"{service} cannot listen on {host}:{port}: the port is in use or not ours to take; "
            "try again, or choose free ports with BACKOFFICE_PORTS"
        )


def freeze_startup_heap() -> None:
    """Takes what starting the process built (modules, mappers, compiled statements,
    descriptors: it lives as long as the process) out of the garbage collector's full
    passes. Those walked all of it every few seconds under load and stopped every call for
    50–80 ms (measured on the suite); what calls create is collected as before."""
    gc.collect()
    gc.freeze()


async def run_until_signal(servers: Sequence[RunningServer], grace: float) -> None:
    """Serve until SIGTERM or SIGINT, then drain every server within `grace` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # After the handlers: a SIGTERM during the collection (~0.1 s) must drain, not kill.
    freeze_startup_heap()
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("draining", grace_seconds=grace)
    await asyncio.gather(*(s.stop(grace) for s in servers))
    log.info("stopped")
