"""The `agreement draft` command: files written whole, one clear line per bad-input problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from sharewise.cli.documents import agreement_app as registered
from tests.agreements.conftest import EXAMPLE_PARTIES, NOT_PERMITTED, REQUESTS

runner = CliRunner()
# Registered as the lead registers it: `sharewise agreement draft ...`.
agreement_app = typer.Typer()
agreement_app.add_typer(registered, name="agreement")


def request_file(tmp_path: Path, case: str = "data_sharing_agreement", data: dict[str, object] | None = None) -> Path:
    path = tmp_path / "request.yaml"
    path.write_text(yaml.safe_dump(data or REQUESTS[case]))
    return path


def test_draft_writes_a_markdown_agreement(tmp_path: Path) -> None:
    out = tmp_path / "dsa.md"
    result = runner.invoke(
        agreement_app,
        [
            "agreement",
            "draft",
            str(request_file(tmp_path)),
            "--parties",
            str(EXAMPLE_PARTIES),
            "--format",
            "md",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Data Sharing Agreement")
    assert "wrote Data Sharing Agreement" in result.output


def test_draft_writes_docx_by_default(tmp_path: Path) -> None:
    out = tmp_path / "dsa.docx"
    result = runner.invoke(
        agreement_app,
        ["agreement", "draft", str(request_file(tmp_path)), "--parties", str(EXAMPLE_PARTIES), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"PK"


def test_an_unknown_type_is_reported_with_a_suggestion_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "x.md"
    result = runner.invoke(
        agreement_app,
        [
            "agreement",
            "draft",
            str(request_file(tmp_path)),
            "--parties",
            str(EXAMPLE_PARTIES),
            "--type",
            "busines_associate_agreement",
            "--format",
            "md",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "did you mean 'business_associate_agreement'" in result.output
    assert not out.exists()


def test_a_parties_file_missing_fields_reports_each_with_its_line(tmp_path: Path) -> None:
    parties = tmp_path / "parties.yaml"
    parties.write_text(
        "agreement:\n  effective_date: 2026-04-01\n"
        "discloser:\n  legal_name: A\n  contacts: [{role: data_custodian, name: X}]\n"
        "recipient:\n  short_name: B\n  contacts: [{role: data_custodian, name: Y}]\n  signatory: {name: Z}\n"
    )
    out = tmp_path / "x.md"
    result = runner.invoke(
        agreement_app,
        [
            "agreement",
            "draft",
            str(request_file(tmp_path)),
            "--parties",
            str(parties),
            "--format",
            "md",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "parties.yaml:3: discloser.signatory: required field is missing" in text
    assert "parties.yaml:6: recipient.legal_name: required field is missing" in text
    assert "parties.yaml:9: recipient.signatory.title: required field is missing" in text
    assert not out.exists()


def test_a_determination_not_permitted_is_refused_with_exit_6(tmp_path: Path) -> None:
    out = tmp_path / "x.md"
    result = runner.invoke(
        agreement_app,
        [
            "agreement",
            "draft",
            str(request_file(tmp_path, data=NOT_PERMITTED)),
            "--parties",
            str(EXAMPLE_PARTIES),
            "--format",
            "md",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 6
    assert "not_permitted" in result.output and "not 'permitted'" in result.output
    assert not out.exists()


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        agreement_app,
        [
            "agreement",
            "draft",
            str(request_file(tmp_path)),
            "--parties",
            str(EXAMPLE_PARTIES),
            "--format",
            "odt",
            "--out",
            str(tmp_path / "x.odt"),
        ],
    )
    assert result.exit_code == 2
    assert "'odt' is not one of md, html, docx, pdf" in result.output


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "x.md"
    result = runner.invoke(
        agreement_app,
        [
            "agreement",
            "draft",
            str(request_file(tmp_path)),
            "--parties",
            str(EXAMPLE_PARTIES),
            "--format",
            "md",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 5
    assert not out.parent.exists()
    assert not list(tmp_path.glob("**/*.tmp"))


def test_an_impossible_date_in_a_parties_file_is_located_bad_input(tmp_path: Path) -> None:
    parties = tmp_path / "parties.yaml"
    parties.write_text(EXAMPLE_PARTIES.read_text().replace("effective_date: 2026-", "effective_date: 2026-02-30 #"))
    out = tmp_path / "x.md"
    args = ["agreement", "draft", str(request_file(tmp_path)), "--parties", str(parties), "--out", str(out)]
    result = runner.invoke(agreement_app, [*args, "--format", "md"])
    assert result.exit_code == 2, result.output
    assert "agreement.effective_date: not a valid date" in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "nope.yaml: cannot read file"),
        ("- {role: [\n", "users.yaml:2: malformed YAML"),
        (b"\xff\xfe\x00bad", "users.yaml: not UTF-8 text"),
        ("role: analyst\n", "must be a list of authorized users"),
        ("", "must be a list of authorized users"),
        ("- 1\n- foo\n", "users.yaml:1: 0: must be a mapping of role, name and organization"),
        ("- 1\n- foo\n", "users.yaml:2: 1: must be a mapping of role, name and organization"),
        ("- {role: analyst}\n- {name: Kim}\n", "users.yaml:2: 1.role: required field is missing"),
        ("- {role: analyst, nam: Kim}\n", "users.yaml:1: 0.nam: Extra inputs are not permitted"),
        ("- {role: analyst, since: 2026-02-30}\n", "users.yaml:1: 0.since: not a valid date"),
    ],
)
def test_amend_refuses_an_authorized_users_file_that_is_not_a_list_of_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | bytes | None, expected: str
) -> None:
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    users = tmp_path / ("nope.yaml" if text is None else "users.yaml")
    if isinstance(text, bytes):
        users.write_bytes(text)
    elif text is not None:
        users.write_text(text)
    result = runner.invoke(
        agreement_app, ["agreement", "amend", "a-1", "--reason", "x", "--authorized-users", str(users)]
    )
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())
    assert "Kim" not in result.output


def test_an_expiry_window_out_of_range_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    result = runner.invoke(agreement_app, ["agreement", "list", "--expiring", "99999999999d"])
    assert result.exit_code == 2, result.output
    assert "--expiring: at most 3650d" in result.output
