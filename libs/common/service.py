"""What a servicer stands on: access decisions, and reads and writes in one transaction.

`ServiceKernel.write` is the only way a mutating RPC touches the database: it replays a
retried `request_id`, runs the use case, refuses a mutation that wrote no audit record,
remembers the response, and commits all of it together (or none of it).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from libs.common.access import AccessKind, AccessPolicy, AccessRule, RoleCatalogue, Scope
from libs.common.audit import AuditLog
from libs.common.clock import today_london
from libs.common.context import Call, Principal, current_call
from libs.common.db import Database
from libs.common.errors import Aborted, DomainError, FailedPrecondition, NotFound, PermissionDenied
from libs.common.idempotency import IdempotencyStore, check_request_id, request_hash
from libs.common.kernel_tables import KernelTables
from libs.common.outbox import Outbox
from libs.common.paging import Pager

T = TypeVar("T")
R = TypeVar("R", bound=Message)

# Set, in a worker thread, when the call it works for was cancelled.
_cancelled: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("cancelled", default=None)

# PostgreSQL serialization failure and deadlock: the whole transaction may simply be retried.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
_MAX_ATTEMPTS = 3


# A figure beyond its column (numeric_value_out_of_range): a sum of amounts each within
# MAX_AMOUNT can still pass what 64-bit pence hold.
_OUT_OF_RANGE_SQLSTATE = "22003"


# The same on SQLite: its driver cannot bind an integer past 64 bits, and raises this (an
# OverflowError, not a DBAPI error, so SQLAlchemy passes it on unwrapped) from the execute.
_SQLITE_INTEGER_OVERFLOW = "Python int too large to convert to SQLite INTEGER"


def _beyond_what_the_database_holds(err: Exception) -> bool:
    """PostgreSQL's numeric_value_out_of_range, or the SQLite driver refusing to bind an
    integer past 64 bits (by its message). Any other OverflowError (a date computed past
    the calendar's end: "date value out of range") is a bug, answered as INTERNAL."""
    if isinstance(err, DBAPIError):
        return getattr(err.orig, "sqlstate", None) == _OUT_OF_RANGE_SQLSTATE
    return isinstance(err, OverflowError) and str(err) == _SQLITE_INTEGER_OVERFLOW


def _out_of_range() -> FailedPrecondition:
    return FailedPrecondition(
        "a total this change would store is beyond what the database holds; nothing was changed",
        reason="AMOUNT_OUT_OF_RANGE",
    )


# Lock and statement timeouts (PostgreSQL), and SQLite's busy timeout running out.
_BUSY_SQLSTATES = {"55P03", "57014"}


def _busy(err: OperationalError) -> bool:
    sqlstate = getattr(err.orig, "sqlstate", None)
    return sqlstate in _BUSY_SQLSTATES or "database is locked" in str(err.orig)


@dataclass
class Transaction:
    """One database transaction of one call, handed to a service's unit of work."""

    session: Session
    audit: AuditLog
    scope: Scope
    call: Call | None
    tables: KernelTables | None = None
    _outbox: Outbox | None = field(default=None, init=False, repr=False)

    @property
    def outbox(self) -> Outbox:
        """Events published in this transaction: they commit with the change or not at all."""
        if self._outbox is None:
            if self.tables is None:
                raise RuntimeError("this transaction has no kernel tables to publish through")
            self._outbox = Outbox(self.session, self.tables, self.scope)
        return self._outbox

    @property
    def principal_id(self) -> str:
        return self.call.principal.id if self.call and self.call.principal else "system"

    @property
    def acting_organisation(self) -> str | None:
        """The unit acting for the scope's organisation, when that is what is happening."""
        if self.call is None or self.call.principal is None or not self.call.acting_for:
            return None
        return self.call.principal.organisation


class ServiceKernel:
    def __init__(
        self,
        *,
        name: str,
        db: Database,
        tables: KernelTables,
        policy: AccessPolicy,
        pager: Pager,
        catalogue: RoleCatalogue | None = None,
        pool_size: int = 8,
        today: Callable[[], dt.date] = today_london,
    ) -> None:
        self.name = name
        self.db = db
        self.tables = tables
        self.policy = policy
        self.pager = pager
        self.catalogue = catalogue or RoleCatalogue()
        self.today = today
        # Called (on the loop) after a change that published outbox events due at once
        # commits: the service's relay delivers them now rather than at its next poll.
        self.on_published: Callable[[], None] | None = None
        # Database work runs on threads so that the event loop keeps serving other calls.
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"{name}-db")

    async def close(self) -> None:
        # Work still running after the grace period is not waited for here: it sees its
        # call cancelled and rolls back at its commit (see `write`), and the database's
        # lock and statement timeouts bound how long it can block.
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()

    @staticmethod
    def _call_and_rule() -> tuple[Call, AccessRule]:
        call = current_call()
        if call.principal is None or call.rule is None:
            raise RuntimeError("no authenticated call: the auth interceptor did not run")
        return call, call.rule

    def permits(self, permission: str) -> bool:
        """Whether the caller's roles grant a permission beyond the method's own (to see
        an OFFICIAL-SENSITIVE field, say)."""
        return self.catalogue.grants(self.caller().roles, permission)

    def caller(self) -> Principal:
        call, _ = self._call_and_rule()
        assert call.principal is not None
        return call.principal

    async def scope_in(self, organisation: str) -> Scope:
        """The scope for reading or changing one organisation's named resources: itself
        or nothing, so that an invisible resource reads as NOT_FOUND."""
        call, rule = self._call_and_rule()
        assert call.principal is not None
        scope = await self.policy.scope_in(call.principal, rule, organisation, self.today())
        call.acting_for = scope.acting_for
        return scope

    async def scope_of(self, resource_name: str, organisation: str) -> Scope:
        """The scope for reading or changing one named resource of `organisation`; a
        resource the caller may not touch is NOT_FOUND, so its existence never leaks."""
        scope = await self.scope_in(organisation)
        if not scope.organisations:
            raise NotFound(resource_name)
        return scope

    async def require_in(self, organisation: str) -> Scope:
        """The scope for creating in an organisation; refuses with the reason."""
        call, rule = self._call_and_rule()
        assert call.principal is not None
        scope = await self.policy.require_in(call.principal, rule, organisation, self.today())
        call.acting_for = scope.acting_for
        return scope

    async def scope_everywhere(self) -> Scope:
        call, rule = self._call_and_rule()
        assert call.principal is not None
        return await self.policy.scope_everywhere(call.principal, rule, self.today())

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        cancelled = threading.Event()
        token = _cancelled.set(cancelled)
        try:
            ctx = contextvars.copy_context()
        finally:
            _cancelled.reset(token)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, ctx.run, fn)
        except OperationalError as err:
            if _busy(err):
                raise Aborted(
                    "the database was too busy to finish this call in time; retry it",
                    reason="DATABASE_BUSY",
                ) from err
            raise
        except asyncio.CancelledError:
            # The caller has gone (deadline, cancel, or shutdown past its grace): the
            # thread keeps running, so tell it not to commit what nobody will hear of.
            cancelled.set()
            raise

    async def read(self, scope: Scope, fn: Callable[[Transaction], T]) -> T:
        call = current_call()

        def work() -> T:
            with self.db.session(scope, write=False) as session:
                return fn(
                    Transaction(session, AuditLog(session, self.tables, call), scope, call, self.tables)
                )

        return await self._in_thread(work)

    def _retrying(
        self,
        scope: Scope,
        attempt: Callable[[], R],
        replay: Callable[[IdempotencyStore], R | None] | None,
    ) -> R:
        """Runs a write, retrying what the database asks to be retried, and maps conflicts
        to ABORTED. A request whose request_id was used before, by a request that was
        answered, gets that answer (or REQUEST_ID_REUSED) instead of what its own attempt
        came to: a refusal, a conflict, or the clash of remembering the id again."""

        def earlier() -> R | None:
            if replay is None:
                return None
            with self.db.session(scope, write=False) as session:
                return replay(IdempotencyStore(session, self.tables))

        for attempt_no in range(1, _MAX_ATTEMPTS + 1):
            try:
                return attempt()
            except DomainError:
                if (answered := earlier()) is not None:
                    return answered
                raise
            except StaleDataError as err:
                if (answered := earlier()) is not None:
                    return answered
                raise Aborted(
                    "the resource changed while this request was handled; read it again and retry",
                    reason="CONCURRENT_CHANGE",
                ) from err
            except IntegrityError as err:
                # The request was answered before, or a concurrent retry committed first.
                if (answered := earlier()) is not None:
                    return answered
                raise Aborted(
                    "a concurrent change conflicted with this request; retry it",
                    reason="CONCURRENT_CHANGE",
                ) from err
            except (OverflowError, DBAPIError) as err:
                if _beyond_what_the_database_holds(err):
                    raise _out_of_range() from err
                sqlstate = getattr(getattr(err, "orig", None), "sqlstate", None)
                if sqlstate in _RETRYABLE_SQLSTATES and attempt_no < _MAX_ATTEMPTS:
                    continue
                if sqlstate in _RETRYABLE_SQLSTATES:
                    raise Aborted(
                        "the database could not serialise this change; retry it",
                        reason="CONCURRENT_CHANGE",
                    ) from err
                raise
        raise AssertionError("unreachable")

    def _replayer(
        self, scope: Scope, request: Message, response_type: type[R]
    ) -> tuple[str, str, str, Callable[[IdempotencyStore], R | None]]:
        """The organisation a change acts in, the request's request_id and fingerprint, and
        how to read the answer stored for them."""
        call, _ = self._call_and_rule()
        if len(scope.organisations) != 1:
            raise PermissionDenied("a change must act inside exactly one organisation")
        (organisation,) = scope.organisations
        request_id: str = getattr(request, "request_id", "")
        if request_id:
            check_request_id(request_id)
        fingerprint = request_hash(call.method, request) if request_id else ""
        assert call.principal is not None
        principal = call.principal.id

        def replay(store: IdempotencyStore) -> R | None:
            stored = store.replay(organisation, request_id, call.method, fingerprint, principal)
            if stored is None:
                return None
            response = response_type()
            response.ParseFromString(stored)
            return response

        return organisation, request_id, fingerprint, replay

    async def answered(self, scope: Scope, request: Message, response_type: type[R]) -> R | None:
        """The answer stored for an earlier call with this request's request_id, if any. For
        a change that must ask another service before its transaction: a retry is answered
        as the first call was, rather than by what that service says now (or UNAVAILABLE)."""
        _, request_id, _, replay = self._replayer(scope, request, response_type)
        if not request_id:
            return None

        def work() -> R | None:
            with self.db.session(scope, write=False) as session:
                return replay(IdempotencyStore(session, self.tables))

        return await self._in_thread(work)

    async def write(
        self,
        scope: Scope,
        request: Message,
        response_type: type[R],
        fn: Callable[[Transaction], R],
    ) -> R:
        call, rule = self._call_and_rule()
        if rule.kind is not AccessKind.WRITE:
            raise RuntimeError(f"{call.method} is declared read-only but writes")
        organisation, request_id, fingerprint, replay = self._replayer(scope, request, response_type)
        assert call.principal is not None
        principal = call.principal.id

        def attempt() -> R:
            # The request_id is not looked up first: remembering it at the end fails on the
            # unique key when it was used before, and so does a retry's change when it
            # cannot be made again; `_retrying` then answers with the stored response. A
            # SELECT saved on every write, paid for by a retry's redone (rolled-back) work.
            with self.db.writer_lock, self.db.session(scope, write=True) as session:
                store = IdempotencyStore(session, self.tables)
                audit = AuditLog(session, self.tables, call)
                tx = Transaction(session, audit, scope, call, self.tables)
                response = fn(tx)
                if audit.records_written == 0:
                    raise RuntimeError(f"{call.method} changed data without an audit record")
                if request_id:
                    store.remember(
                        organisation=organisation,
                        request_id=request_id,
                        method=call.method,
                        principal=principal,
                        fingerprint=fingerprint,
                        response=response.SerializeToString(deterministic=True),
                    )
                # Last before the commit: the chain's head stays locked from here to the
                # commit, and every write of the organisation queues for it. And written
                # now, not at commit: a call cut off while it waited for that lock must
                # not commit.
                audit.flush()
                if (cancelled := _cancelled.get()) is not None and cancelled.is_set():
                    raise Aborted(
                        "the call was cancelled before its change was committed",
                        reason="CANCELLED_BEFORE_COMMIT",
                    )
                session.commit()
                if tx._outbox is not None and tx._outbox.due_now:
                    due.set()
                return response

        due = threading.Event()

        def work() -> R:
            return self._retrying(scope, attempt, replay if request_id else None)

        response = await self._in_thread(work)
        if due.is_set() and self.on_published is not None:
            self.on_published()
        return response
