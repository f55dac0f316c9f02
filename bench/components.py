"""Per-call cost of the parts of a call, one call at a time in one process: a check on the
profiles of bench/run.py, and the evidence for where a change would pay.

    python bench/components.py [--backend sqlite|postgres|both] [--seconds 1.0]
    python bench/components.py --drivers [--in-flight 1,8,32]   # PostgreSQL: one read, four ways

Each component runs for about `--seconds`, one call after another; the figures are wall
time and process CPU time (every thread) per call, in microseconds. The servicer rows call
procurement's real servicer methods (as registered on a gRPC server by the service's own
composition root) without gRPC and without the interceptors, with the call context the
auth interceptor would set. The database rows use the real schema, migrated by
`services.suite.runtime.migrate` into a temporary directory or a temporary PostgreSQL
database that is dropped at the end. Only public entry points are used, so that the
services can change inside without breaking this.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import io
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
for _path in (ROOT / "gen" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import grpc  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from backoffice.procurement.v1 import procurement_service_pb2 as pb  # noqa: E402
from backoffice.procurement.v1 import supplier_pb2  # noqa: E402
from bench import harness  # noqa: E402
from bench.run import DEFAULT_ADMIN_URL  # noqa: E402
from libs.common.access import Grant, Scope  # noqa: E402
from libs.common.auth import TokenIssuer, TokenVerifier  # noqa: E402
from libs.common.config import Settings  # noqa: E402
from libs.common.context import Call, set_call  # noqa: E402
from libs.common.db import ALL_ORGANISATIONS, Database, make_engine, quote_identifier  # noqa: E402
from libs.common.grpc_access import rules_of  # noqa: E402
from libs.common.persistence import read_by_key, values_of  # noqa: E402
from services.suite.runtime import migrate  # noqa: E402

UNIT = "X00000101"
SERVICE = "backoffice.procurement.v1.ProcurementService"


def _say(component: str, backend: str, wall_us: float, cpu_us: float) -> None:
    print(f"  {component:<62} {backend:<9} {wall_us:9.1f} us  {cpu_us:9.1f} us CPU", flush=True)


async def measure(
    name: str, backend: str, fn: Callable[[], object], seconds: float, in_flight: int = 1
) -> None:
    """Call `fn` (awaiting what it returns, if anything) one call after another for about
    `seconds`, after a short warm-up; with `in_flight` > 1, that many callers at once, and
    the wall time is then the window over the calls made (1 / throughput)."""

    async def once() -> None:
        result = fn()
        if inspect.isawaitable(result):
            await result

    for _ in range(20 * in_flight):
        await once()
    calls = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    deadline = wall0 + seconds

    async def caller() -> None:
        nonlocal calls
        while calls < 1_000_000 and time.perf_counter() < deadline:
            await once()
            calls += 1

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    _say(name, backend, wall / calls * 1e6, cpu / calls * 1e6)


class _NoGrants:
    async def grants_for(self, holder: str) -> list[Grant]:
        return []


class _CapturingServer:
    """Stands in for grpc.aio.Server in a ServiceApp's `register`: keeps the handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, _handlers: object) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


async def _close(closer: Callable[[], object]) -> None:
    result = closer()
    if inspect.isawaitable(result):
        await result


