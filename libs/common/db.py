"""Engines, sessions and the tenancy guard of the data layer.

Two guards keep each organisation's rows to itself:
1. Every ORM query on a `TenantOwned` model is filtered to the unit of work's scope
   (`do_orm_execute` + `with_loader_criteria`), and a flush refuses to write a row outside
   it. With no scope the filter matches nothing: it fails closed. It acts on statements
   that select ORM entities or attributes (anywhere in them: subqueries, joins, aliases);
   one made only of Core constructs (`text()`, a table's `.c` columns, a bare
   `select(exists())`) is not filtered and must name its organisations itself.
2. On PostgreSQL, row-level security applies the same rule to every statement, ORM or
   hand-written SQL, because the services run as a role that owns no table and does not
   bypass RLS; the scope is set per transaction with `set_config('app.orgs', ..., true)`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import BindParameter, MetaData, String, bindparam, create_engine, event, exists, or_, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import visitors
from sqlalchemy.sql.expression import TableClause

from libs.common.access import Scope
from libs.common.audit import flush_pending

try:
    import fcntl as _flock
except ImportError:  # not POSIX: writers of one process still queue on the thread lock
    _flock = None  # type: ignore[assignment]


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
SCOPE_KEY = "scope"


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class _Scoped:
    """Base of the tenancy mixins: declaring a model of one changes what the filter knows."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registry = globals().get("_TENANT_REGISTRY")  # absent while the mixins themselves are made
        if registry is not None:
            registry.forget()


class TenantOwned(_Scoped):
    """Mixin for rows owned by one organisation (its GSS or X code)."""

    organisation_code: Mapped[str] = mapped_column(String(9), nullable=False)


class PartyOwned(_Scoped):
    """Mixin for rows that belong to two organisations at once (an agreement): either
    party sees them."""

    organisation_code: Mapped[str] = mapped_column(String(9), nullable=False)
    counterparty_code: Mapped[str] = mapped_column(String(9), nullable=False)


class SharedWithParticipants(_Scoped):
    """Mixin for rows owned by `organisation_code` and also visible to the organisations
    that its participants table lists (a contract's participants, an aggregation's
    invitees). Subclasses name `__participants__`: a PartyOwned model whose
    `organisation_code` is the owner, `counterparty_code` the participant, and whose
    `__participant_key__` attribute holds the shared row's `id`."""

    organisation_code: Mapped[str] = mapped_column(String(9), nullable=False)
    __participants__: ClassVar[Any]
    __participant_key__: ClassVar[str]


# The organisations of the transaction in progress, read when a statement executes. The
# loader criteria below are built once; their organisations are a bound parameter whose value
# comes from here, so no statement is rebuilt per call and none can carry another call's
# organisations. Unset means no organisations: nothing matches (fail closed).
_CODES: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("tenant_codes", default=())


def _codes() -> list[str]:
    return list(_CODES.get())


def owned_by_one_organisation(model: type) -> bool:
    """Rows of `model` belong to their organisation alone (not shared with a counterparty or
    with participants): code may read and write them with Core statements, checking the
    scope by hand (`in_scope`, `check_organisations_writable`)."""
    return issubclass(model, TenantOwned) and not issubclass(model, PartyOwned | SharedWithParticipants)


def sole_organisation(cls: type) -> str | None:
    """The one organisation every visible row of `cls` belongs to in the transaction in
    progress, when there is one: the scope names a single organisation and `cls` is owned by
    its organisation alone (not shared with a counterparty or participants)."""
    codes = _CODES.get()
    return codes[0] if len(codes) == 1 and owned_by_one_organisation(cls) else None


def _tenant_codes() -> BindParameter[Any]:
    return bindparam("tenant_codes", callable_=_codes, expanding=True)


def _criterion(cls: type) -> Any:
    """The loader option that limits one mapped tenant class to the scope's organisations."""
    if issubclass(cls, SharedWithParticipants):
        participants = cls.__participants__
        clause = or_(
            cls.organisation_code.in_(_tenant_codes()),
            exists().where(
                participants.organisation_code == cls.organisation_code,
                getattr(participants, cls.__participant_key__) == cls.id,  # type: ignore[attr-defined]
                participants.counterparty_code.in_(_tenant_codes()),
            ),
        )
    elif issubclass(cls, PartyOwned):
        clause = or_(cls.organisation_code.in_(_tenant_codes()), cls.counterparty_code.in_(_tenant_codes()))
    else:
        clause = cls.organisation_code.in_(_tenant_codes())  # type: ignore[attr-defined]
    return with_loader_criteria(cls, clause, include_aliases=True)


