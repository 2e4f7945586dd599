"""The request page's agreement steps without a browser: draft the agreement, then record it once in force."""

from __future__ import annotations

import io

import pytest
from docx import Document

from sharewise.policy.model import LawPack
from sharewise.services import agreement_registry
from sharewise.services import audit as audit_service
from sharewise.services import workflow as workflow_service
from tests.web.conftest import Site, csrf_of, signed_in
from tests.web.test_record_pages import PARTIES, SNAP_TO_TANF, people  # noqa: F401  (fixture)

PARTIES_YAML = __import__("yaml").safe_dump(PARTIES, sort_keys=False)


def approved_request(site: Site, law: LawPack) -> str:
    """A request through every review and its approval: it waits for its agreement."""
    control = site.control
    request_id = workflow_service.create_request(
        control, law, "rosa", "SNAP data for TANF", "eligibility", SNAP_TO_TANF
    )
    workflow_service.submit(control, "rosa", request_id)
    for reviewer in ("pat", "lee", "sam"):
        workflow_service.review(control, law, reviewer, request_id, "approve", None)
    workflow_service.approve(control, "avery", request_id, "approve", None)
    assert workflow_service.show(control, "rosa", request_id).state == "agreement_pending"
    return request_id


def _draft(client: object, request_id: str, **fields: str) -> object:
    page = client.get(f"/requests/{request_id}")  # type: ignore[attr-defined]
    data = {"csrf_token": csrf_of(page.text), "format": "docx", **fields}
    return client.post(f"/requests/{request_id}/agreements", data=data, follow_redirects=False)  # type: ignore[attr-defined]


def test_a_requester_drafts_the_agreement_on_the_request_page(people: Site, law: LawPack) -> None:  # noqa: F811
    request_id = approved_request(people, law)
    rosa = signed_in(people, "rosa")
    page = rosa.get(f"/requests/{request_id}").text
    assert "Draft the agreement" in page and "No agreement has been drafted" in page
    r = _draft(rosa, request_id, parties=PARTIES_YAML)
    assert r.status_code == 303 and r.headers["location"].startswith("/agreements/a-")  # type: ignore[attr-defined]
    agreement_id = r.headers["location"].rsplit("/", 1)[1]  # type: ignore[attr-defined]
    record = agreement_registry.show(people.control, "rosa", agreement_id)
    assert record.request_id == request_id and record.state == "draft"
    docx = rosa.get(f"/agreements/{agreement_id}/document?format=docx")
    assert docx.status_code == 200
    text = "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    assert PARTIES["discloser"]["legal_name"] in text and PARTIES["recipient"]["legal_name"] in text
    assert rosa.get(f"/agreements/{agreement_id}/document?format=pdf").content.startswith(b"%PDF")
    page = rosa.get(f"/requests/{request_id}").text
    assert f'href="/agreements/{agreement_id}"' in page and "draft" in page
    drafted = audit_service.log(people.control, "audrey", "agreement", agreement_id, 10)
    assert [e["action"] for e in drafted] == ["agreement-drafted"] and drafted[0]["source"] == "web"


@pytest.mark.parametrize(
    ("parties", "problem"),
    [
        ("", "paste the parties"),
        ("- just\n- a list\n", "expected a mapping"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("agreement: {reference: R-1}\n", "discloser"),
        ("{not yaml", "not valid YAML"),
    ],
)
def test_bad_parties_are_refused_with_the_form_kept(people: Site, law: LawPack, parties: str, problem: str) -> None:  # noqa: F811
    request_id = approved_request(people, law)
    rosa = signed_in(people, "rosa")
    r = _draft(rosa, request_id, parties=parties)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "The agreement was not drafted" in r.text and problem in r.text  # type: ignore[attr-defined]
    assert [a for a in agreement_registry.listing(people.control, "rosa") if a.request_id == request_id] == []


def test_the_draft_form_is_offered_only_while_the_agreement_is_pending(people: Site, law: LawPack) -> None:  # noqa: F811
    control = people.control
    request_id = workflow_service.create_request(
        control, law, "rosa", "SNAP data for TANF", "eligibility", SNAP_TO_TANF
    )
    rosa = signed_in(people, "rosa")
    assert "Draft the agreement" not in rosa.get(f"/requests/{request_id}").text  # still a draft request
    dana = signed_in(people, "dana")  # a data steward drafts no agreements
    pending = approved_request(people, law)
    assert "Draft the agreement" not in dana.get(f"/requests/{pending}").text
    r = _draft(dana, pending, parties=PARTIES_YAML)
    assert r.status_code == 403  # type: ignore[attr-defined]


def test_an_approver_records_the_agreement_in_force_and_the_request_becomes_active(
    people: Site,  # noqa: F811
    law: LawPack,
) -> None:
    control = people.control
    request_id = approved_request(people, law)
    rosa = signed_in(people, "rosa")
    agreement_id = _draft(rosa, request_id, parties=PARTIES_YAML).headers["location"].rsplit("/", 1)[1]  # type: ignore[attr-defined]
    avery = signed_in(people, "avery")
    assert "Record the agreement" not in avery.get(f"/requests/{request_id}").text  # not in effect yet
    agreement_registry.submit_for_review(control, "rosa", agreement_id)
    agreement_registry.sign(control, "avery", agreement_id, "discloser")
    agreement_registry.sign(control, "april", agreement_id, "recipient")
    agreement_registry.activate(control, "avery", agreement_id)
    assert "Record the agreement" not in rosa.get(f"/requests/{request_id}").text  # a requester does not record it
    page = avery.get(f"/requests/{request_id}")
    assert "Record the agreement" in page.text
    r = avery.post(
        f"/requests/{request_id}/execute",
        data={"csrf_token": csrf_of(page.text), "agreement_id": agreement_id},
        follow_redirects=False,
    )
    assert r.status_code == 303
    record = workflow_service.show(control, "avery", request_id)
    assert record.state == "active" and record.agreement_id == agreement_id
    page = avery.get(f"/requests/{request_id}").text
    assert "is recorded: the request is active" in page and "Agreement in force" in page
    r = avery.post(  # a second time: the request no longer waits, and the page says so
        f"/requests/{request_id}/execute",
        data={"csrf_token": csrf_of(page), "agreement_id": agreement_id},
        follow_redirects=True,
    )
    assert "not awaiting its agreement" in r.text


def test_the_agreement_forms_refuse_a_post_without_the_csrf_token(people: Site, law: LawPack) -> None:  # noqa: F811
    request_id = approved_request(people, law)
    rosa = signed_in(people, "rosa")
    for path, data in (
        (f"/requests/{request_id}/agreements", {"parties": PARTIES_YAML}),
        (f"/requests/{request_id}/execute", {"agreement_id": "a-x"}),
    ):
        assert rosa.post(path, data={"csrf_token": "forged", **data}).status_code == 403
