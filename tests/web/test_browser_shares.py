"""In Debian's Chromium: a data steward plans a share, runs it, watches it reach "succeeded" and downloads it."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from sharewise.cli.serve import DEMO_PASSWORD
from sharewise.policy.model import LawPack
from sharewise.security import cms
from sharewise.services import shares
from sharewise.services.share_jobs import jobs_for
from sharewise.web import share_pages  # noqa: F401  (adds the routes before the site's app is made)
from tests.pipeline.certs import make_recipient
from tests.web.conftest import Site, signed_in
from tests.web.test_browser import ARTIFACTS, axe_violations, base_url, browser, shot, sign_in  # noqa: F401
from tests.web.test_record_pages import people, share_files  # noqa: F401  (people is a fixture)
from tests.web.test_share_pages import job_id_of, run_files, runnable, source_csv, start

WAIT_MS = 30_000


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Hold every run at its encryption until the test opens the gate: the page is seen while running."""
    opened = threading.Event()
    real = cms.envelope

    def envelope_at_the_gate(*args: Any, **kwargs: Any) -> Any:
        assert opened.wait(60), "the test never opened the gate"
        return real(*args, **kwargs)

    monkeypatch.setattr(cms, "envelope", envelope_at_the_gate)
    yield opened
    opened.set()  # a failed test leaves no run waiting


def upload(page: Any, selector: str, name: str, body: bytes, mime: str) -> None:
    page.set_input_files(selector, files=[{"name": name, "mimeType": mime, "buffer": body}])


def test_a_steward_plans_runs_watches_and_downloads_a_share(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    people: Site,  # noqa: F811
    law: LawPack,
    tmp_path: Path,
    gate: threading.Event,
) -> None:
    cert, key = make_recipient(tmp_path)
    agreement_id = runnable(people, law)
    found: dict[str, list[dict[str, Any]]] = {}

    page = sign_in(browser, base_url, people, "dana")
    page.goto(f"{base_url}/shares/plan")
    for field, (name, body, mime) in share_files(agreement_id, share_id=None).items():
        upload(page, f"#{field.replace('_', '-')}", name, body, mime)
    page.click("form[action='/shares/plan'] button[type=submit]")
    expect(page.locator("#fields-kept")).to_be_visible()
    expect(page.locator("#run-heading")).to_have_text("Run this share")
    upload(page, "#run-source-file", "clients.csv", source_csv(40), "text/csv")
    upload(page, "#run-certificate-file", "recipient.pem", cert.read_bytes(), "application/x-pem-file")
    found["plan-with-run-form"] = axe_violations(page)
    shot(page, "share-plan-run-form")
    page.click("#run-form button[type=submit]")
    page.wait_for_url(f"{base_url}/shares/runs/sj-*")
    job_id = page.url.rsplit("/", 1)[1]

    # Running: the steps so far, live; the run waits at the gate in its encryption step.
    expect(page.locator("#job-steps")).to_contain_text("signing and encrypting the package", timeout=WAIT_MS)
    expect(page.locator("#job-state")).to_have_text("Running")
    expect(page.locator("#job-announcement")).to_contain_text("Running", timeout=WAIT_MS)
    found["job-running"] = axe_violations(page)
    shot(page, "share-run-running")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads: the status must change in place

    gate.set()
    expect(page.locator("#job-state")).to_have_text("Succeeded", timeout=WAIT_MS)
    assert page.evaluate("window.sameDocument === true")
    expect(page.locator("#job-announcement")).to_contain_text("Succeeded: 40 rows in the package")
    assert page.locator("#job-status").get_attribute("hx-trigger") is None  # polling has stopped
    job = jobs_for(people.control).read(people.control, "dana", job_id)
    assert job.result is not None
    expect(page.locator("#result-rows")).to_have_text("40")
    expect(page.locator("#result-sha256")).to_have_text(job.result.sha256)
    found["job-succeeded"] = axe_violations(page)
    shot(page, "share-run-succeeded")

    with page.expect_download() as caught:
        page.click("#download-package")
    download = caught.value
    assert download.suggested_filename == f"{job.share_id}.p7m"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert shares.verify_package(saved, cert, key).manifest["output"]["rows"] == 40

    page.goto(f"{base_url}/shares/runs")  # the run page: its form with a problem, and the recent runs
    page.evaluate("document.querySelector('#source-file').removeAttribute('required')")  # the server's check
    page.fill("#share-yaml", "agreement: [unclosed")
    page.click("#run-form button[type=submit]")
    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator("#recent-runs")).to_contain_text(job.share_id)
    found["run-form-error"] = axe_violations(page)
    shot(page, "share-run-form-error")
    page.context.close()
    assert len(found) == 4 and not any(found.values()), {k: v for k, v in found.items() if v}
    assert (ARTIFACTS / "share-run-succeeded.png").is_file()