class _TenantRegistry:
    """The mapped tenant classes by table name, and the loader options for each set of them.

    A statement gets the options of the tenant tables it mentions (subqueries, joins and
    aliases included) and no others: an option for a class that is absent filters nothing
    but costs every execution its share of the statement's cache key, and with every
    service's models loaded there are dozens. Mapping a table name to more classes than the
    table's own (two services with a table of one name) only adds options, never drops one.
    """

    def __init__(self) -> None:
        self._by_table: dict[str, tuple[type, ...]] | None = None
        self._options: dict[frozenset[str], tuple[Any, ...]] = {}
        # A statement built once and run many times (a repository's fetch by key) keeps its
        # filtered form, and with it the compiled cache's key, for as long as it lives.
        self._filtered: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def forget(self) -> None:
        """A tenant model was declared: recompute on next use."""
        with self._lock:
            self._by_table = None
            self._options = {}
            self._filtered = weakref.WeakKeyDictionary()

    def filtered(self, statement: Any) -> Any:
        """`statement` with the loader options of the tenant tables it mentions."""
        with self._lock:
            found = self._filtered.get(statement)
        if found is None:
            options = self.options_for(statement)
            found = statement.options(*options) if options else statement
            with self._lock:
                self._filtered[statement] = found
        return found

    def _tables(self) -> dict[str, tuple[type, ...]]:
        by_table = self._by_table
        if by_table is None:
            found: dict[str, list[type]] = {}
            for cls in _tenant_classes():
                found.setdefault(cls.__table__.name, []).append(cls)  # type: ignore[attr-defined]
            by_table = self._by_table = {name: tuple(classes) for name, classes in found.items()}
        return by_table

    def options_for(self, statement: Any) -> tuple[Any, ...]:
        by_table = self._tables()
        names = frozenset(
            element.name
            for element in visitors.iterate(statement)
            if isinstance(element, TableClause) and element.name in by_table
        )
        options = self._options.get(names)
        if options is None:
            classes: list[type] = []
            for name in sorted(names):
                for cls in by_table[name]:
                    classes.append(cls)
                    if issubclass(cls, SharedWithParticipants):
                        classes.append(cls.__participants__)
            options = self._options[names] = tuple(_criterion(cls) for cls in dict.fromkeys(classes))
        return options


_TENANT_REGISTRY = _TenantRegistry()


def _tenant_classes() -> list[type]:
    """Every mapped tenant class."""
    found: list[type] = []
    for base in (TenantOwned, PartyOwned, SharedWithParticipants):
        stack = list(base.__subclasses__())
        while stack:
            cls = stack.pop()
            stack.extend(cls.__subclasses__())
            if "__tablename__" in cls.__dict__ and cls not in found:
                found.append(cls)
    return found


class TenantScopeViolation(RuntimeError):
    """A write outside the call's scope: a bug, never a user error."""


def quote_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a safe SQL identifier")
    return f'"{name}"'


