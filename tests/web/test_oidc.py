"""Sign-in with an agency's identity provider: the whole OpenID Connect flow against a fake provider in-process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from playwright.sync_api import Browser
from sqlalchemy import insert, select

from sharewise.domain.errors import InvalidDataError
from sharewise.services import accounts as accounts_service
from sharewise.services import oidc as oidc_service
from sharewise.services import workflow as workflow_service
from sharewise.store.schema import audit_records, user_roles
from sharewise.web import oidc_pages  # importing it adds its routes: before any app is created
from tests.web import test_browser
from tests.web.conftest import Site, csrf_of
from tests.web.test_browser import axe_violations

# The browser tests' fixtures, used here under these names: this module's site served over HTTP, and Chromium.
served_url = test_browser.base_url
chromium = test_browser.browser

ISSUER = "https://idp.lakeview.example"
CLIENT_ID = "sharewise-dhs"
CLIENT_SECRET = "s3cret-for-the-lakeview-idp"
CALLBACK = "https://testserver/sign-in/oidc/lakeview/callback"

Claims = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Grant:
    """What the provider remembers of an authorization until the code is exchanged."""

    challenge: str
    redirect_uri: str
    nonce: str
    claims: Claims


@dataclass
class FakeIdP:
    """An identity provider: discovery, JWKS and token endpoints behind an httpx.MockTransport.

    Its authorization endpoint is played by `authorize` (the person signing in at the provider). Tests change
    what it issues with `tamper` (claims and header before signing) and `signer` (how the token is signed).
    """

    client_auth: str = "client_secret_basic"
    rsa_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    ec_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    grants: dict[str, Grant] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)  # every token and code handed out: none may leak
    tamper: Callable[[Claims, Claims], None] | None = None
    signer: Callable[[Claims, Claims], str] | None = None
    token_error: bool = False
    rsa_kid: str = "rsa-1"

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk = json.loads(ECAlgorithm.to_jwk(self.ec_key.public_key()))
        return {
            "keys": [
                {**rsa_jwk, "kid": self.rsa_kid, "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
            ]
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                },
            )
        if request.url.path == "/jwks":
            return httpx.Response(200, json=self.jwks())
        if request.url.path == "/token" and request.method == "POST":
            return self._token(request)
        return httpx.Response(404)

    def _client_authenticated(self, request: httpx.Request, form: dict[str, str]) -> bool:
        if self.client_auth == "client_secret_post":
            return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme != "Basic":
            return False
        user, _, password = base64.b64decode(value).decode().partition(":")
        return unquote_plus(user) == CLIENT_ID and unquote_plus(password) == CLIENT_SECRET

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if not self._client_authenticated(request, form):
            return httpx.Response(401, json={"error": "invalid_client"})
        grant = self.grants.pop(form.get("code", ""), None)
        if (
            self.token_error
            or grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant.redirect_uri
            or oidc_service.pkce_challenge(form.get("code_verifier", "")) != grant.challenge
        ):
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "no such code"})
        access_token = secrets.token_urlsafe(24)
        now = int(time.time())
        claims: Claims = {
            "iss": ISSUER,
            "sub": "idp-7f3a",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16]),
            **grant.claims,
        }
        header: Claims = {"alg": "RS256", "kid": self.rsa_kid}
        if self.tamper:
            self.tamper(claims, header)
        id_token = self.signer(claims, header) if self.signer else self.sign(claims, header)
        self.issued += [access_token, id_token]
        return httpx.Response(200, json={"access_token": access_token, "token_type": "Bearer", "id_token": id_token})

    def sign(self, claims: Claims, header: Claims) -> str:
        key = self.ec_key if header["alg"] == "ES256" else self.rsa_key
        extra = {k: v for k, v in header.items() if k not in ("alg", "typ")}
        return jwt.encode(claims, key, algorithm=header["alg"], headers=extra)

    def authorize(self, url: str, claims: Claims) -> str:
        """The person signs in at the provider, which sends the browser back with a code (the callback URL)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert url.startswith(f"{ISSUER}/authorize?")
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["code_challenge_method"] == "S256" and "openid" in query["scope"].split()
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(query["code_challenge"], query["redirect_uri"], query["nonce"], claims)
        self.issued.append(code)
        return f"{query['redirect_uri']}?code={code}&state={query['state']}"


