"""The scenario registry: what each benchmark calls, against which server, as whom.

A scenario names the server process it needs (`echo`, `insert` or the real `suite`), the
identity its token carries, an optional `setup` (run once, through the real API, before
the timed runs; it returns a JSON fixture), and `make_call`, which builds one worker's
call from the fixture. Reads are compared with the echo ceiling, writes with the insert
ceiling of the same backend.

To add a scenario (requisitions, journals, an HR import...), write its setup and call
and `register(Scenario(...))` it below; to hold it to a figure, add a target to TARGETS.
A service the suite does not start yet needs its stub in `Clients` and its address
comes from the suite server's READY line automatically.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import grpc

from backoffice.directory.v1 import directory_service_pb2, directory_service_pb2_grpc
from backoffice.procurement.v1 import procurement_service_pb2, procurement_service_pb2_grpc, supplier_pb2
from bench.servers import ECHO_METHOD, INSERT_METHOD

UNIT = "X00000101"  # Yorkshire and the Humber Police Shared Services (reference data)
COMMERCIAL = "procurement.commercial"

ServerKind = Literal["echo", "insert", "suite"]
Kind = Literal["read", "write", "ceiling"]
Fixture = Any  # JSON: whatever a setup returns and its calls need
Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Identity:
    """Who the load generator calls as: its token's organisation and roles."""

    organisation: str
    roles: tuple[str, ...]
    subject: str = "bench"


@dataclass
class Clients:
    """One load-generator process's channels (one per server address) and credentials."""

    channels: dict[str, grpc.aio.Channel]
    metadata: tuple[tuple[str, str], ...] = ()
    timeout: float = 30.0

    def channel(self, name: str) -> grpc.aio.Channel:
        return self.channels[name]

    def procurement(self) -> procurement_service_pb2_grpc.ProcurementServiceAsyncStub:
        return procurement_service_pb2_grpc.ProcurementServiceStub(self.channels["procurement"])

    def directory(self) -> directory_service_pb2_grpc.DirectoryServiceAsyncStub:
        return directory_service_pb2_grpc.DirectoryServiceStub(self.channels["directory"])


@dataclass(frozen=True)
class Scenario:
    name: str
    server: ServerKind
    kind: Kind
    summary: str
    make_call: Callable[[Clients, Fixture, random.Random], Call]
    identity: Identity | None = None
    setup: Callable[[Clients], Awaitable[Fixture]] | None = None

    @property
    def ceiling(self) -> str | None:
        """The ceiling this scenario's throughput is compared with."""
        if self.kind == "write":
            return "ceiling.insert"
        if self.kind == "read":
            return "ceiling.echo"
        return None


REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    if scenario.name in REGISTRY:
        raise ValueError(f"scenario {scenario.name} registered twice")
    REGISTRY[scenario.name] = scenario
    return scenario


# ---------------------------------------------------------------------------------------
# Targets: figures the product is held to, checked after every full run.


@dataclass(frozen=True)
class RatioTarget:
    """Throughput of `scenario` at least `min_ratio` of its ceiling, per backend."""

    scenario: str
    min_ratio: float

    def describe(self) -> str:
        ceiling = REGISTRY[self.scenario].ceiling
        return f"{self.scenario} >= {self.min_ratio:.0%} of {ceiling}"


@dataclass(frozen=True)
class TailTarget:
    """At `rate_fraction` of the scenario's own measured maximum throughput (an open,
    rate-limited load), p99 at most `max_p99_over_p50` times p50."""

    scenario: str
    rate_fraction: float
    max_p99_over_p50: float

    def describe(self) -> str:
        return (
            f"{self.scenario} p99 <= {self.max_p99_over_p50:g} x p50 "
            f"at {self.rate_fraction:.0%} of its max calls/s"
        )


Target = RatioTarget | TailTarget

TARGETS: list[Target] = [
    RatioTarget("procurement.create_supplier", 0.60),
    RatioTarget("procurement.get_supplier", 0.60),
    TailTarget("procurement.get_supplier", 0.5, 3.0),
]


# ---------------------------------------------------------------------------------------
# Ceilings.

_ECHO_PAYLOAD = 100  # bytes: about a Get request and a small response
_INSERT_PAYLOAD = 300  # bytes: about one supplier row


def _echo_call(clients: Clients, _fixture: Fixture, rng: random.Random) -> Call:
    method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = clients.channel("ceiling").unary_unary(
        ECHO_METHOD
    )
    payload = rng.randbytes(_ECHO_PAYLOAD)

    async def call() -> object:
        return await method(payload, timeout=clients.timeout)

    return call


def _insert_call(clients: Clients, _fixture: Fixture, rng: random.Random) -> Call:
    method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = clients.channel("ceiling").unary_unary(
        INSERT_METHOD
    )
    payload = rng.randbytes(_INSERT_PAYLOAD)

    async def call() -> object:
        return await method(payload, timeout=clients.timeout)

    return call


