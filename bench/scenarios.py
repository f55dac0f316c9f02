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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import grpc

from backoffice.directory.v1 import directory_service_pb2, directory_service_pb2_grpc
from backoffice.finance.v1 import finance_service_pb2_grpc
from backoffice.hr.v1 import hr_service_pb2_grpc
from backoffice.procurement.v1 import procurement_service_pb2, procurement_service_pb2_grpc, supplier_pb2
from bench.servers import ECHO_METHOD, INSERT_METHOD

if TYPE_CHECKING:
    from bench.seed import Job, Seeder

UNIT = "X00000101"  # Yorkshire and the Humber Police Shared Services (reference data)
COMMERCIAL = "procurement.commercial"

ServerKind = Literal["echo", "insert", "suite"]
Kind = Literal["read", "write", "ceiling", "job"]
Fixture = Any  # JSON: whatever a setup returns and its calls need
Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Identity:
    """Who the load generator calls as: its token's organisation and roles."""

    organisation: str
    roles: tuple[str, ...]
    subject: str = "bench"


Metadata = tuple[tuple[str, str], ...]


@dataclass
class Clients:
    """One load-generator process's channels (one per server address) and credentials:
    `metadata` carries the scenario's own identity, `as_(name)` one of its other callers
    (`Scenario.identities`)."""

    channels: dict[str, grpc.aio.Channel]
    metadata: Metadata = ()
    timeout: float = 30.0
    callers: dict[str, Metadata] = field(default_factory=dict)
    # Which load-generator process this is, of how many (to share out a setup's pool).
    process_index: int = 0
    processes: int = 1
    # Warm-up + duration of the timed run (a setup sizes its pools from it).
    planned_seconds: float = 0.0

    def channel(self, name: str) -> grpc.aio.Channel:
        return self.channels[name]

    def as_(self, caller: str) -> Metadata:
        return self.callers[caller]

    def finance(self) -> finance_service_pb2_grpc.FinanceServiceAsyncStub:
        return finance_service_pb2_grpc.FinanceServiceStub(self.channels["finance"])

    def hr(self) -> hr_service_pb2_grpc.HrServiceAsyncStub:
        return hr_service_pb2_grpc.HrServiceStub(self.channels["hr"])

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
    # Other callers the scenario needs (a requester's approver...), as `clients.as_(name)`.
    identities: tuple[tuple[str, Identity], ...] = ()
    # Calls in flight regardless of --concurrency: 1 where a target is a time (one call
    # alone), so that the figure is the service's time, not queueing.
    concurrency: int | None = None
    # Timed once per number of load-generator processes, e.g. (1, 4); () is --clients.
    client_processes: tuple[int, ...] = ()
    # Scenarios whose data this one reads: selected with it and run before it.
    needs: tuple[str, ...] = ()
    # After `setup`, in the orchestrator: bulk SQL into the service's own database (data
    # at a scale the API would take too long to make); returns the fixture.
    prepare: Callable[[Seeder, Fixture], Fixture] | None = None
    # Instead of a timed load: one job run once by the orchestrator (e.g. the HR import
    # through `backoffice hr import`), returning what a load generator would.
    job: Callable[[Job, Fixture], dict[str, Any]] | None = None

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


@dataclass(frozen=True)
class LatencyTarget:
    """p50 of `scenario` (run at its own concurrency, 1 for these) at most `max_ms`."""

    scenario: str
    max_ms: float
    backends: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.scenario} p50 <= {self.max_ms:g} ms"


@dataclass(frozen=True)
class FlatnessTarget:
    """p50 of `large` (the same call over much more data) at most `max_factor` x `small`'s."""

    large: str
    small: str
    max_factor: float

    def describe(self) -> str:
        return f"{self.large} p50 <= {self.max_factor:g} x {self.small} p50"


@dataclass(frozen=True)
class DurationTarget:
    """A job (`Scenario.job`) done in at most `max_seconds` of wall time."""

    scenario: str
    max_seconds: float
    backends: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.scenario} in <= {self.max_seconds:g} s"


@dataclass(frozen=True)
class FlowTarget:
    """At least `min_per_s` (at the best number of client processes), and more with the
    most client processes than with the fewest."""

    scenario: str
    min_per_s: float

    def describe(self) -> str:
        return f"{self.scenario} >= {self.min_per_s:g} flows/s, and more with 4 clients than 1"


@dataclass(frozen=True)
class WorkersTarget:
    """With `workers` server processes per service, the read scales at least `min_share`
    as well as the bare echo does: (read with N workers / read with 1) >= min_share x
    (echo with N / echo with 1), all measured with the same load generators."""

    scenario: str
    workers: int
    min_share: float

    def describe(self) -> str:
        return (
            f"{self.scenario} with {self.workers} workers gains >= {self.min_share:.0%} "
            f"of what {self.workers} workers give ceiling.echo"
        )


Target = (
    RatioTarget | TailTarget | LatencyTarget | FlatnessTarget | DurationTarget | FlowTarget | WorkersTarget
)

TARGETS: list[Target] = [
    RatioTarget("procurement.create_supplier", 0.60),
    RatioTarget("procurement.create_requisition", 0.60),
    RatioTarget("procurement.get_supplier", 0.60),
    TailTarget("procurement.get_supplier", 0.5, 3.0),
    FlatnessTarget("procurement.list_suppliers_deep_large", "procurement.list_suppliers_deep_small", 1.5),
    LatencyTarget("finance.trial_balance", 50.0, ("postgres",)),
    LatencyTarget("finance.budget_report", 50.0, ("postgres",)),
    DurationTarget("hr.import", 60.0, ("postgres",)),
    LatencyTarget("hr.workforce_statistics", 1000.0, ("postgres",)),
    FlowTarget("procurement.purchase_flow", 140.0),
    WorkersTarget("procurement.get_supplier", 2, 0.90),
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


# The services' other scenarios (issue 9) register themselves in bench/workloads.py.
from bench import workloads  # noqa: E402, F401
