"""The REST API: each capability through its route, errors as problem+json, pagination, idempotency."""

from __future__ import annotations

from sqlalchemy import select

from sharewise.store.schema import audit_records
from tests.api.conftest import CONSENT, PARTIES, PERMITTED, World


def test_a_determination_explains_itself(world: World) -> None:
    r = world.client.post("/api/v1/determinations", headers=world.h("requester"), json={"request": PERMITTED})
    assert r.status_code == 200
    body = r.json()
    assert body["outcome"] == "permitted"
    assert body["authorities"] and body["law_hash"]


def test_an_invalid_request_is_a_problem_with_every_location(world: World) -> None:
    bad = {**PERMITTED, "purpose": "fun", "data": ["gossip"]}
    r = world.client.post("/api/v1/determinations", headers=world.h("requester"), json={"request": bad})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_request"
    assert len(r.json()["problems"]) == 2


def test_the_interview_step_returns_only_open_questions(world: World) -> None:
    partial = {
        "source": {"program": "k12_education"},
        "recipient": {"kind": "court"},
        "purpose": "judicial_proceeding",
        "data": ["education_record"],
    }
    r = world.client.post("/api/v1/interview", headers=world.h("requester"), json={"request": partial})
    body = r.json()
    assert r.status_code == 200
    assert not body["complete"]
    assert body["questions"] and all(q["fact"] for q in body["questions"])


def test_the_law_library_lists_searches_and_cites(world: World) -> None:
    h = world.h("auditor")
    page = world.client.get("/api/v1/law/rules?limit=5&offset=0", headers=h).json()
    assert len(page["items"]) == 5 and page["total"] > 5
    found = world.client.get("/api/v1/law/rules?q=consent", headers=h).json()
    assert 0 < found["total"] < page["total"]
    rule_id = page["items"][0]["id"]
    assert world.client.get(f"/api/v1/law/rules/{rule_id}/citations", headers=h).json()["citations"]
    assert world.client.get("/api/v1/law/authorities/hipaa", headers=h).json()["id"] == "hipaa"
    missing = world.client.get("/api/v1/law/rules/no-such-rule", headers=h)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_consent_is_recorded_found_and_revoked_without_echoing_identifiers(world: World) -> None:
    h = world.h("data_steward")
    assert world.client.post("/api/v1/consents/validate", headers=h, json=CONSENT).json()["valid"]
    incomplete = {**CONSENT, "statements": [s for s in CONSENT["statements"] if s != "right_to_revoke"]}
    checked = world.client.post("/api/v1/consents/validate", headers=h, json=incomplete).json()
    assert not checked["valid"] and checked["checked_against"] == ["part2.consent"]
    (problem,) = checked["problems"]
    assert {k: problem[k] for k in ("authority", "rule", "element")} == {
        "authority": "part2",
        "rule": "part2.consent",
        "element": "revocation",
    }
    assert problem["message"].startswith(
        "Confidentiality of substance use disorder patient records (42 CFR Part 2) requires '"
    )
    consent_id = world.client.post("/api/v1/consents", headers=h, json=CONSENT).json()["id"]
    shown = world.client.get(f"/api/v1/consents/{consent_id}", headers=h).json()
    assert "person" not in shown and shown["agency"] == "agency-a"
    request = {
        "source": {"program": "sud_treatment"},
        "recipient": {"kind": "state_or_local_agency", "program": "child_welfare"},
        "purpose": "care_coordination",
        "data": ["sud_treatment_information"],
    }
    found = world.client.post(
        "/api/v1/consents/find", headers=h, json={"person": CONSENT["person"], "request": request, "on": "2026-06-01"}
    ).json()
    assert found == {"covered": True, "consent_id": consent_id, "reasons": []}
    revoked = world.client.post(
        f"/api/v1/consents/{consent_id}/revocation",
        headers=h,
        json={"revoked_on": "2026-06-02", "method": "written", "by": "Ana"},
    )
    assert revoked.json()["status"] == "revoked"


def test_an_incomplete_consent_is_refused_with_each_missing_element(world: World) -> None:
    incomplete = {**CONSENT, "statements": []}
    r = world.client.post("/api/v1/consents", headers=world.h("data_steward"), json=incomplete)
    assert r.status_code == 422
    assert r.json()["problems"]
    assert "Ana" not in r.text and "1990-04-02" not in r.text


