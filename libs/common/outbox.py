"""The transactional outbox: events recorded with the change that caused them, delivered
at least once by a relay to the receiving service's gRPC API, with effect exactly once.

- A use case publishes through its transaction (`tx.outbox.publish(topic, key, payload)`):
  the event commits or rolls back with the change and its audit record.
- The relay (`OutboxRelay`, an asyncio task of the publishing service) delivers events in
  `seq` order per key: an event waits while an earlier one of its key is pending or parked.
  Each call has a deadline and presents the service's own token; the event id is the
  receiver's `request_id`, so a redelivery replays the receiver's first answer.
- A receiver's transient failure (UNAVAILABLE, DEADLINE_EXCEEDED, ...) is retried with
  exponential backoff and jitter. A refusal for good (INVALID_ARGUMENT,
  FAILED_PRECONDITION, NOT_FOUND, PERMISSION_DENIED) parks the event with the reason;
  `backoffice outbox retry` and `discard` (audited) release it.
- A call that wants its event's outcome in its own answer holds the event
  (`tx.outbox.hold`) and delivers it itself (`OutboxRelay.deliver_key`): the event is
  due to the relay only after the hold, so no pass, in any worker process, sends it too.
- Any other delivery first claims its event: the claim makes the event due again only
  after the delivery's deadline and `SETTLE_MARGIN_SECONDS`, and only one relay or call,
  in any worker process or pod, gets it. A receiver does not replay a refusal, so a
  second delivery under way at the same time could be answered otherwise. A delivery
  that dies with its pod is taken up again when its claim runs out, and one that overran
  its claim applies nothing: the event changes only under the claim it was sent under.
- A handler may return a `Settle` callback: it runs in the publisher's database in the same
  transaction that marks the event delivered, so the answer is applied exactly once. What
  it returns (the changed resource) goes back to a call that delivered its own event
  (`deliver_key`), which then need not read the resource again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import Exists, Table, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from libs.common.access import Scope
from libs.common.audit import AuditLog
from libs.common.config import RelaySettings
from libs.common.context import Call, Principal, PrincipalKind
from libs.common.db import ALL_ORGANISATIONS, Database
from libs.common.errors import Aborted, FailedPrecondition, NotFound
from libs.common.kernel_tables import KernelTables
from libs.common.logging import get_logger
from libs.common.metrics import OUTBOX_BACKLOG
from libs.common.peers import Peers

if TYPE_CHECKING:
    from libs.common.service import Transaction

log = get_logger("backoffice.outbox")
T = TypeVar("T")

PENDING = "PENDING"
DELIVERED = "DELIVERED"
PARKED = "PARKED"
DISCARDED = "DISCARDED"
STATES = (PENDING, DELIVERED, PARKED, DISCARDED)

# The receiver refused for good: retrying the same request cannot succeed.
PERMANENT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)
# Beyond a delivery's deadline, for applying its answer: until then, a held or claimed
# event is not due to anyone else.
SETTLE_MARGIN_SECONDS = 1.0
# How often a call waiting for another's delivery of an event of its key looks again.
_LOOK_AGAIN_SECONDS = 0.05
# What settling returns when the event was no longer the delivery's to settle.
LOST = object()
RELAY_SETTING = "app.outbox_relay"
# What the relay's transactions set with their scope, in their first statement.
_RELAY = {RELAY_SETTING: "on"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class OutboxEvent:
    seq: int
    id: str
    organisation: str
    topic: str
    key: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str
    created_at: dt.datetime
    settled_at: dt.datetime | None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "key": self.key,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        seq=row.seq,
        id=row.id,
        organisation=row.organisation_code,
        topic=row.topic,
        key=row.key,
        payload=json.loads(row.payload),
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=_aware(row.next_attempt_at),
        last_error=row.last_error,
        created_at=_aware(row.created_at),
        settled_at=_aware(row.settled_at) if row.settled_at else None,
    )


class Outbox:
    """Publishes events inside one transaction (reached as `tx.outbox`)."""

    def __init__(self, session: Session, tables: KernelTables, scope: Scope) -> None:
        self._session = session
        self._table = tables.outbox_events
        self._scope = scope
        self.published: list[str] = []
        # Whether an event published here is the relay's to deliver at once (not held).
        self.due_now = False
        self._held_until: dt.datetime | None = None

    def hold(self, seconds: float) -> None:
        """The call publishing in this transaction delivers its events itself
        (`OutboxRelay.deliver_key`) within `seconds`. Until then a relay pass, of this
        process or another worker's, leaves them to it rather than delivering them twice;
        after that the relay takes whatever is still undelivered."""
        self._held_until = _now() + dt.timedelta(seconds=seconds) if seconds > 0 else None

    def publish(
        self, topic: str, key: str, payload: Mapping[str, Any], *, organisation: str | None = None
    ) -> str:
        """Records an event for `key` (a resource name: events of one key go out in order);
        returns its id, which the receiver sees as the request_id."""
        if organisation is None:
            if len(self._scope.organisations) != 1:
                raise RuntimeError("publishing needs the organisation the event belongs to")
            (organisation,) = self._scope.organisations
        event_id = str(uuid.uuid4())
        now = _now()
        held = self._held_until is not None and self._held_until > now
        self.due_now = self.due_now or not held
        self._session.execute(
            insert(self._table).values(
                id=event_id,
                organisation_code=organisation,
                topic=topic,
                key=key,
                payload=json.dumps(dict(payload), sort_keys=True, default=str),
                state=PENDING,
                attempts=0,
                next_attempt_at=self._held_until if held else now,
                last_error="",
                created_at=now,
                settled_at=None,
            )
        )
        self.published.append(event_id)
        return event_id


def error_reason(err: grpc.aio.AioRpcError) -> str:
    """The stable reason (google.rpc.ErrorInfo) a receiver gave with its refusal, if any."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return ""


