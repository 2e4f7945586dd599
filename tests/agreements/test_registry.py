"""The agreement registry: lifecycle, two-party signatures, law-imposed renewal limits, history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidStateError
from sharewise.policy.model import LawPack
from sharewise.services import agreement_registry as reg
from sharewise.services import workflow as wf
from sharewise.store.database import Store
from sharewise.wiring import Control, Settings

ROOT = Path(__file__).resolve().parents[2]
REQUEST = ROOT / "examples" / "requests" / "snap-to-tanf.yaml"
PARTIES = ROOT / "examples" / "parties" / "lakeview-snap-tanf.yaml"
TODAY = dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC)


@pytest.fixture
def control(store: Store, tmp_path: Path) -> Control:
    trail = AuditTrail(lambda: TODAY, CheckpointSigner(Ed25519PrivateKey.generate()))
    c = Control(store, trail, StoreAuditSink(store, trail), Settings(key_dir=tmp_path / "keys"))
    wf.add_agency(c, "dhs", "Lakeview County DHS", None)
    wf.add_user(c, "admin", "Admin", "dhs", {"administrator"}, None)
    for uid, roles in [("rita", {"requester"}), ("alex", {"approver"}), ("bea", {"approver"}), ("aud", {"auditor"})]:
        wf.add_user(c, uid, uid.title(), "dhs", roles, "admin")
    return c


def drafted(
    control: Control,
    law: LawPack,
    tmp_path: Path,
    parties: Path = PARTIES,
    doc_type: str | None = None,
    request: Path = REQUEST,
) -> str:
    doc = tmp_path / "dsa.md"
    doc.write_text("agreement text")
    return reg.record_draft(control, law, "rita", request, parties, doc, doc_type)


def test_an_agreement_goes_from_draft_to_active_with_both_signatures(
    control: Control, law: LawPack, tmp_path: Path
) -> None:
    aid = drafted(control, law, tmp_path)
    reg.submit_for_review(control, "rita", aid)
    assert reg.sign(control, "alex", aid, "discloser") == "in_review"
    with pytest.raises(AccessDeniedError):
        reg.sign(control, "alex", aid, "recipient")  # one person cannot sign for both parties
    assert reg.sign(control, "bea", aid, "recipient") == "signed"
    reg.activate(control, "alex", aid)
    record = reg.show(control, "aud", aid)
    assert record.state == "active" and record.document_sha256 is not None
    assert [e.event for e in record.events] == ["drafted", "submitted_for_review", "signed", "signed", "activated"]


def test_requesters_cannot_sign(control: Control, law: LawPack, tmp_path: Path) -> None:
    aid = drafted(control, law, tmp_path)
    reg.submit_for_review(control, "rita", aid)
    with pytest.raises(AccessDeniedError):
        reg.sign(control, "rita", aid, "discloser")


def test_amendments_keep_before_and_after(control: Control, law: LawPack, tmp_path: Path) -> None:
    aid = drafted(control, law, tmp_path)
    with pytest.raises(InvalidDataError):
        reg.amend(control, "alex", aid, term_end=dt.date(2027, 1, 1), reason=" ")
    effective = reg.show(control, "aud", aid).effective
    for impossible in (effective, dt.date(9999, 12, 31)):  # not after it starts; not beyond any renewal's calendar
        with pytest.raises(InvalidDataError, match="invalid end of term"):
            reg.amend(control, "alex", aid, term_end=impossible, reason="typo")
    reg.amend(control, "alex", aid, authorized_users=[{"role": "analyst", "name": "Kim"}], reason="new analyst")
    event = reg.show(control, "aud", aid).events[-1]
    before = len(yaml.safe_load(PARTIES.read_text()).get("authorized_users", []))
    assert event.event == "amended"
    assert event.details == {"reason": "new analyst", "authorized_users": {"before": before, "after": 1}}


def test_authorized_users_from_a_file_are_stored_as_the_parties_file_stores_them(
    control: Control, law: LawPack, tmp_path: Path
) -> None:
    aid = drafted(control, law, tmp_path)
    users = tmp_path / "users.yaml"
    users.write_text("- {role: analyst, name: Kim}\n- role: Supervisors of the TANF Unit\n  organization: TANF\n")
    read = reg.read_authorized_users(users)
    assert read == [
        {"role": "analyst", "name": "Kim", "organization": None},
        {"role": "Supervisors of the TANF Unit", "name": None, "organization": "TANF"},
    ]
    reg.amend(control, "alex", aid, authorized_users=read, reason="new analyst")
    assert reg.show(control, "aud", aid).authorized_users == read
    users.write_text("- 1\n- foo\n")
    with pytest.raises(InvalidDataError) as caught:
        reg.read_authorized_users(users)
    assert [p.location for p in caught.value.problems] == [f"{users}:1: 0", f"{users}:2: 1"]


def test_an_expiry_window_out_of_range_is_refused(control: Control) -> None:
    for days in (-1, reg.MAX_EXPIRY_WINDOW_DAYS + 1, 99_999_999_999):
        with pytest.raises(InvalidDataError, match="invalid expiry window"):
            reg.listing(control, "aud", days)
    assert reg.listing(control, "aud", reg.MAX_EXPIRY_WINDOW_DAYS) == []


def test_a_computer_matching_agreement_renews_once_only(control: Control, law: LawPack, tmp_path: Path) -> None:
    request = tmp_path / "match.yaml"
    request.write_text(
        yaml.safe_dump(
            {
                "source": {"program": "federal_system_of_records"},
                "recipient": {"kind": "state_or_local_agency", "program": "snap"},
                "purpose": "eligibility_determination",
                "data": ["identity", "eligibility_and_benefits"],
                "facts": {"privacy_act_routine_use": True},
            }
        )
    )
    parties = yaml.safe_load(PARTIES.read_text())
    parties["agreement"].pop("term_months", None)
    parties["agreement"].pop("renewals", None)
    parties_file = tmp_path / "parties.yaml"
    parties_file.write_text(yaml.safe_dump(parties))
    aid = drafted(control, law, tmp_path, parties_file, "computer_matching_agreement", request)
    record = reg.show(control, "aud", aid)
    assert record.max_renewals == 1
    reg.submit_for_review(control, "rita", aid)
    reg.sign(control, "alex", aid, "discloser")
    reg.sign(control, "bea", aid, "recipient")
    reg.activate(control, "alex", aid)
    first_end = record.term_end
    assert reg.renew(control, "alex", aid) > first_end
    with pytest.raises(InvalidStateError, match="at most 1"):
        reg.renew(control, "alex", aid)


def test_expiring_lists_active_agreements_ending_soon(control: Control, law: LawPack, tmp_path: Path) -> None:
    aid = drafted(control, law, tmp_path)
    reg.submit_for_review(control, "rita", aid)
    reg.sign(control, "alex", aid, "discloser")
    reg.sign(control, "bea", aid, "recipient")
    reg.activate(control, "alex", aid)
    end = reg.show(control, "aud", aid).term_end
    days_left = (end - TODAY.date()).days
    assert [r.id for r in reg.listing(control, "aud", days_left + 1)] == [aid]
    assert reg.listing(control, "aud", max(days_left - 1, 0)) == []
    reg.terminate(control, "alex", aid, "program ended")
    assert reg.show(control, "aud", aid).state == "terminated"
    with pytest.raises(InvalidStateError):
        reg.amend(control, "alex", aid, term_end=end, reason="too late")


def test_agreements_are_read_only_by_the_agencies_of_their_request_and_auditors(
    control: Control, law: LawPack, tmp_path: Path
) -> None:
    wf.add_agency(control, "doe", "State Dept. of Education", "admin")
    wf.add_user(control, "eve", "Eve", "doe", {"requester"}, "admin")
    rid = wf.create_request(control, law, "rita", "t", "use case", yaml.safe_load(REQUEST.read_text()))
    doc = tmp_path / "dsa.md"
    doc.write_text("agreement text")
    with_request = reg.record_draft(control, law, "rita", REQUEST, PARTIES, doc, None, rid)
    without_request = drafted(control, law, tmp_path)
    assert {r.id for r in reg.listing(control, "rita")} == {with_request, without_request}  # drafted in her agency
    assert reg.listing(control, "eve") == []
    assert {r.id for r in reg.listing(control, "aud")} == {with_request, without_request}
    assert reg.show(control, "rita", with_request).request_id == rid
    with pytest.raises(AccessDeniedError, match="not a party"):
        reg.show(control, "eve", with_request)
    with pytest.raises(AccessDeniedError, match="not a party"):
        reg.show(control, "eve", without_request)
    with pytest.raises(AccessDeniedError, match="who is acting"):
        reg.listing(control, None)


def test_only_people_of_an_agreements_agencies_act_on_it(control: Control, law: LawPack, tmp_path: Path) -> None:
    wf.add_agency(control, "doe", "State Dept. of Education", "admin")
    wf.add_user(control, "ed", "Ed Approver", "doe", {"approver"}, "admin")
    wf.add_user(control, "eve", "Eve", "doe", {"requester"}, "admin")
    aid = drafted(control, law, tmp_path)
    reg.submit_for_review(control, "rita", aid)
    with pytest.raises(AccessDeniedError, match="not a party"):
        reg.sign(control, "ed", aid, "discloser")
    with pytest.raises(AccessDeniedError, match="not a party"):
        reg.terminate(control, "ed", aid, "not ours to end")
    rid = wf.create_request(control, law, "rita", "t", "use case", yaml.safe_load(REQUEST.read_text()))
    doc = tmp_path / "dsa.md"
    doc.write_text("agreement text")
    with pytest.raises(AccessDeniedError, match="not their agency"):
        reg.record_draft(control, law, "eve", REQUEST, PARTIES, doc, None, rid)
    assert reg.sign(control, "alex", aid, "discloser") == "in_review"


def test_between_two_agencies_each_signs_for_one_party_only(control: Control, law: LawPack, tmp_path: Path) -> None:
    """A request between two agencies: once one agency has signed, only the other agency may sign the other party."""
    wf.add_agency(control, "doe", "State Dept. of Education", "admin")
    wf.add_user(control, "ed", "Ed Approver", "doe", {"approver"}, "admin")
    request = yaml.safe_load(REQUEST.read_text())
    rid = wf.create_request(control, law, "rita", "t", "use case", request, recipient_agency="doe")
    doc = tmp_path / "dsa.md"
    doc.write_text("agreement text")
    aid = reg.record_draft(control, law, "rita", REQUEST, PARTIES, doc, None, rid)
    reg.submit_for_review(control, "rita", aid)
    assert reg.parties_signable_by(control, "alex", aid) == ("discloser", "recipient")
    assert reg.sign(control, "alex", aid, "discloser") == "in_review"
    assert reg.parties_signable_by(control, "alex", aid) == ()
    assert reg.parties_signable_by(control, "bea", aid) == ()  # alex's colleague: same agency
    with pytest.raises(AccessDeniedError, match="each agency signs for its own"):
        reg.sign(control, "bea", aid, "recipient")
    assert reg.parties_signable_by(control, "ed", aid) == ("recipient",)
    assert reg.sign(control, "ed", aid, "recipient") == "signed"
