"""Journeys in Chromium, as each role in turn: a request to a signed agreement; a consent's life; audit and accounting.

Everything is done through the pages (links, buttons, forms) as the people of the demo agencies, each at
their own browser. Where the pages offer no way to do a step, the REST API is called with a token the
person issued on their account page, as their own machine client would; each such step says why.
Screenshots of the key steps are kept in the artifacts directory, and every page a journey shows is
checked with axe-core (WCAG 2.1 A and AA).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pytest
import yaml
from playwright.sync_api import Download, Page, expect
from sqlalchemy import Connection, select, text, update

from sharewise.consent.fhir import EXT as FHIR_EXTENSION
from sharewise.domain.consent import PersonIdentifiers
from sharewise.domain.errors import StorageError
from sharewise.domain.events import DisclosureEvent
from sharewise.services import accounting as accounting_service
from sharewise.services import agreement_registry
from sharewise.services import audit as audit_service
from sharewise.services import consents as consent_service
from sharewise.services import workflow as workflow_service
from sharewise.store.schema import audit_records
from tests.conftest import REPO, drop_append_only_triggers
from tests.web.conftest import Site
from tests.web.test_browser import ARTIFACTS, Desks, axe_violations, base_url, browser, desks, shot  # noqa: F401  (fixtures)

Violations = dict[str, list[dict[str, Any]]]

DISCLOSER = "Lakeview County Department of Human Services, SNAP Division"
RECIPIENT = "Lakeview Unified School District, School Nutrition Services"


def check(page: Page, name: str, found: Violations) -> None:
    """A screenshot of a key step, and the page's WCAG 2.1 AA violations (asserted at the end of the journey)."""
    shot(page, name)
    found[name] = axe_violations(page)


def flash(page: Page) -> str:
    return " ".join(page.locator("main .usa-alert").all_inner_texts())


def flashed(page: Page, text: str) -> str:
    """Every alert of the page once one says text: a click returns before the page it leads to is there."""
    expect(page.locator("main .usa-alert", has_text=text).first).to_be_visible()
    return flash(page)


def state_of(page: Page) -> str:
    return page.locator("#request-state").inner_text().strip().lower()


def expect_state(page: Page, state: str) -> None:
    """Wait until the request page shows the state (the page after a click may not be there yet)."""
    expect(page.locator("#request-state")).to_have_text(re.compile(rf"^\s*{re.escape(state)}\s*$", re.IGNORECASE))


def issue_token(page: Page, label: str, role: str) -> str:
    """An API token issued on the person's account page (shown once), for a step the pages do not offer."""
    page.click("text=Your account")
    page.click("nav[aria-label='Your account'] >> text=API tokens")
    page.fill("#label", label)
    page.click(f"label[for=role-{role}]")
    page.select_option("#expires_in_days", "7")
    page.click("form[action='/account/tokens'] button[type=submit]")
    expect(page.locator("#issued-heading")).to_contain_text("issued")
    return page.locator("#issued-secret").input_value()


def save(download: Download, name: str) -> Path:
    path = ARTIFACTS / name
    download.save_as(path)
    return path


