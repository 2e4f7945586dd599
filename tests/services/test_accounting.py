"""The accounting of disclosures lists what each law requires and counts what it exempts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.audit.signing import CheckpointSigner
from sharewise.audit.sink import StoreAuditSink
from sharewise.audit.trail import AuditTrail
from sharewise.domain.consent import PersonIdentifiers
from sharewise.domain.errors import AccessDeniedError
from sharewise.domain.events import DisclosureEvent
from sharewise.policy.model import LawPack
from sharewise.services import accounting
from sharewise.store.database import Store
from sharewise.wiring import Control, Settings

ANA = PersonIdentifiers(given_name="Ana", family_name="Example", date_of_birth=dt.date(1990, 4, 2))
BO = PersonIdentifiers(given_name="Bo", family_name="Other", date_of_birth=dt.date(1985, 1, 1))


@pytest.fixture
def control(store: Store, tmp_path: Path) -> Control:
    trail = AuditTrail(lambda: dt.datetime(2026, 11, 1, tzinfo=dt.UTC), CheckpointSigner(Ed25519PrivateKey.generate()))
    return Control(store, trail, StoreAuditSink(store, trail), Settings(key_dir=tmp_path / "keys"))


def disclose(
    control: Control,
    share: str,
    program: str,
    categories: tuple[str, ...],
    purpose: str,
    basis: tuple[str, ...],
    form: str = "identified",
    people: tuple[PersonIdentifiers, ...] = (ANA,),
) -> None:
    tokens = tuple(accounting.person_token(control, p) for p in people)
    control.sink.record_disclosure(
        DisclosureEvent(
            share_id=share,
            recipient=f"Recipient of {share}",
            purpose=purpose,
            data_categories=categories,
            legal_basis=basis,
            law_version="federal-2026.1",
            law_hash="h" * 64,
            row_count=len(tokens),
            person_tokens=tokens,
            at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
            form=form,
            source_program=program,
        ),
        actor="steward",
    )


def test_hipaa_lists_oversight_but_exempts_treatment_and_limited_data_sets(control: Control, law: LawPack) -> None:
    disclose(
        control, "s-oversight", "medicaid", ("health_information",), "health_oversight", ("hipaa.health-oversight",)
    )
    disclose(control, "s-tpo", "medicaid", ("health_information",), "treatment", ("hipaa.tpo",))
    disclose(
        control,
        "s-lds",
        "medicaid",
        ("health_information",),
        "research",
        ("hipaa.limited-data-set",),
        form="limited_data_set",
    )
    acc = accounting.accounting_for(control, law, ANA, dt.date(2026, 1, 1), "auditor")
    assert [e.share_id for e in acc.entries] == ["s-oversight"]
    assert acc.entries[0].required_by == ["hipaa"]
    assert acc.exempt == {"45 CFR 164.528(a)(1)(i)": 1, "45 CFR 164.528(a)(1)(viii)": 1}


def test_part2_lists_only_disclosures_made_with_consent(control: Control, law: LawPack) -> None:
    disclose(
        control, "s-consent", "sud_treatment", ("sud_treatment_information",), "care_coordination", ("part2.consent",)
    )
    disclose(
        control,
        "s-report",
        "sud_treatment",
        ("sud_treatment_information",),
        "child_abuse_reporting",
        ("part2.child-abuse-report",),
    )
    acc = accounting.accounting_for(control, law, ANA, None, "auditor")
    assert [e.share_id for e in acc.entries] == ["s-consent"]


def test_another_persons_disclosures_are_not_listed(control: Control, law: LawPack) -> None:
    disclose(
        control,
        "s-bo",
        "medicaid",
        ("health_information",),
        "health_oversight",
        ("hipaa.health-oversight",),
        people=(BO,),
    )
    assert accounting.accounting_for(control, law, ANA, None, "auditor").entries == []


def test_exports_csv_fhir_and_pdf(control: Control, law: LawPack, tmp_path: Path) -> None:
    disclose(
        control, "s-oversight", "medicaid", ("health_information",), "health_oversight", ("hipaa.health-oversight",)
    )
    acc = accounting.accounting_for(control, law, ANA, None, "auditor")
    assert "45 CFR 164.512" in accounting.to_csv(acc)
    (event,) = accounting.to_fhir_audit_events(acc, "Patient/p1")
    assert event["resourceType"] == "AuditEvent" and event["entity"][0]["what"]["reference"] == "Patient/p1"
    pdf = tmp_path / "accounting.pdf"
    accounting.to_pdf(acc, "Ana Example", pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    accounting.to_pdf(acc, "Ana <b>O'Brien & Sons", pdf)  # markup characters in names are text, not markup
    assert pdf.read_bytes().startswith(b"%PDF")


def test_every_rule_named_in_the_regimes_exists(law: LawPack) -> None:
    for name, regime in accounting.regimes().items():
        for exemption in regime.get("exempt", []):
            for rule_id in exemption.get("rules", []):
                assert law.rule(rule_id) is not None, f"{name}: unknown rule {rule_id}"


def test_csv_cells_cannot_start_a_formula() -> None:
    assert accounting._safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"


def test_disclosures_are_counted_by_month_for_stewards_and_auditors(control: Control) -> None:
    from sharewise.services import workflow

    for share in ("s-1", "s-2"):
        disclose(control, share, "snap", ("identity",), "eligibility_determination", ("snap.program-administration",))
    counts = accounting.disclosures_by_month(control, "auditor", dt.date(2026, 1, 1))
    assert counts == {"2026-03": 2}  # the disclosures are dated 1 March 2026
    assert accounting.disclosures_by_month(control, "auditor", dt.date(2026, 4, 1)) == {}
    workflow.add_agency(control, "dhs", "DHS", None)
    workflow.add_user(control, "admin", "Admin", "dhs", {"administrator"}, None)
    workflow.add_user(control, "aud", "Aud", "dhs", {"auditor"}, "admin")
    assert accounting.disclosures_by_month(control, "aud", dt.date(2026, 1, 1)) == {"2026-03": 2}
    with pytest.raises(AccessDeniedError):
        accounting.disclosures_by_month(control, "admin", dt.date(2026, 1, 1))