# --- administration (run as the owner: `backoffice outbox ...`) -------------------------------


def list_events(
    session: Session,
    tables: KernelTables,
    states: tuple[str, ...] = (),
    organisations: Iterable[str] | None = None,
    *,
    after_seq: int = 0,
    limit: int | None = None,
) -> list[OutboxEvent]:
    """Events (in `states`, of `organisations` when given), oldest first, after `after_seq`:
    a keyset page, sought and cut in the query, as delivered events are kept for ever."""
    t = tables.outbox_events
    stmt = select(t).where(t.c.seq > after_seq).order_by(t.c.seq)
    if states:
        stmt = stmt.where(t.c.state.in_(states))
    if organisations is not None:
        stmt = stmt.where(t.c.organisation_code.in_(sorted(set(organisations))))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_event(r) for r in session.execute(stmt)]


def get_event(session: Session, tables: KernelTables, event_id: str) -> OutboxEvent:
    t = tables.outbox_events
    row = session.execute(select(t).where(t.c.id == event_id)).first()
    if row is None:
        raise NotFound(f"outbox/{event_id}")
    return _event(row)


def _admin_change(
    session: Session,
    tables: KernelTables,
    audit: AuditLog,
    event_id: str,
    values: dict[str, Any],
    *,
    states: tuple[str, ...],
) -> OutboxEvent:
    before = get_event(session, tables, event_id)
    if before.state not in states:
        raise FailedPrecondition(
            f"outbox event {event_id} is {before.state}: only {' or '.join(states).lower()} events can "
            "change this way",
            reason="OUTBOX_EVENT_SETTLED"
            if before.state in (DELIVERED, DISCARDED)
            else "OUTBOX_EVENT_NOT_PARKED",
            metadata={"state": before.state},
        )
    t = tables.outbox_events
    # Only from the state read: a relay that settled the event meanwhile wins, and a
    # delivered event is never sent again (nor its answer dropped).
    changed = session.execute(update(t).where(t.c.id == event_id, t.c.state == before.state).values(**values))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Aborted(
            f"outbox event {event_id} changed while this ran (a relay settled it): look again",
            reason="CONCURRENT_CHANGE",
        )
    after = get_event(session, tables, event_id)
    audit.record(before.organisation, f"outbox/{event_id}", before.view(), after.view())
    return after


