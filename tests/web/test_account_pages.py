"""Your account in the web UI: change the password, set up the second factor, issue, list and revoke API tokens."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html as html_lib
import re

import httpx
import pyotp
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from sqlalchemy import insert

from sharewise.cli.serve import DEMO_PASSWORD, DemoAccount
from sharewise.services import accounts as accounts_service
from sharewise.services import audit as audit_service
from sharewise.services import workflow as workflow_service
from sharewise.store.schema import user_roles
from tests.web import test_browser
from tests.web.conftest import Site, csrf_of, signed_in
from tests.web.test_browser import axe_violations, shot, sign_in

NEW_PASSWORD = "a long walk by the river at dawn"

# The browser tests' fixtures, used here under these names: this module's site served over HTTP, and Chromium.
served_url = test_browser.base_url
chromium = test_browser.browser


def _sign_in(site: Site, user: str, password: str, code: str = "") -> int:
    client = TestClient(site.app, base_url="https://testserver")
    token = csrf_of(client.get("/sign-in").text)
    r = client.post(
        "/sign-in",
        data={"csrf_token": token, "username": user, "password": password, "code": code},
        follow_redirects=False,
    )
    return int(r.status_code)


def _actions(site: Site, subject: str) -> list[str]:
    """The actions audited on an account or token that came through the web UI."""
    records = audit_service.log(site.control, "audrey", "account", subject, limit=500)
    return [str(r["action"]) for r in records if r["source"] == "web"]


def _change(client: TestClient, current: str, new: str, confirm: str | None = None) -> tuple[int, str, str]:
    page = client.get("/account/password")
    r = client.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current_password": current,
            "new_password": new,
            "confirm_password": new if confirm is None else confirm,
        },
        follow_redirects=False,
    )
    return r.status_code, r.text, r.headers.get("location", "")


# Every page --------------------------------------------------------------------------------------


def test_the_account_pages_need_a_signed_in_user(site: Site) -> None:
    client = TestClient(site.app, base_url="https://testserver")
    for page in ("/account", "/account/password", "/account/mfa", "/account/tokens"):
        r = client.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/sign-in?next={page}"


def test_the_overview_shows_who_you_are_and_links_every_account_page(site: Site) -> None:
    r = signed_in(site, "rosa").get("/account")
    assert r.status_code == 200
    assert "Rosa Requester" in r.text and "lakeview-dhs" in r.text and "requester" in r.text
    for page in ("/account/password", "/account/mfa", "/account/tokens"):
        assert f'href="{page}"' in r.text
    assert 'aria-current="page"' in r.text


def test_every_account_form_refuses_a_post_without_the_csrf_token(site: Site) -> None:
    client = signed_in(site, "audrey")
    posts = {
        "/account/password": {
            "current_password": DEMO_PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
        "/account/tokens": {"label": "forged", "roles": "auditor", "expires_in_days": "30"},
        "/account/tokens/revoke": {"token_id": "t-000000000000"},
        "/account/mfa/begin": {},
        "/account/mfa/confirm": {"code": "123456"},
    }
    for path, data in posts.items():
        r = client.post(path, data={**data, "csrf_token": "forged"}, follow_redirects=False)
        assert r.status_code == 403, path
        assert "did not come from this site" in r.text
    assert _sign_in(site, "audrey", DEMO_PASSWORD) == 303  # the password is unchanged
    assert accounts_service.pending_totp(site.control, "audrey") is None  # no enrolment begun
    anonymous = TestClient(site.app, base_url="https://testserver")
    anonymous.get("/account/mfa/enrol")
    r = anonymous.post("/account/mfa/enrol", data={"csrf_token": "forged", "username": "audrey", "password": "x"})
    assert r.status_code == 403


# Password ----------------------------------------------------------------------------------------


def test_a_password_change_takes_effect_at_the_next_sign_in(site: Site) -> None:
    client = signed_in(site, "pat")
    before = csrf_of(client.get("/account").text)
    status, _, location = _change(client, DEMO_PASSWORD, NEW_PASSWORD)
    assert status == 303 and location == "/account"
    assert "Your password is changed" in client.get("/account").text
    assert csrf_of(client.get("/account").text) != before  # a new session, as at sign-in: old forms are refused
    stale = client.post("/account/tokens", data={"csrf_token": before, "label": "x", "roles": "program_reviewer"})
    assert stale.status_code == 403
    assert _sign_in(site, "pat", DEMO_PASSWORD) == 401
    assert _sign_in(site, "pat", NEW_PASSWORD) == 303
    assert "password-changed" in _actions(site, "pat")


def test_a_wrong_current_password_changes_nothing_and_counts_as_a_failure(site: Site) -> None:
    client = signed_in(site, "dana")
    status, html, _ = _change(client, "not my password at all", NEW_PASSWORD)
    assert status == 403
    assert "The current password is not right." in html
    assert 'id="current_password-error-1"' in html and 'aria-invalid="true"' in html
    assert 'href="#current_password"' in html  # the summary links to the field
    assert _actions(site, "dana").count("sign-in-failed") == 1
    assert _sign_in(site, "dana", DEMO_PASSWORD) == 303
    assert _sign_in(site, "dana", NEW_PASSWORD) == 401


def test_a_weak_new_password_is_refused_with_every_reason_on_its_field(site: Site) -> None:
    client = signed_in(site, "dana")
    status, html, _ = _change(client, DEMO_PASSWORD, "dana-steward")
    assert status == 422
    assert "Your password was not changed" in html
    errors = re.findall(r'<span class="usa-error-message" id="new_password-error-\d+">([^<]+)</span>', html)
    assert errors == ["Do not use your user name or the name of the service."]
    assert 'aria-describedby="new_password-hint new_password-error-1"' in html
    assert "dana-steward" not in html and DEMO_PASSWORD not in html  # passwords are never echoed back
    status, html, _ = _change(client, DEMO_PASSWORD, "password")
    assert status == 422 and "This password is on the list of common or breached passwords." in html
    status, html, _ = _change(client, DEMO_PASSWORD, "short")
    assert status == 422 and "Use at least 8 characters." in html
    status, html, _ = _change(client, DEMO_PASSWORD, "abcdefghij")
    assert status == 422 and "A sequence of characters is easily guessed." in html
    assert "password-changed" not in _actions(site, "dana")


def test_a_mismatched_confirmation_is_refused_before_the_current_password_is_checked(site: Site) -> None:
    client = signed_in(site, "dana")
    failures = _actions(site, "dana").count("sign-in-failed")
    status, html, _ = _change(client, "wrong current password", NEW_PASSWORD, NEW_PASSWORD + "!")
    assert status == 422
    assert "The two new passwords are not the same." in html and 'href="#confirm_password"' in html
    assert _actions(site, "dana").count("sign-in-failed") == failures


def test_empty_fields_are_each_reported(site: Site) -> None:
    client = signed_in(site, "dana")
    status, html, _ = _change(client, "", "", "")
    assert status == 422
    assert "Enter your current password." in html and "Enter a new password." in html


def test_a_privileged_user_still_needs_a_one_time_code_after_a_password_change(site: Site) -> None:
    client = signed_in(site, "lee")
    status, _, _ = _change(client, DEMO_PASSWORD, NEW_PASSWORD)
    assert status == 303
    assert _sign_in(site, "lee", NEW_PASSWORD) == 401  # no code
    assert _sign_in(site, "lee", NEW_PASSWORD, "000000" if site.code("lee") != "000000" else "111111") == 401
    assert _sign_in(site, "lee", NEW_PASSWORD, site.code("lee")) == 303


# Second factor -----------------------------------------------------------------------------------


def test_the_second_factor_page_says_whether_codes_are_on_and_never_shows_the_secret(site: Site) -> None:
    r = signed_in(site, "avery").get("/account/mfa")
    assert r.status_code == 200 and "asks for a one-time code at every sign-in" in r.text
    secret = site.accounts["avery"].totp_secret
    assert secret and secret not in r.text
    assert pyotp.TOTP(secret).provisioning_uri(name="avery", issuer_name="sharewise") not in r.text
    r = signed_in(site, "rosa").get("/account/mfa")
    assert r.status_code == 200 and "your roles do not need a second factor" in r.text


def _person(site: Site, user: str, roles: set[str]) -> None:
    """A new person of the county DHS with an account (opened by its administrator)."""
    workflow_service.add_user(site.control, user, user.title(), "lakeview-dhs", roles, "ada")
    new = accounts_service.create_account(site.control, "ada", user, DEMO_PASSWORD)
    site.accounts[user] = DemoAccount(user, ",".join(sorted(roles)), "lakeview-dhs", DEMO_PASSWORD, new.totp_secret)


def _grant(site: Site, user: str, role: str) -> None:
    """A role granted after the account was created (straight in the directory: no service grants roles yet)."""
    with site.control.store.transaction() as conn:
        conn.execute(insert(user_roles).values(user_id=user, role=role))


def _pending_secret(html: str) -> str:
    match = re.search(r'id="totp-secret" value="([A-Z2-7]+)"', html)
    assert match, "no setup key on the page"
    return match.group(1)


def _form_post(client: TestClient, page: str, path: str, **data: str) -> httpx.Response:
    token = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _wrong_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    return next(c for c in ("000000", "111111", "222222", "333333") if not totp.verify(c, valid_window=1))


def test_a_user_sets_up_an_authenticator_and_sign_in_then_asks_for_its_code(site: Site) -> None:
    _person(site, "nico", {"requester"})
    client = signed_in(site, "nico")
    page = client.get("/account/mfa")
    assert "Set up an authenticator" in page.text and 'id="totp-secret"' not in page.text
    r = _form_post(client, "/account/mfa", "/account/mfa/begin")
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa#enrolment"
    page = client.get("/account/mfa")
    secret = _pending_secret(page.text)
    assert secret == accounts_service.pending_totp(site.control, "nico")
    uri = html_lib.escape(accounts_service.provisioning_uri("nico", secret))
    assert f'href="{uri}"' in page.text and f'id="totp-uri" value="{uri}"' in page.text
    assert uri.startswith("otpauth://totp/sharewise:nico?secret=") and "https://" not in uri

    r = _form_post(client, "/account/mfa", "/account/mfa/confirm", code=_wrong_code(secret))
    assert r.status_code == 422
    assert "This code does not come from the new secret" in r.text and "Error: One-time codes" in r.text
    assert 'id="code-error-1"' in r.text and 'aria-invalid="true"' in r.text and 'href="#code"' in r.text
    assert 'aria-describedby="code-hint code-error-1"' in r.text
    assert _pending_secret(r.text) == secret  # still there to try again
    for code, message in (("", "Enter the code your authenticator app shows."), ("12ab", "Enter the 6 digits")):
        r = _form_post(client, "/account/mfa", "/account/mfa/confirm", code=code)
        assert r.status_code == 422 and message in r.text
    assert not accounts_service.has_totp(site.control, "nico")

    r = _form_post(client, "/account/mfa", "/account/mfa/confirm", code=site.next_code(secret))
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"
    page = client.get("/account/mfa")
    assert "Your authenticator is set up" in page.text and "asks for a one-time code at every sign-in" in page.text
    assert secret not in page.text and "Replace your authenticator" in page.text
    assert accounts_service.has_totp(site.control, "nico")
    assert _sign_in(site, "nico", DEMO_PASSWORD) == 401
    assert _sign_in(site, "nico", DEMO_PASSWORD, site.next_code(secret)) == 303
    assert {"totp-enrolment-started", "totp-enrolment-failed", "totp-enrolled"} <= set(_actions(site, "nico"))
    site.accounts["nico"] = dataclasses.replace(site.accounts["nico"], totp_secret=secret)


def test_a_confirmation_without_an_enrolment_in_progress_is_reported(site: Site) -> None:
    client = signed_in(site, "dana")
    r = _form_post(client, "/account/mfa", "/account/mfa/confirm", code="123456")
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"
    assert "No authenticator enrolment is in progress: start one first." in client.get("/account/mfa").text


def test_a_replacement_authenticator_takes_over_only_once_confirmed(site: Site) -> None:
    old = site.accounts["blake"].totp_secret
    assert old
    client = signed_in(site, "blake")
    page = client.get("/account/mfa")
    assert "Replace your authenticator" in page.text
    _form_post(client, "/account/mfa", "/account/mfa/begin")
    page = client.get("/account/mfa")
    new = _pending_secret(page.text)
    assert "keeps asking for codes from your current authenticator" in page.text
    assert _sign_in(site, "blake", DEMO_PASSWORD, site.next_code(old)) == 303
    r = _form_post(client, "/account/mfa", "/account/mfa/confirm", code=site.next_code(new))
    assert r.status_code == 303
    site.accounts["blake"] = dataclasses.replace(site.accounts["blake"], totp_secret=new)
    assert _sign_in(site, "blake", DEMO_PASSWORD, site.next_code(old)) == 401
    assert _sign_in(site, "blake", DEMO_PASSWORD, site.next_code(new)) == 303


def test_a_privileged_role_granted_later_ends_the_session_and_opens_only_the_enrolment(site: Site) -> None:
    _person(site, "gale", {"requester"})
    client = signed_in(site, "gale")
    assert client.get("/requests").status_code == 200
    _grant(site, "gale", "approver")
    r = client.get("/requests", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")  # the session ended

    browser = TestClient(site.app, base_url="https://testserver")
    token = csrf_of(browser.get("/sign-in").text)
    wrong = browser.post("/sign-in", data={"csrf_token": token, "username": "gale", "password": "not it at all"})
    assert wrong.status_code == 401 and "/account/mfa" not in wrong.headers.get("location", "")
    r = browser.post(
        "/sign-in", data={"csrf_token": token, "username": "gale", "password": DEMO_PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa#enrolment"  # straight into enrolment
    assert "Missing" in browser.get("/account/mfa").text
    browser.post("/sign-out", data={"csrf_token": csrf_of(browser.get("/account/mfa").text)})
    page = browser.get("/account/mfa/enrol")
    assert page.status_code == 200 and 'action="/account/mfa/enrol"' in page.text
    r = _form_post(browser, "/account/mfa/enrol", "/account/mfa/enrol", username="gale", password="not it at all")
    assert r.status_code == 401 and "sign-in failed" in r.text
    r = _form_post(browser, "/account/mfa/enrol", "/account/mfa/enrol", username="gale", password=DEMO_PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa#enrolment"

    page = browser.get("/account/mfa")
    assert page.status_code == 200 and "only to set up an authenticator" in page.text and "Missing" in page.text
    assert 'href="/requests"' not in page.text and 'href="/account/tokens"' not in page.text  # nothing else offered
    secret = _pending_secret(page.text)
    for path in ("/", "/requests", "/account", "/account/password", "/account/tokens"):
        r = browser.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in"), path
    r = browser.post(
        "/account/tokens",
        data={"csrf_token": csrf_of(page.text), "label": "x", "roles": "approver"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and accounts_service.list_tokens(site.control, "gale") == []
    assert browser.get("/account/mfa/enrol", follow_redirects=False).headers["location"] == "/account/mfa"

    r = _form_post(browser, "/account/mfa", "/account/mfa/confirm", code=site.next_code(secret))
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"
    assert browser.get("/requests").status_code == 200  # a full session now
    assert "approver" in browser.get("/account").text
    site.accounts["gale"] = dataclasses.replace(site.accounts["gale"], totp_secret=secret)
    assert _sign_in(site, "gale", DEMO_PASSWORD, site.next_code(secret)) == 303
    assert "totp-enrolled" in _actions(site, "gale")


def test_an_enrolling_session_ends_when_idle_and_sign_out_ends_it(site: Site) -> None:
    _person(site, "hale", {"requester"})
    _grant(site, "hale", "security_officer")
    browser = TestClient(site.app, base_url="https://testserver")
    r = _form_post(browser, "/account/mfa/enrol", "/account/mfa/enrol", username="hale", password=DEMO_PASSWORD)
    assert r.status_code == 303
    site.clock.offset += dt.timedelta(minutes=16)
    try:
        r = browser.get("/account/mfa", follow_redirects=False)
    finally:
        site.clock.offset = dt.timedelta()
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa/enrol"
    assert "Your session ended after 15 minutes" in browser.get("/account/mfa/enrol").text
    _form_post(browser, "/account/mfa/enrol", "/account/mfa/enrol", username="hale", password=DEMO_PASSWORD)
    page = browser.get("/account/mfa")
    assert 'action="/sign-out"' in page.text
    browser.post("/sign-out", data={"csrf_token": csrf_of(page.text)})
    r = browser.get("/account/mfa", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=/account/mfa"


def test_an_account_with_an_authenticator_cannot_use_the_enrolment_sign_in(site: Site) -> None:
    browser = TestClient(site.app, base_url="https://testserver")
    r = _form_post(browser, "/account/mfa/enrol", "/account/mfa/enrol", username="avery", password=DEMO_PASSWORD)
    assert r.status_code == 401 and "sign-in failed: check the user name, password and one-time code" in r.text
    assert browser.get("/account/mfa", follow_redirects=False).status_code == 303  # no session of any kind
    assert signed_in(site, "avery").get("/account/mfa/enrol", follow_redirects=False).headers["location"] == (
        "/account/mfa"
    )


# API tokens --------------------------------------------------------------------------------------


def _issue(client: TestClient, **data: str | list[str]) -> tuple[int, str]:
    page = client.get("/account/tokens")
    r = client.post("/account/tokens", data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False)
    return r.status_code, r.text


def _issued(html: str) -> tuple[str, str]:
    token_id = re.search(r"Token (t-[0-9a-f]+) issued", html)
    secret = re.search(r'id="issued-secret" value="(sw_[^"]+)"', html)
    assert token_id and secret, "no token on the page"
    return token_id.group(1), secret.group(1)


def test_a_token_is_shown_once_and_acts_with_only_its_roles(site: Site) -> None:
    client = signed_in(site, "ada")
    page = client.get("/account/tokens")
    assert 'value="administrator"' in page.text and 'value="requester"' not in page.text  # only roles ada holds
    status, html = _issue(client, label="nightly extract", roles="administrator", expires_in_days="30")
    assert status == 200
    token_id, secret = _issued(html)
    me = TestClient(site.app).get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["roles"] == ["administrator"]
    assert secret not in client.get("/account/tokens").text  # never shown again
    assert "api-token-issued" in _actions(site, token_id)


def test_a_revoked_token_stops_working_at_once(site: Site) -> None:
    client = signed_in(site, "rosa")
    _, html = _issue(client, label="a script", roles="requester", expires_in_days="7")
    token_id, secret = _issued(html)
    r = client.post(
        "/account/tokens/revoke", data={"csrf_token": csrf_of(html), "token_id": token_id}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/account/tokens"
    assert f"API token {token_id} is revoked." in client.get("/account/tokens").text
    me = TestClient(site.app).get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401, me.text
    assert "api-token-revoked" in _actions(site, token_id)


def test_a_token_cannot_carry_a_role_its_user_does_not_hold(site: Site) -> None:
    client = signed_in(site, "rosa")
    status, html = _issue(client, label="escalate", roles=["requester", "administrator"], expires_in_days="30")
    assert status == 403
    assert "A token may carry only roles you hold." in html and 'href="#role-requester"' in html
    assert "issued-secret" not in html


def test_a_token_needs_a_label_a_role_and_an_offered_lifetime(site: Site) -> None:
    client = signed_in(site, "rosa")
    status, html = _issue(client, label="  ", expires_in_days="1000")
    assert status == 422
    for message in (
        "Say what the token is for.",
        "Choose at least one role for the token.",
        "Choose one of the offered",
    ):
        assert message in html
    assert "issued-secret" not in html


def test_your_tokens_are_listed_with_a_revoke_button_each_and_never_their_secret(site: Site) -> None:
    _person(site, "tess", {"security_officer"})
    client = signed_in(site, "tess")
    assert "You have no API tokens." in client.get("/account/tokens").text
    _, html = _issue(client, label="the nightly <extract>", roles="security_officer", expires_in_days="30")
    token_id, secret = _issued(html)
    _, other = _issue(signed_in(site, "avery"), label="avery's job", roles="approver", expires_in_days="7")
    other_id, _ = _issued(other)
    page = client.get("/account/tokens")
    row = re.search(rf'<tr>\s*<th scope="row"><code>{token_id}</code></th>(.*?)</tr>', page.text, re.S)
    assert row, "no row for the token"
    assert "the nightly &lt;extract&gt;" in row.group(1) and "security officer" in row.group(1)
    assert ">active<" in row.group(1) and f'name="token_id" value="{token_id}"' in row.group(1)
    assert f'<span class="usa-sr-only"> token {token_id}</span>' in row.group(1)
    assert secret not in page.text and other_id not in page.text
    r = client.post(
        "/account/tokens/revoke",
        data={"csrf_token": csrf_of(page.text), "token_id": token_id},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get("/account/tokens")
    row = re.search(rf"<code>{token_id}</code></th>(.*?)</tr>", page.text, re.S)
    assert row and "revoked " in row.group(1) and "token_id" not in row.group(1)  # no button for a revoked token


def test_another_users_token_cannot_be_revoked_unless_by_an_administrator_of_its_agency(site: Site) -> None:
    _, html = _issue(signed_in(site, "audrey"), label="reports", roles="auditor", expires_in_days="90")
    token_id, secret = _issued(html)
    for other in ("rosa", "olive"):  # the same agency without the administrator role; another agency's administrator
        client = signed_in(site, other)
        page = client.get("/account/tokens")
        r = client.post("/account/tokens/revoke", data={"csrf_token": csrf_of(page.text), "token_id": token_id})
        assert (
            r.status_code == 403 and "Only its owner or an administrator of its agency may revoke this token." in r.text
        )
    assert TestClient(site.app).get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    client = signed_in(site, "ada")
    page = client.get("/account/tokens")
    r = client.post(
        "/account/tokens/revoke",
        data={"csrf_token": csrf_of(page.text), "token_id": token_id},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_revoking_an_unknown_or_empty_token_id_is_reported_on_the_field(site: Site) -> None:
    client = signed_in(site, "rosa")
    page = client.get("/account/tokens")
    r = client.post("/account/tokens/revoke", data={"csrf_token": csrf_of(page.text), "token_id": "t-000000000000"})
    assert r.status_code == 404 and "There is no token with this id." in r.text and 'href="#token_id"' in r.text
    r = client.post("/account/tokens/revoke", data={"csrf_token": csrf_of(page.text), "token_id": " "})
    assert r.status_code == 422 and "Enter the id of the token to revoke." in r.text


# In a browser ------------------------------------------------------------------------------------


def test_the_account_pages_have_no_wcag_aa_violations_with_or_without_errors(
    chromium: Browser, served_url: str, site: Site
) -> None:
    browser, base_url = chromium, served_url
    page = sign_in(browser, base_url, site, "sam")
    checked: dict[str, list[dict[str, object]]] = {}
    for path in ("/account", "/account/mfa", "/account/password", "/account/tokens"):
        page.goto(base_url + path)
        checked[path] = axe_violations(page)
    page.goto(f"{base_url}/account/password")
    page.fill("#current_password", DEMO_PASSWORD)
    page.fill("#new_password", "abcdefgh")
    page.fill("#confirm_password", "something else")
    page.click("text=Change password")
    assert page.locator("#error-summary a").count() == 2
    page.click("#error-summary a[href='#new_password']")  # the summary's link takes you to the field
    assert page.evaluate("document.activeElement.id") == "new_password"
    shot(page, "account-password-errors")
    checked["password with errors"] = axe_violations(page)
    page.goto(f"{base_url}/account/tokens")
    page.click("text=Issue token")
    assert page.locator("#error-summary li").count() == 2
    checked["token with errors"] = axe_violations(page)
    page.fill("#label", "the nightly extract job")
    page.click("label[for=role-security_officer]")
    page.click("text=Issue token")
    assert page.locator("#issued-secret").input_value().startswith("sw_")
    shot(page, "account-token-issued")
    checked["token issued"] = axe_violations(page)
    page.goto(f"{base_url}/account/tokens")
    checked["tokens listed"] = axe_violations(page)
    page.goto(f"{base_url}/account/mfa")
    page.click("text=Replace your authenticator")
    assert page.locator("#totp-secret").input_value()
    page.fill("#code", "12")
    page.click("text=Confirm the authenticator")
    page.click("#error-summary a[href='#code']")
    assert page.evaluate("document.activeElement.id") == "code"
    shot(page, "account-mfa-enrolment-errors")
    checked["mfa enrolment with errors"] = axe_violations(page)
    page.context.close()
    anonymous = browser.new_context(bypass_csp=True).new_page()
    anonymous.goto(f"{base_url}/account/mfa/enrol")
    checked["enrolment sign-in"] = axe_violations(anonymous)
    anonymous.context.close()
    assert all(v == [] for v in checked.values()), checked
