"""The generated rule reference is complete and kept in sync with the law pack."""

from __future__ import annotations

from pathlib import Path

from sharewise.policy.model import LawPack
from sharewise.services.law_docs import render_all, write_all
from tests.conftest import REPO

DOCS = REPO / "docs" / "reference" / "rules"


def test_every_rule_and_citation_is_listed(law: LawPack) -> None:
    pages = render_all(law)
    for authority in law.authorities:
        page = pages[f"{authority.id}.md"]
        for rule in authority.rules:
            assert f"`{rule.id}`" in page
            for version in rule.versions:
                for citation in version.citations:
                    assert citation.cite in page
    assert "court_order" in pages["vocabulary.md"]


def test_committed_reference_pages_are_up_to_date(law: LawPack) -> None:
    pages = render_all(law)
    stale = [name for name, text in pages.items() if not (DOCS / name).is_file() or (DOCS / name).read_text() != text]
    extra = [p.name for p in DOCS.glob("*.md") if p.name not in pages]
    assert not stale and not extra, f"run `sharewise law docs`: stale {stale}, extra {extra}"


def test_write_all_removes_pages_of_removed_authorities(law: LawPack, tmp_path: Path) -> None:
    (tmp_path / "gone.md").write_text("old")
    write_all(law, tmp_path)
    assert not (tmp_path / "gone.md").exists()
    assert (tmp_path / "index.md").is_file()
