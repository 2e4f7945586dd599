"""The review workflow on the command line: create, submit, return, revise, resubmit, show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sharewise.cli.main import app

runner = CliRunner()

PROPOSAL = """\
title: SNAP data for TANF eligibility
use_case: Verify eligibility without asking families twice
request:
  source: {program: snap}
  recipient: {kind: state_or_local_agency, program: tanf}
  purpose: eligibility_determination
  data: [identity, eligibility_and_benefits]
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    monkeypatch.delenv("SHAREWISE_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHAREWISE_USER", raising=False)


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_returned_request_is_revised_and_submitted_again(tmp_path: Path) -> None:
    ok("agency", "add", "dhs", "Lakeview County DHS")
    ok("user", "add", "ada", "--name", "Ada", "--agency", "dhs", "--roles", "administrator")
    ok("user", "add", "rita", "--name", "Rita", "--agency", "dhs", "--roles", "requester", "--as", "ada")
    ok("user", "add", "paul", "--name", "Paul", "--agency", "dhs", "--roles", "program_reviewer", "--as", "ada")
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(PROPOSAL, encoding="utf-8")
    created = ok("request", "create", str(proposal), "--as", "rita")
    request_id = re.search(r"(r-\d{4}-[0-9a-f]+)", created).group(1)  # type: ignore[union-attr]
    ok("request", "submit", request_id, "--as", "rita")
    returned = ok("request", "review", request_id, "--decision", "return", "--comments", "fewer fields", "--as", "paul")
    assert "draft" in returned
    nothing = runner.invoke(app, ["request", "revise", request_id, "--as", "rita"])
    assert nothing.exit_code == 2 and "give at least one" in nothing.output
    narrower = tmp_path / "narrower.yaml"
    narrower.write_text(PROPOSAL.split("request:\n")[1].replace("  ", "", 4).replace(", eligibility_and_benefits", ""))
    ok("request", "revise", request_id, "--request", str(narrower), "--use-case", "Identity only", "--as", "rita")
    refused = runner.invoke(app, ["request", "revise", request_id, "--use-case", "x", "--as", "paul"])
    assert refused.exit_code == 9  # only requesters revise
    ok("request", "submit", request_id, "--as", "rita")
    shown = ok("request", "show", request_id, "--as", "rita")
    assert "revis" in shown and "fewer fields" in shown and "program_review" in shown
