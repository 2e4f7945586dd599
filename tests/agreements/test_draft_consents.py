"""Drafting an agreement for a request that rests on a consent, and recording a draft without leftovers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from sharewise.cli.consent import app as consent_app
from sharewise.cli.documents import agreement_app as registered
from tests.agreements.conftest import EXAMPLE_PARTIES

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
app = typer.Typer()
app.add_typer(registered, name="agreement")
app.add_typer(consent_app, name="consent")


@pytest.fixture
def cited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worked example's request, citing the example consent recorded in a fresh registry."""
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    added = runner.invoke(
        app, ["consent", "add", str(REPO / "examples/consents/part2-universal-release.yaml"), "--actor", "intake"]
    )
    assert added.exit_code == 0, added.output
    consent_id = added.output.split()[-1]
    request = yaml.safe_load((REPO / "examples/requests/sud-to-child-welfare.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "request.yaml"
    path.write_text(yaml.safe_dump({**request, "consents": [consent_id], "as_of": "2026-06-01"}), encoding="utf-8")
    return path


def draft(request: Path, out: Path, *extra: str) -> Any:
    args = ["agreement", "draft", str(request), "--parties", str(EXAMPLE_PARTIES), "-f", "md", "--out", str(out)]
    return runner.invoke(app, [*args, *extra])


def test_a_request_resting_on_a_cited_consent_can_be_drafted(cited: Path, tmp_path: Path) -> None:
    out = tmp_path / "agreement.md"
    result = draft(cited, out)
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("# ")


def test_without_the_consent_the_same_request_is_refused(cited: Path, tmp_path: Path) -> None:
    request = yaml.safe_load(cited.read_text(encoding="utf-8"))
    cited.write_text(yaml.safe_dump({k: v for k, v in request.items() if k != "consents"}), encoding="utf-8")
    result = draft(cited, tmp_path / "agreement.md")
    assert result.exit_code == 6 and not (tmp_path / "agreement.md").exists()


@pytest.mark.parametrize(("who", "code"), [((), 2), (("--as", "ghost"), 4)])
def test_a_draft_that_cannot_be_recorded_leaves_no_document(
    cited: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, who: tuple[str, ...], code: int
) -> None:
    monkeypatch.delenv("SHAREWISE_USER", raising=False)
    result = draft(cited, tmp_path / "agreement.md", "--record", *who)
    assert result.exit_code == code, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("agreement", ".agreement"))) == []
