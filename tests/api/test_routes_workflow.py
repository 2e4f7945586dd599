"""The workflow routes: initiatives, a request revised, executed and ended, and an agreement's lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from sharewise.api.routes import ROUTE_ACCESS
from sharewise.services import accounts, agreement_registry, initiatives, workflow
from sharewise.store.schema import audit_records
from sharewise.workflow.initiatives import STEP_IDS, STEPS
from tests.api.conftest import PARTIES, PERMITTED, World

Call = tuple[str, dict[str, Any] | None]
SECOND_APPROVER = ("approver", "agency-a, second")
INITIATIVE = {
    "name": "Family stability partnership",
    "vision": "Families apply once; programs coordinate, with privacy built in.",
    "agencies": ["agency-a"],
    "sponsors": [{"name": "Jordan Ellis", "agency": "agency-a", "title": "Director"}],
    "stakeholders": [
        {"group": "lived_experience_and_advocates", "name": "Parent advisory council"},
        {"group": "legal_workgroup", "name": "Counsel", "organization": "Agency A"},
    ],
}


# Building records of agency-a ----------------------------------------------------------------------


def second_approver(w: World) -> dict[str, str]:
    """A second approver of agency-a: one person signs for one party only."""
    if SECOND_APPROVER not in w.headers:
        workflow.add_user(w.control, "approver2-a", "Approver Two", "agency-a", {"approver"}, "administrator-a")
        token = accounts.issue_token(w.control, "approver2-a", {"approver"}, "tests")
        w.headers[SECOND_APPROVER] = {"Authorization": f"Bearer {token.secret}"}
    return w.headers[SECOND_APPROVER]


def new_initiative(w: World) -> str:
    return initiatives.create(w.control, "requester-a", initiatives.parse_proposal(INITIATIVE, "test"))


def draft_agreement_for(w: World, request_id: str) -> str:
    r = w.client.post(
        "/api/v1/agreements",
        headers=w.h("requester"),
        json={"request_id": request_id, "parties": PARTIES, "format": "md"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def sign_both(w: World, agreement_id: str) -> None:
    second_approver(w)
    agreement_registry.sign(w.control, "approver-a", agreement_id, "discloser")
    agreement_registry.sign(w.control, "approver2-a", agreement_id, "recipient")


def signed_agreement(w: World) -> str:
    agreement_id = w.new_agreement(submitted=True)
    sign_both(w, agreement_id)
    return agreement_id


def active_agreement(w: World) -> str:
    agreement_id = signed_agreement(w)
    agreement_registry.activate(w.control, "approver-a", agreement_id)
    return agreement_id


def pending_request(w: World) -> tuple[str, str]:
    """A request all agencies approved, and its agreement signed by both parties."""
    request_id = w.request_in("approval")
    workflow.approve(w.control, "approver-a", request_id, "approve", None)
    agreement_id = draft_agreement_for(w, request_id)
    agreement_registry.submit_for_review(w.control, "requester-a", agreement_id)
    sign_both(w, agreement_id)
    return request_id, agreement_id


def active_request(w: World) -> str:
    request_id, agreement_id = pending_request(w)
    workflow.execute_agreement(w.control, "approver-a", request_id, agreement_id)
    return request_id


def audited(w: World, action: str, subject: str) -> list[str]:
    """The sources of the audit records of an action on a subject."""
    with w.control.store.transaction() as conn:
        rows = conn.execute(
            select(audit_records.c.source).where(
                audit_records.c.action == action, audit_records.c.subject_id == subject
            )
        )
        return [r.source for r in rows]


def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


# Initiatives -----------------------------------------------------------------------------------------


def test_an_initiative_is_created_its_step_updated_and_read(world: World) -> None:
    c = world.client
    created = c.post("/api/v1/initiatives", headers=world.h("requester"), json=INITIATIVE)
    assert created.status_code == 201, created.text
    initiative = created.json()
    initiative_id = initiative["id"]
    assert [s["step"] for s in initiative["steps"]] == list(STEP_IDS)
    assert {s["status"] for s in initiative["steps"]} == {"not_started"}
    assert [s["group"] for s in initiative["stakeholders"]] == ["lived_experience_and_advocates", "legal_workgroup"]
    assert audited(world, "initiative-created", initiative_id) == ["api"]

    moved = c.patch(
        f"/api/v1/initiatives/{initiative_id}/steps/legal_analysis",
        headers=world.h("legal_reviewer"),
        json={"owner": "Agency counsel", "due": "2027-01-15", "status": "in_progress"},
    )
    assert moved.status_code == 200, moved.text
    done = c.patch(
        f"/api/v1/initiatives/{initiative_id}/steps/define_use_case",
        headers=world.h("requester"),
        json={"status": "done"},
    )
    assert done.status_code == 200, done.text
    assert audited(world, "initiative-step-updated", initiative_id) == ["api", "api"]

    shown = c.get(f"/api/v1/initiatives/{initiative_id}", headers=world.h("approver")).json()
    steps = {s["step"]: s for s in shown["steps"]}
    assert steps["legal_analysis"] == {
        "step": "legal_analysis",
        "title": dict(STEPS)["legal_analysis"],
        "owner": "Agency counsel",
        "due": "2027-01-15",
        "status": "in_progress",
        "done_on": None,
    }
    assert steps["define_use_case"]["status"] == "done" and steps["define_use_case"]["done_on"]
    assert shown["sponsors"] == INITIATIVE["sponsors"] and shown["agencies"] == ["agency-a"]

    listed = c.get("/api/v1/initiatives?limit=200", headers=world.h("program_reviewer")).json()
    assert {"id": initiative_id, "name": INITIATIVE["name"]} in listed["items"]


def test_an_initiative_create_is_idempotent(world: World) -> None:
    h = {**world.h("administrator"), "Idempotency-Key": "initiative-once"}
    first = world.client.post("/api/v1/initiatives", headers=h, json=INITIATIVE)
    second = world.client.post("/api/v1/initiatives", headers=h, json=INITIATIVE)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = world.client.post("/api/v1/initiatives", headers=h, json={**INITIATIVE, "name": "Another one"})
    problem_of(other, 409, "invalid_state")
    listed = world.client.get("/api/v1/initiatives?limit=200", headers=world.h("auditor")).json()
    assert [i["id"] for i in listed["items"]].count(first.json()["id"]) == 1


def test_other_agencies_see_an_initiative_only_as_the_service_allows(world: World) -> None:
    initiative_id = new_initiative(world)
    c = world.client
    outsider = c.get(f"/api/v1/initiatives/{initiative_id}", headers=world.h("requester", "agency-b"))
    problem_of(outsider, 403, "access_denied")
    listed = c.get("/api/v1/initiatives?limit=200", headers=world.h("requester", "agency-b")).json()
    assert initiative_id not in [i["id"] for i in listed["items"]]
    for role in ("auditor", "administrator"):  # they read every initiative
        assert c.get(f"/api/v1/initiatives/{initiative_id}", headers=world.h(role, "agency-b")).status_code == 200
    for role in ("administrator", "auditor", "requester"):  # but only participants move its steps
        moved = c.patch(
            f"/api/v1/initiatives/{initiative_id}/steps/monitor",
            headers=world.h(role, "agency-b"),
            json={"status": "done"},
        )
        problem_of(moved, 403, "access_denied")


def test_an_initiative_is_created_only_by_a_requester_or_administrator_of_a_participating_agency(
    world: World,
) -> None:
    c = world.client
    problem_of(c.post("/api/v1/initiatives", headers=world.h("approver"), json=INITIATIVE), 403, "access_denied")
    foreign = c.post("/api/v1/initiatives", headers=world.h("requester", "agency-b"), json=INITIATIVE)
    problem_of(foreign, 403, "access_denied")
    unknown = c.post(
        "/api/v1/initiatives", headers=world.h("requester"), json={**INITIATIVE, "agencies": ["agency-a", "nowhere"]}
    )
    assert problem_of(unknown, 422, "invalid_data")["problems"] == [
        {"location": "agencies", "message": "no agency 'nowhere'"}
    ]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({**INITIATIVE, "stakeholders": [{"group": "friends", "name": "x"}]}, "body.stakeholders.0.group"),
        ({**INITIATIVE, "sponsors": []}, "body.sponsors"),
        ({**INITIATIVE, "vision": "short"}, "body.vision"),
        ({**INITIATIVE, "budget": 10}, "body.budget"),
    ],
    ids=["unknown-group", "no-sponsor", "short-vision", "extra-field"],
)
def test_an_invalid_initiative_is_a_problem_at_its_location(world: World, body: dict[str, Any], location: str) -> None:
    r = world.client.post("/api/v1/initiatives", headers=world.h("requester"), json=body)
    assert location in [p["location"] for p in problem_of(r, 422, "invalid_request")["problems"]]


@pytest.mark.parametrize(
    ("step", "body", "location"),
    [
        ("monitor", {}, "body"),
        ("monitor", {"status": "finished"}, "body.status"),
        ("monitor", {"due": "someday"}, "body.due"),
        ("celebrate", {"status": "done"}, "path.step"),
    ],
    ids=["nothing", "unknown-status", "bad-date", "unknown-step"],
)
def test_an_invalid_step_change_is_a_problem(world: World, step: str, body: dict[str, Any], location: str) -> None:
    initiative_id = new_initiative(world)
    r = world.client.patch(f"/api/v1/initiatives/{initiative_id}/steps/{step}", headers=world.h("requester"), json=body)
    assert location in [p["location"] for p in problem_of(r, 422, "invalid_request")["problems"]]


def test_an_unknown_initiative_is_not_found(world: World) -> None:
    c = world.client
    problem_of(c.get("/api/v1/initiatives/i-2026-000000", headers=world.h("auditor")), 404, "not_found")
    moved = c.patch(
        "/api/v1/initiatives/i-2026-000000/steps/monitor", headers=world.h("requester"), json={"status": "done"}
    )
    problem_of(moved, 404, "not_found")


# A sharing request returned, revised, resubmitted, executed and ended ---------------------------------


def test_a_request_is_returned_revised_resubmitted_executed_and_ended(world: World) -> None:
    c = world.client
    request_id = world.new_request()
    assert c.post(f"/api/v1/requests/{request_id}/submission", headers=world.h("requester")).status_code == 200
    returned = c.post(
        f"/api/v1/requests/{request_id}/reviews",
        headers=world.h("program_reviewer"),
        json={"decision": "return", "comments": "ask for less: no contact details"},
    )
    assert returned.json()["state"] == "draft"

    smaller = {**PERMITTED, "data": ["identity", "eligibility_and_benefits"]}
    revised = c.post(
        f"/api/v1/requests/{request_id}/revisions",
        headers=world.h("requester"),
        json={"request": smaller, "use_case": "eligibility, identity and benefits only"},
    )
    assert revised.status_code == 200, revised.text
    assert revised.json()["request"]["data"] == ["identity", "eligibility_and_benefits"]
    assert revised.json()["use_case"] == "eligibility, identity and benefits only"
    assert revised.json()["state"] == "draft"
    resubmitted = c.post(f"/api/v1/requests/{request_id}/submission", headers=world.h("requester"))
    assert resubmitted.json()["state"] == "program_review"

    for role in ("program_reviewer", "legal_reviewer", "security_officer"):
        r = c.post(
            f"/api/v1/requests/{request_id}/reviews",
            headers=world.h(role),
            json={"decision": "approve", "comments": "ok"},
        )
        assert r.status_code == 200, r.text
    approved = c.post(
        f"/api/v1/requests/{request_id}/approvals", headers=world.h("approver"), json={"decision": "approve"}
    )
    assert approved.json()["state"] == "agreement_pending"

    agreement_id = draft_agreement_for(world, request_id)
    assert c.post(f"/api/v1/agreements/{agreement_id}/submission", headers=world.h("requester")).status_code == 200
    for party, h in (("discloser", world.h("approver")), ("recipient", second_approver(world))):
        signed = c.post(f"/api/v1/agreements/{agreement_id}/signatures", headers=h, json={"party": party})
        assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "signed"

    executed = c.post(
        f"/api/v1/requests/{request_id}/execution",
        headers=world.h("administrator"),
        json={"agreement_id": agreement_id},
    )
    assert executed.status_code == 200, executed.text
    assert executed.json()["state"] == "active" and executed.json()["agreement_id"] == agreement_id

    ended = c.post(
        f"/api/v1/requests/{request_id}/end",
        headers=world.h("approver"),
        json={"how": "terminated", "comments": "the program closed"},
    )
    assert ended.status_code == 200, ended.text
    shown = c.get(f"/api/v1/requests/{request_id}", headers=world.h("auditor", "agency-b")).json()
    assert shown["state"] == "terminated"
    assert [(s["step"], s["decision"]) for s in shown["steps"]] == [
        ("submission", "submitted"),
        ("program", "return"),
        ("revision", "revised"),
        ("submission", "submitted"),
        ("program", "approve"),
        ("legal", "approve"),
        ("security", "approve"),
        ("approval", "approve"),
        ("agreement", "executed"),
        ("end", "terminated"),
    ]
    for action in ("request-revised", "agreement-executed", "request-terminated"):
        assert audited(world, action, request_id) == ["api"], action


def test_an_active_request_expires(world: World) -> None:
    request_id = active_request(world)
    ended = world.client.post(
        f"/api/v1/requests/{request_id}/end",
        headers=world.h("administrator"),
        json={"how": "expired", "comments": "the agreement's term ended"},
    )
    assert ended.json()["state"] == "expired"
    assert audited(world, "request-expired", request_id) == ["api"]


def test_only_a_draft_of_the_own_agency_is_revised_by_a_requester(world: World) -> None:
    c = world.client
    draft = world.new_request()
    body = {"use_case": "narrower"}
    problem_of(
        c.post(f"/api/v1/requests/{draft}/revisions", headers=world.h("approver"), json=body), 403, "access_denied"
    )
    foreign = c.post(f"/api/v1/requests/{draft}/revisions", headers=world.h("requester", "agency-b"), json=body)
    problem_of(foreign, 403, "access_denied")
    in_review = world.request_in("program_review")
    late = c.post(f"/api/v1/requests/{in_review}/revisions", headers=world.h("requester"), json=body)
    problem_of(late, 409, "invalid_state")
    missing = c.post("/api/v1/requests/r-2026-00000000/revisions", headers=world.h("requester"), json=body)
    problem_of(missing, 404, "not_found")
    assert audited(world, "request-revised", draft) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_request"),
        ({"use_case": "   "}, "invalid_request"),
        ({"use_case": "x", "title": "renamed"}, "invalid_request"),
        ({"request": {**PERMITTED, "purpose": "fun"}}, "invalid_request"),
    ],
    ids=["nothing", "blank-use-case", "extra-field", "invalid-disclosure"],
)
def test_an_invalid_revision_is_a_problem(world: World, body: dict[str, Any], code: str) -> None:
    draft = world.new_request()
    r = world.client.post(f"/api/v1/requests/{draft}/revisions", headers=world.h("requester"), json=body)
    assert problem_of(r, 422, code)["problems"]
    assert world.client.get(f"/api/v1/requests/{draft}", headers=world.h("requester")).json()["steps"] == []


def test_a_request_is_executed_only_with_its_own_signed_agreement(world: World) -> None:
    c = world.client
    request_id, agreement_id = pending_request(world)
    url = f"/api/v1/requests/{request_id}/execution"
    problem_of(c.post(url, headers=world.h("requester"), json={"agreement_id": agreement_id}), 403, "access_denied")
    foreign = c.post(url, headers=world.h("approver", "agency-b"), json={"agreement_id": agreement_id})
    problem_of(foreign, 403, "access_denied")
    unknown = c.post(url, headers=world.h("approver"), json={"agreement_id": "a-2026-00000000"})
    problem_of(unknown, 404, "not_found")
    another = signed_agreement(world)  # drafted for another request
    mismatch = c.post(url, headers=world.h("approver"), json={"agreement_id": another})
    assert problem_of(mismatch, 422, "invalid_data")["problems"][0]["location"] == "agreement_id"
    other_request, _ = pending_request(world)
    unsigned = draft_agreement_for(world, other_request)
    not_signed = c.post(
        f"/api/v1/requests/{other_request}/execution", headers=world.h("approver"), json={"agreement_id": unsigned}
    )
    problem_of(not_signed, 409, "invalid_state")
    problem_of(c.post(url, headers=world.h("approver"), json={}), 422, "invalid_request")
    missing = c.post(
        "/api/v1/requests/r-2026-00000000/execution", headers=world.h("approver"), json={"agreement_id": agreement_id}
    )
    problem_of(missing, 404, "not_found")
    shown = c.get(f"/api/v1/requests/{request_id}", headers=world.h("approver")).json()
    assert shown["state"] == "agreement_pending" and shown["agreement_id"] is None


def test_a_request_not_yet_active_cannot_end(world: World) -> None:
    request_id, _ = pending_request(world)
    r = world.client.post(
        f"/api/v1/requests/{request_id}/end", headers=world.h("approver"), json={"how": "terminated", "comments": "no"}
    )
    problem_of(r, 409, "invalid_state")


def test_ending_a_request_is_refused_to_the_wrong_person_or_body(world: World) -> None:
    c = world.client
    request_id = active_request(world)
    url = f"/api/v1/requests/{request_id}/end"
    ok = {"how": "terminated", "comments": "done"}
    problem_of(c.post(url, headers=world.h("requester"), json=ok), 403, "access_denied")
    problem_of(c.post(url, headers=world.h("administrator", "agency-b"), json=ok), 403, "access_denied")
    problem_of(c.post(url, headers=world.h("approver"), json={**ok, "how": "renewed"}), 422, "invalid_request")
    problem_of(c.post(url, headers=world.h("approver"), json={**ok, "comments": " "}), 422, "invalid_request")
    problem_of(c.post("/api/v1/requests/r-2026-00000000/end", headers=world.h("approver"), json=ok), 404, "not_found")
    assert c.get(f"/api/v1/requests/{request_id}", headers=world.h("approver")).json()["state"] == "active"


# The agreement lifecycle -------------------------------------------------------------------------------


def test_an_agreement_is_signed_activated_amended_renewed_and_terminated(world: World) -> None:
    c = world.client
    agreement_id = world.new_agreement(submitted=True)
    for party, h in (("discloser", world.h("approver")), ("recipient", second_approver(world))):
        assert (
            c.post(f"/api/v1/agreements/{agreement_id}/signatures", headers=h, json={"party": party}).status_code == 200
        )

    activated = c.post(f"/api/v1/agreements/{agreement_id}/activation", headers=world.h("administrator"))
    assert activated.status_code == 200, activated.text
    assert activated.json()["state"] == activated.json()["state_today"] == "active"

    users = [{"role": "eligibility_worker", "organization": "TANF Unit"}, {"role": "supervisor", "name": "Sam"}]
    amended = c.post(
        f"/api/v1/agreements/{agreement_id}/amendments",
        headers=world.h("approver"),
        json={"reason": "the TANF unit added supervisors", "authorized_users": users},
    )
    assert amended.status_code == 200, amended.text
    assert amended.json()["authorized_users"] == [
        {**u, "name": u.get("name"), "organization": u.get("organization")} for u in users
    ]
    earlier = c.post(
        f"/api/v1/agreements/{agreement_id}/amendments",
        headers=world.h("approver"),
        json={"reason": "a shorter pilot", "term_end": "2027-12-31"},
    )
    assert earlier.json()["term_end"] == "2027-12-31"

    renewed = c.post(f"/api/v1/agreements/{agreement_id}/renewals", headers=world.h("approver"))
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["renewals_used"] == 1 and renewed.json()["term_end"] == "2028-12-31"  # one more year

    terminated = c.post(
        f"/api/v1/agreements/{agreement_id}/termination",
        headers=world.h("approver"),
        json={"reason": "the program ended"},
    )
    assert terminated.json()["state"] == "terminated"
    events = [e["event"] for e in terminated.json()["events"]]
    assert events[-5:] == ["activated", "amended", "amended", "renewed", "terminated"]
    again = c.post(f"/api/v1/agreements/{agreement_id}/renewals", headers=world.h("approver"))
    problem_of(again, 409, "invalid_state")
    for action in ("activated", "amended", "renewed", "terminated"):
        assert set(audited(world, f"agreement-{action}", agreement_id)) == {"api"}, action


def test_an_agreement_is_activated_only_once_both_parties_signed(world: World) -> None:
    agreement_id = world.new_agreement(submitted=True)
    r = world.client.post(f"/api/v1/agreements/{agreement_id}/activation", headers=world.h("approver"))
    problem_of(r, 409, "invalid_state")


AGREEMENT_CALLS: dict[str, dict[str, Any] | None] = {
    "activation": None,
    "amendments": {"reason": "more users", "authorized_users": [{"role": "analyst"}]},
    "renewals": None,
    "termination": {"reason": "ended"},
}


@pytest.mark.parametrize("action", sorted(AGREEMENT_CALLS))
def test_the_agreement_lifecycle_refuses_other_roles_other_agencies_and_unknown_ids(world: World, action: str) -> None:
    c = world.client
    agreement_id = signed_agreement(world)
    body = AGREEMENT_CALLS[action]
    url = f"/api/v1/agreements/{agreement_id}/{action}"
    for role in ("requester", "legal_reviewer", "auditor"):
        problem_of(c.post(url, headers=world.h(role), json=body), 403, "access_denied")
    problem_of(c.post(url, headers=world.h("approver", "agency-b"), json=body), 403, "access_denied")
    problem_of(
        c.post(f"/api/v1/agreements/a-2026-00000000/{action}", headers=world.h("approver"), json=body),
        404,
        "not_found",
    )
    problem_of(c.post(url, json=body), 401, "access_denied")
    shown = c.get(f"/api/v1/agreements/{agreement_id}", headers=world.h("approver")).json()
    assert shown["state"] == "signed" and shown["events"][-1]["event"] == "signed"


def test_only_an_approver_renews(world: World) -> None:
    agreement_id = active_agreement(world)
    r = world.client.post(f"/api/v1/agreements/{agreement_id}/renewals", headers=world.h("administrator"))
    problem_of(r, 403, "access_denied")


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("amendments", {"reason": "nothing"}),
        ("amendments", {"reason": " ", "term_end": "2027-01-01"}),
        ("amendments", {"reason": "x", "authorized_users": [{"role": ""}]}),
        ("amendments", {"reason": "x", "term_end": "2027-01-01", "clauses": []}),
        ("termination", {}),
        ("termination", {"reason": "  "}),
    ],
    ids=["nothing-to-amend", "blank-reason", "user-without-role", "extra-field", "no-reason", "blank-termination"],
)
def test_an_invalid_lifecycle_body_is_a_problem(world: World, action: str, body: dict[str, Any]) -> None:
    agreement_id = active_agreement(world)
    r = world.client.post(f"/api/v1/agreements/{agreement_id}/{action}", headers=world.h("approver"), json=body)
    assert problem_of(r, 422, "invalid_request")["problems"]


def test_the_law_limits_the_term_and_the_renewals_of_a_computer_matching_agreement(world: World) -> None:
    c = world.client
    parties = {**PARTIES, "agreement": {**PARTIES["agreement"], "term_months": 18}}
    drafted = c.post(
        "/api/v1/agreements",
        headers=world.h("requester"),
        json={
            "request_id": world.new_request(),
            "parties": parties,
            "doc_type": "computer_matching_agreement",
            "format": "md",
        },
    )
    assert drafted.status_code == 201, drafted.text
    agreement_id = drafted.json()["id"]
    assert drafted.json()["term_end"] == "2027-10-01"  # 18 months from 2026-04-01
    agreement_registry.submit_for_review(world.control, "requester-a", agreement_id)
    sign_both(world, agreement_id)
    assert c.post(f"/api/v1/agreements/{agreement_id}/activation", headers=world.h("approver")).status_code == 200
    url = f"/api/v1/agreements/{agreement_id}"

    longer = c.post(
        f"{url}/amendments", headers=world.h("approver"), json={"reason": "longer", "term_end": "2027-10-02"}
    )
    problem_of(longer, 409, "invalid_state")
    renewed = c.post(f"{url}/renewals", headers=world.h("approver"))
    assert renewed.json()["term_end"] == "2028-10-01" and renewed.json()["renewals_used"] == 1
    problem_of(c.post(f"{url}/renewals", headers=world.h("approver")), 409, "invalid_state")
    shown = c.get(url, headers=world.h("approver")).json()
    assert shown["term_end"] == "2028-10-01" and [e["event"] for e in shown["events"]].count("renewed") == 1


# Who may call each route: the same matrix test_authorization.py draws for the other routes -----------


def execution_call(w: World) -> Call:
    request_id, agreement_id = pending_request(w)
    return f"/api/v1/requests/{request_id}/execution", {"agreement_id": agreement_id}


WORKFLOW_CASES: dict[tuple[str, str], Callable[[World, str], Call]] = {
    ("POST", "/api/v1/initiatives"): lambda w, r: (
        "/api/v1/initiatives",
        {**INITIATIVE, "agencies": ["agency-a", "agency-b"]},
    ),
    ("GET", "/api/v1/initiatives"): lambda w, r: ("/api/v1/initiatives", None),
    ("GET", "/api/v1/initiatives/{initiative_id}"): lambda w, r: (f"/api/v1/initiatives/{new_initiative(w)}", None),
    ("PATCH", "/api/v1/initiatives/{initiative_id}/steps/{step}"): lambda w, r: (
        f"/api/v1/initiatives/{new_initiative(w)}/steps/monitor",
        {"status": "in_progress"},
    ),
    ("POST", "/api/v1/requests/{request_id}/revisions"): lambda w, r: (
        f"/api/v1/requests/{w.new_request()}/revisions",
        {"use_case": "narrower"},
    ),
    ("POST", "/api/v1/requests/{request_id}/execution"): lambda w, r: execution_call(w),
    ("POST", "/api/v1/requests/{request_id}/end"): lambda w, r: (
        f"/api/v1/requests/{active_request(w)}/end",
        {"how": "terminated", "comments": "ended"},
    ),
    ("POST", "/api/v1/agreements/{agreement_id}/activation"): lambda w, r: (
        f"/api/v1/agreements/{signed_agreement(w)}/activation",
        None,
    ),
    ("POST", "/api/v1/agreements/{agreement_id}/amendments"): lambda w, r: (
        f"/api/v1/agreements/{w.new_agreement()}/amendments",
        AGREEMENT_CALLS["amendments"],
    ),
    ("POST", "/api/v1/agreements/{agreement_id}/renewals"): lambda w, r: (
        f"/api/v1/agreements/{active_agreement(w)}/renewals",
        None,
    ),
    ("POST", "/api/v1/agreements/{agreement_id}/termination"): lambda w, r: (
        f"/api/v1/agreements/{w.new_agreement()}/termination",
        AGREEMENT_CALLS["termination"],
    ),
}


def test_every_workflow_route_has_a_matrix_entry() -> None:
    ours = {key for key in ROUTE_ACCESS if key in WORKFLOW_CASES}
    assert ours == set(WORKFLOW_CASES)
    assert len(WORKFLOW_CASES) == 11