def test_a_request_goes_through_every_review_to_agreement_pending(world: World) -> None:
    request_id = world.new_request()
    c = world.client
    assert (
        c.post(f"/api/v1/requests/{request_id}/submission", headers=world.h("requester")).json()["state"]
        == "program_review"
    )
    queue = c.get("/api/v1/requests/queue", headers=world.h("program_reviewer")).json()
    assert request_id in [i["id"] for i in queue["items"]]
    for role in ("program_reviewer", "legal_reviewer", "security_officer"):
        r = c.post(
            f"/api/v1/requests/{request_id}/reviews",
            headers=world.h(role),
            json={"decision": "approve", "comments": "ok"},
        )
        assert r.status_code == 200, r.text
    r = c.post(f"/api/v1/requests/{request_id}/approvals", headers=world.h("approver"), json={"decision": "approve"})
    assert r.json()["state"] == "agreement_pending"
    shown = c.get(f"/api/v1/requests/{request_id}", headers=world.h("auditor", "agency-b")).json()
    assert shown["determination"]["outcome"] == "permitted"
    assert [s["step"] for s in shown["steps"]] == ["submission", "program", "legal", "security", "approval"]
    safes = c.get(f"/api/v1/requests/{request_id}/five-safes", headers=world.h("requester")).json()["safes"]
    assert [s["name"] for s in safes] == ["project", "people", "setting", "data", "outputs"]
    assert safes[0]["status"] == "settled" and safes[2]["status"] == "settled"  # approved by the security review
    assert any(p.startswith("Security review: approve by ") for p in safes[2]["points"])
    assert safes[1]["status"] == "open"  # no agreement names the authorized users yet


def test_a_reviewer_cannot_review_out_of_stage_and_gets_a_conflict(world: World) -> None:
    request_id = world.new_request()
    r = world.client.post(
        f"/api/v1/requests/{request_id}/reviews", headers=world.h("program_reviewer"), json={"decision": "approve"}
    )
    assert r.status_code == 409 and r.json()["code"] == "invalid_state"


def test_an_idempotency_key_replays_the_first_create(world: World) -> None:
    h = {**world.h("requester"), "Idempotency-Key": "create-once"}
    body = {"title": "Once", "use_case": "u", "request": PERMITTED}
    first = world.client.post("/api/v1/requests", headers=h, json=body)
    second = world.client.post("/api/v1/requests", headers=h, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = world.client.post("/api/v1/requests", headers=h, json={**body, "title": "Twice"})
    assert other.status_code == 409


def test_an_agreement_is_drafted_signed_and_listed(world: World) -> None:
    agreement_id = world.new_agreement(submitted=True)
    c = world.client
    doc = c.get(f"/api/v1/agreements/{agreement_id}/document", headers=world.h("requester"))
    assert doc.status_code == 200 and len(doc.content) > 100
    signed = c.post(
        f"/api/v1/agreements/{agreement_id}/signatures", headers=world.h("approver"), json={"party": "discloser"}
    )
    assert signed.json()["signed_by"] == ["discloser"]
    again = c.post(
        f"/api/v1/agreements/{agreement_id}/signatures", headers=world.h("approver"), json={"party": "recipient"}
    )
    assert again.status_code == 403  # one person signs for one party only
    listed = c.get("/api/v1/agreements", headers=world.h("requester")).json()
    assert agreement_id in [a["id"] for a in listed["items"]]
    assert PARTIES["agreement"]["reference"]
    request_id = c.get(f"/api/v1/agreements/{agreement_id}", headers=world.h("requester")).json()["request_id"]
    safes = c.get(f"/api/v1/requests/{request_id}/five-safes", headers=world.h("program_reviewer")).json()["safes"]
    people = next(s for s in safes if s["name"] == "people")
    named = PARTIES["authorized_users"][0]["role"]
    assert people["status"] == "settled" and named in people["points"][1]  # the agreement names them
    other = c.get(f"/api/v1/requests/{request_id}/five-safes", headers=world.h("requester", "agency-b"))
    assert other.status_code == 403


def test_audit_verification_and_accounting_answer(world: World) -> None:
    report = world.client.post("/api/v1/audit/verification", headers=world.h("auditor")).json()
    assert report["ok"] and report["records"] > 0
    acc = world.client.post(
        "/api/v1/accounting",
        headers=world.h("data_steward"),
        json={"person": {"given_name": "X", "family_name": "Y", "date_of_birth": "1980-01-01"}},
    )
    assert acc.status_code == 200 and acc.json()["entries"] == []


def test_actions_through_the_api_are_audited_as_api(world: World) -> None:
    world.new_request()
    with world.control.store.transaction() as conn:
        row = conn.execute(
            select(audit_records)
            .where(audit_records.c.action == "request-created")
            .order_by(audit_records.c.seq.desc())
        ).first()
    assert row is not None and row.source == "api"


def test_a_token_is_issued_used_and_revoked(world: World) -> None:
    c = world.client
    issued = c.post(
        "/api/v1/tokens", headers=world.h("approver"), json={"roles": ["approver"], "label": "robot"}
    ).json()
    h = {"Authorization": f"Bearer {issued['token']}"}
    assert c.get("/api/v1/me", headers=h).json()["roles"] == ["approver"]
    assert c.delete(f"/api/v1/tokens/{issued['id']}", headers=h).status_code == 200
    assert c.get("/api/v1/me", headers=h).status_code == 401


def test_a_token_cannot_carry_roles_its_user_lacks(world: World) -> None:
    r = world.client.post("/api/v1/tokens", headers=world.h("requester"), json={"roles": ["approver"], "label": "x"})
    assert r.status_code == 403


def test_the_openapi_document_is_3_1_and_lists_every_route(world: World) -> None:
    spec = world.client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/requests/{request_id}/reviews" in spec["paths"]