def test_without_javascript_the_run_page_reloads_itself_until_the_run_ends(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    people: Site,  # noqa: F811
    law: LawPack,
    tmp_path: Path,
    gate: threading.Event,
) -> None:
    cert, _key = make_recipient(tmp_path)
    agreement_id = runnable(people, law)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{base_url}/sign-in?next=/shares/runs")  # the sign-in form needs no JavaScript either
    page.fill("#username", "dana")
    page.fill("#password", DEMO_PASSWORD)
    if people.accounts["dana"].totp_secret:
        page.fill("#code", people.code("dana"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/shares/runs")
    files = share_files(agreement_id, share_id=None)
    for field in ("share_file", "dictionary_file"):
        name, body, mime = files[field]
        upload(page, f"#{field.replace('_', '-')}", name, body, mime)
    upload(page, "#source-file", "clients.csv", source_csv(10), "text/csv")
    upload(page, "#certificate-file", "recipient.pem", cert.read_bytes(), "application/x-pem-file")
    page.click("#run-form button[type=submit]")
    page.wait_for_url(f"{base_url}/shares/runs/sj-*")
    assert page.locator("#job-state").text_content() in ("Queued", "Running")
    with page.expect_navigation(timeout=WAIT_MS):  # the page's own refresh, every few seconds, while it runs
        pass
    gate.set()
    expect(page.locator("#job-state")).to_have_text("Succeeded", timeout=WAIT_MS)
    shot(page, "share-run-no-javascript")
    context.close()


def test_an_open_run_page_does_not_keep_an_idle_session_alive(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    people: Site,  # noqa: F811
    law: LawPack,
    tmp_path: Path,
    gate: threading.Event,
) -> None:
    """Polls (htmx) and the page's own refresh (no JavaScript) go on, yet the session ends 15 minutes after the person."""
    cert, _key = make_recipient(tmp_path)
    agreement_id = runnable(people, law)
    job_id = job_id_of(start(signed_in(people, "dana"), run_files(agreement_id, cert)))  # held at the gate: active
    run_page = f"{base_url}/shares/runs/{job_id}"

    def polled(page: Any) -> None:
        with page.expect_response(lambda r: f"/shares/runs/{job_id}/status" in r.url, timeout=WAIT_MS):
            pass

    page = sign_in(browser, base_url, people, "dana")
    page.goto(run_page)
    expect(page.locator("#job-state")).to_have_text("Running", timeout=WAIT_MS)
    people.clock.offset += dt.timedelta(minutes=10)
    polled(page)  # a poll 10 minutes on: the session is alive (and, being a poll, not renewed)
    polled(page)
    assert page.url == run_page
    people.clock.offset += dt.timedelta(minutes=6)
    page.wait_for_url(f"{base_url}/sign-in?next=/shares/runs/{job_id}", timeout=WAIT_MS)  # HX-Redirect: all of it
    expect(page.locator("body")).to_contain_text("Your session ended after 15 minutes without activity")
    shot(page, "share-run-session-ended")
    page.context.close()

    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{base_url}/sign-in?next=/shares/runs/{job_id}")
    page.fill("#username", "dana")
    page.fill("#password", DEMO_PASSWORD)
    if people.accounts["dana"].totp_secret:
        page.fill("#code", people.code("dana"))
    page.click("button[type=submit]")
    page.wait_for_url(run_page)
    people.clock.offset += dt.timedelta(minutes=10)
    page.wait_for_url(f"{run_page}?refresh=auto")  # the page's own refresh, still signed in
    expect(page.locator("#job-state")).to_have_text("Running")
    people.clock.offset += dt.timedelta(minutes=6)
    page.wait_for_url(f"{base_url}/sign-in?next=/shares/runs/{job_id}")  # the refresh went to sign in
    context.close()
