"""Debian's Chromium, headless, through the interview and the review journey; axe-core on every page of every role."""

from __future__ import annotations

import hashlib
import os
import re
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

from sharewise.cli.serve import DEMO_PASSWORD, DEMO_USERS
from tests.web.conftest import Site, signed_in

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


class Desks:
    """Each person at their own browser (a context of their own), signed in through the sign-in page on first use."""

    def __init__(self, browser: Browser, base_url: str, site: Site) -> None:
        self.browser, self.base_url, self.site = browser, base_url, site
        self.pages: dict[str, Page] = {}

    def __call__(self, user: str, path: str | None = None) -> Page:
        if user not in self.pages:
            self.pages[user] = sign_in(self.browser, self.base_url, self.site, user)
        page = self.pages[user]
        if path is not None:
            page.goto(self.base_url + path)
        return page

    def sign_out(self, user: str) -> None:
        """Sign out from the header, as people do at the end of their work; the old session opens nothing after."""
        page = self.pages.pop(user)
        page.click("form[action='/sign-out'] button[type=submit]")
        page.wait_for_url(f"{self.base_url}/sign-in")
        expect(page.locator("main")).to_contain_text("You are signed out.")
        page.goto(f"{self.base_url}/requests")
        assert page.url.startswith(f"{self.base_url}/sign-in?next="), page.url
        page.context.close()

    def close(self) -> None:
        for page in self.pages.values():
            page.context.close()
        self.pages.clear()


@pytest.fixture(scope="module")
def desks(browser: Browser, base_url: str, site: Site) -> Iterator[Desks]:
    people = Desks(browser, base_url, site)
    yield people
    people.close()


def test_the_interview_leads_to_a_determination_and_a_sharing_request(desks: Desks) -> None:
    page = desks("rosa", "/interview")
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
    page.wait_for_url(re.compile(r".*/requests/r-[\w-]+$"))  # the click returns before the new page is there
    assert page.locator("#request-state").inner_text().lower() == "draft"
    shot(page, "request-draft")


def test_a_request_is_reviewed_and_approved_in_place(desks: Desks, site: Site) -> None:
    from sharewise.services import workflow

    request_id = next(r.id for r in workflow.all_requests(site.control, "rosa") if r.state == "program_review")
    for user, state in (
        ("pat", "legal review"),
        ("lee", "security review"),
        ("sam", "approval"),
        ("avery", "agreement pending"),
    ):
        page = desks(user, f"/requests/{request_id}")
        page.fill("#comments", f"reviewed by {user}")
        page.click("text=Record decision")
        assert page.locator("#request-state").inner_text().lower() == state, page.content()[:2000]
        shot(page, f"review-{user}")


def test_the_interview_answers_as_the_person_chooses_without_reloading(desks: Desks) -> None:
    # htmx: each change asks the server again and swaps in the answer; the form still works without JS.
    page = desks("rosa", "/interview")
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


# Accessibility: every page the navigation reaches, for every role ---------------------------------------

# One demo person per distinct set of roles (the school district's people repeat the county's roles).
ROLE_USERS: dict[str, str] = {}
for _user, _name, _agency, _roles in DEMO_USERS:
    ROLE_USERS.setdefault(",".join(sorted(_roles)), _user)

# The renderings already checked (their HTML minus the CSRF token and who is signed in), with what axe found.
CHECKED: dict[str, list[dict[str, Any]]] = {}


NAV_LINKS = "header a[href], nav a[href]"  # the header (logo, primary navigation, account) and every <nav>


def navigation_of(page: Page) -> list[str]:
    """The site paths the page's navigation links to, in order, without fragments."""
    hrefs: list[str] = page.eval_on_selector_all(NAV_LINKS, "links => links.map(a => a.getAttribute('href'))")
    paths = [h.split("#", 1)[0] for h in hrefs if h.startswith("/") and not h.startswith("//")]
    return list(dict.fromkeys(p for p in paths if p and not p.startswith(("/static/", "/api/"))))


