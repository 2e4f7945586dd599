"""The consent and audit commands end to end, on a fresh embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sharewise.cli.main import app
from sharewise.wiring import _cached_law

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consents" / "part2-universal-release.yaml"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    _cached_law.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def auditor() -> None:
    run("agency", "add", "dhs", "Lakeview DHS")
    run("user", "add", "ada", "--name", "Ada", "--agency", "dhs", "--roles", "administrator")
    run("user", "add", "aud", "--name", "Audrey", "--agency", "dhs", "--roles", "auditor", "--as", "ada")
    run("user", "add", "rita", "--name", "Rita", "--agency", "dhs", "--roles", "requester", "--as", "ada")
    run("user", "add", "stew", "--name", "Stew", "--agency", "dhs", "--roles", "data_steward", "--as", "ada")


def test_consent_lifecycle_through_the_cli(tmp_path: Path) -> None:
    auditor()
    assert "valid" in run("consent", "validate", str(EXAMPLE))
    denied = runner.invoke(app, ["consent", "add", str(EXAMPLE), "--actor", "aud"])
    assert denied.exit_code == 9  # an auditor may read consents, not record them
    consent_id = run("consent", "add", str(EXAMPLE), "--actor", "rita").split()[-1]
    request = tmp_path / "request.yaml"
    request.write_text(
        "as_of: 2026-06-01\nsource: {program: sud_treatment}\n"
        "recipient: {kind: state_or_local_agency, program: child_welfare}\n"
        f"purpose: care_coordination\ndata: [sud_treatment_information]\nconsents: [{consent_id}]\n"
    )
    assert "PERMITTED" in run("check", str(request))
    person = tmp_path / "person.yaml"
    person.write_text("given_name: Ana\nfamily_name: Example\ndate_of_birth: 1990-04-02\n")
    found = run(
        "consent",
        "find",
        "--person",
        str(person),
        "--source",
        "sud_treatment",
        "--recipient-kind",
        "state_or_local_agency",
        "--recipient-program",
        "child_welfare",
        "--purpose",
        "care_coordination",
        "--data",
        "sud_treatment_information",
        "--on",
        "2026-06-01",
        "--actor",
        "rita",
    )
    assert consent_id in found
    shown = run("consent", "show", consent_id, "--actor", "rita")
    assert "Ana Example" not in shown and "(sealed)" in shown
    assert runner.invoke(app, ["consent", "show", consent_id, "--reveal", "--actor", "rita"]).exit_code == 9
    assert "Ana Example" in run("consent", "show", consent_id, "--reveal", "--actor", "stew")
    export = tmp_path / "consent.fhir.json"
    run("consent", "export-fhir", consent_id, "--out", str(export), "--actor", "stew")
    assert json.loads(export.read_text())["resourceType"] == "Consent"
    run("consent", "revoke", consent_id, "--by", "Ana Example", "--on", "2026-07-01", "--actor", "rita")
    assert "revoked" in run("consent", "list", "--as", "rita")
    later = run("check", str(request), "--as-of", "2026-08-01")
    assert "CONSENT REQUIRED" in later and "revoked on 2026-07-01" in later
    denied = runner.invoke(app, ["audit", "log", "--as", "ada"])
    assert denied.exit_code == 9  # only auditors read the trail in full
    log = run("audit", "log", "--as", "aud")
    for action in (
        "consent-recorded",
        "consent-looked-up",
        "consent-identifiers-revealed",
        "consent-exported",
        "consent-revoked",
    ):
        assert action in log
    assert "intact" in run("audit", "verify")


def test_an_incomplete_consent_is_refused_with_each_missing_element(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text().replace("statements: [right_to_revoke, ", "statements: ["))
    result = runner.invoke(app, ["consent", "add", str(broken)])
    assert result.exit_code == 2
    assert "42 CFR 2.31" in result.output and "nothing was stored" in result.output
    checked = runner.invoke(app, ["consent", "validate", str(broken)])
    assert checked.exit_code == 1 and "checked against: part2.consent" in checked.output
    said = " ".join(checked.output.split())  # the console wraps long lines
    title = "Confidentiality of substance use disorder patient records (42 CFR Part 2)"
    assert f"missing {title} requires 'A statement of the patient's right to revoke" in said
    assert "part2 requires" not in said


def test_an_impossible_date_or_a_file_not_in_utf8_is_bad_input_without_echoing_it(tmp_path: Path) -> None:
    bad_date = tmp_path / "bad-date.yaml"
    bad_date.write_text(EXAMPLE.read_text().replace("date_of_birth: 1990-04-02", "date_of_birth: 1990-02-30"))
    result = runner.invoke(app, ["consent", "validate", str(bad_date)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "bad-date.yaml:" in said and "person.date_of_birth: not a valid date" in said
    assert "1990" not in said
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    for command in (["consent", "validate", str(binary)], ["consent", "add", str(binary)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "b.yaml: not UTF-8 text" in result.output


def export(tmp_path: Path) -> str:
    auditor()
    return run("consent", "add", str(EXAMPLE), "--actor", "rita").split()[-1]


def exported_actions() -> list[str]:
    log = run("audit", "log", "--type", "consent", "--as", "aud")
    return [a for a in ("consent-export-failed", "consent-exported") for line in log.splitlines() if f" {a} " in line]


def test_an_export_is_written_whole_for_its_owner_only_and_audited_once_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    consent_id = export(tmp_path)
    target = tmp_path / "out" / "consent.json"
    target.parent.mkdir()
    target.write_text("an older export")
    target.chmod(0o644)
    from sharewise.store import files

    real_replace = files.os.replace

    def replace(src: str, dst: Path) -> None:
        assert "consent-exported" not in exported_actions()  # the record follows the file, never precedes it
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    run("consent", "export-fhir", consent_id, "--out", str(target), "--actor", "stew")
    assert json.loads(target.read_text())["resourceType"] == "Consent"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["consent.json"]
    assert exported_actions() == ["consent-exported"]


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_an_export_to_an_impossible_place_is_bad_input_and_writes_nothing(tmp_path: Path, where: str) -> None:
    consent_id = export(tmp_path)
    folder = tmp_path / "somedir"
    folder.mkdir()
    target = tmp_path / "nonexistent" / "x.json" if where == "missing-folder" else folder
    result = runner.invoke(app, ["consent", "export-fhir", consent_id, "--out", str(target), "--actor", "stew"])
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "Traceback" not in result.output
    assert list(folder.iterdir()) == [] and not (tmp_path / "somedir.tmp").exists()
    assert exported_actions() == []


def test_a_failed_export_write_leaves_no_file_and_is_audited_as_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from sharewise.store import files

    consent_id = export(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()

    def full_disk(src: str, dst: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(files.os, "replace", full_disk)
        result = runner.invoke(
            app, ["consent", "export-fhir", consent_id, "--out", str(folder / "x.json"), "--actor", "stew"]
        )
    assert result.exit_code == 5, result.output
    assert "No space left on device" in result.output and "Ana" not in result.output
    assert list(folder.iterdir()) == []
    assert exported_actions() == ["consent-export-failed"]
    log = run("audit", "log", "--type", "consent", "--as", "aud")
    assert "failure" in next(line for line in log.splitlines() if "consent-export-failed" in line)


def test_audit_verify_reports_tampering_with_exit_code_8(tmp_path: Path) -> None:
    import sqlite3

    run("consent", "add", str(EXAMPLE))
    checkpoint_file = tmp_path / "checkpoints.jsonl"
    run("audit", "checkpoint", "--out", str(checkpoint_file))
    db = sqlite3.connect(tmp_path / "data" / "sharewise.db")
    db.execute("DROP TRIGGER audit_records_no_update")  # an attacker with rights over the schema
    db.execute("UPDATE audit_records SET actor = 'mallory' WHERE seq = 1")
    db.commit()
    db.close()
    result = runner.invoke(app, ["audit", "verify", "--checkpoints", str(checkpoint_file)])
    assert result.exit_code == 8
    assert "modified at record 1" in result.output


def test_audit_export_writes_records_and_the_public_key(tmp_path: Path) -> None:
    auditor()
    run("consent", "add", str(EXAMPLE), "--actor", "rita")
    target = tmp_path / "audit.jsonl"
    assert "exported" in run("audit", "export", str(target), "--as", "aud")
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[0]["action"] == "agency-added"
    assert (tmp_path / "audit.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_consent_list_needs_a_reader_and_every_consent_command_takes_as_or_sharewise_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auditor()
    run("user", "add", "sam", "--name", "Sam", "--agency", "dhs", "--roles", "security_officer", "--as", "ada")
    consent_id = run("consent", "add", str(EXAMPLE), "--as", "rita").split()[-1]
    assert runner.invoke(app, ["consent", "list", "--as", "sam"]).exit_code == 9  # not a consent reader
    assert runner.invoke(app, ["consent", "list", "--as", "nobody"]).exit_code == 4
    assert consent_id in run("consent", "list", "--as", "aud")
    monkeypatch.setenv("SHAREWISE_USER", "aud")
    assert consent_id in run("consent", "list")
    assert consent_id in run("consent", "show", consent_id)


def test_a_consent_is_recorded_for_the_recorders_agency_and_kept_within_it() -> None:
    auditor()
    run("agency", "add", "otp", "Lakeview Recovery Center", "--as", "ada")
    run("user", "add", "carl", "--name", "Carl", "--agency", "otp", "--roles", "requester", "--as", "ada")
    run("user", "add", "oda", "--name", "Oda", "--agency", "otp", "--roles", "auditor", "--as", "ada")
    consent_id = run("consent", "add", str(EXAMPLE), "--as", "rita").split()[-1]  # rita works for dhs
    assert consent_id in run("consent", "show", consent_id, "--as", "rita")
    shown = runner.invoke(app, ["consent", "show", consent_id, "--as", "carl"])
    assert shown.exit_code == 9 and "another agency" in shown.output
    revoked = runner.invoke(app, ["consent", "revoke", consent_id, "--by", "x", "--on", "2026-07-01", "--as", "carl"])
    assert revoked.exit_code == 9 and "another agency" in revoked.output
    assert consent_id in run("consent", "show", consent_id, "--as", "oda")  # auditors read across agencies
    assert consent_id in run("consent", "list", "--agency", "dhs", "--as", "aud")
