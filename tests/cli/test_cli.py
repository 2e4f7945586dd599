"""The command line: exit codes, formats, and one clear line per bad-input problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sharewise.cli.main import app

runner = CliRunner()

GOOD = """\
source: {program: snap}
recipient: {kind: state_or_local_agency, program: tanf}
purpose: eligibility_determination
data: [identity, contact, eligibility_and_benefits]
form: identified
"""


def write(tmp_path: Path, text: str, name: str = "request.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_prints_a_readable_determination(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "PERMITTED" in result.output
    assert "7 CFR 272.1(c)(1)" in result.output
    assert "does not replace legal advice" in result.output


def test_check_json_is_the_contract(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, GOOD)), "--format", "json", "--as-of", "2026-03-01"])
    assert result.exit_code == 0, result.output
    det = json.loads(result.output)
    assert det["outcome"] == "permitted"
    assert det["as_of"] == "2026-03-01"
    for key in ("law_version", "authorities", "obligations", "documents", "questions", "trace"):
        assert key in det
    snap = det["authorities"][0]
    assert {"authority", "outcome", "pathway", "citations", "explanation", "alternatives"} <= set(snap)


def test_check_accepts_json_requests(tmp_path: Path) -> None:
    data = yaml.safe_load(GOOD)
    result = runner.invoke(app, ["check", str(write(tmp_path, json.dumps(data), "r.json")), "-f", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Determination: permitted")


def test_check_names_a_json_syntax_error_as_json_with_its_line_and_column(tmp_path: Path) -> None:
    broken = '{"source": {"program": "snap"},\n "recipient": {"kind": "court"},,\n "purpose": "audit"}\n'
    result = runner.invoke(app, ["check", str(write(tmp_path, broken, "r.json"))])
    assert result.exit_code == 2
    assert "r.json:2:33" in result.output and "malformed JSON" in result.output and "YAML" not in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source: {program: snap\n", "malformed YAML"),
        (
            "source: {program: snapp}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\n",
            "did you mean 'snap'",
        ),
        (
            "source: {program: snap}\nrecipient: {kind: court}\ndata: [identity]\n",
            "purpose: required field is missing",
        ),
        (
            "source: {program: snap}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\nfacts: {court_order: maybe}\n",
            "facts.court_order",
        ),
        (
            "source: {program: snap}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\nfacts: {court_ordr: true}\n",
            "did you mean 'court_order'",
        ),
        (
            "source: {program: snap}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\nform: deidentified\n",
            "contradictory request",
        ),
        (
            "source: {program: runaway_homeless_youth}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\nfacts: {rhy_basic_center: true, rhy_transitional_living: true}\n",
            "cannot both be true",
        ),
        (
            "as_of: 1850-01-01\nsource: {program: snap}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\n",
            "out of range",
        ),
        (
            "source: {program: snap}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\ncolour: red\n",
            "colour: unknown field",
        ),
        ("- just\n- a list\n", "must be a mapping"),
        (
            "as_of: 2026-02-30\nsource: {program: snap}\nrecipient: {kind: court}\npurpose: audit\ndata: [identity]\n",
            "request.yaml:1: as_of: not a valid date",
        ),
    ],
)
def test_bad_input_exits_2_with_a_located_message_and_no_determination(
    tmp_path: Path, text: str, expected: str
) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Outcome" not in result.output
    assert "request.yaml" in result.output


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "source: {program: snapp}\nrecipient: {kind: cort}\npurpose: audits\ndata: [identiy]\n"
    result = runner.invoke(app, ["check", str(write(tmp_path, text))])
    assert result.exit_code == 2
    for fragment in ("request.yaml:1", "request.yaml:2", "request.yaml:3", "request.yaml:4"):
        assert fragment in result.output


def test_missing_request_file_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read file" in result.output


def test_a_request_file_that_is_not_utf8_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "request.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert "request.yaml: not UTF-8 text" in result.output


def test_bad_as_of_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, GOOD)), "--as-of", "yesterday"])
    assert result.exit_code == 2
    assert "not a date" in result.output


def test_law_commands() -> None:
    validate = runner.invoke(app, ["law", "validate"])
    assert validate.exit_code == 0 and "valid" in validate.output
    listing = runner.invoke(app, ["law", "list", "--authority", "snap"])
    assert "snap.fleeing-felon" in listing.output
    show = runner.invoke(app, ["law", "show", "snap.fleeing-felon"])
    assert "7 U.S.C. 2020(e)(8)(E)" in show.output and "Cases" in show.output
    cite = runner.invoke(app, ["law", "cite", "snap.fleeing-felon"])
    assert "https://www.law.cornell.edu/uscode/text/7/2020" in cite.output
    vocab = runner.invoke(app, ["law", "vocab"])
    assert "court_order" in vocab.output and "child_abuse_neglect_report" in vocab.output
    missing = runner.invoke(app, ["law", "show", "snap.fleeing-felony"])
    assert missing.exit_code == 4 and "did you mean 'snap.fleeing-felon'" in missing.output


def test_law_test_runs_the_pack_cases() -> None:
    result = runner.invoke(app, ["law", "test", "--only", "snap"])
    assert result.exit_code == 0, result.output
    assert " passed, 0 failed" in result.output


def test_demo_runs_on_the_embedded_defaults() -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "SNAP eligibility data for the TANF unit" in result.output
    assert "PERMITTED" in result.output


def test_interview_asks_only_what_is_needed_and_saves(tmp_path: Path) -> None:
    save = tmp_path / "built.yaml"
    answers = (
        "\n".join(
            [
                "snap",  # whose records
                "law_enforcement",  # recipient kind
                "",  # recipient program: skip
                "locate_fugitive",  # purpose
                "identity,contact",  # data
                "identified",  # form
                "yes",  # fleeing felon?
                "yes",  # written request?
            ]
        )
        + "\n"
    )
    result = runner.invoke(app, ["interview", "--save", str(save)], input=answers)
    assert result.exit_code == 0, result.output
    assert "PERMITTED" in result.output
    saved = yaml.safe_load(save.read_text())
    assert saved["facts"] == {"fleeing_felon": True, "written_request": True}
