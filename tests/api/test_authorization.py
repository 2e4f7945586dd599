"""The authorization matrix: every route x role x own / other agency, generated from the route table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sharewise.api.routes_data
import sharewise.api.routes_workflow  # noqa: F401  (their routes join the table on import)
from sharewise.api.routes import ROUTE_ACCESS, Access
from sharewise.policy.model import LawPack
from tests.api import authorization_cases_data as data_cases
from tests.api import authorization_cases_workflow as workflow_cases
from tests.api.conftest import CONSENT, PARTIES, PERMITTED, ROLES, World, build_world

Call = tuple[str, dict[str, Any] | None]
PERSON = {"given_name": "Ana", "family_name": "Example", "date_of_birth": "1990-04-02"}
REVIEW_STAGE = {
    "program_reviewer": "program_review",
    "legal_reviewer": "legal_review",
    "security_officer": "security_review",
}

# How to call each route on a record of agency-a (the owner); a route missing here fails the suite.
CASES: dict[tuple[str, str], Callable[[World, str], Call]] = {
    ("POST", "/api/v1/determinations"): lambda w, r: ("/api/v1/determinations", {"request": PERMITTED}),
    ("POST", "/api/v1/interview"): lambda w, r: ("/api/v1/interview", {"request": PERMITTED}),
    ("GET", "/api/v1/law/authorities"): lambda w, r: ("/api/v1/law/authorities", None),
    ("GET", "/api/v1/law/authorities/{authority_id}"): lambda w, r: ("/api/v1/law/authorities/hipaa", None),
    ("GET", "/api/v1/law/rules"): lambda w, r: ("/api/v1/law/rules?q=consent", None),
    ("GET", "/api/v1/law/rules/{rule_id}"): lambda w, r: (f"/api/v1/law/rules/{w.law.all_rules()[0].id}", None),
    ("GET", "/api/v1/law/rules/{rule_id}/citations"): lambda w, r: (
        f"/api/v1/law/rules/{w.law.all_rules()[0].id}/citations",
        None,
    ),
    ("GET", "/api/v1/law/vocabulary"): lambda w, r: ("/api/v1/law/vocabulary", None),
    ("POST", "/api/v1/consents/validate"): lambda w, r: ("/api/v1/consents/validate", CONSENT),
    ("POST", "/api/v1/consents"): lambda w, r: ("/api/v1/consents", CONSENT),
    ("GET", "/api/v1/consents"): lambda w, r: ("/api/v1/consents", None),
    ("GET", "/api/v1/consents/{consent_id}"): lambda w, r: (f"/api/v1/consents/{w.new_consent()}", None),
    ("POST", "/api/v1/consents/{consent_id}/revocation"): lambda w, r: (
        f"/api/v1/consents/{w.new_consent()}/revocation",
        {"revoked_on": "2026-11-20", "method": "written", "by": "the person"},
    ),
    ("POST", "/api/v1/consents/find"): lambda w, r: (
        "/api/v1/consents/find",
        {"person": PERSON, "request": PERMITTED},
    ),
    ("POST", "/api/v1/requests"): lambda w, r: (
        "/api/v1/requests",
        {"title": "t", "use_case": "u", "request": PERMITTED},
    ),
    ("GET", "/api/v1/requests"): lambda w, r: ("/api/v1/requests", None),
    ("GET", "/api/v1/requests/queue"): lambda w, r: ("/api/v1/requests/queue", None),
    ("GET", "/api/v1/requests/{request_id}"): lambda w, r: (f"/api/v1/requests/{w.new_request()}", None),
    ("GET", "/api/v1/requests/{request_id}/five-safes"): lambda w, r: (
        f"/api/v1/requests/{w.new_request()}/five-safes",
        None,
    ),
    ("POST", "/api/v1/requests/{request_id}/submission"): lambda w, r: (
        f"/api/v1/requests/{w.new_request()}/submission",
        None,
    ),
    ("POST", "/api/v1/requests/{request_id}/reviews"): lambda w, r: (
        f"/api/v1/requests/{w.request_in(REVIEW_STAGE.get(r, 'program_review'))}/reviews",
        {"decision": "approve", "comments": "fine"},
    ),
    ("POST", "/api/v1/requests/{request_id}/approvals"): lambda w, r: (
        f"/api/v1/requests/{w.request_in('approval')}/approvals",
        {"decision": "approve"},
    ),
    ("POST", "/api/v1/agreements"): lambda w, r: (
        "/api/v1/agreements",
        {"request_id": w.new_request(), "parties": PARTIES, "format": "md"},
    ),
    ("GET", "/api/v1/agreements"): lambda w, r: ("/api/v1/agreements?expiring_within_days=3650", None),
    ("GET", "/api/v1/agreements/{agreement_id}"): lambda w, r: (f"/api/v1/agreements/{w.new_agreement()}", None),
    ("GET", "/api/v1/agreements/{agreement_id}/document"): lambda w, r: (
        f"/api/v1/agreements/{w.new_agreement()}/document",
        None,
    ),
    ("POST", "/api/v1/agreements/{agreement_id}/submission"): lambda w, r: (
        f"/api/v1/agreements/{w.new_agreement()}/submission",
        None,
    ),
    ("POST", "/api/v1/agreements/{agreement_id}/signatures"): lambda w, r: (
        f"/api/v1/agreements/{w.new_agreement(submitted=True)}/signatures",
        {"party": "discloser"},
    ),
    ("POST", "/api/v1/audit/verification"): lambda w, r: ("/api/v1/audit/verification", None),
    ("POST", "/api/v1/accounting"): lambda w, r: ("/api/v1/accounting", {"person": PERSON}),
    ("POST", "/api/v1/tokens"): lambda w, r: ("/api/v1/tokens", {"roles": [r], "label": "matrix"}),
    ("DELETE", "/api/v1/tokens/{token_id}"): lambda w, r: ("/api/v1/tokens/t-000000000000", None),
    ("GET", "/api/v1/me"): lambda w, r: ("/api/v1/me", None),
}
CASES.update(workflow_cases.CASES)
CASES.update(data_cases.CASES)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, law: LawPack) -> Iterator[World]:
    """The matrix runs on SQLite only: each route's own tests run on PostgreSQL too, and the matrix is long."""
    w = build_world(tmp_path_factory.mktemp("matrix"), law)
    yield w
    w.control.store.dispose()


