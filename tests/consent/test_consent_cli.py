"""The consent commands say what they found: an empty list, an unknown agency, every statement given."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sharewise.cli.main import app
from sharewise.wiring import _cached_law

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consents" / "part2-universal-release.yaml"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    monkeypatch.delenv("SHAREWISE_USER", raising=False)
    _cached_law.cache_clear()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def run(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def directory() -> None:
    run("agency", "add", "dhs", "Lakeview DHS")
    run("agency", "add", "otp", "Lakeview Recovery Center")
    run("user", "add", "ada", "--name", "Ada", "--agency", "dhs", "--roles", "administrator")
    run("user", "add", "rita", "--name", "Rita", "--agency", "dhs", "--roles", "requester", "--as", "ada")
    run("user", "add", "aud", "--name", "Audrey", "--agency", "dhs", "--roles", "auditor", "--as", "ada")


def test_an_empty_registry_says_there_is_nothing_to_list() -> None:
    assert run("consent", "list").strip() == "no consents to list"


def test_a_known_agency_without_consents_says_so_and_succeeds() -> None:
    directory()
    assert run("consent", "list", "--agency", "otp", "--as", "aud").strip() == "no consents recorded for agency 'otp'"


def test_an_unknown_agency_is_an_error_naming_it() -> None:
    directory()
    run("consent", "add", str(EXAMPLE), "--as", "rita")
    result = invoke("consent", "list", "--agency", "Nope", "--as", "aud")
    assert result.exit_code == 2, result.output
    assert "no agency 'Nope' is registered, and no consent names it" in result.output


def test_an_agency_a_consent_file_named_is_known_before_any_user_is_registered() -> None:
    consent_id = run("consent", "add", str(EXAMPLE)).split()[-1]  # single-user mode keeps the file's agency
    assert consent_id in run("consent", "list", "--agency", "Lakeview Recovery Center")
    assert invoke("consent", "list", "--agency", "Nope").exit_code == 2


def test_a_user_lists_only_what_they_may_see_and_auditors_see_every_agency(tmp_path: Path) -> None:
    unassigned = tmp_path / "no-agency.yaml"
    unassigned.write_text(EXAMPLE.read_text(encoding="utf-8").replace("agency: Lakeview Recovery Center\n", ""))
    before_users = run("consent", "add", str(unassigned)).split()[-1]  # recorded for no agency
    directory()
    run("user", "add", "carl", "--name", "Carl", "--agency", "otp", "--roles", "requester", "--as", "ada")
    theirs = run("consent", "add", str(EXAMPLE), "--as", "carl").split()[-1]
    listed = run("consent", "list", "--as", "rita")
    assert before_users in listed and theirs not in listed  # as `consent show` would answer rita
    refused = invoke("consent", "list", "--agency", "otp", "--as", "rita")
    assert refused.exit_code == 9 and "rita may not see consents of another agency" in refused.output
    assert theirs in run("consent", "list", "--as", "carl")
    assert {before_users, theirs} <= set(run("consent", "list", "--as", "aud").split())
    assert theirs in run("consent", "list", "--agency", "otp", "--as", "aud")


def test_show_lists_every_statement_the_person_was_given() -> None:
    consent_id = run("consent", "add", str(EXAMPLE)).split()[-1]
    (line,) = [line.strip() for line in run("consent", "show", consent_id).splitlines() if "statements" in line]
    assert line == "statements: right_to_revoke, redisclosure_warning, part2_notice, conditioning, copy_to_person"


def test_a_revocation_dated_before_1900_is_bad_input_named_by_its_option() -> None:
    consent_id = run("consent", "add", str(EXAMPLE)).split()[-1]
    result = invoke("consent", "revoke", consent_id, "--by", "Ana Example", "--on", "1850-01-01")
    assert result.exit_code == 2, result.output
    assert "--on: before 1900-01-01: not a plausible date for a consent" in result.output
    assert "Ana" not in result.output and "Traceback" not in result.output


def test_a_revocation_by_a_name_too_long_is_bad_input_that_does_not_echo_the_name() -> None:
    consent_id = run("consent", "add", str(EXAMPLE)).split()[-1]
    result = invoke("consent", "revoke", consent_id, "--by", "Ana Example " * 20, "--on", "2026-07-01")
    assert result.exit_code == 2, result.output
    assert "--by: at most 200 characters" in result.output and "Ana" not in result.output


def test_adding_the_same_consent_again_warns_with_the_id_it_repeats_and_records_it() -> None:
    first = run("consent", "add", str(EXAMPLE)).split()[-1]
    again = invoke("consent", "add", str(EXAMPLE))
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert f"warning: consent {first} is in force for the same person, programs, recipients, data" in said
    second = again.output.split()[-1]  # the new id stays last, where scripts read it
    assert second != first and {first, second} <= set(run("consent", "list").split())
