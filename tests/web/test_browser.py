"""Debian's Chromium, headless, through the interview and the review journey; axe-core on the main pages."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from sharewise.cli.serve import DEMO_PASSWORD
from tests.web.conftest import Site

CHROMIUM = os.environ.get("SHAREWISE_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "assets" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("SHAREWISE_ARTIFACTS") or tempfile.gettempdir()) / "sharewise-web-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(site: Site) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://localhost:{port}"  # localhost: a secure context, so the Secure cookie is kept
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # A missing browser fails the suite (CI must have Debian's chromium); it is never skipped.
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"Chromium not found at {CHROMIUM}: apt-get install chromium"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def sign_in(browser: Browser, base_url: str, site: Site, user: str) -> Page:
    page = browser.new_context(bypass_csp=True).new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base_url}/sign-in")
    page.fill("#username", user)
    page.fill("#password", DEMO_PASSWORD)
    if site.accounts[user].totp_secret:
        page.fill("#code", site.code(user))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    return page


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']})).violations"
    )
    return [{"id": v["id"], "nodes": len(v["nodes"]), "help": v["help"]} for v in result]


def test_the_interview_leads_to_a_determination_and_a_sharing_request(
    browser: Browser, base_url: str, site: Site
) -> None:
    page = sign_in(browser, base_url, site, "rosa")
    page.goto(f"{base_url}/interview")
    page.select_option("#source", "k12_education")
    page.select_option("#kind", "court")
    page.select_option("#purpose", "judicial_proceeding")
    page.click("label[for=data-education_record]")  # USWDS hides the box; people click the label
    page.click("#interview button[type=submit]")
    expect(page.locator("#outcome-heading")).to_have_text("More facts are needed")
    shot(page, "interview-questions")
    page.locator("label.usa-radio__label", has_text="Yes").first.click()
    page.click("#interview button[type=submit]")
    expect(page.locator("#outcome-heading")).to_be_visible()
    shot(page, "interview-outcome")
    page.fill("#title", "School records for the juvenile court")
    page.fill("#use_case", "The court asks for the student's records.")
    page.click("text=Create sharing request")
    assert "/requests/r-" in page.url
    assert page.locator("#request-state").inner_text().lower() == "draft"
    shot(page, "request-draft")


def test_a_request_is_reviewed_and_approved_in_place(browser: Browser, base_url: str, site: Site) -> None:
    from sharewise.services import workflow

    request_id = next(r.id for r in workflow.all_requests(site.control, "rosa") if r.state == "program_review")
    for user, state in (
        ("pat", "legal review"),
        ("lee", "security review"),
        ("sam", "approval"),
        ("avery", "agreement pending"),
    ):
        page = sign_in(browser, base_url, site, user)
        page.goto(f"{base_url}/requests/{request_id}")
        page.fill("#comments", f"reviewed by {user}")
        page.click("text=Record decision")
        assert page.locator("#request-state").inner_text().lower() == state, page.content()[:2000]
        shot(page, f"review-{user}")
        page.context.close()


def test_the_interview_answers_as_the_person_chooses_without_reloading(
    browser: Browser, base_url: str, site: Site
) -> None:
    # htmx: each change asks the server again and swaps in the answer; the form still works without JS.
    page = sign_in(browser, base_url, site, "rosa")
    page.goto(f"{base_url}/interview")
    page.evaluate("window.notReloaded = true")
    page.select_option("#source", "snap")
    page.select_option("#kind", "state_or_local_agency")
    page.select_option("#rprogram", "tanf")
    page.select_option("#purpose", "eligibility_determination")
    page.click("label[for=data-identity]")
    expect(page.locator("#outcome-heading")).to_have_text("Permitted")
    expect(page.locator("#interview-status")).to_contain_text("Permitted")  # announced to screen readers
    assert page.evaluate("window.notReloaded") is True and "purpose=eligibility_determination" in page.url
    assert page.locator("#source").input_value() == "snap"  # the choices survive the swap
    page.context.close()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/interview?source=snap&kind=state_or_local_agency&rprogram=tanf&purpose=eligibility_determination&data=identity",
        "/law",
        "/requests",
        "/consents",
        "/consents/new",
        "/agreements",
        "/accounting",
        "/account",
        "/account/password",
        "/account/tokens",
        "/sign-in",
    ],
)
def test_the_main_pages_have_no_wcag_aa_violations(browser: Browser, base_url: str, site: Site, path: str) -> None:
    page = sign_in(browser, base_url, site, "dana" if "consent" in path or "accounting" in path else "rosa")
    if path == "/sign-in":
        page = browser.new_context(bypass_csp=True).new_page()
    page.goto(base_url + path)
    violations = axe_violations(page)
    page.context.close()
    assert violations == [], violations


@pytest.mark.parametrize("suffix", ["", "/safeguards"])
def test_a_request_page_and_its_safeguards_have_no_wcag_aa_violations(
    browser: Browser, base_url: str, site: Site, suffix: str
) -> None:
    from sharewise.services import workflow

    request_id = workflow.all_requests(site.control, "rosa")[0].id
    page = sign_in(browser, base_url, site, "rosa")
    page.goto(f"{base_url}/requests/{request_id}{suffix}")
    assert page.locator("#five-safes" if not suffix else "#controls").count() == 1
    violations = axe_violations(page)
    page.context.close()
    assert violations == [], violations