def expected_allowed(access: Access, role: str, own: bool) -> bool:
    allowed = access.roles is None or role in access.roles
    if access.scoped and not own:
        readers = {"auditor"} if access.auditor_reads else set()
        if access.administrator_reads:  # initiatives: administrators of any agency read them
            readers.add("administrator")
        allowed = allowed and role in readers
    return allowed


def test_every_route_has_a_matrix_entry() -> None:
    missing = sorted(set(ROUTE_ACCESS) - set(CASES))
    assert not missing, f"routes without an authorization-matrix entry: {missing}"
    assert not set(CASES) - set(ROUTE_ACCESS), "matrix entries for routes that no longer exist"


def test_every_route_refuses_a_call_without_a_token(world: World) -> None:
    for (method, _path), build in CASES.items():
        url, body = build(world, "requester")
        response = world.client.request(method, url, json=body)
        assert response.status_code == 401, (method, url)
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("own", [True, False], ids=["own-agency", "other-agency"])
@pytest.mark.parametrize("role", ROLES)
def test_the_route_table_decides_who_may_call_each_route(world: World, role: str, own: bool) -> None:
    wrong = []
    for key, build in sorted(CASES.items()):
        method, _ = key
        url, body = build(world, role)
        response = world.client.request(
            method, url, json=body, headers=world.h(role, "agency-a" if own else "agency-b")
        )
        allowed = expected_allowed(ROUTE_ACCESS[key], role, own)
        denied = response.status_code == 403
        if allowed == denied or response.status_code >= 500 or response.status_code == 401:
            wrong.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
