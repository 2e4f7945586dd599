"""The `sharewise security` commands end to end, and secrets never reaching output, logs or the audit trail."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from trestle.oscal.profile import Profile
from typer.testing import CliRunner

from sharewise.cli.security import app
from sharewise.security.assess import create_reviewer_key, load_reviewer_key
from sharewise.store.database import open_store
from sharewise.store.schema import audit_records

REPO = Path(__file__).resolve().parents[2]
SNAP = REPO / "examples" / "requests" / "snap-to-tanf.yaml"
SUD = REPO / "examples" / "requests" / "sud-to-child-welfare.yaml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    monkeypatch.delenv("SHAREWISE_DATABASE_URL", raising=False)
    return tmp_path


def _aggregate_request(tmp_path: Path) -> Path:
    path = tmp_path / "counts.yaml"
    path.write_text(
        "source: {program: snap}\nrecipient: {kind: researcher}\npurpose: statistics\n"
        "data: [demographics]\nform: aggregate\nas_of: 2026-11-25\n",
        encoding="utf-8",
    )
    return path


def test_categorize_prints_the_levels_overlays_and_baselines() -> None:
    result = runner.invoke(app, ["categorize", str(SUD)])
    assert result.exit_code == 0, result.output
    assert "(confidentiality, high)" in result.output
    assert "overlay part2_security: applies" in result.output
    assert "baselines: HIGH + PRIVACY" in result.output


def test_categorize_json_answers_the_security_facts() -> None:
    result = runner.invoke(app, ["categorize", str(SNAP), "--json", "--fact", "medicaid_eligibility_system=true"])
    data = json.loads(result.output)
    assert data["baselines"] == ["MODERATE", "PRIVACY"]
    assert data["categorization"]["confidentiality"] == "moderate"


def test_an_unknown_security_fact_is_a_clear_error() -> None:
    result = runner.invoke(app, ["categorize", str(SNAP), "--fact", "criminal_justice_info=true"])
    assert result.exit_code == 2
    assert "did you mean 'criminal_justice_information'" in result.output


def test_lowering_without_justification_fails_with_one_clear_line() -> None:
    result = runner.invoke(app, ["categorize", str(SUD), "--set", "confidentiality=moderate"])
    assert result.exit_code == 2
    assert "lowering confidentiality from high to moderate needs a recorded justification" in result.output


def test_a_justified_raise_is_applied_and_audited(isolated: Path) -> None:
    result = runner.invoke(
        app,
        [
            "categorize",
            str(SNAP),
            "--set",
            "availability=high",
            "--justification",
            "daily eligibility",
            "--reviewer",
            "rivera",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(availability, high)" in result.output
    store = open_store(f"sqlite:///{isolated / 'data' / 'sharewise.db'}")
    with store.transaction() as conn:
        actions = [row.action for row in conn.execute(select(audit_records)).all()]
    store.dispose()
    assert actions == ["categorization-raised"]


def test_spec_writes_the_clause_and_the_markdown(tmp_path: Path) -> None:
    clause = runner.invoke(app, ["spec", str(SUD), "--format", "clause"])
    assert "42 CFR 2.16" in clause.output
    target = tmp_path / "spec.md"
    result = runner.invoke(app, ["spec", str(SNAP), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "| AC-2 | Account Management |" in target.read_text(encoding="utf-8")


def test_export_writes_a_valid_oscal_profile(tmp_path: Path) -> None:
    target = tmp_path / "profile.json"
    result = runner.invoke(app, ["export", str(SNAP), "--kind", "profile", "-o", str(target)])
    assert result.exit_code == 0, result.output
    Profile.model_validate(json.loads(target.read_text(encoding="utf-8"))["profile"])


def test_assess_round_trip_from_blank_questionnaire_to_signed_result(tmp_path: Path) -> None:
    request = _aggregate_request(tmp_path)
    blank = runner.invoke(app, ["assess", str(request), "--recipient", "County research office"])
    form = yaml.safe_load(blank.output)
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump(form), encoding="utf-8")
    incomplete = runner.invoke(app, ["assess", str(request), "--answers", str(missing)])
    assert incomplete.exit_code == 2
    assert "not answered" in incomplete.output
    for entry in form["answers"].values():
        entry["status"] = "implemented"
        entry["evidence"] = ["https://grc.example.org/doc/ssp"]
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(form), encoding="utf-8")
    key = tmp_path / "reviewer.pem"
    create_reviewer_key(key)
    signed_path = tmp_path / "signed.json"
    result = runner.invoke(
        app,
        [
            "assess",
            str(request),
            "--answers",
            str(answers),
            "--sign-key",
            str(key),
            "--reviewer",
            "rivera",
            "--decision",
            "accepted",
            "-o",
            str(signed_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(signed_path.read_text())["decision"] == "accepted"


def test_five_safes_prints_the_one_page_view() -> None:
    result = runner.invoke(app, ["five-safes", str(SNAP), "--user", "eligibility-unit"])
    assert result.exit_code == 0, result.output
    for name in ("project", "people", "setting", "data", "outputs"):
        assert f"## Safe {name}" in result.output


def test_the_reviewer_key_never_reaches_output_logs_or_the_audit_trail(
    tmp_path: Path, isolated: Path, caplog: pytest.LogCaptureFixture
) -> None:
    request = _aggregate_request(tmp_path)
    form = yaml.safe_load(runner.invoke(app, ["assess", str(request), "--recipient", "r"]).output)
    for entry in form["answers"].values():
        entry["status"] = "implemented"
        entry["evidence"] = ["doc-1"]
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(form), encoding="utf-8")
    key_path = tmp_path / "reviewer.pem"
    create_reviewer_key(key_path)
    private = load_reviewer_key(key_path)
    pem = key_path.read_text()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    secrets = [pem, pem.splitlines()[1], raw.hex(), raw.hex().upper()]
    caplog.set_level(logging.DEBUG)
    signed = tmp_path / "signed.json"
    result = runner.invoke(
        app,
        [
            "assess",
            str(request),
            "--answers",
            str(answers),
            "--sign-key",
            str(key_path),
            "--reviewer",
            "r",
            "-o",
            str(signed),
        ],
    )
    assert result.exit_code == 0, result.output
    store = open_store(f"sqlite:///{isolated / 'data' / 'sharewise.db'}")
    with store.transaction() as conn:
        trail = json.dumps([dict(row._mapping) for row in conn.execute(select(audit_records)).all()], default=str)
    store.dispose()
    assert "assessment-signed" in trail
    for haystack in (result.output, caplog.text, trail, signed.read_text()):
        for secret in secrets:
            assert secret not in haystack


def _answered(tmp_path: Path, request: Path) -> Path:
    form = yaml.safe_load(runner.invoke(app, ["assess", str(request), "--recipient", "County research office"]).output)
    for entry in form["answers"].values():
        entry["status"] = "implemented"
        entry["evidence"] = ["https://grc.example.org/doc/ssp"]
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(form), encoding="utf-8")
    return answers


def test_a_security_officer_signs_with_their_key_from_the_key_directory(tmp_path: Path) -> None:
    from sharewise.security.assess import SignedAssessment, verify
    from sharewise.services import workflow
    from sharewise.wiring import Settings, control_for

    request = _aggregate_request(tmp_path)
    answers = _answered(tmp_path, request)
    control = control_for(Settings.from_env())
    workflow.add_agency(control, "dhs", "DHS", None)
    workflow.add_user(control, "admin", "Admin", "dhs", {"administrator"}, None)
    workflow.add_user(control, "sam", "Sam", "dhs", {"security_officer"}, "admin")
    workflow.add_user(control, "rita", "Rita", "dhs", {"requester"}, "admin")
    control.store.dispose()
    base = ["assess", str(request), "--answers", str(answers), "--sign", "--decision", "accepted"]
    refused = runner.invoke(app, [*base, "--as", "rita"])
    assert refused.exit_code == 9 and "sign security assessments" in refused.output
    signed_path = tmp_path / "signed.json"
    result = runner.invoke(app, [*base, "--as", "sam", "-o", str(signed_path)])
    assert result.exit_code == 0, result.output
    signed = SignedAssessment.model_validate_json(signed_path.read_text())
    assert signed.reviewer == "sam"
    key_file = tmp_path / "keys" / "reviewers" / "sam" / "v1.pem"
    assert key_file.stat().st_mode & 0o077 == 0
    public = runner.invoke(app, ["reviewer-key", "--as", "sam"]).output
    trusted = serialization.load_pem_public_key(public.encode())
    assert verify(signed, trusted) == signed.key_id  # type: ignore[arg-type]
    rotated = runner.invoke(app, ["reviewer-key", "--as", "sam", "--rotate"]).output
    assert rotated != public and (tmp_path / "keys" / "reviewers" / "sam" / "v2.pem").exists()
    assert verify(signed, trusted) == signed.key_id  # the old signature still verifies with the old key
    both = runner.invoke(app, [*base, "--as", "sam", "--sign-key", str(key_file)])
    assert both.exit_code == 2 and "give one, not both" in both.output