def is_postgres(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def _sqlite_file(engine: Engine) -> str | None:
    """The file of a SQLite database; None in memory."""
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return os.path.abspath(name)


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use psycopg 3 for both."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql" and u.drivername != "postgresql+psycopg":
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def make_engine(
    url: str,
    *,
    schema: str | None = None,
    role: str | None = None,
    pool_size: int = 8,
    lock_timeout_s: float = 10.0,
    statement_timeout_s: float = 60.0,
) -> Engine:
    """An engine for a service. On PostgreSQL, `schema` is the service's own schema and
    `role` the unprivileged role its connections take on (SET ROLE) when the login user
    is another; on SQLite, WAL, foreign keys and a busy timeout are switched on."""
    url = normalise_url(url)
    if is_postgres(url):
        # No pre-ping: it costs a round trip on every transaction. `Database.session` instead
        # retries the transaction's first statement once on a connection found dead.
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)

        @event.listens_for(engine, "connect")
        def _pg_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            with dbapi_conn.cursor() as cur:
                if role:
                    cur.execute("SELECT current_user = %s", (role,))
                    if not cur.fetchone()[0]:
                        cur.execute(f"SET ROLE {quote_identifier(role)}")
                if schema:
                    cur.execute(f"SET search_path TO {quote_identifier(schema)}")
                # A call's database work is bounded, so a blocked call cannot hold a pod
                # past its shutdown grace for ever.
                cur.execute(f"SET lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
                cur.execute(f"SET statement_timeout = '{int(statement_timeout_s * 1000)}ms'")
            dbapi_conn.commit()

        return engine

    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from pysqlite so that writers can BEGIN IMMEDIATE and
        # never fail on a read-to-write lock upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # busy_timeout first, so that every later statement waits for locks rather than
        # failing at once; switching to WAL needs an exclusive lock, so only when needed
        # (migrations leave the file in WAL already).
        cur.execute("PRAGMA busy_timeout=30000")
        if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        # SQLite's own lower() folds ASCII only: a case-insensitive search (`:`) for "Émile"
        # would find on PostgreSQL what it misses here.
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        # Straight to the driver: through exec_driver_sql this one statement cost as much
        # as a query (a tenth of a purchase flow's transactions' overhead).
        begin = conn.get_execution_options().get("sqlite_begin", "BEGIN")
        try:
            conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
        except sqlite3.Error as err:  # as SQLAlchemy would raise it: "database is locked" is busy
            raise DBAPIError.instance(begin, None, err, sqlite3.Error) from err

    return engine


def _tenant_filter(state: ORMExecuteState) -> None:
    # Loader criteria act on ORM entities only: a Core statement (the audit log's and the
    # idempotency records', which filter by organisation themselves, backed by RLS) would
    # pay for options that can never apply to it.
    if not state.is_orm_statement or state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    scope = state.session.info.get(SCOPE_KEY)
    if scope is ALL_ORGANISATIONS:
        return
    state.statement = _TENANT_REGISTRY.filtered(state.statement)


def _tenant_flush_guard(session: Session, _context: object, _instances: object) -> None:
    for obj in session.new:
        check_writable(session, obj, creating=True)
    for obj in session.dirty:
        check_writable(session, obj, creating=False)


def check_writable(session: Session, obj: object, *, creating: bool) -> None:
    """Refuses (`TenantScopeViolation`) a row of another organisation than the transaction's
    scope: what the flush guard checks of every new and changed row."""
    scope = session.info.get(SCOPE_KEY)
    if scope is ALL_ORGANISATIONS:
        return
    # A shared row is created by its owner; participants may change one they can see
    # (the domain decides what), which the query filter already limited.
    if (
        creating
        and isinstance(obj, SharedWithParticipants)
        and (not isinstance(scope, Scope) or obj.organisation_code not in scope)
    ):
        raise TenantScopeViolation(
            f"refusing to create a {type(obj).__name__} of organisation "
            f"{obj.organisation_code} outside the call's scope"
        )
    if isinstance(obj, TenantOwned | PartyOwned):
        owners = {obj.organisation_code}
        if isinstance(obj, PartyOwned):
            owners.add(obj.counterparty_code)
        if not isinstance(scope, Scope) or not owners & scope.organisations:
            raise TenantScopeViolation(
                f"refusing to write a {type(obj).__name__} of organisation "
                f"{obj.organisation_code} outside the call's scope"
            )


def check_organisations_writable(session: Session, row_type: type, organisations: set[str]) -> None:
    """`check_writable` for rows of one organisation each that are written by plain values
    (Core statements), not as instances: each named organisation must be in the scope."""
    scope = session.info.get(SCOPE_KEY)
    if scope is ALL_ORGANISATIONS:
        return
    outside = organisations - scope.organisations if isinstance(scope, Scope) else organisations
    if outside:
        raise TenantScopeViolation(
            f"refusing to write a {row_type.__name__} of organisation "
            f"{', '.join(sorted(outside))} outside the call's scope"
        )


def in_scope(session: Session, organisation: str) -> bool:
    """Whether the transaction's scope sees rows of `organisation`: what the tenant filter
    adds to ORM statements, for a Core statement on a table of rows of one organisation."""
    scope = session.info.get(SCOPE_KEY)
    return scope is ALL_ORGANISATIONS or (isinstance(scope, Scope) and organisation in scope.organisations)


ORGANISATIONS_SETTING = "app.orgs"


@functools.cache
def _set_config(names: tuple[str, ...]) -> Any:
    """One statement that sets these transaction-local settings (their values bound by
    name), or pings when there are none."""
    if not names:
        return text("SELECT 1")
    for name in names:
        if not re.fullmatch(r"app\.[a-z_]+", name):
            raise ValueError(f"not an application setting: {name!r}")
    calls = ", ".join(f"set_config('{name}', :{name.replace('.', '_')}, true)" for name in names)
    return text(f"SELECT {calls}")


class SqliteWriterLock:
    """One writer at a time on a SQLite file, over the threads of this process and over
    processes (`backoffice serve --workers`). SQLite allows one writer anyway; queued here,
    a writer starts the moment the last one commits, where SQLite's own busy handler polls
    with sleeps of up to 100 ms: with two workers one process kept the database and the
    other starved, at a third of a core.
    The threads of a process queue on a thread lock; the process holding it then waits on
    an exclusive `flock` of `<database>.writer-lock`, which the kernel frees if the process
    dies. Without a file (in memory) or `fcntl` (not POSIX), the thread lock alone."""

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database_path}.writer-lock" if database_path and _flock is not None else None
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # Opened in the process that locks: a descriptor inherited through fork would share
        # its lock with the parent's.
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._path is None or _flock is None:
            return
        try:
            _flock.flock(self._file(), _flock.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._path is not None and _flock is not None and self._fd is not None:
                _flock.flock(self._fd, _flock.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class _AllOrganisations:
    """The scope of administrative commands (audit verification) run as the owner."""


ALL_ORGANISATIONS = _AllOrganisations()


class Database:
    """One service's database: engine, sessions, and per-transaction tenant scope."""

    def __init__(self, engine: Engine, *, schema: str | None = None) -> None:
        self.engine = engine
        self.schema = schema
        self.is_postgres = engine.dialect.name == "postgresql"
        # PostgreSQL's writers overlap, ordered by row locks; SQLite's queue here.
        self.writer_lock: contextlib.AbstractContextManager[object] = (
            contextlib.nullcontext() if self.is_postgres else SqliteWriterLock(_sqlite_file(engine))
        )
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
        event.listen(self._sessions, "do_orm_execute", _tenant_filter)
        event.listen(self._sessions, "before_flush", _tenant_flush_guard)
        event.listen(self._sessions, "before_commit", flush_pending)

    @contextmanager
    def session(
        self, scope: Scope | _AllOrganisations, *, write: bool, settings: Mapping[str, str] | None = None
    ) -> Iterator[Session]:
        """A session in one transaction, scoped to `scope`; rolled back unless committed.
        `settings` are PostgreSQL settings local to the transaction (the outbox relay's),
        set with the scope in its first statement."""
        session = self._sessions()
        session.info[SCOPE_KEY] = scope
        codes = tuple(sorted(scope.organisations)) if isinstance(scope, Scope) else ()
        token = _CODES.set(codes)
        try:
            self._begin(session, scope, write, settings or {})
            yield session
        finally:
            # Closing rolls back what was not committed (the connection goes back to the
            # pool reset); a `rollback()` first would also restore the ORM's snapshot of a
            # session that is discarded anyway: 17 µs of a 98 µs read transaction.
            session.close()
            _CODES.reset(token)

    def _begin(
        self, session: Session, scope: Scope | _AllOrganisations, write: bool, settings: Mapping[str, str]
    ) -> None:
        options = {"sqlite_begin": "BEGIN IMMEDIATE"} if write else {}
        for attempt in (1, 2):
            try:
                session.connection(execution_options=options)
                if self.is_postgres:
                    # The first statement also finds a connection the server has dropped
                    # (a restart, a failover): it is discarded and the pool gives another.
                    values = dict(settings)
                    if isinstance(scope, Scope):
                        values[ORGANISATIONS_SETTING] = ",".join(sorted(scope.organisations))
                    params = {name.replace(".", "_"): value for name, value in values.items()}
                    session.execute(_set_config(tuple(sorted(values))), params)
                return
            except DBAPIError as err:
                if attempt == 2 or not err.connection_invalidated:
                    raise
                session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
        if isinstance(self.writer_lock, SqliteWriterLock):
            self.writer_lock.close()


def check_unprivileged(engine: Engine) -> None:
    """Refuse to serve from a PostgreSQL role that would defeat row-level security."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT current_user, r.rolsuper, r.rolbypassrls, "
                "EXISTS (SELECT 1 FROM pg_tables t WHERE t.tableowner = current_user "
                "AND t.schemaname = current_schema()) "
                "FROM pg_roles r WHERE r.rolname = current_user"
            )
        ).one()
    user, superuser, bypass, owns = row
    if superuser or bypass or owns:
        raise RuntimeError(
            f"database role {user!r} is a superuser, bypasses row-level security or owns the "
            "service's tables; the services must run as an unprivileged role (see "
            "BACKOFFICE_APP_ROLE_PREFIX and `backoffice migrate`)"
        )
