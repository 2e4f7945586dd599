"""The record pages without a browser: agreement actions and documents, FHIR import, checkpoints, PDFs, share plans."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from httpx import Response
from playwright.sync_api import Browser, FilePayload

from sharewise.cli.serve import DEMO_PASSWORD, DemoAccount
from sharewise.consent.fhir import to_fhir
from sharewise.domain.consent import ConsentRecord, PersonIdentifiers
from sharewise.domain.events import DisclosureEvent
from sharewise.policy.model import LawPack
from sharewise.services import accounting as accounting_service
from sharewise.services import accounts as accounts_service
from sharewise.services import agreement_registry
from sharewise.services import audit as audit_service
from sharewise.services import consents as consent_service
from sharewise.services import workflow as workflow_service
from sharewise.web.record_pages import monthly_chart, parse_users, users_text
from tests.conftest import REPO, TODAY
from tests.pipeline.data import DICTIONARY, HEADER, client_rows
from tests.web.conftest import Site, csrf_of, signed_in
from tests.web.test_browser import axe_violations, base_url, browser, shot, sign_in  # noqa: F401  (fixtures)

SNAP_TO_TANF = {
    "source": {"program": "snap"},
    "recipient": {"name": "Lakeview TANF unit", "kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "contact", "eligibility_and_benefits"],
    "form": "identified",
}
PARTIES = json.loads(
    json.dumps(yaml.safe_load((REPO / "examples/parties/lakeview-snap-tanf.yaml").read_text("utf-8")), default=str)
)
CONSENT = yaml.safe_load((REPO / "examples/consents/part2-universal-release.yaml").read_text("utf-8"))
ANA = PersonIdentifiers(given_name="Ana", family_name="Example", date_of_birth=dt.date(1990, 4, 2))
TMP = tempfile.gettempdir()


# Setting up ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def people(site: Site) -> Site:
    """A second approver in the county DHS, so that both parties can sign in the browser."""
    workflow_service.add_user(site.control, "april", "April Approver", "lakeview-dhs", {"approver"}, "ada")
    new = accounts_service.create_account(site.control, "ada", "april", DEMO_PASSWORD)
    site.accounts["april"] = DemoAccount("april", "approver", "lakeview-dhs", DEMO_PASSWORD, new.totp_secret)
    return site


def new_agreement(site: Site, law: LawPack, requester: str = "rosa", recipient_agency: str | None = None) -> str:
    """A sharing request and its agreement drafted through the API, as a requester of the agency does it."""
    request_id = workflow_service.create_request(
        site.control, law, requester, "SNAP data for TANF", "eligibility", SNAP_TO_TANF, None, recipient_agency
    )
    token = accounts_service.issue_token(site.control, requester, {"requester"}, "tests").secret
    api = TestClient(site.app, base_url="https://testserver")
    r = api.post(
        "/api/v1/agreements",
        headers={"Authorization": f"Bearer {token}"},
        json={"request_id": request_id, "parties": PARTIES, "format": "md"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def kept_document(site: Site, agreement_id: str) -> Path:
    """Where the API keeps a drafted document (Settings.data_dir/agreements), which the page serves."""
    assert site.control.settings.data_dir is not None
    return site.control.settings.data_dir / "agreements" / f"{agreement_id}.md"


def in_review(site: Site, law: LawPack) -> str:
    agreement_id = new_agreement(site, law)
    agreement_registry.submit_for_review(site.control, "rosa", agreement_id)
    return agreement_id


def active(site: Site, law: LawPack) -> str:
    agreement_id = in_review(site, law)
    agreement_registry.sign(site.control, "avery", agreement_id, "discloser")
    agreement_registry.sign(site.control, "april", agreement_id, "recipient")
    agreement_registry.activate(site.control, "avery", agreement_id)
    return agreement_id


def post(client: TestClient, page: str, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Response:
    """Submit a form the way the browser does: with the CSRF token of a page just loaded."""
    token = csrf_of(client.get(page).text)
    response: Response = client.post(url, data={"csrf_token": token, **(data or {})}, follow_redirects=False, **kwargs)
    return response


def state(site: Site, agreement_id: str) -> str:
    return agreement_registry.show(site.control, "audrey", agreement_id).state


def audited(site: Site, action: str) -> list[dict[str, Any]]:
    return [r for r in audit_service.log(site.control, "audrey", limit=500) if r["action"] == action]


# Agreements ----------------------------------------------------------------------------------------


def test_an_agreement_goes_from_draft_to_active_from_its_page(people: Site, law: LawPack) -> None:
    agreement_id = new_agreement(people, law)
    page = f"/agreements/{agreement_id}"
    rosa = signed_in(people, "rosa")
    assert 'action="/agreements/' + agreement_id + '/submit"' in rosa.get(page).text
    r = post(rosa, page, f"{page}/submit")
    assert r.status_code == 303 and r.headers["location"] == page
    assert "sent to review" in rosa.get(page).text

    avery = signed_in(people, "avery")
    form = avery.get(page).text
    assert 'name="party"' in form and "submit" not in re.findall(r'action="[^"]+/(\w+)"', form)
    assert post(avery, page, f"{page}/sign", {"party": "discloser"}).status_code == 303
    after = avery.get(page).text
    assert "the other party has yet to sign" in after and "separation of duties" in after
    assert 'name="party"' not in after  # one approver signs for one party only

    april = signed_in(people, "april")
    assert post(april, page, f"{page}/sign", {"party": "recipient"}).status_code == 303
    assert "both parties have signed" in april.get(page).text
    assert post(avery, page, f"{page}/activate").status_code == 303
    assert state(people, agreement_id) == "active"
    signed = [r for r in audited(people, "agreement-signed") if r["subject_id"] == agreement_id]
    assert {r["actor"] for r in signed} == {"avery", "april"} and {r["source"] for r in signed} == {"web"}


def test_the_drafted_document_downloads_for_the_agencies_of_its_request(people: Site, law: LawPack) -> None:
    agreement_id = new_agreement(people, law)
    rosa = signed_in(people, "rosa")
    page = rosa.get(f"/agreements/{agreement_id}").text
    offered = [f for f in ("DOCX", "PDF", "MD") if f"Download the drafted document ({f})" in page]
    assert offered == ["DOCX", "PDF", "MD"]  # drafted as Markdown, kept also as DOCX and PDF to sign
    assert page.index("(DOCX)") < page.index("(PDF)") < page.index("(MD)")
    pdf = rosa.get(f"/agreements/{agreement_id}/document?format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert rosa.get(f"/agreements/{agreement_id}/document?format=exe").status_code == 422
    r = rosa.get(f"/agreements/{agreement_id}/document?format=md")
    assert r.status_code == 200
    assert (
        r.headers["content-disposition"].startswith("attachment")
        and f"{agreement_id}.md" in r.headers["content-disposition"]
    )
    assert r.headers["cache-control"] == "no-store"
    kept = kept_document(people, agreement_id)
    assert r.content == kept.read_bytes() and b"LCDHS-DSA-2026-014" in r.content


def test_the_document_is_refused_to_other_agencies_and_other_roles(people: Site, law: LawPack) -> None:
    agreement_id = new_agreement(people, law)
    blake = signed_in(people, "blake")  # an approver of the school district, not a party
    r = blake.get(f"/agreements/{agreement_id}/document")
    assert r.status_code == 403 and "their agency is not a party" in r.text
    dana = signed_in(people, "dana")  # a data steward does not read agreements on these pages
    assert dana.get(f"/agreements/{agreement_id}/document").status_code == 403


def test_an_agreement_without_a_kept_document_says_so(people: Site, law: LawPack) -> None:
    agreement_id = new_agreement(people, law)
    for kept in kept_document(people, agreement_id).parent.glob(f"{agreement_id}.*"):
        kept.unlink()
    rosa = signed_in(people, "rosa")
    assert "No drafted document is kept" in rosa.get(f"/agreements/{agreement_id}").text
    r = rosa.get(f"/agreements/{agreement_id}/document")
    assert r.status_code == 404 and "no document is kept" in r.text


def test_an_approver_amends_renews_and_terminates_an_active_agreement(people: Site, law: LawPack) -> None:
    agreement_id = active(people, law)
    page = f"/agreements/{agreement_id}"
    avery = signed_in(people, "avery")
    before = agreement_registry.show(people.control, "avery", agreement_id)
    shown = avery.get(page).text
    assert "TANF eligibility workers of the TANF Unit" in shown and 'id="amend-users"' in shown
    new_end = before.term_end - dt.timedelta(days=30)
    users = "TANF eligibility workers\nTANF Eligibility Supervisor; Sam Okafor; LCDHS TANF"
    r = post(
        avery,
        page,
        f"{page}/amend",
        {"term_end": new_end.isoformat(), "authorized_users": users, "reason": "The unit was reorganized"},
    )
    assert r.status_code == 303
    amended = agreement_registry.show(people.control, "avery", agreement_id)
    assert amended.term_end == new_end
    assert amended.authorized_users == [
        {"role": "TANF eligibility workers", "name": None, "organization": None},
        {"role": "TANF Eligibility Supervisor", "name": "Sam Okafor", "organization": "LCDHS TANF"},
    ]
    assert "amended by avery: The unit was reorganized" in avery.get(page).text

    r = post(avery, page, f"{page}/renew")
    assert r.status_code == 303
    renewed = agreement_registry.show(people.control, "avery", agreement_id)
    assert renewed.renewals_used == 1 and renewed.term_end > new_end
    assert f"renewed until {renewed.term_end.isoformat()}" in avery.get(page).text

    assert post(avery, page, f"{page}/terminate", {"reason": "The program ended"}).status_code == 303
    assert state(people, agreement_id) == "terminated"
    final = avery.get(page).text
    assert "terminated by avery: The program ended" in final and 'action="' + page + '/terminate"' not in final


def test_agreement_actions_are_refused_to_the_wrong_roles(people: Site, law: LawPack) -> None:
    agreement_id = in_review(people, law)
    page = f"/agreements/{agreement_id}"
    rosa = signed_in(people, "rosa")
    assert 'name="party"' not in rosa.get(page).text  # no forms a requester cannot use
    r = post(rosa, page, f"{page}/sign", {"party": "discloser"})
    assert r.status_code == 403 and "may not sign agreements" in r.text
    ada = signed_in(people, "ada")  # administrators amend and terminate, but do not sign or renew
    assert post(ada, page, f"{page}/sign", {"party": "discloser"}).status_code == 403
    assert post(ada, page, f"{page}/renew").status_code == 403
    audrey = signed_in(people, "audrey")  # auditors read every agreement and change none
    assert audrey.get(page).status_code == 200
    assert post(audrey, page, f"{page}/terminate", {"reason": "no"}).status_code == 403
    assert state(people, agreement_id) == "in_review"


def test_agreement_actions_are_refused_to_other_agencies(people: Site, law: LawPack) -> None:
    agreement_id = in_review(people, law)
    page = f"/agreements/{agreement_id}"
    blake = signed_in(people, "blake")
    r = post(blake, "/", f"{page}/sign", {"party": "recipient"})
    assert r.status_code == 403 and "their agency is not a party" in r.text
    olive = signed_in(people, "olive")
    assert post(olive, "/", f"{page}/terminate", {"reason": "not ours"}).status_code == 403
    assert state(people, agreement_id) == "in_review"
    assert agreement_registry.show(people.control, "audrey", agreement_id).signed_by == set()


def test_agreement_actions_without_the_csrf_token_are_refused(people: Site, law: LawPack) -> None:
    agreement_id = in_review(people, law)
    avery = signed_in(people, "avery")
    avery.get(f"/agreements/{agreement_id}")
    for action, data in (("sign", {"party": "discloser"}), ("terminate", {"reason": "forged"})):
        r = avery.post(f"/agreements/{agreement_id}/{action}", data={"csrf_token": "forged", **data})
        assert r.status_code == 403 and "did not come from this site" in r.text
    assert state(people, agreement_id) == "in_review"


def test_bad_agreement_input_is_shown_with_the_form(people: Site, law: LawPack) -> None:
    agreement_id = active(people, law)
    page = f"/agreements/{agreement_id}"
    avery = signed_in(people, "avery")
    r = post(avery, page, f"{page}/amend", {"term_end": "2027-01-01", "reason": "  "})
    assert r.status_code == 422
    assert 'id="error-summary"' in r.text and 'href="#amend-reason"' in r.text
    assert "Say why the agreement is amended" in r.text and 'aria-describedby="amend-reason-error"' in r.text
    assert 'value="2027-01-01"' in r.text  # what was typed is kept
    assert re.search(r'id="amend-users"[^>]*>TANF eligibility workers of the TANF Unit', r.text)  # not sent: unchanged

    r = post(avery, page, f"{page}/amend", {"term_end": "first of May", "reason": "r"})
    assert r.status_code == 422 and 'href="#amend-term-end"' in r.text and "(YYYY-MM-DD)" in r.text
    r = post(avery, page, f"{page}/amend", {"authorized_users": "a; b; c; d", "reason": "r"})
    assert r.status_code == 422 and "Authorized users, line 1" in r.text
    r = post(avery, page, f"{page}/amend", {"reason": "nothing changes"})
    assert r.status_code == 422 and "Nothing to amend" in r.text
    r = post(avery, page, f"{page}/sign", {"party": "discloser"})
    assert r.status_code == 409 and "only an agreement in review can be signed" in r.text
    r = post(avery, page, f"{page}/terminate", {"reason": ""})
    assert r.status_code == 422 and 'href="#terminate-reason"' in r.text
    r = post(avery, page, f"{page}/activate")
    assert r.status_code == 409 and "both parties must sign first" in r.text
    assert state(people, agreement_id) == "active"

    reviewing = in_review(people, law)
    r = post(avery, f"/agreements/{reviewing}", f"/agreements/{reviewing}/sign", {"party": "the county"})
    assert r.status_code == 422 and 'href="#sign-party"' in r.text and "Use discloser or recipient" in r.text


def test_authorized_users_read_and_write_one_a_line() -> None:
    users = [
        {"role": "Eligibility workers", "name": None, "organization": None},
        {"role": "Supervisor", "name": "Sam Okafor", "organization": None},
        {"role": "Analyst", "name": None, "organization": "State office"},
    ]
    text = users_text(users)
    assert text == "Eligibility workers\nSupervisor; Sam Okafor\nAnalyst; ; State office"
    assert parse_users(text + "\n\n") == users


# Consents: FHIR import -----------------------------------------------------------------------------


def fhir_consent(**changes: Any) -> dict[str, Any]:
    return to_fhir(ConsentRecord.model_validate({**CONSENT, **changes}))


def upload(client: TestClient, resource: Any, name: str = "consent.json") -> Response:
    body = resource if isinstance(resource, bytes) else json.dumps(resource).encode()
    return post(client, "/", "/consents/import", files={"fhir_file": (name, body, "application/json")})


def test_a_fhir_consent_is_checked_and_recorded_for_the_importers_agency(people: Site) -> None:
    dana = signed_in(people, "dana")
    assert 'enctype="multipart/form-data"' in dana.get("/consents/import").text
    r = upload(dana, fhir_consent(id="c-from-elsewhere"))
    assert r.status_code == 200, r.text
    consent_id = re.search(r"Consent (c-\d{4}-[0-9a-f]+) recorded", r.text)
    assert consent_id and consent_id.group(1) != "c-from-elsewhere"
    assert "part2.consent" in r.text and "all present" in r.text
    assert "the file named another agency" in r.text  # the example names its treatment program
    record = consent_service.show(people.control, consent_id.group(1), "dana")
    assert record.agency == "lakeview-dhs"
    assert consent_id.group(1) in dana.get("/consents").text
    recorded = [r for r in audited(people, "consent-recorded") if r["subject_id"] == consent_id.group(1)]
    assert recorded and recorded[0]["actor"] == "dana" and recorded[0]["source"] == "web"


def test_a_pasted_fhir_consent_is_imported_too(people: Site) -> None:
    rosa = signed_in(people, "rosa")
    resource = fhir_consent(agency="lakeview-dhs")
    r = post(rosa, "/consents/import", "/consents/import", {"fhir_json": json.dumps(resource)})
    assert r.status_code == 200 and "recorded" in r.text and "named another agency" not in r.text


def test_a_fhir_import_that_repeats_a_consent_in_force_says_which(people: Site) -> None:
    dana = signed_in(people, "dana")
    resource = fhir_consent(agency="lakeview-dhs", person={**CONSENT["person"], "given_name": "Twice"})
    first = re.search(r"Consent (c-\d{4}-[0-9a-f]+) recorded", upload(dana, resource).text)
    assert first
    again = upload(dana, resource)
    assert again.status_code == 200, again.text
    assert f"It repeats consent {first.group(1)}, in force for the same person" in again.text


def test_an_imported_consent_stays_with_the_importers_agency(people: Site) -> None:
    dana = signed_in(people, "dana")
    r = upload(dana, fhir_consent(agency="lakeview-schools"))
    assert r.status_code == 200
    consent_id = re.search(r"Consent (c-\d{4}-[0-9a-f]+) recorded", r.text)
    assert consent_id
    assert consent_service.show(people.control, consent_id.group(1), "dana").agency == "lakeview-dhs"
    listed = consent_service.list_consents(people.control, "lakeview-schools")
    assert consent_id.group(1) not in [c.id for c in listed]


def test_fhir_import_is_refused_to_other_roles(people: Site) -> None:
    avery = signed_in(people, "avery")
    assert avery.get("/consents/import").status_code == 403
    r = upload(avery, fhir_consent())
    assert r.status_code == 403 and "may not record consents" in r.text
    audrey = signed_in(people, "audrey")  # auditors read consents; they do not record them
    assert upload(audrey, fhir_consent()).status_code == 403


def test_fhir_import_without_the_csrf_token_is_refused(people: Site) -> None:
    dana = signed_in(people, "dana")
    dana.get("/consents/import")
    before = len(consent_service.list_consents(people.control, "lakeview-dhs"))
    r = dana.post(
        "/consents/import",
        data={"csrf_token": "forged"},
        files={"fhir_file": ("c.json", json.dumps(fhir_consent()).encode(), "application/json")},
    )
    assert r.status_code == 403
    assert len(consent_service.list_consents(people.control, "lakeview-dhs")) == before


def test_a_bad_fhir_consent_shows_every_problem_and_records_nothing(people: Site) -> None:
    dana = signed_in(people, "dana")
    before = len(consent_service.list_consents(people.control, "lakeview-dhs"))
    r = upload(dana, b'{"resourceType": "Consent",', "broken.json")
    assert r.status_code == 422 and "broken.json: not valid JSON (line 1" in r.text
    r = upload(dana, {"resourceType": "Patient"})
    assert r.status_code == 422 and "resourceType" in r.text
    r = post(dana, "/consents/import", "/consents/import", {"fhir_json": "  "})
    assert r.status_code == 422 and 'href="#fhir-file"' in r.text
    incomplete = fhir_consent(statements=["copy_to_person"])
    r = upload(dana, incomplete, "incomplete.json")
    assert r.status_code == 422 and "The consent was not recorded" in r.text
    errors = summary(r.text)
    title = "Confidentiality of substance use disorder patient records (42 CFR Part 2)"
    assert f"incomplete.json: revocation: {title} requires" in errors and "part2 requires" not in errors
    assert "the statement &#39;right_to_revoke&#39; is not given" in errors
    assert TMP not in r.text  # the server's temporary paths are never shown
    assert "Ana" not in errors and "1990-04-02" not in errors  # problems name fields, never the person
    assert len(consent_service.list_consents(people.control, "lakeview-dhs")) == before


# Audit: the signed checkpoint ----------------------------------------------------------------------


def test_an_auditor_downloads_the_latest_signed_checkpoint(people: Site, tmp_path: Path) -> None:
    audrey = signed_in(people, "audrey")
    assert 'action="/audit/checkpoint"' in audrey.get("/audit").text
    r = post(audrey, "/audit", "/audit/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson") and r.headers["cache-control"] == "no-store"
    [line] = r.text.splitlines()
    checkpoint = json.loads(line)
    assert checkpoint["type"] == "checkpoint" and checkpoint["signature"]
    assert f"sharewise-audit-checkpoint-{checkpoint['seq']}.jsonl" in r.headers["content-disposition"]
    kept = tmp_path / "kept.jsonl"
    kept.write_bytes(r.content)
    report = audit_service.verify(people.control, [kept])
    assert report.ok and report.checkpoints >= 1
    signed = audited(people, "checkpoint-signed")
    assert signed and signed[0]["source"] == "web"
    again = post(audrey, "/audit", "/audit/checkpoint")
    assert json.loads(again.text)["seq"] > checkpoint["seq"]


def test_without_a_signing_key_there_is_no_checkpoint_to_download(
    people: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(people.app.state.ctx.web.trail, "signer", None)  # a deployment with no audit key
    audrey = signed_in(people, "audrey")
    r = post(audrey, "/audit", "/audit/checkpoint")
    assert r.status_code == 409 and "There is no checkpoint to export" in r.text
    assert r.headers["content-type"].startswith("text/html") and "content-disposition" not in r.headers


def test_checkpoints_are_for_auditors_only(people: Site) -> None:
    for user in ("ada", "sam", "dana"):  # administrators and security officers verify; only auditors export
        client = signed_in(people, user)
        page = client.get("/audit")
        assert 'action="/audit/checkpoint"' not in page.text
        r = post(client, "/", "/audit/checkpoint")
        assert r.status_code == 403 and "may not export audit checkpoints" in r.text


def test_a_checkpoint_without_the_csrf_token_is_refused(people: Site) -> None:
    audrey = signed_in(people, "audrey")
    audrey.get("/audit")
    before = len(audited(people, "checkpoint-signed"))
    r = audrey.post("/audit/checkpoint", data={"csrf_token": "forged"})
    assert r.status_code == 403 and len(audited(people, "checkpoint-signed")) == before


# Accounting: the PDF -------------------------------------------------------------------------------


def disclose(site: Site, at: dt.datetime, share: str, people: tuple[PersonIdentifiers, ...] = (ANA,)) -> None:
    site.control.sink.record_disclosure(
        DisclosureEvent(
            share_id=share,
            recipient="State Medicaid oversight office",
            purpose="health_oversight",
            data_categories=("health_information",),
            legal_basis=("hipaa.health-oversight",),
            law_version="federal-2026.1",
            law_hash="h" * 64,
            row_count=len(people),
            person_tokens=tuple(accounting_service.person_token(site.control, p) for p in people),
            at=at,
            form="identified",
            source_program="medicaid",
        ),
        actor="dana",
    )


PERSON_FORM = {"given_name": "Ana", "family_name": "Example", "date_of_birth": "1990-04-02", "since": "2026-01-01"}


def test_the_accounting_downloads_as_a_pdf(people: Site) -> None:
    disclose(people, dt.datetime(2026, 3, 2, tzinfo=dt.UTC), "s-pdf-1")
    dana = signed_in(people, "dana")
    page = dana.get("/accounting").text
    assert 'formaction="/accounting/pdf"' in page
    html = post(dana, "/accounting", "/accounting", PERSON_FORM)
    assert "State Medicaid oversight office" in html.text
    r = post(dana, "/accounting", "/accounting/pdf", PERSON_FORM)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and len(r.content) > 1000
    disposition = r.headers["content-disposition"]  # no name in the file name: it shows in download lists
    assert re.fullmatch(r'attachment; filename="accounting-of-disclosures-\d{4}-\d{2}-\d{2}\.pdf"', disposition)
    assert r.headers["cache-control"] == "no-store"
    produced = audited(people, "accounting-produced")
    assert produced[0]["actor"] == "dana" and produced[0]["source"] == "web"
    assert json.loads(produced[0]["details"])["entries"] >= 1


def test_a_name_with_markup_prints_as_typed(people: Site) -> None:
    audrey = signed_in(people, "audrey")
    r = post(audrey, "/accounting", "/accounting/pdf", {**PERSON_FORM, "family_name": "O'Brien <b> & Sons"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


def test_the_accounting_pdf_is_refused_to_other_roles(people: Site) -> None:
    for user in ("rosa", "avery"):
        client = signed_in(people, user)
        r = post(client, "/", "/accounting/pdf", PERSON_FORM)
        assert r.status_code == 403 and "may not produce accountings" in r.text and r.content[:4] != b"%PDF"


def test_the_accounting_pdf_without_the_csrf_token_is_refused(people: Site) -> None:
    dana = signed_in(people, "dana")
    dana.get("/accounting")
    r = dana.post("/accounting/pdf", data={"csrf_token": "forged", **PERSON_FORM})
    assert r.status_code == 403 and not r.content.startswith(b"%PDF")


def test_bad_accounting_input_shows_an_error(people: Site) -> None:
    dana = signed_in(people, "dana")
    r = post(dana, "/accounting", "/accounting/pdf", {**PERSON_FORM, "date_of_birth": "second of April"})
    assert r.status_code == 422 and "The form is incomplete" in r.text and "date_of_birth" in r.text
    assert "second of April" not in r.text


# Shares: the plan preview --------------------------------------------------------------------------


def share_files(agreement_id: str, **changes: Any) -> dict[str, Any]:
    share = {
        "share_id": "s-preview",
        "agreement": agreement_id,
        "request": {**SNAP_TO_TANF, "as_of": "2026-03-01"},
        "dictionary": "/etc/dictionary.yaml",  # replaced by the upload: no server path is read
        "source": {"csv": "/etc/passwd"},
        "needs": ["client_id", "first_name", "ssn", "zip", "benefit", "note"],
        "pseudonymize": ["client_id", "ssn"],
        "recipient_certificate": "/etc/ssl/recipient.pem",
        **changes,
    }
    sample = io.StringIO()
    writer = csv.writer(sample)
    writer.writerow(HEADER)
    writer.writerows(client_rows(3))
    return {
        "share_file": ("share.yaml", yaml.safe_dump(share).encode(), "text/yaml"),
        "dictionary_file": ("dictionary.yaml", yaml.safe_dump(DICTIONARY).encode(), "text/yaml"),
        "source_file": ("clients.csv", sample.getvalue().encode(), "text/csv"),
    }


def plan(client: TestClient, files: dict[str, Any], data: dict[str, str] | None = None) -> Response:
    return post(client, "/", "/shares/plan", data or {}, files=files)


def summary(html: str) -> str:
    """The error summary at the top of a page."""
    start = html.index('id="error-summary"')
    return html[start : html.index("</div>\n</div>", start)]


def test_a_share_plan_shows_each_field_kept_or_dropped_and_why(people: Site, law: LawPack) -> None:
    agreement_id = active(people, law)
    dana = signed_in(people, "dana")
    assert 'href="/shares/plan"' in dana.get("/").text
    r = plan(dana, share_files(agreement_id))
    assert r.status_code == 200, r.text
    kept = r.text[r.text.index('id="fields-kept"') : r.text.index('id="fields-dropped"')]
    dropped = r.text[r.text.index('id="fields-dropped"') :]
    assert re.search(r"client_id</th>.*?pseudonymized", kept, re.S)
    assert re.search(r"first_name</th>.*?as it is", kept, re.S) and "note</th>" not in kept
    assert "secret_flag</th><td>unmapped: no data dictionary maps this field" in dropped
    assert "note</th><td>category case_records is not covered by the determination" in dropped
    assert "phone</th><td>minimum necessary: the requester does not need it" in dropped
    assert "Permitted" in r.text and agreement_id in r.text and "a share runs only under" not in r.text
    assert re.search(r"Output</dt><dd>parquet, .*pseudonyms as 32-byte binary values</dd>", r.text)  # the default
    assert not list(Path(TMP).glob("sharewise-plan-*"))  # nothing is kept


def test_a_pasted_share_plan_works_and_warns_of_an_inactive_agreement(people: Site, law: LawPack) -> None:
    agreement_id = new_agreement(people, law)  # still a draft
    dana = signed_in(people, "dana")
    files = share_files(agreement_id)
    share_text, dictionary_text = files.pop("share_file")[1].decode(), files.pop("dictionary_file")[1].decode()
    r = plan(dana, files, {"share_yaml": share_text, "dictionary_yaml": dictionary_text})
    assert r.status_code == 200 and 'id="fields-kept"' in r.text
    assert "a share runs only under an active agreement" in r.text


def test_share_plans_are_for_data_stewards(people: Site, law: LawPack) -> None:
    agreement_id = new_agreement(people, law)
    for user in ("rosa", "audrey"):
        client = signed_in(people, user)
        assert client.get("/shares/plan").status_code == 403
        r = plan(client, share_files(agreement_id))
        assert r.status_code == 403 and "may not plan shares" in r.text


def test_a_share_plan_under_another_agencys_agreement_is_refused(people: Site, law: LawPack) -> None:
    theirs = new_agreement(people, law, requester="skye")  # a school district request only
    dana = signed_in(people, "dana")
    r = plan(dana, share_files(theirs))
    assert r.status_code == 403 and "their agency is not a party" in r.text and 'id="fields-kept"' not in r.text


def test_a_share_plan_without_the_csrf_token_is_refused(people: Site, law: LawPack) -> None:
    agreement_id = active(people, law)
    dana = signed_in(people, "dana")
    dana.get("/shares/plan")
    r = dana.post("/shares/plan", data={"csrf_token": "forged"}, files=share_files(agreement_id))
    assert r.status_code == 403 and 'id="fields-kept"' not in r.text


def test_a_bad_share_definition_shows_every_problem(people: Site, law: LawPack) -> None:
    agreement_id = active(people, law)
    dana = signed_in(people, "dana")
    alias = share_files(agreement_id)
    alias["share_file"] = ("share.yaml", b"a: &x [1, 2]\nb: *x\n", "text/yaml")
    broken = share_files(agreement_id)
    broken["share_file"] = ("share.yaml", b"agreement: [unclosed\n", "text/yaml")
    no_dictionary = share_files(agreement_id)
    del no_dictionary["dictionary_file"]
    no_sample = share_files(agreement_id)
    del no_sample["source_file"]
    cases = [
        (no_dictionary, ['href="#dictionary-file"', "Choose the data dictionary"]),
        (no_sample, ['href="#source-file"', "Upload a sample of the CSV source"]),
        (
            share_files(agreement_id, source={"postgres": {"dsn": "postgresql://elsewhere/db", "table": "t"}}),
            ["source: a PostgreSQL source is planned with"],
        ),
        (share_files(agreement_id, request="requests/snap.yaml"), ["write the sharing request inline"]),
        (
            share_files(agreement_id, needs=["client_id", "no_such_column"]),
            ["needs: no_such_column: the source has no such column"],
        ),
        (
            share_files("a-2026-nothere"),
            ["Share definition: agreement: no agreement &#39;a-2026-nothere&#39; is registered"],
        ),
        (alias, ["YAML aliases (*name) are not accepted here"]),
        (broken, ["Share definition, line 2: not valid YAML"]),
        (share_files(agreement_id, source={"csv": "x.csv", "encoding": "klingon"}), ["unknown text encoding"]),
        (
            share_files(agreement_id, output="xlsx", needs="client_id"),  # every problem at once
            ["Share definition: output: parquet or csv", "Share definition: needs: a list of field names"],
        ),
    ]
    for files, expected in cases:
        r = plan(dana, files)
        assert r.status_code == 422, (expected, r.status_code)
        errors = summary(r.text)
        assert "The share cannot be planned" in errors
        for text in expected:
            assert text in errors, (text, errors)
        # The server's files are never named: not its temporary directory, not the paths the definition gave.
        assert TMP not in errors and "/etc/" not in errors and 'id="fields-kept"' not in r.text
    assert not list(Path(TMP).glob("sharewise-plan-*"))


def test_a_share_the_determination_does_not_permit_is_refused_with_why(people: Site, law: LawPack) -> None:
    agreement_id = active(people, law)
    dana = signed_in(people, "dana")
    court = {"source": {"program": "snap"}, "recipient": {"kind": "court"}, "purpose": "judicial_proceeding"}
    r = plan(dana, share_files(agreement_id, request={**court, "data": ["identity"]}))
    assert r.status_code == 409 and 'id="fields-kept"' not in r.text
    errors = summary(r.text)
    assert (
        "The determination does not permit this share" in errors
        and "The determination is" in errors
        and "not permitted: no share may run on it" in errors
    )
    assert "authority snap: consent_required: " in errors  # each authority that does not permit it, with its reason


# The dashboard: disclosures over time --------------------------------------------------------------


def test_the_dashboard_charts_disclosures_by_month_for_auditors(people: Site) -> None:
    for day in (3, 9, 27):
        disclose(people, dt.datetime(2026, 5, day, 12, tzinfo=dt.UTC), f"s-may-{day}")
    disclose(people, dt.datetime(2026, 7, 1, tzinfo=dt.UTC), "s-july")
    disclose(people, dt.datetime(2025, 7, 1, tzinfo=dt.UTC), "s-last-year")  # before the chart's 12 months
    audrey = signed_in(people, "audrey")
    page = audrey.get("/").text
    assert "Disclosures over time" in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert 'role="img"' in svg and 'aria-labelledby="disclosures-chart-title disclosures-chart-desc"' in svg
    assert "Disclosures per month, December 2025 to November 2026" in svg and "<desc" in svg
    assert "style=" not in svg and "<script" not in svg  # the Content-Security-Policy allows no inline style
    assert svg.count("<rect") == 12
    table = page[page.index('id="disclosures-table"') :]
    assert "<caption>Disclosures per month</caption>" in table
    assert re.search(r"May 2026</th><td>3</td>", table) and re.search(r"July 2026</th><td>1</td>", table)
    assert "July 2025" not in table


def test_the_disclosure_chart_is_for_those_who_read_the_accounting(people: Site) -> None:
    for user in ("rosa", "ada"):
        page = signed_in(people, user).get("/")
        assert page.status_code == 200 and "Disclosures over time" not in page.text
    assert "Disclosures over time" in signed_in(people, "dana").get("/").text  # the data steward


def test_the_chart_scales_its_bars_and_describes_itself() -> None:
    chart = monthly_chart({"2026-05": 3, "2026-07": 1, "2026-11": 7}, TODAY)
    assert len(chart.bars) == 12 and chart.bars[0].month == "2025-12" and chart.bars[-1].month == "2026-11"
    assert chart.top == 10 and [v for v, _ in chart.ticks] == [0, 5, 10]
    may = next(b for b in chart.bars if b.month == "2026-05")
    november = chart.bars[-1]
    assert november.height == pytest.approx(may.height * 7 / 3, rel=0.01)
    assert november.y + november.height == pytest.approx(chart.baseline, abs=0.1)
    assert chart.description == "11 disclosures from December 2025 to November 2026; the most in November 2026 (7)."
    assert chart.bars[0].year == "2025" and next(b for b in chart.bars if b.month == "2026-01").year == "2026"
    empty = monthly_chart({}, TODAY, incomplete_before="June 2026")
    assert empty.top == 1 and all(b.height == 0 for b in empty.bars)
    assert empty.description.startswith("0 disclosures from") and "counted only in part" in empty.description


def test_every_record_page_renders_for_its_users(people: Site, law: LawPack) -> None:
    agreement_id = new_agreement(people, law)
    pages = {
        "dana": ["/consents/import", "/shares/plan", "/accounting", "/"],
        "rosa": ["/consents/import", f"/agreements/{agreement_id}", "/consents"],
        "audrey": ["/audit", "/", f"/agreements/{agreement_id}"],
    }
    for user, urls in pages.items():
        client = signed_in(people, user)
        for url in urls:
            r = client.get(url)
            assert r.status_code == 200, (user, url, r.status_code)
            assert "<main" in r.text and "<h1>" in r.text


# In a real browser: each page and its error and result states meet WCAG 2.1 AA (axe-core) ----------


def test_the_record_pages_have_no_wcag_aa_violations(
    browser: Browser,  # noqa: F811
    base_url: str,  # noqa: F811
    people: Site,
    law: LawPack,
) -> None:
    found: dict[str, list[dict[str, Any]]] = {}

    def check(page: Any, name: str) -> None:
        found[name] = axe_violations(page)
        shot(page, f"records-{name}")

    reviewing, effective = in_review(people, law), active(people, law)
    disclose(people, dt.datetime(2026, 8, 14, tzinfo=dt.UTC), "s-browser")
    page = sign_in(browser, base_url, people, "avery")
    page.goto(f"{base_url}/agreements/{reviewing}")
    check(page, "agreement-sign")
    page.goto(f"{base_url}/agreements/{effective}")
    page.evaluate("document.querySelector('#amend-reason').removeAttribute('required')")  # the server's check
    page.click("form[action$='/amend'] button[type=submit]")
    assert page.locator("#error-summary").is_visible() and page.locator("#amend-reason-error").is_visible()
    check(page, "agreement-error")
    page.context.close()

    page = sign_in(browser, base_url, people, "audrey")
    page.click("text=The numbers in the chart")
    assert page.locator("#disclosures-chart").is_visible() and page.locator("#disclosures-table").is_visible()
    check(page, "dashboard-chart")
    page.goto(f"{base_url}/audit")
    check(page, "audit")
    page.context.close()

    page = sign_in(browser, base_url, people, "dana")
    page.goto(f"{base_url}/consents/import")
    page.fill("#fhir-json", json.dumps(fhir_consent(statements=["copy_to_person"])))
    page.click("form[action='/consents/import'] button[type=submit]")
    assert page.locator("#error-summary").is_visible()
    check(page, "consent-import-error")
    page.fill("#fhir-json", json.dumps(fhir_consent()))
    page.click("form[action='/consents/import'] button[type=submit]")
    assert page.locator("#import-result").is_visible()
    check(page, "consent-import-result")
    page.goto(f"{base_url}/shares/plan")
    check(page, "share-plan-form")
    for field, (name, body, mime) in share_files(effective).items():
        page.set_input_files(f"#{field.replace('_', '-')}", files=[FilePayload(name=name, mimeType=mime, buffer=body)])
    page.click("form[action='/shares/plan'] button[type=submit]")
    assert page.locator("#fields-kept").is_visible() and page.locator("#fields-dropped").is_visible()
    check(page, "share-plan-result")
    page.context.close()
    assert len(found) == 8 and not any(found.values()), {k: v for k, v in found.items() if v}