async def process_costs(seconds: float, data_dir: Path) -> None:
    from libs.common.logging import configure_logging, get_logger

    settings = Settings(data_dir=data_dir)
    token = TokenIssuer.from_settings(settings).mint("bench", UNIT, ["procurement.commercial"])
    verifier = TokenVerifier.from_settings(settings)
    executor = ThreadPoolExecutor(max_workers=8)
    loop = asyncio.get_running_loop()
    sink = io.StringIO()
    with redirect_stderr(sink):
        configure_logging("json", "INFO")
        log = get_logger("backoffice.rpc")

    def log_line() -> None:
        if sink.tell() > 10_000_000:
            sink.seek(0)
            sink.truncate()
        with redirect_stderr(sink):
            log.info(
                "rpc",
                code="OK",
                duration_ms=1.23,
                organisation=UNIT,
                principal=f"{UNIT}/bench",
                acting_for=None,
                reason=None,
                method=f"/{SERVICE}/GetSupplier",
                request_id=str(uuid.uuid4()),
            )

    async def hop() -> object:
        return await loop.run_in_executor(executor, int)

    await measure(
        "token verification (TokenVerifier.verify, EdDSA)", "-", lambda: verifier.verify(token), seconds
    )
    await measure("one JSON log line (structlog, as the logging interceptor)", "-", log_line, seconds)
    await measure("thread hop (run_in_executor of a no-op)", "-", hop, seconds)
    executor.shutdown()


class _Procurement:
    """Procurement's real servicer on a migrated database, called without gRPC."""

    def __init__(self, backend: harness.Backend) -> None:
        from libs.common.server import ServiceApp
        from services.procurement import app as procurement_app
        from services.suite.runtime import page_secret

        settings_kwargs: dict[str, Any] = {"data_dir": backend.data_dir}
        if backend.suite_database_url:
            settings_kwargs["database_url"] = backend.suite_database_url
            settings_kwargs["app_role_prefix"] = backend.app_role_prefix
        self.settings = settings = Settings(**settings_kwargs)
        migrate(settings)
        token = TokenIssuer.from_settings(settings).mint("bench", UNIT, ["procurement.commercial"])
        self.principal = TokenVerifier.from_settings(settings).verify(token)
        secret = page_secret(settings, settings.signing_key_path().read_bytes())
        self.app: ServiceApp = procurement_app.build(settings, secret, _NoGrants())
        self._server = _CapturingServer()
        self.app.register(cast(grpc.aio.Server, self._server))
        self._rules = rules_of(*self.app.descriptors)

    async def rpc(self, method: str, request: object) -> Any:
        full = f"/{SERVICE}/{method}"
        set_call(Call(full, str(uuid.uuid4()), self.principal, self._rules[full]))
        behaviour = cast(Callable[[object, object], Awaitable[Any]], self._server.handlers[full].unary_unary)
        return await behaviour(request, None)

    def engine(self) -> Any:
        """An engine of the service's database with the service's settings."""
        return make_engine(
            self.settings.database_url_for("procurement"),
            schema="procurement",
            role=self.settings.app_role_for("procurement"),
            pool_size=self.settings.db_pool_size,
        )


def _supplier_rows() -> Any:
    from services.procurement.persistence import models

    return next(
        m.class_ for m in models.Base.registry.mappers if getattr(m.local_table, "name", None) == "suppliers"
    )