def docx_text(path: Path) -> str:
    document = docx.Document(str(path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


# 1. A request through every review to approval, then its agreement drafted, signed, in effect -----------


def parties() -> dict[str, Any]:
    """The parties of the county's SNAP direct certification for school meals (fictitious names)."""
    data: dict[str, Any] = yaml.safe_load((REPO / "examples/parties/lakeview-snap-tanf.yaml").read_text("utf-8"))
    data = json.loads(json.dumps(data, default=str))
    data["agreement"]["reference"] = "LCDHS-DSA-2026-031"
    data["discloser"]["legal_name"] = DISCLOSER
    data["recipient"] = {
        "legal_name": RECIPIENT,
        "short_name": "LUSD Nutrition",
        "address": "200 School Lane, Lakeview, FR 10002",
        "contacts": [{"role": "data_custodian", "name": "Morgan Reyes", "title": "Nutrition Services Director"}],
        "signatory": {"name": "Casey Lund", "title": "Superintendent"},
    }
    data["purpose_description"] = "Directly certify SNAP children for free school meals without an application."
    data["authorized_users"] = [{"role": "Nutrition Services eligibility clerks"}]
    return data


def test_a_request_goes_through_every_review_to_an_agreement_in_effect_and_its_document(
    desks: Desks,  # noqa: F811
    base_url: str,  # noqa: F811
    site: Site,
) -> None:
    found: Violations = {}
    # The requester asks the interview, which answers, and turns the answer into a request to the schools.
    rosa = desks("rosa", "/interview")
    rosa.select_option("#source", "snap")
    rosa.select_option("#kind", "state_or_local_agency")
    rosa.select_option("#rprogram", "school_meals")
    rosa.select_option("#purpose", "eligibility_determination")
    rosa.click("label[for=data-identity]")
    rosa.click("label[for=data-eligibility_and_benefits]")
    rosa.click("#interview button[type=submit]")
    expect(rosa.locator("#outcome-heading")).to_have_text("Permitted")
    rosa.fill("#title", "SNAP direct certification for school meals")
    rosa.fill("#use_case", "Children in SNAP households get free school meals without an application.")
    rosa.fill("#recipient_agency", "lakeview-schools")
    rosa.click("text=Create sharing request")
    rosa.wait_for_url(re.compile(r".*/requests/r-[\w-]+$"))  # the click returns before the new page is there
    request_id = rosa.url.rsplit("/", 1)[-1]
    assert re.fullmatch(r"r-[\w-]+", request_id) and state_of(rosa) == "draft"
    rosa.click("text=Submit for review")
    flashed(rosa, "Submitted for program review.")
    expect_state(rosa, "program review")
    check(rosa, "journey-agreement-01-submitted", found)

    # Each review in turn, each reviewer finding the request in their queue.
    for user, after in (
        ("pat", "legal review"),
        ("lee", "security review"),
        ("sam", "approval"),
        ("avery", "approval"),  # the county approves; the school district has yet to
        ("blake", "agreement pending"),
    ):
        page = desks(user, "/requests")
        queue = page.locator("table", has=page.locator("caption", has_text="Your queue"))
        queue.get_by_role("link", name=request_id).click()
        page.fill("#comments", f"Reviewed by {user}.")
        page.click("text=Record decision")
        flashed(page, "recorded")
        expect_state(page, after)
        check(page, f"journey-agreement-02-{user}", found)
    lee = desks("lee", f"/requests/{request_id}")
    expect(lee.locator("#outcome-heading")).to_have_text("Permitted")  # the determination legal review recorded
    timeline = desks("rosa", f"/requests/{request_id}").locator(".usa-process-list").inner_text()
    for user in ("pat", "lee", "sam", "avery", "blake"):
        assert f"Reviewed by {user}." in timeline

    # The pages draft no agreement (see the report): the requester's client drafts it through the API.
    token = issue_token(rosa, "drafting the school meals agreement", "requester")
    drafted = rosa.request.post(
        f"{base_url}/api/v1/agreements",
        headers={"Authorization": f"Bearer {token}"},
        data={"request_id": request_id, "parties": parties(), "format": "docx"},
    )
    assert drafted.status == 201, drafted.text()
    agreement_id = drafted.json()["id"]

    # The requester finds it among the agreements and sends it to review.
    rosa.click("nav[aria-label='Primary navigation'] >> text=Agreements")
    rosa.click(f"a[href='/agreements/{agreement_id}']")
    expect(rosa.locator("main .usa-tag").first).to_have_text("draft")
    check(rosa, "journey-agreement-03-draft", found)
    rosa.click("text=Send to review")
    expect(rosa.locator("main .usa-tag").first).to_have_text(re.compile("^in.review$"))  # "in review" reads better
    flashed(rosa, f"Agreement {agreement_id} sent to review.")

    # An approver of each agency signs for its party (one approver cannot sign for both).
    avery = desks("avery", f"/agreements/{agreement_id}")
    avery.select_option("#sign-party", "discloser")
    check(avery, "journey-agreement-04-sign", found)
    avery.click("form[action$='/sign'] button[type=submit]")
    flashed(avery, "the other party has yet to sign")
    expect(avery.locator("dl")).to_contain_text(f"{DISCLOSER} (signed)")
    assert avery.locator("#sign-party").count() == 0  # separation of duties: no second signature offered
    expect(avery.locator("main")).to_contain_text("another approver signs for the other")
    blake = desks("blake", f"/agreements/{agreement_id}")
    assert blake.locator("#sign-party option").all_inner_texts() == [f"the recipient ({RECIPIENT})"]
    blake.click("form[action$='/sign'] button[type=submit]")
    flashed(blake, "both parties have signed")
    expect(blake.locator("main .usa-tag").first).to_have_text("signed")

    # The county's approver puts it into effect.
    avery.reload()
    avery.click("text=Put the agreement into effect")
    flashed(avery, f"Agreement {agreement_id} is active.")
    expect(avery.locator("main .usa-tag").first).to_have_text("active")
    history = avery.locator("main ul.usa-list").last.inner_text()
    assert "signed by avery for the discloser" in history and "signed by blake for the recipient" in history
    assert "activated by avery" in history
    check(avery, "journey-agreement-05-active", found)

    # The drafted document downloads from the agreement page, and is the agreement between the two parties.
    with rosa.expect_download() as info:
        rosa.goto(f"{base_url}/agreements/{agreement_id}")
        rosa.click("#agreement-document")
    assert info.value.suggested_filename == f"{agreement_id}.docx"
    text = docx_text(save(info.value, f"journey-agreement-{agreement_id}.docx"))
    assert DISCLOSER in text and RECIPIENT in text and "LCDHS-DSA-2026-031" in text

    # What the service recorded is what the pages showed, and every step was audited as done on the web.
    record = agreement_registry.show(site.control, "audrey", agreement_id)
    assert (
        record.state == "active"
        and record.request_id == request_id
        and record.signed_by
        == {
            "discloser",
            "recipient",
        }
    )
    assert workflow_service.show(site.control, "audrey", request_id).state == "agreement_pending"
    trail = audit_service.log(site.control, "audrey", limit=500)
    actions = {(r["action"], r["actor"]) for r in trail if r["subject_id"] in (request_id, agreement_id)}
    for expected in (
        ("request-submitted", "rosa"),
        ("request-approved", "avery"),
        ("request-approved", "blake"),
        ("agreement-signed", "avery"),
        ("agreement-signed", "blake"),
        ("agreement-activated", "avery"),
    ):
        assert expected in actions, (expected, sorted(actions))

    for user in ("blake", "avery", "rosa"):
        desks.sign_out(user)
    assert {k: v for k, v in found.items() if v} == {}


def test_the_agreement_page_offers_the_document_as_docx_and_as_pdf(
    desks: Desks,  # noqa: F811
    base_url: str,  # noqa: F811
    site: Site,
) -> None:
    # Issue 8: the agreement's DOCX and PDF download from its page. The API keeps one drafted format only.
    rosa = desks("rosa", "/requests")
    request_id = workflow_service.all_requests(site.control, "rosa")[0].id
    token = issue_token(rosa, "drafting", "requester")
    drafted = rosa.request.post(
        f"{base_url}/api/v1/agreements",
        headers={"Authorization": f"Bearer {token}"},
        data={"request_id": request_id, "parties": parties(), "format": "docx"},
    )
    assert drafted.status == 201, drafted.text()
    rosa.goto(f"{base_url}/agreements/{drafted.json()['id']}")
    got: dict[str, bytes] = {}
    for link in rosa.locator("main a[download]").all():
        with rosa.expect_download() as info:
            link.click()
        got[Path(info.value.suggested_filename).suffix] = save(info.value, info.value.suggested_filename).read_bytes()
    assert got.get(".docx", b"").startswith(b"PK"), sorted(got)
    assert got.get(".pdf", b"").startswith(b"%PDF"), f"the agreement page offers {sorted(got)} only, no PDF"


# 2. A consent: the form that enforces the law's elements, look-up, revocation, FHIR round trip --------

PERSON = {"given_name": "Noor", "family_name": "Haddad", "date_of_birth": "1988-07-14"}


def fill_consent(page: Page, statements: list[str]) -> None:
    for field, value in PERSON.items():
        page.fill(f"#{field}", value)
    page.select_option("#discloser_program", "sud_treatment")
    page.select_option("#recipient_kind", "state_or_local_agency")
    page.fill("#recipient_name", "Lakeview County child welfare")
    page.click("label[for=cd-sud_treatment_information]")
    page.fill("#information_description", "Attendance, treatment progress and discharge summary")
    page.click("label[for=cp-care_coordination]")
    page.fill("#purpose_description", "Planning reunification with my children")
    page.fill("#effective", "2026-11-02")
    page.fill("#expires_on", "2027-11-02")
    page.fill("#signer_name", "Noor Haddad")
    page.fill("#signed_on", "2026-11-02")
    page.select_option("#method", "wet_ink")
    for statement in statements:
        page.click(f"label[for=st-{statement}]")


def look_up(page: Page, origin: str, purpose: str = "care_coordination") -> str:
    """Ask the consents page whether a consent in force covers this disclosure; the answer's text."""
    page.goto(f"{origin}/consents")
    page.fill("#f-given", PERSON["given_name"])
    page.fill("#f-family", PERSON["family_name"])
    page.fill("#f-dob", PERSON["date_of_birth"])
    page.select_option("#f-source", "sud_treatment")
    page.select_option("#f-kind", "state_or_local_agency")
    page.select_option("#f-purpose", purpose)
    page.select_option("#f-data", "sud_treatment_information")
    page.click("form[action='/consents/find'] button[type=submit]")
    return page.locator("#find-result").inner_text()


def test_a_consent_is_checked_recorded_found_revoked_and_imported_from_fhir(
    desks: Desks,  # noqa: F811
    base_url: str,  # noqa: F811
    site: Site,
) -> None:
    found: Violations = {}
    dana = desks("dana", "/consents")
    dana.click("text=Record a consent")
    all_but_revocation = ["redisclosure_warning", "part2_notice", "conditioning", "copy_to_person"]
    fill_consent(dana, all_but_revocation)
    before = len(consent_service.list_consents(site.control, "lakeview-dhs"))
    dana.click("text=Record consent")
    # Refused, naming the missing element with the law's words and its citation; the form keeps what was typed.
    problems = dana.locator("#consent-problems").inner_text()
    assert "the consent lacks required elements; nothing was stored" in problems
    title = "Confidentiality of substance use disorder patient records (42 CFR Part 2)"
    assert f"{title} requires" in problems and "(42 CFR 2.31)" in problems and "part2 requires" not in problems
    assert "the statement 'right_to_revoke' is not given" in problems
    assert PERSON["family_name"] not in problems and PERSON["date_of_birth"] not in problems
    assert dana.input_value("#family_name") == PERSON["family_name"]
    assert dana.is_checked("#cd-sud_treatment_information") and dana.is_checked("#st-part2_notice")
    assert len(consent_service.list_consents(site.control, "lakeview-dhs")) == before
    check(dana, "journey-consent-01-missing-element", found)

    dana.click("label[for=st-right_to_revoke]")
    dana.click("text=Record consent")
    recorded = re.search(r"Consent (c-\d{4}-[0-9a-f]+) recorded\.", flashed(dana, "recorded."))
    assert recorded and dana.url == f"{base_url}/consents", flash(dana)
    consent_id = recorded.group(1)
    row = dana.locator("tr", has=dana.locator(f"th:text-is('{consent_id}')"))
    expect(row).to_contain_text("in force")
    check(dana, "journey-consent-02-recorded", found)

    answer = look_up(dana, base_url)
    assert answer == f"Yes: consent {consent_id} covers this disclosure.", answer
    check(dana, "journey-consent-03-found", found)
    assert look_up(dana, base_url, "research").startswith("No: ")  # it covers its purpose only

    # Its FHIR export (the API's; the pages have none), taken before the revocation, for the import below.
    token = issue_token(dana, "FHIR exchange with the treatment program", "data_steward")
    exported = dana.request.get(
        f"{base_url}/api/v1/consents/{consent_id}/fhir", headers={"Authorization": f"Bearer {token}"}
    )
    assert exported.status == 200, exported.text()
    resource = exported.json()
    assert resource["resourceType"] == "Consent"
    fhir_file = ARTIFACTS / "journey-consent-export.fhir.json"
    fhir_file.write_text(json.dumps(resource, indent=2), encoding="utf-8")

    # Revoked in writing from its row; the look-up then finds no consent in force.
    dana.goto(f"{base_url}/consents")
    row = dana.locator("tr", has=dana.locator(f"th:text-is('{consent_id}')"))
    row.locator("select").select_option("written")
    row.get_by_role("button", name=f"Revoke {consent_id}").click()
    flashed(dana, f"Consent {consent_id} revoked.")
    expect(dana.locator("tr", has=dana.locator(f"th:text-is('{consent_id}')"))).to_contain_text("revoked")
    answer = look_up(dana, base_url)
    assert answer == "No: no consent in force covers this disclosure.", answer
    check(dana, "journey-consent-04-revoked", found)
    assert consent_service.show(site.control, consent_id, "dana").revocation is not None

    # The exported file imported on the import page (reached from the consents page) is a new consent in force.
    dana.click("text=Import an HL7 FHIR Consent")
    dana.set_input_files("#fhir-file", str(fhir_file))
    dana.click("form[action='/consents/import'] button[type=submit]")
    imported = re.search(r"Consent (c-\d{4}-[0-9a-f]+) recorded", dana.locator("#import-result").inner_text())
    assert imported and imported.group(1) != consent_id
    expect(dana.locator("main table")).to_contain_text("all present")
    check(dana, "journey-consent-05-imported", found)
    answer = look_up(dana, base_url)
    assert answer == f"Yes: consent {imported.group(1)} covers this disclosure.", answer
    assert any(e.get("url") == FHIR_EXTENSION + "agency" for e in resource.get("extension", []))

    trail = audit_service.log(site.control, "audrey", limit=500)
    done = {(r["action"], r["subject_id"]) for r in trail if r["actor"] == "dana" and r["source"] == "web"}
    assert {("consent-recorded", consent_id), ("consent-revoked", consent_id)} <= done
    assert ("consent-recorded", imported.group(1)) in done
    desks.sign_out("dana")
    assert {k: v for k, v in found.items() if v} == {}


# 3. The audit trail's status and checkpoint; an accounting of disclosures as a page and a PDF ----------

NOOR = PersonIdentifiers(given_name="Noor", family_name="Haddad", date_of_birth=dt.date(1988, 7, 14))
OTHER = PersonIdentifiers(given_name="Ana", family_name="Example", date_of_birth=dt.date(1990, 4, 2))


def disclose(site: Site, person: PersonIdentifiers, recipient: str, at: dt.datetime, share: str) -> None:
    """A disclosure as the share pipeline records it when a package leaves."""
    site.control.sink.record_disclosure(
        DisclosureEvent(
            share_id=share,
            recipient=recipient,
            purpose="health_oversight",
            data_categories=("health_information",),
            legal_basis=("hipaa.health-oversight",),
            law_version="federal-2026.1",
            law_hash="h" * 64,
            row_count=1,
            person_tokens=(accounting_service.person_token(site.control, person),),
            at=at,
            form="identified",
            source_program="medicaid",
        ),
        actor="dana",
    )


@contextlib.contextmanager
def without_append_only_triggers(site: Site) -> Iterator[Connection]:
    """A transaction with the audit tables' append-only triggers dropped, and the very same triggers put back."""
    assert site.control.store.is_sqlite  # the web tests' store
    with site.control.store.transaction() as conn:
        triggers = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'")
        ).all()
        assert len(triggers) == 4, triggers
        drop_append_only_triggers(conn, True)
        yield conn
        for _name, sql in triggers:
            conn.execute(text(sql))


def verify_on_page(page: Page) -> str:
    page.click("text=Verify the chain")
    return page.locator("#audit-result").inner_text()


def test_the_audit_page_shows_the_chain_and_keeps_a_checkpoint_and_an_accounting_downloads(
    desks: Desks,  # noqa: F811
    base_url: str,  # noqa: F811
    site: Site,
) -> None:
    found: Violations = {}
    audrey = desks("audrey")
    audrey.click("nav[aria-label='Primary navigation'] >> text=Audit")
    status = verify_on_page(audrey)
    counted = re.fullmatch(r"Intact: (\d+) records, (\d+) checkpoints\.", status)
    assert counted and int(counted.group(1)) > 0, status
    check(audrey, "journey-audit-01-intact", found)

    with audrey.expect_download() as info:
        audrey.click("text=Sign and download the latest checkpoint")
    assert re.fullmatch(r"sharewise-audit-checkpoint-\d+\.jsonl", info.value.suggested_filename)
    kept = save(info.value, "journey-audit-checkpoint.jsonl")
    [line] = kept.read_text("utf-8").splitlines()
    checkpoint = json.loads(line)
    assert checkpoint["type"] == "checkpoint" and checkpoint["signature"]
    assert audit_service.verify(site.control, [kept]).ok  # the kept file vouches for the chain as it is

    # A record changed behind sharewise's back (the database refuses it, so the schema is changed first, as
    # someone with rights over it would): the page says so and where; put back, the chain is intact again.
    first = select(audit_records.c.seq, audit_records.c.actor).order_by(audit_records.c.seq).limit(1)
    with site.control.store.transaction() as conn:
        seq, actor = conn.execute(first).one()
    with pytest.raises(StorageError), site.control.store.transaction() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(actor="mallory"))
    with without_append_only_triggers(site) as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(actor="mallory"))
    try:
        status = verify_on_page(audrey)
        assert status.startswith("Problems found"), status
        expect(audrey.locator("main .usa-alert--error")).to_contain_text(f"at record {seq}")
        check(audrey, "journey-audit-02-tampered", found)
        assert not audit_service.verify(site.control, [kept]).ok
    finally:
        with without_append_only_triggers(site) as conn:
            conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(actor=actor))
    assert verify_on_page(audrey).startswith("Intact: ")

    # The accounting of disclosures for one person: the page lists theirs only, and the PDF downloads.
    disclose(site, NOOR, "State Medicaid oversight office", dt.datetime(2026, 3, 2, tzinfo=dt.UTC), "s-j-1")
    disclose(site, NOOR, "County health department", dt.datetime(2026, 9, 20, tzinfo=dt.UTC), "s-j-2")
    disclose(site, OTHER, "A recipient of someone else", dt.datetime(2026, 5, 5, tzinfo=dt.UTC), "s-j-3")
    dana = desks("dana")
    dana.click("nav[aria-label='Primary navigation'] >> text=Accounting")
    dana.fill("#given_name", NOOR.given_name)
    dana.fill("#family_name", NOOR.family_name)
    dana.fill("#date_of_birth", NOOR.date_of_birth.isoformat())
    dana.fill("#since", "2026-01-01")
    dana.click("text=Produce the accounting")
    expect(dana.locator("main h2")).to_have_text("Since 2026-01-01: 2 disclosures")
    table = dana.locator("main table").inner_text()
    assert "State Medicaid oversight office" in table and "County health department" in table
    assert "someone else" not in table
    check(dana, "journey-accounting-01-page", found)
    # The form keeps nothing typed after the answer (no personal data left on the page): type it again.
    dana.fill("#given_name", NOOR.given_name)
    dana.fill("#family_name", NOOR.family_name)
    dana.fill("#date_of_birth", NOOR.date_of_birth.isoformat())
    dana.fill("#since", "2026-01-01")
    with dana.expect_download() as info:
        dana.click("text=Download it as a PDF")
    assert re.fullmatch(r"accounting-of-disclosures-\d{4}-\d{2}-\d{2}\.pdf", info.value.suggested_filename)
    pdf = save(info.value, "journey-accounting.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF") and len(pdf) > 1000
    assert NOOR.family_name.encode() not in info.value.suggested_filename.encode()

    produced = [r for r in audit_service.log(site.control, "audrey", limit=500) if r["action"] == "accounting-produced"]
    assert len([r for r in produced if r["actor"] == "dana" and r["source"] == "web"]) >= 2
    desks.sign_out("dana")
    desks.sign_out("audrey")
    assert {k: v for k, v in found.items() if v} == {}
