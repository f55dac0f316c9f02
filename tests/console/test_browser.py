"""The console in a real browser: Playwright driving Debian's Chromium (never a downloaded
one). Signs in, onboards a partner and its agreement, debars a supplier, approves a
requisition and downloads a report; screenshots the main pages (into docs/console/ when
BACKOFFICE_CONSOLE_SCREENSHOTS=1, so that a test run leaves the tree as it was).

Chromium comes from the test set-up: installed with apt when missing and we are root. Under
CI=true these tests must run; elsewhere they skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backoffice.procurement.v1 import procurement_service_pb2 as ppb
from services.console.app import RunningConsole
from tests.procurement.helpers import requisition, supplier
from tests.support import UNIT, Suite

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these, Chromium's own background traffic is refused on this closed network
    # and the browser stalls.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            _unavailable(f"{CHROMIUM} is missing and this user cannot apt-get install chromium")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600, check=False)
            done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0 or not CHROMIUM.exists():
            _unavailable(f"apt-get install chromium failed: {done.stderr.strip()[-500:]}")
    return CHROMIUM


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_staff_run_the_centre_in_a_browser(
    suite: Suite, console: RunningConsole, browser: Any, tmp_path: Path
) -> None:
    officer = suite.caller(UNIT, "procurement.commercial", subject="commercial")
    acme = supplier(officer, "Acme Armour Ltd")
    requester = suite.caller(UNIT, "procurement.requester", subject="requester")
    r = requisition(requester, UNIT, title="Radios for response")
    requester.procurement.SubmitRequisition(ppb.SubmitRequisitionRequest(name=r.name, etag=r.etag))

    shots = DOCS_SHOTS if os.environ.get("BACKOFFICE_CONSOLE_SCREENSHOTS") == "1" else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"))

    # Sign in (development sign-in).
    page.goto(f"{console.url}/")
    assert page.url.endswith("/sign-in")
    shot("sign-in")
    page.fill("input[name=subject]", "alice")
    for role in (
        "directory.admin",
        "procurement.commercial",
        "procurement.budget_holder",
        "operations.staff",
    ):
        page.check(f"input[name=roles][value='{role}']")
    page.click("form:has(input[name=mode][value=development]) button[type=submit]")
    page.wait_for_url(f"{console.url}/")
    assert page.is_visible("text=Radios for response")
    shot("awaiting-action")

    # Approve the requisition.
    page.click("button[aria-label='Approve Radios for response']")
    page.wait_for_selector("text=Approved Radios for response")

    # Onboard a partner and its agreement.
    page.click("nav >> text=Organisations")
    page.fill("input[name=code]", "E06000014")
    page.fill("input[name=display_name]", "City of York Council")
    page.select_option("select[name=kind]", "PARTNER")
    page.click("form[action='/organisations'] button[type=submit]")
    page.wait_for_selector("text=Onboarded City of York Council")
    page.fill("form[action='/agreements'] input[name=display_name]", "Contracts shared with York")
    page.select_option("form[action='/agreements'] select[name=kind]", "DATA_SHARING")
    page.fill("form[action='/agreements'] input[name=organisation]", UNIT)
    page.check("input[name=functions][value='procurement.contracts']")
    page.click("form[action='/agreements'] button[type=submit]")
    page.wait_for_selector("text=Recorded agreement Contracts shared with York")
    # The unit, a party to it, sees it among its agreements.
    page.goto(f"{console.url}/organisations/{UNIT}")
    assert page.is_visible(
        "tr:has-text('Contracts shared with York') >> td:has-text('procurement.contracts')"
    )
    shot("organisation")

    # A refusal, readably: onboarding the same code again.
    page.click("nav >> text=Organisations")
    page.fill("input[name=code]", "E06000014")
    page.fill("input[name=display_name]", "York again")
    page.click("form[action='/organisations'] button[type=submit]")
    page.wait_for_selector(".refusal >> text=ALREADY_EXISTS")
    shot("refusal")

    # Debar a supplier.
    page.click("nav >> text=Suppliers")
    page.click("tr:has-text('Acme Armour Ltd') >> summary")
    page.fill(
        "input[aria-label='Reason for debarring Acme Armour Ltd']", "On the Procurement Act debarment list"
    )
    page.click("button[aria-label='Debar Acme Armour Ltd']")
    page.wait_for_selector("text=Debarred Acme Armour Ltd")
    assert page.is_visible("tr.debarred >> text=On the Procurement Act debarment list")
    shot("suppliers")

    # Download a report (a job with a progress page).
    page.click("nav >> text=Reports")
    shot("reports")
    page.click("form:has(input[name=report][value=contracts]) button[type=submit]")
    page.wait_for_selector("text=Download contracts-register")
    shot("job")
    with page.expect_download() as info:
        page.click("text=Download contracts-register")
    download = info.value
    assert download.suggested_filename == f"contracts-register-{UNIT}.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_text().strip()  # the register's header at least

    # Operations and charts render.
    page.click("nav >> text=Operations")
    page.click("form[action='/operations/audit'] button[type=submit]")
    page.wait_for_selector("text=Intact")
    shot("operations")
    page.click("nav >> text=Charts")
    shot("charts")
    context.close()
    assert acme.name