async def service_costs(backend: harness.Backend, seconds: float) -> None:
    procurement = _Procurement(backend)
    app, rpc, name = procurement.app, procurement.rpc, backend.name

    def create() -> Awaitable[supplier_pb2.Supplier]:
        return cast(
            Awaitable[supplier_pb2.Supplier],
            rpc(
                "CreateSupplier",
                pb.CreateSupplierRequest(
                    parent=f"organisations/{UNIT}",
                    supplier=supplier_pb2.Supplier(
                        display_name="Bench Supplier Ltd",
                        vat_number="GB123456782",
                        address_lines=["1 Park Row", "Leeds"],
                        postcode="LS1 5HD",
                    ),
                    request_id=str(uuid.uuid4()),
                ),
            ),
        )

    created = await create()
    supplier_id = created.name.rsplit("/", 1)[1]
    for _ in range(150):
        await create()
    get = pb.GetSupplierRequest(name=created.name)
    page = pb.ListSuppliersRequest(parent=f"organisations/{UNIT}", page_size=100)

    # The kernel's database layer on its own, with the service's engine settings.
    engine = procurement.engine()
    db = Database(engine, schema="procurement")
    scope = Scope.of(UNIT)
    row_class = _supplier_rows()
    by_key = text("SELECT * FROM suppliers WHERE organisation_code = :o AND id = :i")

    def empty_session() -> None:
        with db.session(scope, write=False):
            pass

    def orm_get(within: object) -> Callable[[], object]:
        def run() -> object:
            with db.session(within, write=False) as session:  # type: ignore[arg-type]
                return session.scalars(
                    select(row_class).where(row_class.organisation_code == UNIT, row_class.id == supplier_id)
                ).first()

        return run

    def core_get() -> object:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT set_config('app.orgs', :o, true)"), {"o": UNIT})
            return conn.execute(by_key, {"o": UNIT, "i": supplier_id}).first()

    def core_read_by_key() -> object:
        with db.session(scope, write=False) as session:
            return read_by_key(session, row_class, {"organisation_code": UNIT, "id": supplier_id})

    values = values_of(row_class)
    page_of_values = values.select().order_by(row_class.organisation_code, row_class.id).limit(100)
    page_of_instances = select(row_class).order_by(row_class.organisation_code, row_class.id).limit(100)

    def page_as(instances: bool) -> Callable[[], object]:
        def run() -> object:
            with db.session(scope, write=False) as session:
                if instances:
                    return session.scalars(page_of_instances).all()
                return values.read(session, page_of_values)

        return run

    try:
        await measure("CreateSupplier servicer (no gRPC, no interceptors)", name, create, seconds)
        await measure("GetSupplier servicer", name, lambda: rpc("GetSupplier", get), seconds)
        await measure(
            "ListSuppliers servicer, page of 100", name, lambda: rpc("ListSuppliers", page), seconds
        )
        await measure(
            "read session with nothing in it (scope, BEGIN, rollback)", name, empty_session, seconds
        )
        await measure("ORM select of one supplier in a read session", name, orm_get(scope), seconds)
        if engine.dialect.name == "sqlite":
            # ALL_ORGANISATIONS skips the ORM tenant filter (on PostgreSQL it would also skip
            # set_config, and row-level security would hide the row).
            await measure(
                "  the same with the ORM tenant filter skipped", name, orm_get(ALL_ORGANISATIONS), seconds
            )
        await measure(
            "the same row by read_by_key (Core, scope checked by hand)", name, core_read_by_key, seconds
        )
        await measure("plain SQL select of the same row (no ORM, no session)", name, core_get, seconds)
        await measure("page of 100 suppliers as ORM instances", name, page_as(True), seconds)
        await measure("page of 100 suppliers as plain values (values_of)", name, page_as(False), seconds)
    finally:
        db.dispose()
        await _close(app.close)


