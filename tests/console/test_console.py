"""The console over real HTTP against a real suite (SQLite and PostgreSQL): sign-in, the
pages, forms with CSRF tokens, the services' refusals shown readably, long jobs and
downloads, parked events and the audit log."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import time
from collections.abc import Iterator, Mapping

import httpx
import pytest
from google.type import decimal_pb2
from rich.console import Console as Terminal

from backoffice.finance.v1 import finance_service_pb2 as fpb
from backoffice.finance.v1 import payables_pb2
from backoffice.procurement.v1 import procurement_service_pb2 as ppb
from libs.common.auth import TokenIssuer
from libs.common.clock import LONDON, today_london
from libs.common.config import Settings
from libs.common.proto_mapping import date_to_proto
from services.console.app import CSRF_COOKIE, SESSION_COOKIE, RunningConsole, start_console
from services.console.cli import start_console_beside
from services.console.jobs import KEEP_SECONDS, owner_of
from tests.console.conftest import STAFF_ROLES, csrf_of, park_event, post_form, request_id_of, sign_in
from tests.finance.books import MAY, gbp, set_up_books
from tests.procurement.helpers import requisition, supplier
from tests.support import UNIT, WEST_YORKSHIRE, Suite


def _wait_for_job(http: httpx.Client, location: str) -> httpx.Response:
    for _ in range(300):
        page = http.get(location)
        if 'http-equiv="refresh"' not in page.text:
            return page
        time.sleep(0.1)
    raise AssertionError(f"the job at {location} did not finish")


def test_sign_in_is_required_and_sign_out_clears_it(http: httpx.Client) -> None:
    assert http.get("/").status_code == 303
    assert http.get("/healthz").json() == {"status": "SERVING"}
    signed = sign_in(http, UNIT, *STAFF_ROLES)
    assert signed.status_code == 303
    cookie = signed.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("bo_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session.replace("Strict", "strict")
    home = http.get("/")
    assert home.status_code == 200 and "Awaiting action" in home.text and "staff" in home.text
    out = post_form(http, "/", "/sign-out", {})
    assert out.status_code == 303
    assert http.get("/").status_code == 303


def test_a_form_without_its_csrf_token_is_refused(http: httpx.Client) -> None:
    sign_in(http, UNIT, *STAFF_ROLES)
    http.get("/")
    refused = http.post("/organisations", data={"code": "E06000014", "display_name": "York"})
    assert refused.status_code == 403 and "CSRF_TOKEN_INVALID" in refused.text
    refused = http.post("/organisations", data={"csrf": "forged", "code": "E06000014"})
    assert refused.status_code == 403


def test_onboarding_an_organisation_and_agreement(http: httpx.Client) -> None:
    sign_in(http, UNIT, *STAFF_ROLES)
    created = post_form(
        http,
        "/organisations",
        "/organisations",
        {
            "code": "E06000014",
            "display_name": "City of York Council",
            "kind": "PARTNER",
            "country": "England",
        },
    )
    assert created.status_code == 303 and created.headers["location"].startswith("/organisations/E06000014")
    page = http.get(created.headers["location"])
    assert "City of York Council" in page.text and "Onboarded" in page.text

    # The service's refusal, readably: code, reason and each field violation.
    again = post_form(
        http,
        "/organisations",
        "/organisations",
        {"code": "E06000014", "display_name": "York", "kind": "PARTNER"},
    )
    assert again.status_code == 409 and "ALREADY_EXISTS" in again.text
    bad = post_form(http, "/organisations", "/organisations", {"code": "Z1", "display_name": "", "kind": ""})
    assert bad.status_code == 400 and "INVALID_ARGUMENT" in bad.text
    assert "organisation.display_name" in bad.text and "organisation.kind" in bad.text

    agreed = post_form(
        http,
        "/organisations/E06000014",
        "/agreements",
        {
            "back": "E06000014",
            "display_name": "Contracts register shared with York",
            "kind": "DATA_SHARING",
            "organisation": UNIT,
            "counterparty": "E06000014",
            "functions": ["procurement.contracts"],
            "start_date": "2026-01-01",
        },
    )
    assert agreed.status_code == 303, agreed.text
    assert "Recorded agreement" in http.get(agreed.headers["location"]).text
    # The unit, a party to it, sees it among its agreements.
    page = http.get(f"/organisations/{UNIT}")
    assert "Contracts register shared with York<br>" in page.text and "E06000014" in page.text
    missing = post_form(
        http,
        "/organisations/E06000014",
        "/agreements",
        {"back": "E06000014", "display_name": "x", "kind": "DATA_SHARING", "organisation": UNIT},
    )
    assert missing.status_code == 400 and "start_date" in missing.text and "BAD_FORM" in missing.text


def test_supplier_register_and_debarment(suite: Suite, http: httpx.Client) -> None:
    officer = suite.caller(UNIT, "procurement.commercial", subject="commercial")
    acme = supplier(officer, "Acme Ltd")
    sign_in(http, UNIT, *STAFF_ROLES)
    page = http.get("/suppliers")
    assert "Acme Ltd" in page.text
    refused = post_form(
        http,
        "/suppliers",
        "/suppliers/debar",
        {"name": acme.name, "reason": "", "debarment_date": "2026-01-01"},
    )
    assert refused.status_code == 400 and "reason" in refused.text
    debarred = post_form(
        http,
        "/suppliers",
        "/suppliers/debar",
        {
            "name": acme.name,
            "etag": acme.etag,
            "reason": "On the debarment list",
            "debarment_date": "2026-01-01",
        },
    )
    assert debarred.status_code == 303
    page = http.get(debarred.headers["location"])
    assert "Debarred" in page.text and "On the debarment list" in page.text
    added = post_form(http, "/suppliers", "/suppliers", {"org": UNIT, "display_name": "Bolt Ltd"})
    assert added.status_code == 303 and "Bolt Ltd" in http.get(added.headers["location"]).text


def test_awaiting_action_and_approval(suite: Suite, http: httpx.Client) -> None:
    requester = suite.caller(UNIT, "procurement.requester", subject="requester")
    r = requisition(requester, UNIT, title="Radios for response")
    r = requester.procurement.SubmitRequisition(ppb.SubmitRequisitionRequest(name=r.name, etag=r.etag))
    books = set_up_books(suite, UNIT)
    clerk = suite.caller(UNIT, "finance.payables", subject="clerk")
    invoice = clerk.finance.CreateInvoice(
        fpb.CreateInvoiceRequest(
            parent=books.cc,
            invoice=payables_pb2.Invoice(
                supplier=f"organisations/{UNIT}/suppliers/s-acme",
                supplier_display_name="Acme Radios Ltd",
                supplier_invoice_number="AR-77",
                invoice_date=date_to_proto(MAY),
                received_date=date_to_proto(MAY),
                lines=[
                    payables_pb2.InvoiceLine(
                        account="5100",
                        cost_centre="LP100",
                        description="Radios",
                        quantity=decimal_pb2.Decimal(value="2"),
                        unit_price=gbp("60.00"),
                        net=gbp("120.00"),
                        vat=gbp("24.00"),
                        vat_use=payables_pb2.VAT_USE_NON_BUSINESS,
                    )
                ],
            ),
        )
    )
    sign_in(http, UNIT, *STAFF_ROLES, subject="approver")
    home = http.get("/")
    assert "Radios for response" in home.text and "£5,400.00" in home.text
    # Invoices awaiting approval, from finance's ListInvoices.
    assert invoice.name in home.text and "AR-77" in home.text and "£144.00" in home.text
    approved = post_form(http, "/", "/requisitions/approve", {"name": r.name, "etag": r.etag})
    assert approved.status_code == 303
    after = http.get(approved.headers["location"])
    assert "Approved Radios for response" in after.text
    # Approving again: the service's refusal, shown.
    again = post_form(http, "/", "/requisitions/approve", {"name": r.name, "etag": r.etag})
    assert again.status_code in (400, 409) and (
        "ETAG_MISMATCH" in again.text or "FAILED_PRECONDITION" in again.text
    )


def test_a_user_without_the_roles_sees_the_services_refusals(http: httpx.Client) -> None:
    sign_in(http, WEST_YORKSHIRE, "hr.line_manager")
    home = http.get("/")
    assert home.status_code == 200 and "MISSING_PERMISSION" in home.text
    ops = http.get("/operations")
    assert "MISSING_PERMISSION" in ops.text


def test_report_export_runs_as_a_job_and_downloads(suite: Suite, http: httpx.Client) -> None:
    sign_in(http, UNIT, *STAFF_ROLES)
    started = post_form(http, "/reports", "/reports", {"report": "contracts", "organisation": UNIT})
    assert started.status_code == 303 and started.headers["location"].startswith("/jobs/")
    page = _wait_for_job(http, started.headers["location"])
    assert "Done" in page.text
    download = http.get(started.headers["location"] + "/download")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert (
        download.headers["content-disposition"] == 'attachment; filename="contracts-register-X00000101.csv"'
    )
    # Another user cannot see the job.
    with httpx.Client(base_url=str(http.base_url), timeout=30) as other:
        sign_in(other, UNIT, *STAFF_ROLES, subject="someone-else")
        assert other.get(started.headers["location"]).status_code == 404
        assert other.get(started.headers["location"] + "/download").status_code == 404
    # A refusal ends the job with the service's words.
    refused = post_form(
        http, "/reports", "/reports", {"report": "workforce", "organisation": UNIT, "date": "2026-03-31"}
    )
    page = _wait_for_job(http, refused.headers["location"])
    assert "Stopped" in page.text and "MISSING_PERMISSION" in page.text
    bad = post_form(
        http, "/reports", "/reports", {"report": "payments", "organisation": UNIT, "date": "soon"}
    )
    assert bad.status_code == 400 and "not a date" in bad.text


def test_payment_run_shows_progress_and_result(suite: Suite, http: httpx.Client) -> None:
    books = set_up_books(suite, UNIT)
    sign_in(http, UNIT, *STAFF_ROLES)
    # CreatePaymentRun's parent is a ledger: one run per ledger named.
    form = {"ledgers": f"{books.pcc}, {books.cc}", "payment_date": "2025-06-14"}
    runs = _sent_twice(http, "/payments", "/payments", form)
    assert [r.status_code for r in runs] == [303, 303]
    pages = [_wait_for_job(http, r.headers["location"]) for r in runs]
    assert all("Done" in p.text and "2 of 2" in p.text for p in pages), pages[0].text
    made = [http.get(r.headers["location"] + "/download") for r in runs]
    assert made[0].status_code == 200 and made[0].text.startswith("ledger,payment_run,")
    assert f"{books.pcc}/paymentRuns/" in made[0].text and f"{books.cc}/paymentRuns/" in made[0].text
    # The form sent twice: the second job is answered with the first's runs, not new ones.
    assert made[1].text == made[0].text
    missing = post_form(http, "/payments", "/payments", {"ledgers": "", "payment_date": "2025-06-14"})
    assert (
        missing.status_code == 400 and "BAD_FORM" in missing.text and "<code>ledgers</code>" in missing.text
    )
    # A ledger that is not one: finance's refusal, shown on the job's page.
    refused = post_form(http, "/payments", "/payments", {"ledgers": UNIT, "payment_date": "2025-06-14"})
    page = _wait_for_job(http, refused.headers["location"])
    assert "Stopped" in page.text and "INVALID_ARGUMENT" in page.text


def test_parked_events_and_audit_verification(suite: Suite, http: httpx.Client) -> None:
    event = park_event(suite, UNIT)
    sign_in(http, UNIT, *STAFF_ROLES)
    page = http.get("/operations")
    assert event in page.text and "BUDGET_CLOSED" in page.text
    retried = post_form(
        http,
        "/operations",
        "/operations/events",
        {"service": "procurement", "name": f"organisations/{UNIT}/outboxEvents/{event}", "action": "retry"},
    )
    assert retried.status_code == 303 and "now pending" in http.get(retried.headers["location"]).text
    verified = post_form(http, "/operations", "/operations/audit", {"organisation": UNIT})
    assert verified.status_code == 200 and verified.text.count("Intact") == 4


def _event_form(html: str, event: str, action: str) -> dict[str, str]:
    """The fields of the operations page's `action` form (retry or discard) of one event, as
    the page filled them in."""
    for form in re.findall(r'<form method="post" action="/operations/events"[^>]*>(.*?)</form>', html, re.S):
        if f'name="name" value="{event}"' in form and f'value="{action}"' in form:
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
            return {**fields, "action": action}
    raise AssertionError(f"no {action} form for {event}")


def test_a_release_form_sent_twice_is_answered_as_the_first(suite: Suite, http: httpx.Client) -> None:
    """Retry and Discard are idempotent writes carrying the form's request_id: a double click
    is answered as the first click was, not refused because the event is no longer parked;
    a refused form keeps its id (review finding)."""
    retried = f"organisations/{UNIT}/outboxEvents/{park_event(suite, UNIT, key='orders/1')}"
    discarded = f"organisations/{UNIT}/outboxEvents/{park_event(suite, UNIT, key='orders/2')}"
    sign_in(http, UNIT, *STAFF_ROLES)
    page = http.get("/operations").text
    retry, discard = _event_form(page, retried, "retry"), _event_form(page, discarded, "discard")
    assert retry["request_id"] and discard["request_id"] and retry["request_id"] != discard["request_id"]

    sent = [http.post("/operations/events", data=retry) for _ in range(2)]
    assert [r.status_code for r in sent] == [303, 303], sent[1].text
    assert all("now pending" in http.get(r.headers["location"]).text for r in sent)

    refused = http.post("/operations/events", data={**discard, "reason": ""})
    assert refused.status_code == 400 and "reason" in refused.text
    again = _event_form(refused.text, discarded, "discard")
    assert again["request_id"] == discard["request_id"]  # shown again with its id
    assert (
        _event_form(refused.text, discarded, "retry")["request_id"] != again["request_id"]
    )  # not its others
    sent = [http.post("/operations/events", data={**again, "reason": "a test event"}) for _ in range(2)]
    assert [r.status_code for r in sent] == [303, 303], sent[1].text
    assert all("now discarded" in http.get(r.headers["location"]).text for r in sent)


def test_development_sign_in_can_be_switched_off(suite: Suite) -> None:
    # Plain HTTP here, so cookies that are not Secure (the default without development
    # sign-in is Secure, which a client over HTTP would not send back).
    running: RunningConsole = suite.run(start_console(suite.addresses, issuer=None, secure_cookies=False))
    try:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            page = http.get("/sign-in")
            assert "Development sign-in" not in page.text
            refused = sign_in(http, UNIT, "directory.admin")
            assert refused.status_code == 403 and "DEV_SIGN_IN_DISABLED" in refused.text
            # The identity provider's token, pasted in or sent by a fronting proxy.
            token = TokenIssuer.from_settings(suite.settings).mint("idp-user", UNIT, ["directory.admin"])
            page = http.get("/sign-in")
            signed = http.post("/sign-in", data={"csrf": csrf_of(page.text), "mode": "token", "token": token})
            assert signed.status_code == 303 and "idp-user" in http.get("/").text
        with httpx.Client(base_url=running.url, timeout=30) as proxied:
            page = proxied.get("/organisations", headers={"authorization": f"Bearer {token}"})
            assert page.status_code == 200 and "West Yorkshire" in page.text
    finally:
        suite.run(running.stop(0))


@pytest.mark.parametrize(
    "path", ["/", "/organisations", "/suppliers", "/payments", "/reports", "/charts", "/operations"]
)
def test_every_page_renders(http: httpx.Client, path: str) -> None:
    sign_in(http, UNIT, *STAFF_ROLES)
    page = http.get(path)
    assert page.status_code == 200, page.text
    assert "content-security-policy" in page.headers


def test_a_service_that_does_not_answer_is_shown_plainly(suite: Suite) -> None:
    # Nothing listens on port 1: gRPC's own message names the address it tried
    # ("connections to all backends failing; last error: ... ipv4:127.0.0.1:1 ..."), which
    # is for the log; the page says the service did not answer, as the gateway does.
    targets = {**suite.addresses, "procurement": "127.0.0.1:1"}
    running: RunningConsole = suite.run(
        start_console(targets, issuer=TokenIssuer.from_settings(suite.settings), call_timeout=5)
    )
    try:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            sign_in(http, UNIT, *STAFF_ROLES)
            page = http.get("/suppliers")
            assert "BACKEND_UNAVAILABLE" in page.text and "the service did not answer" in page.text
            # A job's refusal likewise.
            started = post_form(http, "/reports", "/reports", {"report": "contracts", "organisation": UNIT})
            job = _wait_for_job(http, started.headers["location"])
            assert "Stopped" in job.text and "BACKEND_UNAVAILABLE" in job.text
            for said in (page.text, job.text):
                assert "ipv4" not in said and "127.0.0.1:1" not in said and "backends failing" not in said
    finally:
        suite.run(running.stop(0))


def _cookies_of_a_sign_in(url: str, token: str) -> dict[str, str]:
    """The Set-Cookie headers of the sign-in page and of signing in with a token, by name."""
    with httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/sign-in")
        csrf = csrf_of(page.text)
        # By hand: a client over plain HTTP does not send a Secure cookie back.
        signed = http.post(
            "/sign-in",
            data={"csrf": csrf, "mode": "token", "token": token},
            headers={"cookie": f"{CSRF_COOKIE}={csrf}"},
        )
        assert signed.status_code == 303, signed.text
    said = page.headers.get_list("set-cookie") + signed.headers.get_list("set-cookie")
    return {c.split("=", 1)[0]: c for c in said}


@pytest.mark.parametrize(
    ("dev_sign_in", "secure_cookies", "secure"),
    [(False, None, True), (True, None, False), (False, False, False), (True, True, True)],
)
def test_cookies_are_secure_unless_development_sign_in_is_on(
    suite: Suite,
    monkeypatch: pytest.MonkeyPatch,
    dev_sign_in: bool,
    secure_cookies: bool | None,
    secure: bool,
) -> None:
    monkeypatch.setenv("BACKOFFICE_CONSOLE_SECURE_COOKIES", "false")
    assert Settings().console_secure_cookies is False
    # Started as `backoffice serve` starts it (`backoffice console` shares its start).
    settings = suite.settings.model_copy(
        update={
            "console_port": 0,
            "console_dev_sign_in": dev_sign_in,
            "console_secure_cookies": secure_cookies,
        }
    )
    out = io.StringIO()
    stop = suite.run(start_console_beside(settings, suite.servers, Terminal(file=out, width=200)))
    try:
        found = re.search(r"listening on (http://\S+)", out.getvalue())
        assert found, out.getvalue()
        cookies = _cookies_of_a_sign_in(found.group(1), suite.token(UNIT, "directory.admin"))
        assert set(cookies) == {SESSION_COOKIE, CSRF_COOKIE}
        for name, cookie in cookies.items():
            assert ("; secure" in cookie.lower()) is secure, (name, cookie)
            assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    finally:
        suite.run(stop())


def _sent_twice(
    http: httpx.Client, page_path: str, action: str, data: Mapping[str, object]
) -> list[httpx.Response]:
    """One form of a page posted twice exactly as it was filled in (a double click, or the
    browser sending it again)."""
    page = http.get(page_path)
    filled = {"csrf": csrf_of(page.text), "request_id": request_id_of(page.text, action), **data}
    return [http.post(action, data=filled) for _ in range(2)]


def test_a_create_form_sent_twice_creates_once(suite: Suite, http: httpx.Client) -> None:
    sign_in(http, UNIT, *STAFF_ROLES)
    sent = _sent_twice(http, "/suppliers", "/suppliers", {"org": UNIT, "display_name": "Bolt Ltd"})
    assert [r.status_code for r in sent] == [303, 303]
    officer = suite.caller(UNIT, "procurement.commercial", subject="commercial")
    found = officer.procurement.ListSuppliers(
        ppb.ListSuppliersRequest(parent=f"organisations/{UNIT}", filter='display_name:"Bolt Ltd"')
    )
    assert len(found.suppliers) == 1

    # The second onboarding is answered like the first, not ALREADY_EXISTS.
    org = {
        "code": "E06000014",
        "display_name": "City of York Council",
        "kind": "PARTNER",
        "country": "England",
    }
    sent = _sent_twice(http, "/organisations", "/organisations", org)
    assert [r.status_code for r in sent] == [303, 303], sent[1].text
    agreement = {
        "back": "E06000014",
        "display_name": "Contracts register shared with York",
        "kind": "DATA_SHARING",
        "organisation": UNIT,
        "counterparty": "E06000014",
        "functions": ["procurement.contracts"],
        "start_date": "2026-01-01",
    }
    sent = _sent_twice(http, "/organisations/E06000014", "/agreements", agreement)
    assert [r.status_code for r in sent] == [303, 303], sent[1].text
    assert http.get(f"/organisations/{UNIT}").text.count("Contracts register shared with York<br>") == 1


def _ticked(page: str, name: str) -> set[str]:
    return set(re.findall(rf'name="{name}" value="([^"]+)"[^>]*\bchecked\b', page))


def test_a_refused_form_comes_back_with_its_boxes_ticked(http: httpx.Client) -> None:
    """A form shown again after a refusal keeps its id, so that sending it again is answered
    as the first was. The agreement form came back with its name, kind, parties and dates,
    but with every function unticked: fixing the date and sending it again was refused for
    naming no function, or recorded fewer functions than the officer chose if they ticked
    some again; the supplier form lost its SME and VCSE boxes (review finding)."""
    sign_in(http, WEST_YORKSHIRE, *STAFF_ROLES)
    refused = post_form(
        http,
        f"/organisations/{WEST_YORKSHIRE}",
        "/agreements",
        {
            "back": WEST_YORKSHIRE,
            "display_name": "HR and absence by the unit",
            "kind": "SERVICE_PROVISION",
            "organisation": WEST_YORKSHIRE,
            "counterparty": UNIT,
            "functions": ["hr.records", "hr.absence"],
            "start_date": "2026-04-01",
            "end_date": "2025-03-31",  # before the start: the directory refuses it
        },
    )
    assert refused.status_code == 400 and "agreement.end_date" in refused.text, refused.text
    assert 'value="HR and absence by the unit"' in refused.text  # the rest of the form is kept
    assert _ticked(refused.text, "functions") == {"hr.records", "hr.absence"}
    one = post_form(
        http,
        f"/organisations/{WEST_YORKSHIRE}",
        "/agreements",
        {"back": WEST_YORKSHIRE, "kind": "SERVICE_PROVISION", "functions": ["hr.records"]},
    )
    assert one.status_code == 400 and _ticked(one.text, "functions") == {"hr.records"}
    assert not _ticked(http.get(f"/organisations/{WEST_YORKSHIRE}").text, "functions")

    sme = post_form(
        http,
        "/suppliers",
        "/suppliers",
        {"org": WEST_YORKSHIRE, "display_name": "Bolt Ltd", "vat_number": "GB1", "sme": "on"},
    )
    assert sme.status_code == 400 and "vat_number" in sme.text, sme.text
    assert re.search(r'name="sme"[^>]*\bchecked\b', sme.text)
    assert not re.search(r'name="vcse"[^>]*\bchecked\b', sme.text)


@pytest.fixture
def far_from_london() -> Iterator[dt.date]:
    """The process in a time zone where today is not London's today (UTC+14 in London's
    afternoon, UTC-12 in its morning); yields that other day."""
    london = dt.datetime.now(LONDON)
    was = os.environ.get("TZ")
    os.environ["TZ"] = "Etc/GMT-14" if london.hour >= 12 else "Etc/GMT+12"
    time.tzset()
    try:
        elsewhere = dt.date.today()  # the process's day, on purpose
        assert elsewhere != london.date()
        yield elsewhere
    finally:
        if was is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = was
        time.tzset()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_date_defaults_are_londons_today(suite: Suite, http: httpx.Client, far_from_london: dt.date) -> None:
    supplier(suite.caller(UNIT, "procurement.commercial", subject="commercial"), "Acme Ltd")
    sign_in(http, UNIT, *STAFF_ROLES)
    london = today_london().isoformat()
    for path in ("/payments", "/reports", f"/organisations/{UNIT}", "/suppliers", "/charts"):
        page = http.get(path)
        assert page.status_code == 200, path
        assert f'value="{london}"' in page.text, path
        assert f'value="{far_from_london.isoformat()}"' not in page.text, path
    # The pay gap's date is the latest 31 March, the only snapshot date it takes.
    london_day = today_london()
    year = london_day.year if london_day >= dt.date(london_day.year, 3, 31) else london_day.year - 1
    assert f'value="{year}-03-31"' in http.get("/reports").text


def test_a_form_value_the_console_cannot_send_is_a_bad_form_not_a_crash(http: httpx.Client) -> None:
    sign_in(http, UNIT, *STAFF_ROLES)
    spend = {
        "report": "spend",
        "ledger": f"organisations/{UNIT}/ledgers/main",
        "format": "XLSX",
        "start_date": "2026-01-01",
    }
    bad = post_form(http, "/reports", "/reports", spend)
    assert bad.status_code == 400 and "BAD_FORM" in bad.text
    assert "<code>format</code>" in bad.text and "POLICE_MONTHLY" in bad.text
    # A year too large for the request (int32), or digits that are not ASCII.
    ledger = f"organisations/{UNIT}/ledgers/main"
    for year in ("99999999999", "²⁰²⁵", "20x5"):
        page = http.get("/charts", params={"ledger": ledger, "year": year})
        assert page.status_code == 200, (year, page.text)
        assert "BAD_FORM" in page.text and "<code>year</code>" in page.text, year


def test_a_job_is_dropped_30_minutes_after_it_ends(http: httpx.Client, console: RunningConsole) -> None:
    jobs = console.console.jobs
    sign_in(http, UNIT, *STAFF_ROLES)

    def export() -> str:
        started = post_form(http, "/reports", "/reports", {"report": "contracts", "organisation": UNIT})
        assert "Done" in _wait_for_job(http, started.headers["location"]).text
        return str(started.headers["location"])

    first = export()
    assert http.get(first + "/download").status_code == 200
    assert http.get(first + "/download").status_code == 200  # downloading does not drop it
    # A job that took an hour to finish: counted from its end, not its start, even when
    # another job starts.
    job = jobs.get(first.rsplit("/", 1)[1], owner_of(http.cookies["bo_session"]))
    assert job is not None
    job.started -= 3600
    second = export()
    assert http.get(first).status_code == 200
    # Just before the first ends its 30 minutes, both are there; just after, looking is
    # enough to drop both (no other job need start).
    now = time.monotonic()
    jobs.clock = lambda: now + KEEP_SECONDS - 60
    assert [http.get(j).status_code for j in (first, second)] == [200, 200]
    jobs.clock = lambda: now + KEEP_SECONDS + 60
    assert http.get(first + "/download").status_code == 404
    assert http.get(first).status_code == 404 and http.get(second).status_code == 404
    assert "expired" in http.get(second).text
