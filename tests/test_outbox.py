"""The transactional outbox and its relay, with stand-in receivers (the purchase-to-pay
tests in tests/procurement/test_purchase_to_pay.py use real ones)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.config import Settings
from libs.common.outbox import (
    DELIVERED,
    DISCARDED,
    PARKED,
    PENDING,
    SETTLE_MARGIN_SECONDS,
    Delivery,
    Handler,
    OutboxEvent,
    OutboxRelay,
    Settle,
    backoff_delay,
)
from libs.common.service import Transaction
from services.procurement.persistence.models import KERNEL
from services.suite.admin import change_outbox_event, outbox_events, verify_audit
from services.suite.cli import app as cli
from tests.support import WEST_YORKSHIRE

ORG = WEST_YORKSHIRE


def _publish(settings: Settings, *events: tuple[str, str, dict[str, Any]], hold: float = 0.0) -> list[str]:
    db = build_database("procurement", settings)
    try:
        with db.writer_lock, db.session(Scope.of(ORG), write=True) as session:
            tx = Transaction(session, AuditLog(session, KERNEL, None), Scope.of(ORG), None, KERNEL)
            tx.outbox.hold(hold)
            ids = [tx.outbox.publish(topic, key, payload) for topic, key, payload in events]
            # Only events due at once wake the relay; held ones are their caller's.
            assert tx.outbox.due_now is (hold <= 0)
            session.commit()
            return ids
    finally:
        db.dispose()


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class Receiver:
    """Answers per event id from a script of outcomes; records what it accepted, in order."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.calls: list[str] = []
        self.script: dict[str, list[grpc.StatusCode]] = {}

    async def __call__(self, event: OutboxEvent, delivery: Delivery) -> Settle | None:
        self.calls.append(event.payload["n"])
        assert delivery.metadata[0][1] == "Bearer service-token"
        assert delivery.timeout <= 2
        outcomes = self.script.get(event.payload["n"], [])
        if outcomes:
            raise _error(outcomes.pop(0), f"refused {event.payload['n']}")
        self.accepted.append(event.payload["n"])

        def settle(tx: Transaction) -> None:
            tx.audit.record(event.organisation, f"test/{event.payload['n']}", None, {"ok": True})

        return settle


def _relay(settings: Settings, receiver: Receiver) -> OutboxRelay:
    relay_settings = settings.relay_settings()
    relay_settings.backoff_initial_seconds = 0.01
    relay_settings.timeout_seconds = 2
    relay = OutboxRelay(
        "procurement", build_database("procurement", settings), KERNEL, {"test": receiver}, relay_settings
    )
    relay.configure(lambda name: "127.0.0.1:1", lambda organisation: "service-token")
    return relay


def _backlog() -> float | None:
    return REGISTRY.get_sample_value("backoffice_outbox_backlog", {"service": "procurement"})


def _until(relay: OutboxRelay, done: Callable[[], bool], passes: int = 50) -> None:
    async def go() -> None:
        for _ in range(passes):
            await relay.run_once()
            if done():
                return
            await asyncio.sleep(0.03)

    asyncio.run(go())


def _states(settings: Settings) -> dict[str, str]:
    return {e.id: e.state for _, e in outbox_events(settings, ["procurement"], ())}