def retry_event(session: Session, tables: KernelTables, audit: AuditLog, event_id: str) -> OutboxEvent:
    """A parked event goes back to the relay, due at once."""
    # Parked events only: a pending one the relay retries by itself, and it may be claimed
    # by a delivery this moment, which making it due again would let a second one start.
    return _admin_change(
        session,
        tables,
        audit,
        event_id,
        {"state": PENDING, "attempts": 0, "next_attempt_at": _now()},
        states=(PARKED,),
    )


def discard_event(
    session: Session, tables: KernelTables, audit: AuditLog, event_id: str, reason: str
) -> OutboxEvent:
    """A parked event that will never be delivered; the next of its key may then go."""
    if not reason.strip():
        raise ValueError("say why the event is discarded")
    # Parked events only: a pending one may be in a relay's hands this moment, and its
    # receiver could act on it while its answer, arriving to a discarded event, is lost.
    return _admin_change(
        session,
        tables,
        audit,
        event_id,
        {"state": DISCARDED, "last_error": f"discarded: {reason.strip()}", "settled_at": _now()},
        states=(PARKED,),
    )


# --- the relay ---------------------------------------------------------------------------------

Settle = Callable[["Transaction"], object]


@dataclass
class Delivery:
    """What a handler needs to call the receiving service as the publishing service."""

    channel: Callable[[str], grpc.aio.Channel]
    metadata: tuple[tuple[str, str], ...]
    timeout: float


Handler = Callable[[OutboxEvent, Delivery], Awaitable[Settle | None]]

# What the publishing service does, in the discard's own transaction, when operations give
# up on one of its events (by topic, with the reason given): what waited for the event's
# answer must not wait for ever.
Discarded = Callable[["Transaction", OutboxEvent, str], object]


@dataclass
class _Turn:
    """What one delivery of a key's events sends without claiming (`own`: its call holds
    them) and waits for (`awaited`; None: the key's first event, whatever it is)."""

    own: set[str]
    awaited: set[str] | None
    _head: str | None = None

    def saw_head(self, event_id: str) -> None:
        if self.awaited is None:
            self.awaited = {event_id}
        elif self._head is not None and self._head != event_id:
            self.awaited.discard(self._head)  # the earlier head is settled, by whoever
        self._head = event_id

    def done(self, event_id: str) -> None:
        self.own.discard(event_id)
        if self.awaited is not None:
            self.awaited.discard(event_id)

    def waiting(self) -> bool:
        return bool(self.awaited)


def _behind_another(t: Table) -> Exists:
    """Whether an earlier event of the same key is unsettled, so this one must wait."""
    earlier = t.alias("earlier")
    return (
        select(earlier.c.id)
        .where(earlier.c.key == t.c.key, earlier.c.seq < t.c.seq, earlier.c.state.in_((PENDING, PARKED)))
        .exists()
    )


def backoff_delay(attempts: int, settings: RelaySettings) -> float:
    """Exponential backoff with +-20% jitter, capped."""
    base = min(settings.backoff_initial_seconds * 2 ** max(attempts - 1, 0), settings.backoff_max_seconds)
    return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret


