"""Consent forms: every element of every governing authority, protected check boxes, the Part 2 notice, and a filled-in form that validates."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from docx import Document
from typer.testing import CliRunner

from sharewise.cli.documents import consent_form as consent_form_command
from sharewise.consent import forms
from sharewise.consent.validate import validate_consent
from sharewise.domain.consent import (
    ConsentRecord,
    Discloser,
    Expiration,
    PersonIdentifiers,
    RecipientSpec,
    Signature,
)
from sharewise.domain.errors import NotPermittedError
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request
from sharewise.services import documents
from sharewise.services.determinations import determine
from tests import snapshot
from tests.agreements.conftest import pdf_text

TODAY = dt.date(2026, 11, 25)

REQUESTS: dict[str, dict[str, Any]] = {
    "sud": {
        "as_of": "2026-03-01",
        "source": {"program": "sud_treatment", "agency": "Lakeview Recovery Center", "roles": ["hipaa_covered_entity"]},
        "recipient": {"kind": "state_or_local_agency", "program": "child_welfare", "name": "Lakeview child welfare"},
        "purpose": "care_coordination",
        "data": ["identity", "sud_treatment_information", "mental_health"],
    },
    "victim": {
        "as_of": "2026-03-01",
        "source": {"program": "domestic_violence_services"},
        "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
        "purpose": "service_delivery",
        "data": ["identity", "victim_identifying_information"],
    },
    "school": {
        "as_of": "2026-03-01",
        "source": {"program": "k12_education"},
        "recipient": {"kind": "state_or_local_agency", "program": "child_welfare"},
        "purpose": "service_delivery",
        "data": ["identity", "education_record"],
    },
    "uc": {
        "as_of": "2026-03-01",
        "source": {"program": "unemployment_insurance"},
        "recipient": {"kind": "community_organization"},
        "purpose": "service_delivery",
        "data": ["identity", "uc_wage_and_claim_information"],
    },
    "head_start": {
        "as_of": "2026-03-01",
        "source": {"program": "head_start"},
        "recipient": {"kind": "health_care_provider"},
        "purpose": "service_delivery",
        "data": ["identity", "health_information"],
    },
}


def request_for(law: LawPack, case: str, **changes: Any) -> Request:
    return parse_request({**REQUESTS[case], **changes}, law.vocabulary)


def form_for(law: LawPack, case: str, **changes: Any) -> forms.ConsentForm:
    return documents.consent_form(law, request_for(law, case, **changes), TODAY)


def test_a_form_carries_every_element_of_every_governing_authority(law: LawPack) -> None:
    request = request_for(law, "sud")
    requirements = documents.consent_requirements(law, determine(law, request, TODAY))
    assert {r.authority for r in requirements} >= {"part2", "hipaa"}  # a multi-authority release
    form = documents.consent_form(law, request, TODAY)
    listed = {(row.element, row.text) for row in form.elements}
    for req in requirements:
        for element in req.elements:
            assert (element.id, element.text) in listed
    assert all(row.where != "review by hand" for row in form.elements)


def test_hipaa_statements_are_on_the_form(law: LawPack) -> None:
    ids = form_for(law, "sud").statement_ids
    assert {"right_to_revoke", "conditioning", "redisclosure_warning"} <= set(ids)


def test_specially_protected_categories_get_their_own_check_boxes(law: LawPack) -> None:
    form = form_for(law, "sud")
    assert [b.id for b in form.protected] == ["sud_treatment_information", "mental_health"]
    assert [b.id for b in form.information] == ["identity"]
    assert [b.id for b in form_for(law, "school").protected] == ["education_record"]
    assert [b.id for b in form_for(law, "victim").protected] == ["victim_identifying_information"]


def test_the_part2_notice_appears_only_where_part2_governs(law: LawPack) -> None:
    assert form_for(law, "sud").part2_notice is not None
    assert form_for(law, "school").part2_notice is None


def test_the_part2_notice_is_the_version_in_force_on_the_date(law: LawPack) -> None:
    old = form_for(law, "sud", as_of="2023-06-01")
    new = form_for(law, "sud", as_of="2026-03-01")
    assert old.part2_notice is not None and "A general authorization" in old.part2_notice
    assert new.part2_notice is not None and "civil, criminal, administrative, or legislative" in new.part2_notice
    # Before the 2020 amendment the notice spoke of information that identifies a patient as having a disorder.
    first = form_for(law, "sud", as_of="2019-06-01")
    assert first.part2_notice is not None and first.part2_notice.startswith("This information has been disclosed")
    assert "identifies a patient as having or having had a substance use disorder" in first.part2_notice
    assert old.part2_notice.startswith("This record which has been disclosed to you")
    # The 2024 statement is whole: its conditions and closing sentence, no placeholder left for counsel to fill.
    assert "(iii) You have received the record from a covered entity or business associate" in new.part2_notice
    assert new.part2_notice.endswith("written consent to further use or redisclose the record (see 42 CFR 2.31).")
    assert "[" not in new.part2_notice
    # Its list comes from public copies, not the Federal Register: whoever generates the form is told.
    assert any("42 CFR 2.32(a)(1) notice for this date needs counsel's review" in w for w in new.warnings)
    assert not any("counsel's review" in w for w in old.warnings)


def test_a_victim_services_form_requires_an_end_date_and_says_services_do_not_depend_on_it(law: LawPack) -> None:
    form = form_for(law, "victim")
    assert not form.expiration_event_allowed
    assert "requires an end date" in form.expiration_text
    assert {"no_conditioning_of_services", "abuser_not_signer", "informed"} <= set(form.statement_ids)
    assert any("minor" in rule for rule in form.who_signs)


def test_federal_tax_information_is_left_off_the_form_with_a_reason(law: LawPack) -> None:
    with pytest.raises(NotPermittedError):
        form_for(law, "head_start", data=["identity", "federal_tax_information"])


def fill_in(form: forms.ConsentForm, request: Request) -> ConsentRecord:
    """What a caseworker records from a completed copy of the form."""
    return ConsentRecord(
        person=PersonIdentifiers(given_name="Ada", family_name="Example", date_of_birth=dt.date(1990, 1, 1)),
        person_is_minor=False,
        disclosers=(Discloser(program=request.source.program, agency=request.source.agency),),
        recipients=(RecipientSpec(kind=request.recipient.kind, program=request.recipient.program),),
        data=tuple(b.id for b in (*form.information, *form.protected)),
        information_description="As checked on the form.",
        purposes=(request.purpose,),
        effective=dt.date(2026, 3, 1),
        expiration=Expiration(date=dt.date(2027, 2, 28)),
        signatures=(Signature(signer="person", name="A. Person", signed_on=dt.date(2026, 3, 1), method="wet_ink"),),
        statements=form.statement_ids,
        form="sharewise-universal-release",
    )


@pytest.mark.parametrize("case", sorted(REQUESTS))
def test_a_filled_in_form_validates_against_every_governing_authority(law: LawPack, case: str) -> None:
    request = request_for(law, case)
    form = documents.consent_form(law, request, TODAY)
    requirements = documents.consent_requirements(law, determine(law, request, TODAY))
    problems = validate_consent(fill_in(form, request), requirements)
    assert problems == [], [str(p) for p in problems]


def test_the_html_form_has_every_part_and_escapes_data(law: LawPack) -> None:
    request = request_for(law, "sud")
    sneaky = request.model_copy(update={"recipient": request.recipient.model_copy(update={"name": "<b>x</b>"})})
    html = forms.to_html(documents.consent_form(law, sneaky, TODAY))
    for part in ("Part 0", "Part 1", "Part 2", "Part 3", "Part 4", "Part 5", "Part 6", "Part 7"):
        assert part in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "Initials" in html


def test_the_docx_form_has_signature_blocks_for_the_person_and_a_representative(law: LawPack) -> None:
    doc = Document(io.BytesIO(forms.to_docx(form_for(law, "school"))))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Signature of the person this form is about" in text
    assert "Signature of parent, guardian or other representative" in text
    assert "School (education) records" in text
    assert "To cancel this permission, write to (name and address)" in text  # how to revoke (42 CFR 2.31, 164.508)


def test_the_pdf_form_carries_the_part2_notice(law: LawPack) -> None:
    data = forms.to_pdf(form_for(law, "sud"))
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "42 CFR 2.32(a)(1)" in text
    assert "Permission to share my information" in text
    assert "To cancel this permission, write to" in text


def test_the_consent_form_command_writes_each_format(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("consent-form")(consent_form_command)
    app.command("unused")(lambda: None)  # keep consent-form a subcommand, as when registered
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUESTS["sud"]))
    for fmt in forms.FORMATS:
        out = tmp_path / f"form.{fmt}"
        result = CliRunner().invoke(app, ["consent-form", str(request), "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 0
    bad = CliRunner().invoke(app, ["consent-form", str(request), "--format", "md", "--out", str(tmp_path / "f.md")])
    assert bad.exit_code == 2 and "'md' is not one of docx, pdf, html" in bad.output
    assert not (tmp_path / "f.md").exists()


# Golden rendered forms, reviewed as files: each kind of request on the date of its case, and the
# Part 2 release on a date under each earlier version of the 42 CFR 2.32 statement.
FORM_SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
SNAPSHOT_FORMS: dict[str, tuple[str, dict[str, Any]]] = {
    **{case: (case, {}) for case in REQUESTS},
    "sud-2019": ("sud", {"as_of": "2019-06-01"}),
    "sud-2023": ("sud", {"as_of": "2023-06-01"}),
}


@pytest.mark.parametrize("name", sorted(SNAPSHOT_FORMS))
def test_each_form_matches_its_golden_html(law: LawPack, name: str) -> None:
    case, changes = SNAPSHOT_FORMS[name]
    snapshot.check_snapshot(FORM_SNAPSHOTS / f"{name}.html", forms.to_html(form_for(law, case, **changes)))


def test_form_snapshots_have_no_stale_files() -> None:
    present = {p.name for p in FORM_SNAPSHOTS.iterdir()}
    assert present <= {f"{name}.html" for name in SNAPSHOT_FORMS}, f"stale snapshots: {sorted(present)}"
