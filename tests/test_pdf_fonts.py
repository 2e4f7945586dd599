"""PDFs print names in any Latin, Greek or Cyrillic script, and say when a character cannot be shown."""

from __future__ import annotations

from pathlib import Path

import yaml

from sharewise.engines import pdf_fonts
from sharewise.policy.model import LawPack
from sharewise.services import documents
from tests.agreements.conftest import EXAMPLE_PARTIES, REQUESTS
from tests.conftest import TODAY
from tests.consent.test_forms import REQUESTS as FORM_REQUESTS


def test_this_machine_prints_pdfs_in_a_unicode_family() -> None:
    # make system-deps installs fonts-dejavu-core; a machine without it would print boxes for Łódź.
    assert pdf_fonts.family("sans").regular == "DejaVuSans"
    assert pdf_fonts.family("serif").regular == "DejaVuSerif"
    assert not pdf_fonts.missing_characters("Łódź Müller Ñuñoa Ωmega Жанна", pdf_fonts.family("sans"))
    assert pdf_fonts.missing_characters("王小明", pdf_fonts.family("sans")) == {"王", "小", "明"}


def test_the_built_in_fonts_know_they_stop_at_windows_1252() -> None:
    helvetica = pdf_fonts.FontFamily(*pdf_fonts.BUILT_IN["sans"], truetype=False)
    assert pdf_fonts.missing_characters("José Müller", helvetica) == set()
    assert pdf_fonts.missing_characters("Łódź", helvetica) == {"Ł", "ź"}


def test_a_consent_form_pdf_embeds_the_font_and_warns_only_for_what_it_cannot_show(
    law: LawPack, tmp_path: Path
) -> None:
    request = {**FORM_REQUESTS["sud"], "source": {**FORM_REQUESTS["sud"]["source"], "agency": "Łódź Recovery"}}
    path = tmp_path / "request.yaml"
    path.write_text(yaml.safe_dump(request, allow_unicode=True), encoding="utf-8")
    made = documents.consent_form_file(law, path, "pdf", tmp_path / "form.pdf", TODAY)
    assert b"DejaVuSans" in (tmp_path / "form.pdf").read_bytes()
    assert not any("cannot show" in w for w in made.warnings)
    request["source"]["agency"] = "王 Recovery"
    path.write_text(yaml.safe_dump(request, allow_unicode=True), encoding="utf-8")
    made = documents.consent_form_file(law, path, "pdf", tmp_path / "form.pdf", TODAY)
    assert any("the PDF cannot show 1 character(s)" in w for w in made.warnings)
    docx = documents.consent_form_file(law, path, "docx", tmp_path / "form.docx", TODAY)
    assert not any("cannot show" in w for w in docx.warnings)  # DOCX carries any character


def test_an_agreement_pdf_prints_the_parties_names(law: LawPack, tmp_path: Path) -> None:
    parties = yaml.safe_load(EXAMPLE_PARTIES.read_text(encoding="utf-8"))
    parties["recipient"]["legal_name"] = "Służba Zdrowia Łódź"
    parties_file = tmp_path / "parties.yaml"
    parties_file.write_text(yaml.safe_dump(parties, allow_unicode=True), encoding="utf-8")
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUESTS["data_sharing_agreement"]), encoding="utf-8")
    made = documents.draft_agreement_file(law, request, parties_file, "pdf", tmp_path / "a.pdf", TODAY)
    assert b"DejaVuSerif" in (tmp_path / "a.pdf").read_bytes()
    assert not any("cannot show" in w for w in made.warnings)