async def driver_costs(backend: harness.Backend, seconds: float, in_flights: list[int]) -> None:
    """One supplier read by key in a read transaction with the scope set, four ways, on
    PostgreSQL: the kernel's (an ORM session on a database thread), a SQLAlchemy Core
    connection on a database thread, psycopg alone on a database thread, and psycopg's
    asyncio connection on the event loop. Each holds 8 connections (the kernel's pool) and,
    but the last, 8 threads; the rows say what the layers cost and whether a driver on the
    event loop would pay, one call at a time and with calls overlapping as under load."""
    import psycopg

    procurement = _Procurement(backend)
    created = await procurement.rpc(
        "CreateSupplier",
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}",
            supplier=supplier_pb2.Supplier(display_name="Bench Supplier Ltd", postcode="LS1 5HD"),
            request_id=str(uuid.uuid4()),
        ),
    )
    supplier_id = created.name.rsplit("/", 1)[1]
    role = procurement.settings.app_role_for("procurement")
    engine = procurement.engine()
    db = Database(engine, schema="procurement")
    row_class = _supplier_rows()
    scope = Scope.of(UNIT)
    key = {"organisation_code": UNIT, "id": supplier_id}
    by_key_sql = "SELECT * FROM suppliers WHERE organisation_code = %s AND id = %s"
    set_scope_sql = "SELECT set_config('app.orgs', %s, true)"
    by_key = text("SELECT * FROM suppliers WHERE organisation_code = :o AND id = :i")
    set_scope = text("SELECT set_config('app.orgs', :o, true)")
    executor = ThreadPoolExecutor(max_workers=8)
    loop = asyncio.get_running_loop()

    def kernel_read() -> object:
        with db.session(scope, write=False) as session:
            return read_by_key(session, row_class, key)

    def core_read() -> object:
        with engine.connect() as conn:
            conn.execute(set_scope, {"o": UNIT})
            found = conn.execute(by_key, {"o": UNIT, "i": supplier_id}).first()
            conn.rollback()
            return found

    def driver_read() -> object:
        pooled = engine.raw_connection()  # the engine's own connections: role, schema, timeouts
        try:
            with pooled.cursor() as cur:
                cur.execute(set_scope_sql, (UNIT,))
                cur.execute(by_key_sql, (UNIT, supplier_id))
                found = cur.fetchone()
            pooled.rollback()
            return found
        finally:
            pooled.close()

    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()

    async def asyncio_read() -> object:
        aconn = await idle.get()
        try:
            await aconn.execute(set_scope_sql, (UNIT,))
            found = await (await aconn.execute(by_key_sql, (UNIT, supplier_id))).fetchone()
            await aconn.rollback()
            return found
        finally:
            idle.put_nowait(aconn)

    async def checked() -> None:  # each way must find the row, or the figures mean nothing
        for way in (kernel_read, core_read, driver_read):
            if await loop.run_in_executor(executor, way) is None:
                raise RuntimeError(f"{way.__name__} did not find the supplier")
        if await asyncio_read() is None:
            raise RuntimeError("asyncio_read did not find the supplier")

    def in_thread(read: Callable[[], object]) -> Callable[[], object]:
        return lambda: loop.run_in_executor(executor, read)

    ways: list[tuple[str, Callable[[], object]]] = [
        ("kernel: ORM session, read_by_key, db thread", in_thread(kernel_read)),
        ("SQLAlchemy Core connection, db thread", in_thread(core_read)),
        ("psycopg alone, db thread", in_thread(driver_read)),
        ("psycopg asyncio connection, event loop", asyncio_read),
    ]
    try:
        for _ in range(8):
            aconn = await psycopg.AsyncConnection.connect(conninfo)
            await aconn.execute(f"SET ROLE {quote_identifier(role)}")
            await aconn.execute("SET search_path TO procurement")
            await aconn.commit()
            idle.put_nowait(aconn)
        await checked()
        for n in in_flights:
            for name, fn in ways:
                await measure(f"{name} ({n} in flight)", "postgres", fn, seconds, n)
    finally:
        while not idle.empty():
            await idle.get_nowait().close()
        executor.shutdown()
        db.dispose()
        await _close(procurement.app.close)


async def main_async(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    with harness.work_directory(keep=False) as work:
        if args.drivers:
            with harness.backend("postgres", work, args.postgres_admin_url) as backend:
                await driver_costs(backend, args.seconds, args.in_flight)
            return
        await process_costs(args.seconds, work)
        for name in backends:
            with harness.backend(name, work, args.postgres_admin_url) as backend:
                await service_costs(backend, args.seconds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/components.py", description=__doc__)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    p.add_argument(
        "--drivers", action="store_true", help="only the four ways of one PostgreSQL read (driver_costs)"
    )
    p.add_argument(
        "--in-flight",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[1, 8, 32],
        help="with --drivers: calls at once, e.g. 1,8,32",
    )
    args = p.parse_args(argv)
    if args.backend != "sqlite" or args.drivers:
        harness.check_loopback(args.postgres_admin_url)
        reason = harness.postgres_unreachable(args.postgres_admin_url)
        if reason:
            print(reason, file=sys.stderr)
            return 2
    print(f"  {'component':<62} {'backend':<9} {'wall/call':>12}  {'CPU/call':>13}")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
