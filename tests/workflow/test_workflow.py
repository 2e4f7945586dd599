"""The review workflow: the toolkit's steps, separation of duties, agency scoping, audit of each step."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidStateError, NotFoundError
from sharewise.policy.model import LawPack
from sharewise.services import workflow as wf
from sharewise.store.database import Store
from sharewise.store.schema import audit_records
from sharewise.wiring import Control, Settings

SNAP_TO_TANF: dict[str, Any] = {
    "source": {"program": "snap"},
    "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "eligibility_and_benefits"],
}


@pytest.fixture
def control(store: Store, tmp_path: Path) -> Control:
    trail = AuditTrail(
        lambda: dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC), CheckpointSigner(Ed25519PrivateKey.generate())
    )
    c = Control(store, trail, StoreAuditSink(store, trail), Settings(key_dir=tmp_path / "keys"))
    wf.add_agency(c, "dhs", "Lakeview County DHS", None)
    wf.add_user(c, "admin", "Ada Admin", "dhs", {"administrator"}, None)
    wf.add_agency(c, "dol", "State Dept. of Labor", "admin")
    for uid, agency, roles in [
        ("rita", "dhs", {"requester"}),
        ("paul", "dhs", {"program_reviewer"}),
        ("lena", "dhs", {"legal_reviewer"}),
        ("sam", "dhs", {"security_officer"}),
        ("alex", "dhs", {"approver"}),
        ("dana", "dol", {"approver"}),
        ("otto", "dol", {"program_reviewer", "requester"}),
        ("aud", "dol", {"auditor"}),
    ]:
        wf.add_user(c, uid, uid.title(), agency, roles, "admin")
    return c


def through_reviews(control: Control, law: LawPack, request: dict[str, Any] = SNAP_TO_TANF) -> str:
    rid = wf.create_request(
        control,
        law,
        "rita",
        "SNAP data for TANF eligibility",
        "Verify eligibility without asking twice",
        request,
        recipient_agency="dol",
    )
    wf.submit(control, "rita", rid)
    assert wf.review(control, law, "paul", rid, "approve", None) == "legal_review"
    assert wf.review(control, law, "lena", rid, "approve", None) == "security_review"
    assert wf.review(control, law, "sam", rid, "approve", "encryption at rest confirmed") == "approval"
    return rid


def signed_agreement(control: Control, law: LawPack, request_id: str, tmp_path: Path) -> str:
    """Draft the request's agreement, send it to review, and have both agencies' approvers sign it."""
    import yaml

    from sharewise.services import agreement_registry

    request_file = tmp_path / f"{request_id}.yaml"
    request_file.write_text(yaml.safe_dump(SNAP_TO_TANF), encoding="utf-8")
    document = tmp_path / f"{request_id}.md"
    document.write_text("agreement text", encoding="utf-8")
    parties = Path(__file__).resolve().parents[2] / "examples" / "parties" / "lakeview-snap-tanf.yaml"
    aid = agreement_registry.record_draft(control, law, "rita", request_file, parties, document, None, request_id)
    agreement_registry.submit_for_review(control, "rita", aid)
    agreement_registry.sign(control, "alex", aid, "discloser")
    agreement_registry.sign(control, "dana", aid, "recipient")
    return aid


def test_a_request_goes_from_draft_to_active_through_every_step(control: Control, law: LawPack, tmp_path: Path) -> None:
    rid = through_reviews(control, law)
    assert wf.approve(control, "alex", rid, "approve", None) == "approval"  # one agency of two
    assert wf.approve(control, "dana", rid, "approve", None) == "agreement_pending"
    with pytest.raises(NotFoundError):
        wf.execute_agreement(control, "dana", rid, "a-2026-unknown")
    other = wf.create_request(control, law, "rita", "t", "use case", SNAP_TO_TANF, recipient_agency="dol")
    with pytest.raises(InvalidDataError, match="not this request's agreement"):
        wf.execute_agreement(control, "dana", rid, signed_agreement(control, law, other, tmp_path))
    aid = signed_agreement(control, law, rid, tmp_path)
    wf.execute_agreement(control, "dana", rid, aid)
    record = wf.show(control, "aud", rid)
    assert record.state == "active" and record.agreement_id == aid
    assert record.determination is not None and record.determination["outcome"] == "permitted"
    assert [s.step for s in record.steps] == [
        "submission",
        "program",
        "legal",
        "security",
        "approval",
        "approval",
        "agreement",
    ]
    with control.store.transaction() as conn:
        actions = [r.action for r in conn.execute(select(audit_records.c.action))]
    for action in (
        "request-created",
        "request-submitted",
        "decision-recorded",
        "review-recorded",
        "request-approved",
        "agreement-executed",
    ):
        assert action in actions


def test_no_one_reviews_their_own_request(control: Control, law: LawPack) -> None:
    rid = wf.create_request(control, law, "otto", "DOL asks", "use case", SNAP_TO_TANF)
    wf.submit(control, "otto", rid)
    with pytest.raises(AccessDeniedError, match="separation of duties"):
        wf.review(control, law, "otto", rid, "approve", None)


def test_the_wrong_role_or_agency_cannot_act(control: Control, law: LawPack) -> None:
    rid = wf.create_request(control, law, "rita", "t", "use case", SNAP_TO_TANF)
    wf.submit(control, "rita", rid)
    with pytest.raises(AccessDeniedError, match="program_reviewer"):
        wf.review(control, law, "lena", rid, "approve", None)
    with pytest.raises(AccessDeniedError, match="not a party"):
        wf.review(control, law, "otto", rid, "approve", None)  # DOL is not a party to this one
    with pytest.raises(AccessDeniedError):
        wf.show(control, "otto", rid)
    assert wf.show(control, "aud", rid).id == rid  # auditors see everything


def test_legal_review_cannot_approve_what_the_law_does_not_permit(control: Control, law: LawPack) -> None:
    sud = {
        "source": {"program": "sud_treatment"},
        "recipient": {"kind": "state_or_local_agency", "program": "child_welfare"},
        "purpose": "care_coordination",
        "data": ["sud_treatment_information"],
        "facts": {"valid_consent": False},
    }
    rid = wf.create_request(control, law, "rita", "t", "use case", sud)
    wf.submit(control, "rita", rid)
    wf.review(control, law, "paul", rid, "approve", None)
    with pytest.raises(InvalidStateError, match="consent_required"):
        wf.review(control, law, "lena", rid, "approve", None)
    assert wf.show(control, "rita", rid).state == "legal_review"  # nothing changed


def test_a_returned_request_keeps_its_history_and_can_be_resubmitted(control: Control, law: LawPack) -> None:
    rid = wf.create_request(control, law, "rita", "t", "use case", SNAP_TO_TANF)
    wf.submit(control, "rita", rid)
    with pytest.raises(InvalidDataError):
        wf.review(control, law, "paul", rid, "return", None)  # a return needs a reason
    assert wf.review(control, law, "paul", rid, "return", "drop the contact data: not needed") == "draft"
    wf.revise(control, law, "rita", rid, use_case="Verify eligibility; identity and benefits only")
    wf.submit(control, "rita", rid)
    record = wf.show(control, "rita", rid)
    assert [(s.step, s.decision) for s in record.steps] == [
        ("submission", "submitted"),
        ("program", "return"),
        ("revision", "revised"),
        ("submission", "submitted"),
    ]
    assert record.steps[1].comments == "drop the contact data: not needed"


def test_only_administrators_add_users_once_the_system_is_set_up(control: Control) -> None:
    with pytest.raises(AccessDeniedError):
        wf.add_user(control, "eve", "Eve", "dhs", {"administrator"}, "rita")
    with pytest.raises(InvalidDataError) as info:
        wf.add_user(control, "eve", "Eve", "dhs", {"overlord"}, "admin")
    assert "unknown role" in info.value.problems[0].message


def test_a_denied_request_stops(control: Control, law: LawPack) -> None:
    rid = through_reviews(control, law)
    assert wf.approve(control, "dana", rid, "deny", "not a priority") == "denied"
    with pytest.raises(InvalidStateError):
        wf.approve(control, "alex", rid, "approve", None)


def test_queues_show_what_waits_for_each_person(control: Control, law: LawPack) -> None:
    rid = wf.create_request(control, law, "rita", "t", "use case", SNAP_TO_TANF)
    wf.submit(control, "rita", rid)
    assert [r.id for r in wf.queue(control, "paul")] == [rid]
    assert wf.queue(control, "lena") == []


def test_an_invalid_disclosure_is_rejected_before_anything_is_stored(control: Control, law: LawPack) -> None:
    with pytest.raises(Exception, match="invalid request"):
        wf.create_request(control, law, "rita", "t", "use case", {**SNAP_TO_TANF, "purpose": "curiosity"})
    assert wf.all_requests(control, "rita") == []


def test_law_impact_lists_active_requests_whose_answer_changes(control: Control, law: LawPack, tmp_path: Path) -> None:
    import dataclasses

    from sharewise.services.law_impact import impact

    rid = through_reviews(control, law)
    wf.approve(control, "alex", rid, "approve", None)
    wf.approve(control, "dana", rid, "approve", None)
    wf.execute_agreement(control, "dana", rid, signed_agreement(control, law, rid, tmp_path))
    assert impact(control, law) == []
    # A new pack in which SNAP's administration pathway no longer exists:
    snap = law.authority("snap")
    assert snap is not None
    changed = dataclasses.replace(
        law,
        version="2027.1",
        authorities=tuple(
            dataclasses.replace(a, rules=tuple(r for r in a.rules if r.id != "snap.program-administration"))
            if a.id == "snap"
            else a
            for a in law.authorities
        ),
    )
    (item,) = impact(control, changed, from_version=law.law_version)
    assert item.request_id == rid and item.old_outcome == "permitted" and item.new_outcome != "permitted"
    assert any(r.startswith("snap.program-administration: holds -> absent") for r in item.rules_changed)


def test_an_initiative_tracks_the_toolkit_steps_and_groups_requests(control: Control, law: LawPack) -> None:
    from sharewise.services import initiatives

    proposal = initiatives.parse_proposal(
        {
            "name": "Lakeview family stability data partnership",
            "vision": "Coordinated services for families who use several programs, with privacy built in.",
            "agencies": ["dhs", "dol"],
            "sponsors": [{"name": "Director Kim", "agency": "dhs"}],
            "stakeholders": [{"group": "lived_experience_and_advocates", "name": "Parent advisory council"}],
        },
        "initiative.yaml",
    )
    iid = initiatives.create(control, "rita", proposal)
    initiatives.update_step(control, "paul", iid, "define_use_case", owner="Paul", status="done")
    got = initiatives.get(control, "paul", iid)
    assert [s.step for s in got.steps][:2] == ["define_use_case", "secure_leadership"] and len(got.steps) == 10
    assert got.steps[0].status == "done" and got.steps[0].done_on == dt.date(2026, 11, 25)
    rid = wf.create_request(control, law, "rita", "t", "use case", SNAP_TO_TANF, initiative_id=iid)
    assert wf.show(control, "rita", rid).initiative_id == iid
    with pytest.raises(InvalidDataError):
        initiatives.parse_proposal({"name": "x", "vision": "short", "agencies": [], "sponsors": []}, "bad.yaml")
    with pytest.raises(InvalidDataError, match="unknown step"):
        initiatives.update_step(control, "paul", iid, "celebrate")
    with pytest.raises(InvalidDataError, match="nothing to change"):
        initiatives.update_step(control, "paul", iid, "define_use_case")


def test_initiatives_are_read_only_by_their_agencies_auditors_and_administrators(
    control: Control, law: LawPack
) -> None:
    from sharewise.services import initiatives

    wf.add_agency(control, "doe", "State Dept. of Education", "admin")
    wf.add_user(control, "eve", "Eve", "doe", {"requester"}, "admin")
    proposal = initiatives.parse_proposal(
        {
            "name": "DHS and DOL partnership",
            "vision": "Employment services for families, coordinated across programs.",
            "agencies": ["dhs", "dol"],
            "sponsors": [{"name": "Director Kim", "agency": "dhs"}],
        },
        "initiative.yaml",
    )
    iid = initiatives.create(control, "rita", proposal)
    assert [i for i, _ in initiatives.list_all(control, "otto")] == [iid]
    assert initiatives.list_all(control, "eve") == []
    assert [i for i, _ in initiatives.list_all(control, "aud")] == [iid]
    with pytest.raises(AccessDeniedError, match="does not take part"):
        initiatives.get(control, "eve", iid)
    with pytest.raises(AccessDeniedError, match="who is acting"):
        initiatives.get(control, None, iid)
    assert initiatives.get(control, "admin", iid).name == "DHS and DOL partnership"


def test_request_lists_come_in_pages(control: Control, law: LawPack) -> None:
    ids = [wf.create_request(control, law, "rita", f"t{i}", "use case", SNAP_TO_TANF) for i in range(5)]
    first = wf.all_requests(control, "rita", limit=2)
    second = wf.all_requests(control, "rita", limit=2, offset=2)
    paged = [r.id for r in first + second]
    assert len(set(paged)) == 4 and set(paged) <= set(ids)  # two pages, no overlap
    assert len(wf.queue(control, "rita", limit=3)) == 3