register(
    Scenario(
        "ceiling.echo",
        "echo",
        "ceiling",
        "bare grpc.aio unary echo, bytes in and out: what the stack can do with no work",
        _echo_call,
    )
)
register(
    Scenario(
        "ceiling.insert",
        "insert",
        "ceiling",
        "bare grpc.aio unary RPC inserting and committing one row (SQLAlchemy Core, thread pool)",
        _insert_call,
    )
)


# ---------------------------------------------------------------------------------------
# Procurement: the supplier register.

_AS_COMMERCIAL = Identity(UNIT, (COMMERCIAL,))
_VALID_VAT = "GB123456782"


def _new_supplier(n: int) -> procurement_service_pb2.CreateSupplierRequest:
    return procurement_service_pb2.CreateSupplierRequest(
        parent=f"organisations/{UNIT}",
        supplier=supplier_pb2.Supplier(
            display_name=f"Bench Supplier {n} Ltd",
            vat_number=_VALID_VAT,
            address_lines=["1 Park Row", "Leeds"],
            postcode="LS1 5HD",
            sme=n % 2 == 0,
        ),
        request_id=str(uuid.uuid4()),
    )


async def create_suppliers(clients: Clients, count: int, in_flight: int = 8) -> list[str]:
    """Create `count` suppliers through the real API; their resource names, in order."""
    stub = clients.procurement()
    numbers = iter(range(count))
    names: dict[int, str] = {}

    async def worker() -> None:
        for n in numbers:
            created = await stub.CreateSupplier(
                _new_supplier(n), metadata=clients.metadata, timeout=clients.timeout
            )
            names[n] = created.name

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return [names[n] for n in range(count)]


def _create_supplier_call(clients: Clients, _fixture: Fixture, rng: random.Random) -> Call:
    stub = clients.procurement()
    numbers = itertools.count(rng.randrange(1_000_000) * 1_000_000)

    async def call() -> object:
        # A fresh request_id per call: every call is a new create, never a replay.
        return await stub.CreateSupplier(
            _new_supplier(next(numbers)), metadata=clients.metadata, timeout=clients.timeout
        )

    return call


async def _get_setup(clients: Clients) -> Fixture:
    return {"names": await create_suppliers(clients, 100)}


def _get_supplier_call(clients: Clients, fixture: Fixture, rng: random.Random) -> Call:
    stub = clients.procurement()
    names: Sequence[str] = fixture["names"]

    async def call() -> object:
        return await stub.GetSupplier(
            procurement_service_pb2.GetSupplierRequest(name=rng.choice(names)),
            metadata=clients.metadata,
            timeout=clients.timeout,
        )

    return call


_LIST_PREFILL = 300


async def _list_setup(clients: Clients) -> Fixture:
    await create_suppliers(clients, _LIST_PREFILL)
    return {"register_size_at_least": _LIST_PREFILL}


def _list_suppliers_call(clients: Clients, _fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.procurement()
    request = procurement_service_pb2.ListSuppliersRequest(parent=f"organisations/{UNIT}", page_size=100)

    async def call() -> object:
        response = await stub.ListSuppliers(request, metadata=clients.metadata, timeout=clients.timeout)
        if len(response.suppliers) != request.page_size:
            raise AssertionError(f"a page of {len(response.suppliers)} suppliers, not {request.page_size}")
        return response

    return call


register(
    Scenario(
        "procurement.create_supplier",
        "suite",
        "write",
        "CreateSupplier as the shared-service unit: auth, validation, tenancy, idempotency "
        "record (fresh request_id), audit record, commit",
        _create_supplier_call,
        identity=_AS_COMMERCIAL,
    )
)
register(
    Scenario(
        "procurement.get_supplier",
        "suite",
        "read",
        "GetSupplier of a random one of 100 suppliers created beforehand",
        _get_supplier_call,
        identity=_AS_COMMERCIAL,
        setup=_get_setup,
    )
)
register(
    Scenario(
        "procurement.list_suppliers",
        "suite",
        "read",
        f"ListSuppliers, first page of 100 over a register of at least {_LIST_PREFILL}",
        _list_suppliers_call,
        identity=_AS_COMMERCIAL,
        setup=_list_setup,
    )
)


# ---------------------------------------------------------------------------------------
# Directory.

_ORGANISATIONS_PAGE = 50


def _list_organisations_call(clients: Clients, _fixture: Fixture, _rng: random.Random) -> Call:
    stub = clients.directory()
    request = directory_service_pb2.ListOrganisationsRequest(page_size=_ORGANISATIONS_PAGE)

    async def call() -> object:
        response = await stub.ListOrganisations(request, metadata=clients.metadata, timeout=clients.timeout)
        if len(response.organisations) != _ORGANISATIONS_PAGE:
            raise AssertionError(f"a page of {len(response.organisations)} organisations")
        return response

    return call


register(
    Scenario(
        "directory.list_organisations",
        "suite",
        "read",
        f"ListOrganisations, first page of {_ORGANISATIONS_PAGE} of the reference organisations",
        _list_organisations_call,
        identity=Identity(UNIT, (COMMERCIAL,)),
    )
)
