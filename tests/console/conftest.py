"""The console on an ephemeral port in front of a real suite (SQLite and PostgreSQL), and
helpers to sign in, seed data through the services' APIs, and park an outbox event."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import httpx
import pytest
from sqlalchemy import update

from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.auth import TokenIssuer
from libs.common.outbox import PARKED
from libs.common.service import Transaction
from services.console.app import RunningConsole, start_console
from services.procurement.persistence.models import KERNEL
from tests.support import Suite

STAFF_ROLES = (
    "directory.admin",
    "procurement.commercial",
    "procurement.budget_holder",
    "finance.payables",
    "operations.staff",
)


@pytest.fixture
def console(suite: Suite) -> Iterator[RunningConsole]:
    running: RunningConsole = suite.run(
        start_console(suite.addresses, issuer=TokenIssuer.from_settings(suite.settings))
    )
    try:
        yield running
    finally:
        suite.run(running.stop(0))


@pytest.fixture
def http(console: RunningConsole) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.url, timeout=30) as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def request_id_of(html: str, action: str) -> str:
    """The request id rendered in the page's form that posts to `action`."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', html, re.S)
    assert form, f"the page has no form posting to {action}"
    found = re.search(r'name="request_id" value="([^"]+)"', form.group(1))
    assert found, f"the form posting to {action} has no request id"
    return found.group(1)


def sign_in(http: httpx.Client, organisation: str, *roles: str, subject: str = "staff") -> httpx.Response:
    page = http.get("/sign-in")
    assert page.status_code == 200
    return http.post(
        "/sign-in",
        data={
            "csrf": csrf_of(page.text),
            "mode": "development",
            "organisation": organisation,
            "subject": subject,
            "roles": list(roles),
        },
    )


def post_form(http: httpx.Client, page_path: str, action: str, data: Mapping[str, object]) -> httpx.Response:
    """Load a page (for its CSRF token) and post one of its forms."""
    page = http.get(page_path)
    return http.post(action, data={"csrf": csrf_of(page.text), **data})


def park_event(suite: Suite, organisation: str, topic: str = "test.parked", key: str = "orders/1") -> str:
    """An event procurement published and the receiver refused for good (as the relay
    would leave it)."""
    db = build_database("procurement", suite.settings)
    try:
        scope = Scope.of(organisation)
        with db.writer_lock, db.session(scope, write=True) as session:
            tx = Transaction(session, AuditLog(session, KERNEL, None), scope, None, KERNEL)
            event_id = tx.outbox.publish(topic, key, {"n": 1})
            t = KERNEL.outbox_events
            session.execute(
                update(t)
                .where(t.c.id == event_id)
                .values(state=PARKED, attempts=1, last_error="FAILED_PRECONDITION BUDGET_CLOSED: refused")
            )
            session.commit()
            return event_id
    finally:
        db.dispose()