def write_config(tmp: Path, body: str, secret_mode: int = 0o600, secret: str = CLIENT_SECRET) -> Path:
    secret_file = tmp / "lakeview-idp.secret"
    secret_file.write_text(secret + "\n", encoding="utf-8")
    os.chmod(secret_file, secret_mode)
    config = tmp / "oidc.yaml"
    config.write_text(body, encoding="utf-8")
    return config


CONFIG = f"""\
providers:
  - id: lakeview
    name: Lakeview County ID
    issuer: {ISSUER}
    client_id: {CLIENT_ID}
    client_secret_file: lakeview-idp.secret
    agency: lakeview-dhs
    mfa_acr: ["urn:lakeview:loa:mfa"]
"""


def _use(site: Site, idp: FakeIdP, config: Path) -> None:
    http = httpx.Client(transport=httpx.MockTransport(idp.handle))
    oidc_pages.configure(site.app, oidc_service.OpenIdConnect(oidc_service.load_config(config), http))


@pytest.fixture
def idp(site: Site, tmp_path: Path) -> Iterator[FakeIdP]:
    fake = FakeIdP()
    _use(site, fake, write_config(tmp_path, CONFIG))
    yield fake
    oidc_pages.configure(site.app, None)


def visitor(site: Site) -> TestClient:
    return TestClient(site.app, base_url="https://testserver")