def rendering(html: str, site: Site, user: str) -> str:
    """A page's HTML as any person of the same roles would get it: no CSRF token, no name of who is signed in."""
    account = site.accounts[user]
    name = next(n for u, n, _a, _r in DEMO_USERS if u == user)
    html = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', html)
    for own in (name, account.agency, user):
        html = re.sub(rf"\b{re.escape(own)}\b", "<signed-in>", html)
    return hashlib.sha256(html.encode()).hexdigest()


@pytest.mark.parametrize("roles", sorted(ROLE_USERS))
def test_every_page_the_navigation_reaches_has_no_wcag_aa_violations(
    desks: Desks, base_url: str, site: Site, roles: str
) -> None:
    # The pages are found, not listed: from the dashboard, every link of every page's navigation, as this role.
    user = ROLE_USERS[roles]
    page = desks(user)
    found: dict[str, list[dict[str, Any]]] = {}
    visited: list[str] = []
    todo = ["/"]
    while todo:
        path = todo.pop(0)
        if path in visited:
            continue
        visited.append(path)
        page.goto(base_url + path)
        todo += navigation_of(page)
        fingerprint = rendering(page.content(), site, user)
        if fingerprint not in CHECKED:  # the same document checked for another role: axe would answer the same
            CHECKED[fingerprint] = axe_violations(page)
        found[path] = CHECKED[fingerprint]
    shot(page, f"navigation-{user}")
    assert len(visited) >= 8, visited  # the navigation was found and followed
    assert {p: v for p, v in found.items() if v} == {}


@pytest.mark.parametrize("roles", sorted(ROLE_USERS))
def test_every_navigation_link_opens_a_page_the_role_may_use(site: Site, roles: str) -> None:
    # A link offered to someone who is then refused (403) is a broken link for them: the menu shows what they may use.
    user = ROLE_USERS[roles]
    client = signed_in(site, user)
    answers: dict[str, int] = {}
    todo = ["/"]
    while todo:
        path = todo.pop(0)
        if path in answers:
            continue
        r = client.get(path)
        answers[path] = r.status_code
        for nav in re.findall(r"<header.*?</header>|<nav\b.*?</nav>", r.text, re.S):
            todo += [
                h.split("#", 1)[0]
                for h in re.findall(r'href="(/[^/"][^"]*|/)"', nav)
                if not h.startswith(("/static/", "/api/"))
            ]
    assert {p: s for p, s in answers.items() if s != 200} == {}, f"{user} ({roles})"


@pytest.mark.parametrize(
    "path",
    [
        "/interview?source=snap&kind=state_or_local_agency&rprogram=tanf&purpose=eligibility_determination&data=identity",
        "/consents/new",
        "/consents/import",
        "/agreements?expiring=90",
        "/sign-in",
    ],
)
def test_the_pages_reached_from_other_pages_have_no_wcag_aa_violations(
    browser: Browser, desks: Desks, base_url: str, path: str
) -> None:
    # The navigation's pages are found above; these are reached from a page's content (or before signing in).
    if path == "/sign-in":
        page = browser.new_context(bypass_csp=True).new_page()
        page.goto(base_url + path)
    else:
        page = desks("dana" if "consent" in path else "rosa", path)
    violations = axe_violations(page)
    if path == "/sign-in":
        page.context.close()
    assert violations == [], violations


@pytest.mark.parametrize("suffix", ["", "/safeguards"])
def test_a_request_page_and_its_safeguards_have_no_wcag_aa_violations(desks: Desks, site: Site, suffix: str) -> None:
    from sharewise.services import workflow

    request_id = workflow.all_requests(site.control, "rosa")[0].id
    page = desks("rosa", f"/requests/{request_id}{suffix}")
    assert page.locator("#five-safes" if not suffix else "#controls").count() == 1
    violations = axe_violations(page)
    assert violations == [], violations
