"""Rendered agreements: golden Markdown/HTML snapshots, and the text of the DOCX and PDF."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from docx import Document

from sharewise.agreements import render
from sharewise.agreements.draft import AgreementDraft
from sharewise.agreements.parties import Parties
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request
from sharewise.services import documents
from tests import snapshot
from tests.agreements.conftest import REQUESTS, SNAPSHOTS, TYPE_OF, pdf_text

TODAY = dt.date(2026, 11, 25)


def make(law: LawPack, case: str, parties: Parties) -> AgreementDraft:
    request = parse_request(REQUESTS[case], law.vocabulary)
    terms = parties.agreement.model_copy(update={"term_months": None})
    return documents.draft(law, request, parties.model_copy(update={"agreement": terms}), TODAY, TYPE_OF[case])


def check_snapshot(name: str, text: str) -> None:
    snapshot.check_snapshot(SNAPSHOTS / name, text)


@pytest.mark.parametrize("case", sorted(REQUESTS))
def test_each_agreement_type_matches_its_golden_markdown(law: LawPack, parties: Parties, case: str) -> None:
    check_snapshot(f"{case}.md", render.to_markdown(make(law, case, parties)))


def test_the_data_sharing_agreement_matches_its_golden_html(law: LawPack, parties: Parties) -> None:
    check_snapshot("data_sharing_agreement.html", render.to_html(make(law, "data_sharing_agreement", parties)))


def test_html_escapes_text_from_the_parties_file(law: LawPack, parties: Parties) -> None:
    sneaky = parties.discloser.model_copy(update={"legal_name": "<script>x</script> Agency"})
    draft = make(law, "data_sharing_agreement", parties.model_copy(update={"discloser": sneaky}))
    html = render.to_html(draft)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_the_docx_has_every_clause_heading_and_the_appendix_table(law: LawPack, parties: Parties) -> None:
    draft = make(law, "business_associate_agreement", parties)
    doc = Document(io.BytesIO(render.to_docx(draft)))
    headings = [p.text for p in doc.paragraphs if p.style is not None and p.style.name.startswith("Heading")]
    for section in draft.sections:
        for clause in section.clauses:
            assert f"{clause.number} {clause.title}" in headings
    table = doc.tables[-1]
    cells = {cell.text for row in table.rows for cell in row.cells}
    assert "hipaa_baa_terms" in cells and "45 CFR 164.504(e)" in cells
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "make its internal practices, books and records" in text
    assert "Appendix B. Five Safes summary" in headings
    assert [h for h in headings if h.startswith("Safe ")] == [
        "Safe project (settled)",
        "Safe people (settled)",
        "Safe setting (open)",
        "Safe data (settled)",
        "Safe outputs (settled)",
    ]


def test_the_pdf_carries_the_title_clauses_and_citations(law: LawPack, parties: Parties) -> None:
    draft = make(law, "qualified_service_organization_agreement", parties)
    data = render.to_pdf(draft)
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "Qualified Service Organization Agreement" in text
    assert "Qualified service organization terms" in text
    assert "42 CFR 2.11" in text
    assert "Five Safes summary" in text and "Recipient assessment: not yet done." in text


def test_every_format_renders_to_bytes(law: LawPack, parties: Parties) -> None:
    draft = make(law, "data_use_agreement", parties)
    for fmt in render.FORMATS:
        assert render.render(draft, fmt)


def test_snapshots_have_no_stale_files() -> None:
    expected = {f"{case}.md" for case in REQUESTS} | {"data_sharing_agreement.html"}
    present = {p.name for p in Path(SNAPSHOTS).iterdir() if p.suffix in (".md", ".html")}
    assert present <= expected, f"stale snapshots: {sorted(present - expected)}"