def begin(client: TestClient, next_url: str = "/") -> str:
    r = client.get("/sign-in/oidc/lakeview", params={"next": next_url}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def sign_in_with(site: Site, idp: FakeIdP, claims: Claims, next_url: str = "/") -> tuple[TestClient, httpx.Response]:
    """The whole flow: sharewise sends the browser to the provider, the provider sends it back."""
    client = visitor(site)
    callback = idp.authorize(begin(client, next_url), claims)
    return client, client.get(callback.removeprefix("https://testserver"), follow_redirects=False)


def audited(site: Site, action: str) -> list[dict[str, Any]]:
    """The newest records of an action, through the web, with their details parsed."""
    with site.control.store.transaction() as conn:
        rows = conn.execute(
            select(audit_records).where(audit_records.c.action == action).order_by(audit_records.c.seq.desc())
        ).all()
    return [{**dict(r._mapping), "details": json.loads(r.details)} for r in rows if r.source == "web"]


def last_failure(site: Site) -> dict[str, Any]:
    record = audited(site, "sign-in-failed")[0]
    assert record["details"]["method"] == "oidc" and record["details"]["provider"] == "lakeview"
    assert record["outcome"] == "failure" and record["actor"] == "anonymous"
    return record


def assert_refused(site: Site, response: httpx.Response, reason: str, status: int = 401) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert "sign-in" in response.text and "usa-alert--error" in response.text
    record = last_failure(site)
    assert record["details"]["reason"] == reason
    return record


# Success -------------------------------------------------------------------------------------------


def test_a_registered_user_signs_in_with_the_agency_idp(site: Site, idp: FakeIdP) -> None:
    before = len(audited(site, "signed-in"))
    client, r = sign_in_with(site, idp, {"preferred_username": "rosa"}, "/requests")
    assert r.status_code == 303 and r.headers["location"] == "/requests"
    page = client.get("/requests")
    assert page.status_code == 200 and "Rosa Requester" in page.text
    records = audited(site, "signed-in")
    assert len(records) == before + 1
    assert records[0]["subject_id"] == "rosa" and records[0]["agency"] == "lakeview-dhs"
    assert records[0]["details"] == {"method": "oidc", "provider": "lakeview", "idp_mfa": False}


def test_the_session_is_new_and_works_like_a_password_session(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    old_csrf = csrf_of(client.get("/sign-in").text)
    callback = idp.authorize(begin(client), {"preferred_username": "rosa"})
    assert client.get(callback.removeprefix("https://testserver"), follow_redirects=False).status_code == 303
    token = csrf_of(client.get("/requests").text)
    assert token != old_csrf  # a new session at sign-in: no fixation
    r = client.post("/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/requests", follow_redirects=False).status_code == 303  # signed out


def test_the_redirect_carries_pkce_state_and_nonce_and_the_session_keeps_them_once(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    first = parse_qs(urlsplit(begin(client)).query)
    second = parse_qs(urlsplit(begin(client)).query)
    assert first["redirect_uri"] == [CALLBACK] and first["scope"] == ["openid email profile"]
    assert first["state"] != second["state"] and first["nonce"] != second["nonce"]
    assert first["code_challenge"] != second["code_challenge"] and len(first["code_challenge"][0]) == 43
    # Only the newest sign-in can finish: the first one's answer is refused.
    callback = f"{CALLBACK}?code=whatever&state={first['state'][0]}".removeprefix("https://testserver")
    assert_refused(site, client.get(callback), "state-mismatch")


def test_an_unsafe_next_url_is_replaced_by_the_home_page(site: Site, idp: FakeIdP) -> None:
    _, r = sign_in_with(site, idp, {"preferred_username": "rosa"}, "//evil.example/")
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_privileged_user_comes_in_when_the_idp_reports_mfa_by_amr_or_acr(site: Site, idp: FakeIdP) -> None:
    for claims in ({"amr": ["pwd", "mfa"]}, {"amr": ["otp"]}, {"acr": "urn:lakeview:loa:mfa"}):
        client, r = sign_in_with(site, idp, {"preferred_username": "ada", **claims})
        assert r.status_code == 303, (claims, r.text)
        assert client.get("/").status_code == 200
        assert audited(site, "signed-in")[0]["details"]["idp_mfa"] is True


def test_the_public_url_makes_the_redirect_uri(site: Site, tmp_path: Path) -> None:
    fake = FakeIdP()
    _use(site, fake, write_config(tmp_path, "public_url: https://sharewise.lakeview.gov/\n" + CONFIG))
    try:
        query = parse_qs(urlsplit(begin(visitor(site))).query)
    finally:
        oidc_pages.configure(site.app, None)
    assert query["redirect_uri"] == ["https://sharewise.lakeview.gov/sign-in/oidc/lakeview/callback"]


def test_a_rotated_signing_key_is_fetched_at_most_once_a_minute(
    site: Site, idp: FakeIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sign_in_with(site, idp, {"preferred_username": "rosa"})[1].status_code == 303  # the keys are cached
    idp.rsa_key, idp.rsa_kid = rsa.generate_private_key(65537, 2048), "rsa-2"
    assert_refused(site, sign_in_with(site, idp, {"preferred_username": "rosa"})[1], "unknown-key")
    monkeypatch.setattr(oidc_service, "JWKS_REFETCH_AFTER", 0.0)  # a minute has passed
    assert sign_in_with(site, idp, {"preferred_username": "rosa"})[1].status_code == 303


def test_es256_tokens_are_accepted(site: Site, idp: FakeIdP) -> None:
    idp.tamper = lambda claims, header: header.update(alg="ES256", kid="ec-1")
    _, r = sign_in_with(site, idp, {"preferred_username": "rosa"})
    assert r.status_code == 303


def test_a_directory_user_without_a_password_account_signs_in(site: Site, idp: FakeIdP) -> None:
    workflow_service.add_user(site.control, "uma", "Uma User", "lakeview-dhs", {"program_reviewer"}, "ada")
    client, r = sign_in_with(site, idp, {"preferred_username": "uma"})
    assert r.status_code == 303
    assert client.get("/requests").status_code == 200


def test_client_secret_post_and_an_email_claim_with_a_domain(site: Site, tmp_path: Path) -> None:
    fake = FakeIdP(client_auth="client_secret_post")
    config = (
        CONFIG + "    token_endpoint_auth: client_secret_post\n    user_claim: email\n    user_domain: lakeview.gov\n"
    )
    _use(site, fake, write_config(tmp_path, config))
    try:
        _, r = sign_in_with(site, fake, {"email": "rosa@Lakeview.gov", "email_verified": True})
        assert r.status_code == 303
        _, r = sign_in_with(site, fake, {"email": "rosa@elsewhere.example", "email_verified": True})
        assert_refused(site, r, "user-outside-domain", 403)
        _, r = sign_in_with(site, fake, {"email": "rosa@lakeview.gov", "email_verified": False})
        assert_refused(site, r, "email-not-verified")
    finally:
        oidc_pages.configure(site.app, None)


# Refusals: who the person is ---------------------------------------------------------------------


def test_an_unknown_user_is_refused_and_their_claim_is_not_recorded(site: Site, idp: FakeIdP) -> None:
    _, r = sign_in_with(site, idp, {"preferred_username": "someone@elsewhere.example"})
    record = assert_refused(site, r, "unknown-user", 403)
    assert "not registered in sharewise" in r.text
    assert record["subject_id"] == "unknown" and record["agency"] == "lakeview-dhs"
    with site.control.store.transaction() as conn:
        everything = json.dumps([list(row) for row in conn.execute(select(audit_records)).all()], default=str)
    assert "someone@elsewhere.example" not in everything


def test_a_user_of_another_agency_is_refused(site: Site, idp: FakeIdP) -> None:
    _, r = sign_in_with(site, idp, {"preferred_username": "skye"})
    record = assert_refused(site, r, "other-agency", 403)
    assert record["subject_id"] == "skye" and record["agency"] == "lakeview-schools"
    assert "another agency" in r.text


def test_a_token_without_the_user_claim_is_refused(site: Site, idp: FakeIdP) -> None:
    _, r = sign_in_with(site, idp, {"email": "rosa@lakeview.gov"})
    assert_refused(site, r, "no-user-claim", 403)


def test_a_privileged_user_without_an_mfa_claim_is_refused(site: Site, idp: FakeIdP) -> None:
    for claims in ({}, {"amr": ["pwd"]}, {"acr": "urn:lakeview:loa:password"}, {"amr": "mfa"}):
        _, r = sign_in_with(site, idp, {"preferred_username": "ada", **claims})
        record = assert_refused(site, r, "mfa-required", 403)
        assert record["subject_id"] == "ada"
        assert "one-time code" in r.text


def test_a_provider_may_refuse_privileged_users_altogether(site: Site, tmp_path: Path) -> None:
    fake = FakeIdP()
    _use(site, fake, write_config(tmp_path, CONFIG + "    privileged: refuse\n"))
    try:
        _, r = sign_in_with(site, fake, {"preferred_username": "ada", "amr": ["mfa"]})
        assert_refused(site, r, "privileged-refused", 403)
        _, r = sign_in_with(site, fake, {"preferred_username": "rosa"})
        assert r.status_code == 303  # the others still come in
    finally:
        oidc_pages.configure(site.app, None)


def test_a_privileged_account_pending_enrolment_is_refused_even_with_idp_mfa(site: Site, idp: FakeIdP) -> None:
    workflow_service.add_user(site.control, "tess", "Tess Newrole", "lakeview-dhs", {"requester"}, "ada")
    accounts_service.create_account(site.control, "ada", "tess", "a long walk by the river at dawn")
    with site.control.store.transaction() as conn:
        conn.execute(insert(user_roles).values(user_id="tess", role="approver"))
    _, r = sign_in_with(site, idp, {"preferred_username": "tess", "amr": ["mfa"]})
    assert_refused(site, r, "enrolment-required", 403)


# Refusals: the protocol --------------------------------------------------------------------------


def test_a_callback_without_a_sign_in_begun_is_refused(site: Site, idp: FakeIdP) -> None:
    r = visitor(site).get("/sign-in/oidc/lakeview/callback?code=abc&state=xyz")
    assert_refused(site, r, "state-missing")
    assert "expired or was already used" in r.text


def test_a_replayed_callback_is_refused(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    callback = idp.authorize(begin(client), {"preferred_username": "rosa"}).removeprefix("https://testserver")
    assert client.get(callback, follow_redirects=False).status_code == 303
    assert_refused(site, client.get(callback), "state-missing")
    # Nor can another browser use it.
    assert_refused(site, visitor(site).get(callback), "state-missing")


def test_a_forged_state_is_refused_and_uses_up_the_sign_in(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    callback = idp.authorize(begin(client), {"preferred_username": "rosa"})
    forged = callback.split("&state=")[0] + "&state=forged"
    assert_refused(site, client.get(forged.removeprefix("https://testserver")), "state-mismatch")
    assert_refused(site, client.get(callback.removeprefix("https://testserver")), "state-missing")


def test_a_sign_in_not_finished_within_ten_minutes_is_refused(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    callback = idp.authorize(begin(client), {"preferred_username": "rosa"})
    site.clock.offset += oidc_service.PENDING_LIFETIME + oidc_service.LEEWAY
    try:
        r = client.get(callback.removeprefix("https://testserver"))
    finally:
        site.clock.offset = type(site.clock.offset)()
    assert_refused(site, r, "authorization-expired")


def test_an_error_from_the_provider_is_refused(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    state = parse_qs(urlsplit(begin(client)).query)["state"][0]
    r = client.get(f"/sign-in/oidc/lakeview/callback?error=access_denied&state={state}")
    assert_refused(site, r, "provider-error")


def test_an_answer_naming_another_issuer_is_refused(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    callback = idp.authorize(begin(client), {"preferred_username": "rosa"})
    r = client.get(callback.removeprefix("https://testserver") + "&iss=https%3A%2F%2Fevil.example")
    assert_refused(site, r, "issuer-mismatch")


def test_a_code_the_provider_does_not_accept_is_refused(site: Site, idp: FakeIdP) -> None:
    client = visitor(site)
    state = parse_qs(urlsplit(begin(client)).query)["state"][0]
    r = client.get(f"/sign-in/oidc/lakeview/callback?code=not-a-code&state={state}")
    assert_refused(site, r, "token-exchange-failed")


def _rsa_token(claims: Claims, header: Claims, key: rsa.RSAPrivateKey) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header.get("kid", "rsa-1")})


def _unsigned(claims: Claims, header: Claims) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}."


def _hs256(claims: Claims, header: Claims) -> str:
    # Signed with the client secret, as an IdP may do for HS256: sharewise takes asymmetric signatures only.
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(CLIENT_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _set(**values: Any) -> Callable[[Claims, Claims], None]:
    return lambda claims, header: claims.update(values)


def _drop(name: str) -> Callable[[Claims, Claims], None]:
    return lambda claims, header: claims.pop(name)


OTHER_KEY = rsa.generate_private_key(65537, 2048)

BAD_TOKENS: list[tuple[str, dict[str, Any]]] = [
    ("bad-signature", {"signer": lambda c, h: _rsa_token(c, h, OTHER_KEY)}),
    ("unknown-key", {"tamper": lambda c, h: h.update(kid="rsa-2")}),
    ("unknown-key", {"tamper": lambda c, h: h.update(alg="ES256", kid="rsa-1")}),
    ("unsupported-algorithm", {"signer": _unsigned}),
    ("unsupported-algorithm", {"signer": _hs256}),
    ("malformed-id-token", {"signer": lambda c, h: "not.a-jwt"}),
    ("wrong-audience", {"tamper": _set(aud="another-client")}),
    ("wrong-authorized-party", {"tamper": _set(aud=[CLIENT_ID, "another-client"])}),
    ("wrong-issuer", {"tamper": _set(iss="https://evil.example")}),
    ("expired-token", {"tamper": _set(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)}),
    ("issued-in-future", {"tamper": _set(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200)}),
    ("not-yet-valid", {"tamper": _set(nbf=int(time.time()) + 3600)}),
    ("nonce-mismatch", {"tamper": _set(nonce="another-nonce")}),
    ("nonce-mismatch", {"tamper": _drop("nonce")}),
    ("missing-claim", {"tamper": _drop("exp")}),
    ("missing-claim", {"tamper": _drop("sub")}),
    ("at-hash-mismatch", {"tamper": _set(at_hash="AAAAAAAAAAAAAAAAAAAAAA")}),
]


@pytest.mark.parametrize(("reason", "change"), BAD_TOKENS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(BAD_TOKENS)])
def test_an_id_token_that_fails_a_check_is_refused(
    site: Site, idp: FakeIdP, reason: str, change: dict[str, Any]
) -> None:
    idp.tamper, idp.signer = change.get("tamper"), change.get("signer")
    _, r = sign_in_with(site, idp, {"preferred_username": "rosa"})
    record = assert_refused(site, r, reason)
    assert record["subject_id"] == "unknown"  # the token named nobody sharewise may trust
    assert "could not be verified" in r.text


def test_an_unreachable_provider_shows_the_sign_in_page_with_an_error(site: Site, tmp_path: Path) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(down))
    settings = oidc_service.load_config(write_config(tmp_path, CONFIG))
    oidc_pages.configure(site.app, oidc_service.OpenIdConnect(settings, http))
    try:
        r = visitor(site).get("/sign-in/oidc/lakeview")
    finally:
        oidc_pages.configure(site.app, None)
    assert r.status_code == 502 and "could not be reached" in r.text


def test_no_token_code_or_secret_reaches_the_logs_or_the_audit_trail(
    site: Site, idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sign_in_with(site, idp, {"preferred_username": "rosa"})
    sign_in_with(site, idp, {"preferred_username": "ada"})  # refused: no MFA
    idp.tamper = _set(aud="another-client")
    sign_in_with(site, idp, {"preferred_username": "rosa"})
    idp.tamper, idp.token_error = None, True
    sign_in_with(site, idp, {"preferred_username": "rosa"})
    with site.control.store.transaction() as conn:
        trail = json.dumps([list(row) for row in conn.execute(select(audit_records)).all()], default=str)
    # The server's logs: sharewise's and its HTTP client's (not the test client's own requests to the app,
    # whose callback URLs carry the one-time code as any browser's would).
    logs = "\n".join(r.getMessage() for r in caplog.records if "https://testserver/" not in r.getMessage())
    assert "https://idp.lakeview.example/token" in logs  # the log was captured
    assert len(idp.issued) >= 6
    for secret in [*idp.issued, CLIENT_SECRET]:
        assert secret not in logs and secret not in trail
    assert "token endpoint answered HTTP 400 (invalid_grant)" in logs  # the error code only, not the description
    assert "no such code" not in logs


# The sign-in page and configuration --------------------------------------------------------------


def test_the_sign_in_page_offers_each_configured_provider(site: Site, idp: FakeIdP) -> None:
    page = visitor(site).get("/sign-in", params={"next": "/requests?page=2&x=1"}).text
    assert "Sign in with Lakeview County ID" in page
    assert 'href="/sign-in/oidc/lakeview?next=/requests%3Fpage%3D2%26x%3D1"' in page


def test_the_sign_in_page_with_providers_and_a_refusal_has_no_wcag_aa_violations(
    site: Site, idp: FakeIdP, chromium: Browser, served_url: str
) -> None:
    page = chromium.new_context(bypass_csp=True).new_page()
    try:
        page.goto(f"{served_url}/sign-in")
        assert page.get_by_role("link", name="Sign in with Lakeview County ID").count() == 1
        assert axe_violations(page) == []
        page.goto(f"{served_url}/sign-in/oidc/lakeview/callback?code=a&state=b")  # refused: no sign-in begun
        assert page.get_by_role("alert").count() == 1
        assert axe_violations(page) == []
    finally:
        page.context.close()


def test_without_a_configuration_nothing_changes(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(oidc_service.CONFIG_ENV, raising=False)
    del site.app.state.oidc  # read the environment again
    client = visitor(site)
    page = client.get("/sign-in").text
    assert "identity provider" not in page and "/sign-in/oidc/" not in page
    assert client.get("/sign-in/oidc/lakeview").status_code == 404
    assert client.get("/sign-in/oidc/lakeview/callback?code=a&state=b").status_code == 404


def test_an_unknown_provider_is_not_found(site: Site, idp: FakeIdP) -> None:
    assert visitor(site).get("/sign-in/oidc/elsewhere").status_code == 404


def test_a_provider_for_an_unregistered_agency_is_a_configuration_error(site: Site, tmp_path: Path) -> None:
    _use(site, FakeIdP(), write_config(tmp_path, CONFIG.replace("lakeview-dhs", "no-such-agency")))
    try:
        r = visitor(site).get("/sign-in/oidc/lakeview")
    finally:
        oidc_pages.configure(site.app, None)
    assert r.status_code == 409 and "not registered" in r.text


def test_an_invalid_configuration_is_logged_and_offers_no_provider(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, CONFIG + f"    client_secret: {CLIENT_SECRET}\n")
    monkeypatch.setenv(oidc_service.CONFIG_ENV, str(config))
    del site.app.state.oidc
    try:
        client = visitor(site)
        page = client.get("/sign-in")
        assert page.status_code == 200 and "/sign-in/oidc/" not in page.text
        r = client.get("/sign-in/oidc/lakeview")
        assert r.status_code == 409 and "configuration has errors" in r.text
        assert f"{config}: providers.0.client_secret" in caplog.text
        assert CLIENT_SECRET not in caplog.text and CLIENT_SECRET not in r.text
    finally:
        oidc_pages.configure(site.app, None)


def _problems(config: Path) -> list[str]:
    with pytest.raises(InvalidDataError) as caught:
        oidc_service.load_config(config)
    return [str(p) for p in caught.value.problems]


def test_the_configuration_loads_with_defaults(tmp_path: Path) -> None:
    settings = oidc_service.load_config(write_config(tmp_path, CONFIG))
    (provider,) = settings.providers
    assert provider.client_secret == CLIENT_SECRET and CLIENT_SECRET not in repr(provider)
    assert provider.config.user_claim == "preferred_username" and provider.config.scopes == "openid email profile"
    assert provider.config.privileged == "require_mfa" and provider.config.mfa_amr == ("mfa", "otp")
    assert provider.config.token_endpoint_auth == "client_secret_basic" and settings.public_url is None


def test_an_inline_client_secret_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG + "    client_secret: hunter2hunter2\n")
    problems = _problems(config)
    assert problems == [f"{config}: providers.0.client_secret: {oidc_service.INLINE_SECRET}"]
    assert not any("hunter2" in p for p in problems)


def test_a_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG, secret_mode=0o644)
    (problem,) = _problems(config)
    assert problem.startswith(f"{config}: providers.0.client_secret_file: ")
    assert "accessible to others (mode 644)" in problem and "chmod 600" in problem


def test_a_missing_or_empty_secret_file_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG.replace("lakeview-idp.secret", "missing.secret"))
    assert _problems(config) == [f"{config}: providers.0.client_secret_file: no file {tmp_path / 'missing.secret'}"]
    config = write_config(tmp_path, CONFIG, secret="")
    assert "must hold the client secret alone" in _problems(config)[0]


def test_unknown_keys_and_bad_values_are_all_reported_with_their_fields(tmp_path: Path) -> None:
    body = CONFIG.replace(f"issuer: {ISSUER}", "issuer: http://idp.example") + (
        "    scope: openid\n    scopes: email profile\n    privileged: sometimes\n"
        "  - id: Bad Id\n    name: Other\n    issuer: https://idp.example\n    agency: x\n"
        "    client_id: c\n    client_secret_file: s\ntheme: dark\n"
    )
    problems = _problems(write_config(tmp_path, body))
    where = {p.split(": ")[1] for p in problems}
    assert where == {
        "providers.0.issuer",
        "providers.0.scope",
        "providers.0.scopes",
        "providers.0.privileged",
        "providers.1.id",
        "theme",
    }, problems
    assert any("the issuer must be an https:// URL (plain http only for localhost)" in p for p in problems)
    assert any("providers.0.scope: unknown key; the keys are id, name, issuer" in p for p in problems)
    assert any("the scopes must include openid" in p for p in problems)


def test_repeated_provider_ids_and_bad_yaml_are_refused(tmp_path: Path) -> None:
    doubled = CONFIG + CONFIG.removeprefix("providers:\n")
    assert any(
        "provider ids must be unique; repeated: lakeview" in p for p in _problems(write_config(tmp_path, doubled))
    )
    config = write_config(tmp_path, "providers: [\n  - id: x\n")
    assert _problems(config)[0].startswith(f"{config}:")
    assert _problems(write_config(tmp_path, "- just a list\n")) == [f"{config}: a mapping with a list of providers"]


def test_no_environment_variable_means_oidc_is_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(oidc_service.CONFIG_ENV, raising=False)
    assert oidc_service.settings_from_env() is None
    monkeypatch.setenv(oidc_service.CONFIG_ENV, str(tmp_path / "absent.yaml"))
    with pytest.raises(InvalidDataError, match="cannot read the OpenID Connect configuration"):
        oidc_service.settings_from_env()
