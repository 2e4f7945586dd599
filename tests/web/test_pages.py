"""The web pages without a browser: sign-in, CSRF, idle timeout, the interview and review in place."""

from __future__ import annotations

import datetime as dt
import json
import re

from fastapi.testclient import TestClient

from tests.web.conftest import Site, csrf_of, signed_in

PAGES = ["/", "/interview", "/law", "/requests", "/consents", "/consents/new", "/agreements", "/accounting"]


def test_pages_need_a_signed_in_user(site: Site) -> None:
    client = TestClient(site.app, base_url="https://testserver")
    r = client.get("/requests", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in?next=")


def test_the_session_cookie_is_httponly_secure_and_samesite(site: Site) -> None:
    client = TestClient(site.app, base_url="https://testserver")
    token = csrf_of(client.get("/sign-in").text)
    r = client.post(
        "/sign-in",
        data={"csrf_token": token, "username": "rosa", "password": "lakeview county demo"},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie


def test_a_form_without_the_csrf_token_is_refused(site: Site) -> None:
    client = TestClient(site.app, base_url="https://testserver")
    client.get("/sign-in")
    r = client.post("/sign-in", data={"csrf_token": "forged", "username": "rosa", "password": "lakeview county demo"})
    assert r.status_code == 403


def test_a_wrong_password_shows_one_message_for_every_cause(site: Site) -> None:
    client = TestClient(site.app, base_url="https://testserver")
    token = csrf_of(client.get("/sign-in").text)
    r = client.post("/sign-in", data={"csrf_token": token, "username": "nobody", "password": "whatever it is"})
    assert r.status_code == 401 and "sign-in failed" in r.text


def test_a_session_idle_for_15_minutes_ends(site: Site) -> None:
    client = signed_in(site, "rosa")
    assert client.get("/requests").status_code == 200
    site.clock.offset += dt.timedelta(minutes=16)
    try:
        r = client.get("/requests", follow_redirects=False)
    finally:
        site.clock.offset = dt.timedelta()
    assert r.status_code == 303 and "/sign-in" in r.headers["location"]


def test_a_session_ends_12_hours_after_sign_in_however_active(site: Site) -> None:
    client = signed_in(site, "rosa")
    try:
        for _ in range(12 * 6 - 1):  # a page every 10 minutes for 11 h 50 min: never idle
            site.clock.offset += dt.timedelta(minutes=10)
            assert client.get("/requests", follow_redirects=False).status_code == 200
        site.clock.offset += dt.timedelta(minutes=11)  # 12 h 1 min after sign-in
        r = client.get("/requests", follow_redirects=False)
    finally:
        site.clock.offset = dt.timedelta()
    assert r.status_code == 303 and "/sign-in" in r.headers["location"]
    assert client.get("/requests", follow_redirects=False).status_code == 303  # the session was ended, not kept


def test_every_main_page_renders_for_its_users(site: Site) -> None:
    for user in ("rosa", "dana", "audrey"):
        client = signed_in(site, user)
        for page in PAGES:
            r = client.get(page)
            assert r.status_code in (200, 403), (user, page, r.status_code)
            assert "<main" in r.text


def test_the_interview_asks_only_the_facts_the_engine_needs(site: Site) -> None:
    client = signed_in(site, "rosa")
    r = client.get("/interview?source=k12_education&kind=court&purpose=judicial_proceeding&data=education_record")
    assert r.status_code == 200
    asked = re.findall(r'name="fact_([a-z_]+)"', r.text)
    assert asked and len(set(asked)) < 6
    assert "More facts are needed" in r.text


def test_the_interview_turns_into_a_sharing_request(site: Site) -> None:
    client = signed_in(site, "rosa")
    page = client.get(
        "/interview?source=snap&kind=state_or_local_agency&rprogram=tanf&purpose=eligibility_determination&data=identity"
    )
    assert "Permitted" in page.text
    raw = json.dumps(
        {
            "source": {"program": "snap"},
            "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
            "purpose": "eligibility_determination",
            "data": ["identity"],
            "form": "identified",
        }
    )
    r = client.post(
        "/requests/new",
        data={
            "csrf_token": csrf_of(page.text),
            "request_json": raw,
            "title": "From the interview",
            "use_case": "eligibility",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/requests/r-")
    shown = client.get(r.headers["location"]).text
    assert "From the interview" in shown
    assert (
        'id="five-safes"' in shown and 'id="safe-outputs"' in shown and "Recipient assessment: not yet done." in shown
    )
    safeguards = client.get(r.headers["location"] + "/safeguards")
    assert safeguards.status_code == 200 and 'id="controls"' in safeguards.text and "AC-2" in safeguards.text
    oscal = client.get(r.headers["location"] + "/safeguards.json")
    assert oscal.status_code == 200 and "profile" in oscal.json()


def test_a_consent_missing_required_elements_is_not_recorded(site: Site) -> None:
    client = signed_in(site, "dana")
    form = client.get("/consents/new")
    r = client.post(
        "/consents/new",
        data={
            "csrf_token": csrf_of(form.text),
            "given_name": "Ana",
            "family_name": "Example",
            "date_of_birth": "1990-04-02",
            "discloser_program": "sud_treatment",
            "recipient_kind": "state_or_local_agency",
            "data": "sud_treatment_information",
            "purposes": "care_coordination",
            "effective": "2026-03-01",
            "signer": "person",
            "signer_name": "Ana Example",
            "signed_on": "2026-03-01",
            "method": "wet_ink",
        },
    )
    assert r.status_code == 422
    assert "The consent was not recorded" in r.text
    # The law is named by its title in the law pack, as privacy officers know it, not by sharewise's id.
    title = "Confidentiality of substance use disorder patient records (42 CFR Part 2)"
    assert f"{title} requires &#39;" in r.text and "part2 requires" not in r.text


CONSENT_CASE = (
    "source=sud_treatment&kind=state_or_local_agency&rprogram=child_welfare&purpose=service_delivery"
    "&data=identity&data=sud_treatment_information"
)


def test_an_interview_that_needs_consent_offers_the_consent_form_in_each_format(site: Site) -> None:
    client = signed_in(site, "rosa")
    page = client.get(f"/interview?{CONSENT_CASE}")
    assert page.status_code == 200 and "Print a consent form" in page.text
    assert "needs counsel&#39;s review before use" in page.text  # the 2024 Part 2 notice awaits counsel
    links = re.findall(r'href="(/interview/consent-form\?[^"]+)"', page.text)
    assert [link.rsplit("format=", 1)[1] for link in links] == ["docx", "pdf", "html"]
    pdf = client.get(links[1].replace("&amp;", "&"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and 'filename="consent-form.pdf"' in pdf.headers["content-disposition"]
    docx = client.get(links[0].replace("&amp;", "&"))
    assert docx.status_code == 200 and docx.content.startswith(b"PK")
    html = client.get(links[2].replace("&amp;", "&"))
    assert "42 CFR" in html.text and "Substance use disorder" in html.text


def test_the_consent_form_link_refuses_a_bad_format_an_unfinished_interview_and_a_prohibited_share(site: Site) -> None:
    client = signed_in(site, "rosa")
    assert client.get(f"/interview/consent-form?{CONSENT_CASE}&format=odt").status_code == 422
    assert client.get("/interview/consent-form?source=snap&format=pdf").status_code == 422
    fti = (
        "source=child_support&kind=state_or_local_agency&purpose=eligibility_determination&data=federal_tax_information"
    )
    assert "Print a consent form" not in client.get(f"/interview?{fti}").text
    assert client.get(f"/interview/consent-form?{fti}").status_code in (403, 404, 409, 422)
    anonymous = TestClient(site.app, base_url="https://testserver")
    assert anonymous.get(f"/interview/consent-form?{CONSENT_CASE}", follow_redirects=False).status_code == 303