@dataclass
class OutboxRelay:
    """Delivers one service's outbox. `start` runs it as a task of the server's loop."""

    service: str
    db: Database
    tables: KernelTables
    handlers: Mapping[str, Handler]
    settings: RelaySettings = field(default_factory=RelaySettings)
    # Shared with the service's own calls to the others (libs/common/peers.py).
    peers: Peers = field(default_factory=Peers)
    # A key's lock lives while someone holds or awaits it: one per key ever seen would grow
    # with every purchase order for as long as the server runs.
    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    # By key, the last unsettled event a relay pass saw while the key's lock was taken:
    # unless it is the event the holder delivered, the holder looks again before it lets
    # go, so that nothing waits for the next poll.
    _behind: dict[str, str] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None
    # Its own threads for database work, so that stopping can wait for work in flight
    # (a cancelled await does not stop a thread that holds a connection).
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox")
    )

    def configure(self, resolve: Callable[[str], str], tokens: Callable[[str], str]) -> None:
        """Where the other services are, and the tokens this service presents to them."""
        self.peers.configure(resolve, tokens)

    def start(self) -> None:
        """Runs the relay as a task of the running loop (the peers configured first)."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.service}-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        await self.peers.close()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        counted = 0.0
        woken = False
        while True:
            # A pass woken by a change counts the backlog only if the count is a poll old:
            # under load every change wakes the relay, and the gauge needs no more than that.
            count = not woken or time.monotonic() - counted >= self.settings.poll_seconds
            try:
                await self.run_once(count_backlog=count)
                if count:
                    counted = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox_pass_failed", service=self.service)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
            woken = self._wake.is_set()
            self._wake.clear()

    # --- database work, on threads ---

    async def _thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    @contextlib.contextmanager
    def _session(self, scope: Scope | None) -> Iterator[Session]:
        with (
            self.db.writer_lock,
            self.db.session(scope or ALL_ORGANISATIONS, write=True, settings=_RELAY) as session,
        ):
            yield session

    def _waiting(self, key: str) -> list[OutboxEvent]:
        """The first two unsettled events of `key`, in order: the one due, and whether any
        follows it."""
        t = self.tables.outbox_events
        stmt = select(t).where(t.c.key == key, t.c.state.in_((PENDING, PARKED))).order_by(t.c.seq).limit(2)
        with self.db.session(ALL_ORGANISATIONS, write=False, settings=_RELAY) as session:
            return [_event(row) for row in session.execute(stmt)]

    def _heads(self, locked: list[str]) -> tuple[list[OutboxEvent], dict[str, str]]:
        """The first unsettled event of each key whose head is due now (up to a batch), and
        by key, of those and of the `locked` keys, the id of the last unsettled event this
        read saw."""
        t = self.tables.outbox_events
        unsettled = t.c.state.in_((PENDING, PARKED))
        with self.db.session(ALL_ORGANISATIONS, write=False, settings=_RELAY) as session:
            # Only due heads, chosen in SQL: were the batch the oldest unsettled events,
            # enough parked ones (or ones waiting out a backoff) would fill it for good and
            # no newer key would ever be sent.
            due = select(t).where(t.c.state == PENDING, t.c.next_attempt_at <= _now(), ~_behind_another(t))
            heads = [
                _event(r) for r in session.execute(due.order_by(t.c.seq).limit(self.settings.batch_size))
            ]
            last: dict[str, str] = {}
            keys = {e.key for e in heads} | set(locked)
            if keys:
                behind = select(t.c.key, t.c.id).where(unsettled, t.c.key.in_(sorted(keys)))
                for row in session.execute(behind.order_by(t.c.seq)):
                    last[row.key] = row.id
        return heads, last

    def _claim(self, event: OutboxEvent) -> OutboxEvent | None:
        """Takes `event` for one delivery, if it is still pending, due and first of its key;
        returns it as it now stands, or None when another relay or call has it (or it is
        settled, or held by the call that published it)."""
        t = self.tables.outbox_events
        now = _now()
        lease = dt.timedelta(seconds=self.settings.timeout_seconds + SETTLE_MARGIN_SECONDS)
        with self._session(None) as session:
            # One UPDATE decides: of two relays (or a relay and a call) that read the event
            # due, the second finds it due no longer.
            row = session.execute(
                update(t)
                .where(t.c.id == event.id, t.c.state == PENDING, t.c.next_attempt_at <= now)
                .where(~_behind_another(t))
                .values(next_attempt_at=now + lease)
                .returning(*t.c)
            ).first()
            session.commit()
        return _event(row) if row is not None else None

    def _still_mine(self, event: OutboxEvent) -> Any:
        """The event, pending and still under the claim (or hold) it was delivered under: a
        delivery that overran it, while another took the event, changes nothing, so only
        the answer to the delivery that holds the event is ever applied."""
        t = self.tables.outbox_events
        return (t.c.id == event.id) & (t.c.state == PENDING) & (t.c.next_attempt_at == event.next_attempt_at)

    def _mark(self, event: OutboxEvent, values: dict[str, Any]) -> None:
        t = self.tables.outbox_events
        with self._session(None) as session:
            session.execute(update(t).where(self._still_mine(event)).values(**values))
            session.commit()

    def _settle(self, event: OutboxEvent, settle: Settle | None) -> object:
        """Marks the event delivered and applies the answer; returns what `settle` returned,
        or `LOST` when the event was no longer this delivery's (settled, discarded, or its
        claim ran out and another delivery took it)."""
        from libs.common.service import Transaction

        t = self.tables.outbox_events
        scope = Scope.of(event.organisation)
        with self._session(scope) as session:
            done = session.execute(
                update(t)
                .where(self._still_mine(event))
                .values(state=DELIVERED, settled_at=_now(), attempts=event.attempts + 1, last_error="")
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return LOST
            applied: object = None
            if settle is not None:
                call = Call(
                    method=f"outbox/{event.topic}",
                    request_id=event.id,
                    principal=Principal(
                        subject=f"{self.service}-outbox",
                        organisation="",
                        roles=frozenset(),
                        kind=PrincipalKind.SERVICE,
                    ),
                )
                applied = settle(
                    Transaction(session, AuditLog(session, self.tables, call), scope, call, self.tables)
                )
            session.commit()
            return applied

    # --- delivery ---

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def run_once(self, *, count_backlog: bool = True) -> int:
        """One pass over the due heads of every key; returns how many were delivered."""
        now = _now()
        # A key being delivered in this process shows no due head (it is claimed or held),
        # yet an event published behind it since must not wait for the next poll.
        locked = [key for key, lock in list(self._locks.items()) if lock.locked()]
        heads, last = await self._thread(self._heads, locked)
        for key in locked:
            lock = self._locks.get(key)
            if key not in last:
                continue
            if lock is not None and lock.locked():
                self._behind[key] = last[key]
            else:
                self.wake()  # its holder let go while this read: look again at once
        due = [e for e in heads if e.state == PENDING and e.next_attempt_at <= now]
        results = await asyncio.gather(*(self._deliver_key_head(e, last[e.key]) for e in due))
        if count_backlog:
            OUTBOX_BACKLOG.labels(service=self.service).set(await self._thread(self._backlog))
        return sum(results)

    def _backlog(self) -> int:
        """Events written and not yet delivered: pending, or parked awaiting someone."""
        t = self.tables.outbox_events
        with self.db.session(ALL_ORGANISATIONS, write=False, settings=_RELAY) as session:
            return int(
                session.scalar(select(func.count()).select_from(t).where(t.c.state.in_((PENDING, PARKED))))
                or 0
            )

    async def deliver_key(self, key: str, within: float, held: Collection[str] = ()) -> list[object]:
        """Delivers `key`'s waiting events now (within `within` seconds), in order, as a call that
        has just published wants its outcome in the same call; returns what their answers'
        `Settle` callbacks returned, in order. `held` are the events the call published and
        holds: it sends those as they are, and claims any other. It waits, looking again,
        while an earlier event is in another's hands (held by its call, claimed by a relay,
        or waiting out a backoff) and one of `held` is behind it; a call that holds none (a
        retried request) waits so for the key's first event. Best effort: what is not
        delivered in time stays for the relay."""
        settled: list[object] = []
        if not self.peers.configured:
            return settled  # not started (no other services wired): the event waits for the relay
        turn = _Turn(own=set(held), awaited=set(held) if held else None)
        try:
            async with asyncio.timeout(within):
                # Polled, as the one delivering an earlier event may be another worker process;
                # the key's lock is let go meanwhile, for another call of this process.
                while await self._deliver_in_turn(key, within, settled, turn):  # noqa: ASYNC110
                    await asyncio.sleep(_LOOK_AGAIN_SECONDS)
        except TimeoutError:
            pass
        except DBAPIError as err:
            # The call's own change is committed: what is undelivered is the relay's.
            log.warning("outbox_deliver_key_failed", service=self.service, key=key, error=str(err))
        return settled

    async def _deliver_in_turn(self, key: str, within: float, settled: list[object], turn: _Turn) -> bool:
        """Under the key's lock, delivers its waiting events in order while it can: the
        caller's own as they are, any other once claimed. Returns whether to look again
        later: an event in another's hands is ahead of one `turn` awaits."""
        async with self._lock(key):
            try:
                while True:
                    self._behind.pop(key, None)
                    waiting = await self._thread(self._waiting, key)
                    if not waiting or waiting[0].state != PENDING:
                        return False
                    event = waiting[0]
                    turn.saw_head(event.id)
                    if event.id not in turn.own:
                        # Only a due event is claimed (a write): one in another's hands is not.
                        due = event.next_attempt_at <= _now()
                        claimed = await self._thread(self._claim, event) if due else None
                        if claimed is None:
                            return turn.waiting()
                        event = claimed
                    delivered, applied = await self._deliver(event, within)
                    if not delivered:
                        return False
                    turn.done(event.id)
                    settled.append(applied)
                    if len(waiting) == 1 and self._behind.get(key, event.id) == event.id:
                        return False  # nothing was behind it when asked, and no pass found more
            finally:
                self._behind.pop(key, None)

    async def _deliver_key_head(self, event: OutboxEvent, last: str) -> int:
        lock = self._lock(event.key)
        if lock.locked():
            self._behind[event.key] = last
            return 0
        settled: list[object] = []
        await self._deliver_in_turn(event.key, self.settings.timeout_seconds, settled, _Turn(set(), set()))
        return len(settled)

    async def _deliver(self, event: OutboxEvent, within: float) -> tuple[bool, object]:
        """Whether `event` was delivered and settled, and what its answer's `Settle` returned."""
        handler = self.handlers.get(event.topic)
        if handler is None:
            await self._thread(self._park, event, f"no handler for topic {event.topic}")
            return False, None
        # As this service, on behalf of the organisation whose change published the event.
        metadata = self.peers.metadata(event.organisation)
        delivery = Delivery(self.peers.channel, metadata, min(within, self.settings.timeout_seconds))
        try:
            settle = await handler(event, delivery)
        except grpc.aio.AioRpcError as err:
            reason = f"{err.code().name}: {err.details()}"
            if err.code() in PERMANENT_CODES:
                await self._thread(self._park, event, reason)
            else:
                await self._thread(self._later, event, reason)
            return False, None
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("outbox_handler_failed", service=self.service, event_id=event.id)
            await self._thread(self._later, event, f"{type(err).__name__}: {err}")
            return False, None
        return await self._apply(event, settle)

    async def _apply(self, event: OutboxEvent, settle: Settle | None) -> tuple[bool, object]:
        """Settles a delivered event with its answer: whether it was, and what `settle` returned."""
        try:
            applied = await self._thread(self._settle, event, settle)
        except (DBAPIError, StaleDataError) as err:
            # The database's trouble (a lock timeout, a deadlock, a lost connection), not the
            # answer's: deliver again later, and the receiver replays the same answer.
            log.warning("outbox_settle_retried", service=self.service, event_id=event.id, error=str(err))
            await self._thread(self._later, event, f"applying the answer failed, to retry: {err}")
            return False, None
        except Exception as err:
            log.exception("outbox_settle_failed", service=self.service, event_id=event.id)
            await self._thread(self._park, event, f"applying the answer failed: {err}")
            return False, None
        if applied is LOST:
            # Its claim ran out and another delivery took the event: that one's answer counts.
            log.warning("outbox_claim_lost", service=self.service, event_id=event.id)
            return False, None
        log.info("outbox_delivered", service=self.service, event_id=event.id, topic=event.topic)
        return True, applied

    def _park(self, event: OutboxEvent, reason: str) -> None:
        log.warning("outbox_parked", service=self.service, event_id=event.id, reason=reason)
        self._mark(event, {"state": PARKED, "attempts": event.attempts + 1, "last_error": reason[:2000]})

    def _later(self, event: OutboxEvent, reason: str) -> None:
        attempts = event.attempts + 1
        delay = backoff_delay(attempts, self.settings)
        self._mark(
            event,
            {
                "attempts": attempts,
                "last_error": reason[:2000],
                "next_attempt_at": _now() + dt.timedelta(seconds=delay),
            },
        )