def test_order_per_key_backoff_and_exactly_one_settlement(settings: Settings) -> None:
    ids = _publish(
        settings,
        ("test", "orders/1", {"n": "a"}),
        ("test", "orders/1", {"n": "b"}),
        ("test", "orders/2", {"n": "c"}),
    )
    receiver = Receiver()
    receiver.script["a"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    relay = _relay(settings, receiver)
    try:
        _until(relay, lambda: len(receiver.accepted) == 3)
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()
    # b never overtook a, though a failed twice; c did not wait for another key.
    assert receiver.accepted.index("a") < receiver.accepted.index("b")
    assert receiver.calls[:3].count("a") >= 1 and "b" not in receiver.calls[: receiver.calls.index("c")]
    assert set(_states(settings).values()) == {DELIVERED}
    assert list(_states(settings)) == ids
    # Each settlement ran once, in the same transaction as the delivery mark.
    db = build_database("procurement", settings)
    try:
        with db.session(Scope.of(ORG), write=False) as session:
            t = KERNEL.audit_records
            count = session.scalar(select(func.count()).select_from(t).where(t.c.resource.like("test/%")))
        assert count == 3
    finally:
        db.dispose()


def test_backoff_grows_and_is_capped() -> None:
    s = Settings().relay_settings()
    assert 0.4 <= backoff_delay(1, s) <= 0.6
    assert 3.2 <= backoff_delay(4, s) <= 4.8
    assert backoff_delay(40, s) <= s.backoff_max_seconds * 1.2


def test_refused_event_parks_blocks_its_key_and_is_retried_or_discarded(settings: Settings) -> None:
    first, second, other = _publish(
        settings,
        ("test", "orders/1", {"n": "a"}),
        ("test", "orders/1", {"n": "b"}),
        ("test", "orders/2", {"n": "c"}),
    )
    receiver = Receiver()
    receiver.script["a"] = [grpc.StatusCode.FAILED_PRECONDITION]
    receiver.script["c"] = [grpc.StatusCode.PERMISSION_DENIED]
    relay = _relay(settings, receiver)
    try:
        _until(relay, lambda: _states(settings)[other] == PARKED and _states(settings)[first] == PARKED)
        _until(relay, lambda: False, passes=3)
        states = _states(settings)
        assert (states[first], states[second], states[other]) == (PARKED, PENDING, PARKED)
        assert receiver.calls.count("a") == 1 and "b" not in receiver.calls
        parked = {e.id: e for _, e in outbox_events(settings, ["procurement"], (PARKED,))}
        assert parked[first].last_error == "FAILED_PRECONDITION: refused a"
        # Two parked and one waiting behind them: what the backlog gauge shows.
        assert _backlog() == 3

        # A pending event is not discarded: a relay may be delivering it this moment.
        args = ["--database-url", settings.database_url] if settings.database_url else []
        args += ["--data-dir", str(settings.data_dir)]
        pending = CliRunner(env={"COLUMNS": "400"}).invoke(
            cli, ["outbox", "discard", second, "--reason", "x", *args]
        )
        assert pending.exit_code == 1 and "PENDING" in pending.output, pending.output
        # Nor retried: the relay does that by itself, and may hold a claim on it.
        hurried = CliRunner(env={"COLUMNS": "400"}).invoke(cli, ["outbox", "retry", second, *args])
        assert hurried.exit_code == 1 and "only parked events" in hurried.output, hurried.output
        assert _states(settings)[second] == PENDING

        # The cause fixed (the receiver now accepts): retry releases it, and b follows.
        retried = change_outbox_event(settings, "procurement", first)
        assert retried.state == PENDING
        _until(relay, lambda: _states(settings)[second] == DELIVERED)
        assert receiver.accepted == ["a", "b"]
        _until(relay, lambda: False, passes=1)
        assert _backlog() == 1  # c, still parked
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()

    # Discarding needs a reason, and a settled event cannot change.
    args = ["--database-url", settings.database_url] if settings.database_url else []
    args += ["--data-dir", str(settings.data_dir)]
    runner = CliRunner(env={"COLUMNS": "400"})
    listed = runner.invoke(cli, ["outbox", "list", *args])
    assert listed.exit_code == 0, listed.output
    assert other[:8] in listed.output and first[:8] not in listed.output
    result = runner.invoke(cli, ["outbox", "discard", other, "--reason", "sent by post instead", *args])
    assert result.exit_code == 0, result.output
    assert _states(settings)[other] == DISCARDED
    again = runner.invoke(cli, ["outbox", "retry", other, *args])
    assert again.exit_code == 1 and "DISCARDED" in again.output
    # Both changes are in the organisation's audit chain, which stays intact.
    reports = [r for name, r in verify_audit(settings, ["procurement"]) if r.organisation == ORG]
    assert reports and reports[0].intact
    db = build_database("procurement", settings)
    try:
        with db.session(Scope.of(ORG), write=False) as session:
            t = KERNEL.audit_records
            methods = set(session.scalars(select(t.c.method).where(t.c.resource.like("outbox/%"))))
        assert methods == {"backoffice outbox retry", "backoffice outbox discard"}
    finally:
        db.dispose()


def test_an_answer_the_database_could_not_apply_is_delivered_again(settings: Settings) -> None:
    """A lock timeout or deadlock while applying the answer is the database's trouble, not
    the answer's: the event stays pending and the next delivery applies it, once."""
    (event_id,) = _publish(settings, ("test", "orders/1", {"n": "a"}))
    applied: list[str] = []

    async def receiver(event: OutboxEvent, delivery: Delivery) -> Settle:
        def settle(tx: Transaction) -> None:
            if not applied:
                applied.append("failed")
                raise OperationalError("UPDATE audit_chain_heads", {}, Exception("lock timeout"))
            applied.append("applied")
            tx.audit.record(event.organisation, "test/a", None, {"ok": True})

        return settle

    relay = _relay(settings, Receiver())
    relay.handlers = {"test": receiver}
    try:
        _until(relay, lambda: _states(settings)[event_id] != PENDING)
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()
    assert _states(settings)[event_id] == DELIVERED and applied == ["failed", "applied"]


def test_parked_events_do_not_keep_newer_keys_from_the_relay(settings: Settings) -> None:
    """A pass takes a batch of due heads: events parked for good (or waiting out a backoff),
    however many, never fill it so that nothing newer is sent."""
    receiver = Receiver()
    relay = _relay(settings, receiver)
    relay.settings.batch_size = 2
    try:
        parked = _publish(settings, ("test", "orders/1", {"n": "a"}), ("test", "orders/2", {"n": "b"}))
        receiver.script = {"a": [grpc.StatusCode.NOT_FOUND], "b": [grpc.StatusCode.INVALID_ARGUMENT]}
        _until(relay, lambda: {_states(settings)[i] for i in parked} == {PARKED})
        receiver.script = {"c": [grpc.StatusCode.UNAVAILABLE] * 100}
        (waiting,) = _publish(settings, ("test", "orders/3", {"n": "c"}))
        _until(relay, lambda: receiver.calls.count("c") >= 2)
        # Two keys parked and one backing off fill any batch of the oldest two; d still goes.
        relay.settings.backoff_initial_seconds = 60
        (newer,) = _publish(settings, ("test", "orders/4", {"n": "d"}))
        _until(relay, lambda: _states(settings)[newer] == DELIVERED)
        assert receiver.accepted == ["d"] and _states(settings)[waiting] == PENDING
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()


def test_deliver_key_returns_the_answers_and_looks_again_for_what_a_relay_pass_found_behind(
    settings: Settings,
) -> None:
    """A call that delivers its own event gets back what the answer's Settle returned. An
    event of the same key published while that delivery is under way, which the relay's
    pass cannot take (the key is locked), is delivered by the same call before it returns
    rather than waiting for the next poll."""
    (first,) = _publish(settings, ("test", "orders/1", {"n": "a"}))
    gate, arrived = asyncio.Event(), asyncio.Event()
    accepted: list[str] = []

    async def receiver(event: OutboxEvent, delivery: Delivery) -> Settle:
        if event.payload["n"] == "a":
            arrived.set()  # a is being delivered: its key is locked
            await gate.wait()
        accepted.append(event.payload["n"])

        def settle(tx: Transaction) -> str:
            tx.audit.record(event.organisation, f"test/{event.payload['n']}", None, {"ok": True})
            return f"settled {event.payload['n']}"

        return settle

    relay_settings = settings.relay_settings()
    relay_settings.timeout_seconds = 5
    relay = OutboxRelay(
        "procurement", build_database("procurement", settings), KERNEL, {"test": receiver}, relay_settings
    )
    relay.configure(lambda name: "127.0.0.1:1", lambda organisation: "service-token")

    async def go() -> list[object]:
        delivering = asyncio.create_task(relay.deliver_key("orders/1", 5))
        await asyncio.wait_for(arrived.wait(), 10)
        await asyncio.to_thread(_publish, settings, ("test", "orders/1", {"n": "b"}))
        assert await relay.run_once() == 0  # the key is locked: the pass leaves it to the holder
        gate.set()
        return await asyncio.wait_for(delivering, 10)

    try:
        settled = asyncio.run(go())
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()
    assert settled == ["settled a", "settled b"]
    assert accepted == ["a", "b"]
    assert set(_states(settings).values()) == {DELIVERED} and first in _states(settings)


def test_a_held_event_is_left_to_its_caller_until_the_hold_ends(settings: Settings) -> None:
    """A call that delivers its own event holds it: relay passes (of any worker process)
    leave it alone meanwhile, so it is sent once; once the hold has passed, the relay
    takes what the call never delivered, as it would after a pod died mid-call."""
    (mine,) = _publish(settings, ("test", "orders/1", {"n": "a"}), hold=30)
    (lost,) = _publish(settings, ("test", "orders/2", {"n": "b"}), hold=0.3)
    receiver = Receiver()
    relay = _relay(settings, receiver)

    async def go() -> list[object]:
        assert await relay.run_once() == 0  # both held: no pass sends them
        # Another call (a retry of the request, say) does not send it either.
        assert await relay.deliver_key("orders/1", 0.2) == [] and receiver.calls == []
        settled = await relay.deliver_key("orders/1", 2, [mine])  # the holding call sends its own
        await asyncio.sleep(0.35)
        assert await relay.run_once() == 1  # the other hold has ended: the relay takes it
        return settled

    try:
        settled = asyncio.run(go())
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()
    assert settled == [None]
    assert receiver.calls == ["a", "b"]
    assert _states(settings) == {mine: DELIVERED, lost: DELIVERED}


def _gated(arrived: asyncio.Event, gate: asyncio.Event, calls: list[str]) -> Callable[..., Any]:
    """A receiver that records each call, then answers only once the gate opens."""

    async def receiver(event: OutboxEvent, delivery: Delivery) -> Settle:
        calls.append(event.payload["n"])
        arrived.set()
        await gate.wait()

        def settle(tx: Transaction) -> None:
            tx.audit.record(event.organisation, f"test/{event.payload['n']}", None, {"ok": True})

        return settle

    return receiver


def test_two_relays_never_deliver_one_event_at_the_same_time(settings: Settings) -> None:
    """Two worker processes (or pods) each run a relay: the one that claims an event sends
    it; the other's pass leaves it, as a refusal is not replayed and a second delivery
    could be answered otherwise."""
    (event_id,) = _publish(settings, ("test", "orders/1", {"n": "a"}))
    arrived, gate = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    first, second = _relay(settings, Receiver()), _relay(settings, Receiver())
    first.handlers = second.handlers = {"test": _gated(arrived, gate, calls)}

    async def go() -> tuple[int, int]:
        delivering = asyncio.create_task(first.run_once())
        await asyncio.wait_for(arrived.wait(), 10)
        # It reads the event due, and finds it claimed (were it sent, its call would wait at the gate).
        other = await asyncio.wait_for(second.run_once(), 5)
        gate.set()
        return await asyncio.wait_for(delivering, 10), other

    try:
        assert asyncio.run(go()) == (1, 0)
        assert asyncio.run(second.run_once()) == 0
    finally:
        for relay in (first, second):
            asyncio.run(relay.stop())
            relay.db.dispose()
    assert calls == ["a"] and _states(settings) == {event_id: DELIVERED}


def test_a_delivery_that_died_with_its_pod_is_taken_up_when_its_claim_runs_out(settings: Settings) -> None:
    (event_id,) = _publish(settings, ("test", "orders/1", {"n": "a"}))
    arrived, gate = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    dying, other = _relay(settings, Receiver()), _relay(settings, Receiver())
    dying.handlers = {"test": _gated(arrived, gate, calls)}
    dying.settings.timeout_seconds = 0.2  # its claim: this deadline and the settle margin
    receiver = Receiver()
    other.handlers = {"test": receiver}

    async def go() -> tuple[int, int]:
        delivering = asyncio.create_task(dying.run_once())
        await asyncio.wait_for(arrived.wait(), 10)
        delivering.cancel()  # the pod dies mid-call; its claim stays behind
        with contextlib.suppress(asyncio.CancelledError):
            await delivering
        early = await asyncio.wait_for(other.run_once(), 5)
        await asyncio.sleep(0.2 + SETTLE_MARGIN_SECONDS + 0.3)
        return early, await other.run_once()

    try:
        assert asyncio.run(go()) == (0, 1)
    finally:
        for relay in (dying, other):
            asyncio.run(relay.stop())
            relay.db.dispose()
    assert calls == ["a"] and receiver.accepted == ["a"] and _states(settings) == {event_id: DELIVERED}


def test_a_call_behind_another_calls_held_event_waits_for_it_then_sends_its_own(settings: Settings) -> None:
    """Two calls of one process publish on the same key, each holding its event: the later
    call lets the earlier one deliver first (it does not take the event from it), then
    sends its own; neither waits for the other's lock."""
    (a,) = _publish(settings, ("test", "orders/1", {"n": "a"}), hold=30)
    (b,) = _publish(settings, ("test", "orders/1", {"n": "b"}), hold=30)
    receiver = Receiver()
    relay = _relay(settings, receiver)

    async def go() -> tuple[list[object], list[object]]:
        later = asyncio.create_task(relay.deliver_key("orders/1", 5, [b]))
        await asyncio.sleep(0.2)
        assert receiver.calls == []  # a is its holder's to send
        earlier = await relay.deliver_key("orders/1", 5, [a])
        return earlier, await asyncio.wait_for(later, 5)

    try:
        earlier, later = asyncio.run(go())
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()
    assert (earlier, later) == ([None], [None]) and receiver.calls == ["a", "b"]
    assert _states(settings) == {a: DELIVERED, b: DELIVERED}


def test_a_retried_call_waits_for_the_delivery_under_way_or_takes_a_lapsed_hold(
    settings: Settings,
) -> None:
    """A retried request holds nothing (its first attempt published the event): it waits
    for the key's first event while another has it, and sends it once the hold lapses (the
    first attempt's pod died), so the retry still gets finance's answer."""
    (a,) = _publish(settings, ("test", "orders/1", {"n": "a"}), hold=30)
    (b,) = _publish(settings, ("test", "orders/2", {"n": "b"}), hold=0.5)
    arrived, gate = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    relay = _relay(settings, Receiver())
    relay.handlers = {"test": _gated(arrived, gate, calls)}

    async def go() -> tuple[list[object], list[object]]:
        first = asyncio.create_task(relay.deliver_key("orders/1", 5, [a]))
        await asyncio.wait_for(arrived.wait(), 10)
        retry = asyncio.create_task(relay.deliver_key("orders/1", 5))
        await asyncio.sleep(0.3)
        assert not retry.done() and calls == ["a"]  # it waits, and sends nothing
        gate.set()
        await asyncio.wait_for(first, 10)
        waited = await asyncio.wait_for(retry, 10)
        # The other hold lapses while the retry waits: it claims the event and sends it.
        return waited, await relay.deliver_key("orders/2", 5)

    try:
        waited, took_over = asyncio.run(go())
    finally:
        asyncio.run(relay.stop())
        relay.db.dispose()
    assert waited == [] and took_over == [None] and calls == ["a", "b"]
    assert _states(settings) == {a: DELIVERED, b: DELIVERED}


def test_an_answer_that_comes_after_its_claim_ran_out_is_set_aside(settings: Settings) -> None:
    """A delivery that overran its claim, while another relay took the event, applies
    nothing when its answer comes: only the answer to the delivery holding the claim
    counts (the receiver may have answered the two otherwise)."""
    (event_id,) = _publish(settings, ("test", "orders/1", {"n": "a"}))
    gates = {"slow": (asyncio.Event(), asyncio.Event()), "other": (asyncio.Event(), asyncio.Event())}

    def answering(who: str) -> Handler:
        async def receiver(event: OutboxEvent, delivery: Delivery) -> Settle:
            arrived, gate = gates[who]
            arrived.set()
            await gate.wait()

            def settle(tx: Transaction) -> None:
                tx.audit.record(event.organisation, f"{who}/a", None, {"ok": True})

            return settle

        return receiver

    slow, other = _relay(settings, Receiver()), _relay(settings, Receiver())
    slow.handlers, other.handlers = {"test": answering("slow")}, {"test": answering("other")}
    slow.settings.timeout_seconds = 0.2

    async def go() -> tuple[int, int]:
        overrunning = asyncio.create_task(slow.run_once())
        await asyncio.wait_for(gates["slow"][0].wait(), 10)
        await asyncio.sleep(0.2 + SETTLE_MARGIN_SECONDS + 0.3)
        taking = asyncio.create_task(other.run_once())
        await asyncio.wait_for(gates["other"][0].wait(), 10)  # claimed, and under way
        gates["slow"][1].set()
        late = await asyncio.wait_for(overrunning, 10)
        gates["other"][1].set()
        return late, await asyncio.wait_for(taking, 10)

    try:
        assert asyncio.run(go()) == (0, 1)
    finally:
        for relay in (slow, other):
            asyncio.run(relay.stop())
            relay.db.dispose()
    assert _states(settings) == {event_id: DELIVERED}
    db = build_database("procurement", settings)
    try:
        with db.session(Scope.of(ORG), write=False) as session:
            t = KERNEL.audit_records
            applied = list(session.scalars(select(t.c.resource).where(t.c.resource.like("%/a"))))
        assert applied == ["other/a"]
    finally:
        db.dispose()
