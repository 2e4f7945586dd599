"""The recipient assessment: complete answers, gaps, plan of action, and the reviewer's signature."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.domain.errors import IntegrityError, InvalidDataError
from sharewise.policy.model import LawPack
from sharewise.security import assess as assess_mod
from sharewise.security.safeguards import SafeguardsSpec
from sharewise.services.security import assess, sign_assessment, specify
from tests.conftest import TODAY
from tests.security.conftest import FakeSink, make_request

SIGNED_AT = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def spec(law: LawPack) -> SafeguardsSpec:
    return specify(law, make_request(law, data=["demographics"], form="aggregate", purpose="statistics"), TODAY)


def _answered(spec: SafeguardsSpec, status: str = "implemented") -> dict[str, Any]:
    form = assess_mod.questionnaire(spec, "County research office")
    for entry in form["answers"].values():
        entry["status"] = status
        entry["evidence"] = [{"ref": "https://grc.example.org/doc/ssp-2026", "description": "System security plan"}]
    return form


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_questionnaire_asks_about_every_control_and_overlay_requirement(law: LawPack) -> None:
    spec = specify(
        law, make_request(law, data=["identity", "federal_tax_information"], recipient={"kind": "same_agency"}), TODAY
    )
    form = assess_mod.questionnaire(spec, "r")
    assert list(form["answers"]) == spec.item_ids()
    assert "irs_pub_1075.safeguard-security-report" in form["answers"]


def test_a_questionnaire_with_missing_answers_is_an_error_listing_each(spec: SafeguardsSpec, tmp_path: Path) -> None:
    form = _answered(spec)
    form["answers"]["ac-2"]["status"] = None
    del form["answers"]["au-2"]
    with pytest.raises(InvalidDataError, match="incomplete") as info:
        assess(spec, _write(tmp_path, form), TODAY)
    messages = [str(p) for p in info.value.problems]
    assert any("answers.ac-2: not answered" in m for m in messages)
    assert any("answers.au-2: not answered" in m for m in messages)


def test_not_applicable_needs_a_reason_and_evidence_needs_a_reference(spec: SafeguardsSpec, tmp_path: Path) -> None:
    form = _answered(spec)
    form["answers"]["pe-3"]["status"] = "not_applicable"
    form["answers"]["ac-2"]["evidence"] = [{"description": "no ref"}]
    form["answers"]["ac-3"]["evidence"] = [{"ref": "doc-1", "sha256": "nothex"}]
    with pytest.raises(InvalidDataError) as info:
        assess(spec, _write(tmp_path, form), TODAY)
    messages = " | ".join(str(p) for p in info.value.problems)
    assert "answers.pe-3.notes" in messages
    assert "answers.ac-2.evidence[0]" in messages
    assert "answers.ac-3.evidence[0].sha256" in messages


def test_answers_for_another_specification_are_refused(spec: SafeguardsSpec, tmp_path: Path) -> None:
    form = _answered(spec)
    form["specification_sha256"] = "0" * 64
    with pytest.raises(InvalidDataError) as info:
        assess(spec, _write(tmp_path, form), TODAY)
    assert "different specification" in str(info.value.problems[0])


def test_complete_answers_with_evidence_leave_no_gaps(spec: SafeguardsSpec, tmp_path: Path) -> None:
    result = assess(spec, _write(tmp_path, _answered(spec)), TODAY)
    assert result.meets_specification
    assert result.implemented == len(spec.item_ids())


def test_each_gap_gets_a_plan_of_action(spec: SafeguardsSpec, tmp_path: Path) -> None:
    form = _answered(spec)
    form["answers"]["ac-2"]["status"] = "planned"
    form["answers"]["ac-2"]["plan"] = {"action": "Deploy account reviews", "due": dt.date(2027, 1, 31)}
    form["answers"]["au-2"]["evidence"] = []
    result = assess(spec, _write(tmp_path, form), TODAY)
    assert [(g.item, g.kind) for g in result.gaps] == [("ac-2", "not_met"), ("au-2", "evidence_missing")]
    first, second = result.plan
    assert (first.action, first.due, first.proposed_by) == ("Deploy account reviews", dt.date(2027, 1, 31), "recipient")
    assert second.due == TODAY + dt.timedelta(days=assess_mod.DUE_DAYS["low"])
    assert second.proposed_by == "sharewise"


def test_a_signed_result_verifies_and_any_change_breaks_it(spec: SafeguardsSpec, tmp_path: Path) -> None:
    result = assess(spec, _write(tmp_path, _answered(spec)), TODAY)
    key = Ed25519PrivateKey.generate()
    signed = assess_mod.sign(result, key, "Dana Rivera", "accepted", SIGNED_AT)
    assert assess_mod.verify(signed, key.public_key()) == signed.key_id
    tampered = signed.model_copy(update={"decision": "rejected"})
    with pytest.raises(IntegrityError):
        assess_mod.verify(tampered)
    with pytest.raises(IntegrityError):
        assess_mod.verify(signed, Ed25519PrivateKey.generate().public_key())


def test_a_result_with_gaps_cannot_be_signed_as_accepted(spec: SafeguardsSpec, tmp_path: Path) -> None:
    result = assess(spec, _write(tmp_path, _answered(spec, "not_implemented")), TODAY)
    with pytest.raises(InvalidDataError, match="cannot sign"):
        assess_mod.sign(result, Ed25519PrivateKey.generate(), "Dana Rivera", "accepted", SIGNED_AT)


def test_signing_is_recorded_in_the_audit_trail(spec: SafeguardsSpec, tmp_path: Path, sink: FakeSink) -> None:
    key_path = tmp_path / "keys" / "reviewer.pem"
    assess_mod.create_reviewer_key(key_path)
    result = assess(spec, _write(tmp_path, _answered(spec)), TODAY)
    signed = sign_assessment(result, key_path, "Dana Rivera", "accepted", SIGNED_AT, sink)
    (event,) = sink.events
    assert event.action == "assessment-signed"
    assert event.details["key_id"] == signed.key_id


def test_a_signing_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_path = tmp_path / "reviewer.pem"
    assess_mod.create_reviewer_key(key_path)
    key_path.chmod(0o644)
    with pytest.raises(IntegrityError, match="chmod 600"):
        assess_mod.load_reviewer_key(key_path)


def test_a_reviewer_key_is_never_overwritten(tmp_path: Path) -> None:
    key_path = tmp_path / "reviewer.pem"
    assess_mod.create_reviewer_key(key_path)
    before = key_path.read_bytes()
    with pytest.raises(Exception, match="never overwritten"):
        assess_mod.create_reviewer_key(key_path)
    assert key_path.read_bytes() == before
