"""The safeguards specification: baseline plus overlays, a duty and evidence for every control."""

from __future__ import annotations

from sharewise.policy.model import LawPack
from sharewise.security.catalog import load_catalog
from sharewise.security.safeguards import render_markdown, security_clause
from sharewise.services.security import specify
from tests.conftest import TODAY
from tests.security.conftest import make_request


def test_the_specification_holds_the_selected_baseline_and_the_privacy_baseline(law: LawPack) -> None:
    spec = specify(law, make_request(law, data=["identity", "case_records"]), TODAY)
    catalog = load_catalog()
    ids = {s.control_id for s in spec.safeguards}
    assert spec.baselines == ("MODERATE", "PRIVACY")
    assert catalog.baseline("MODERATE") | catalog.baseline("PRIVACY") == ids


def test_aggregate_shares_leave_out_the_privacy_baseline(law: LawPack) -> None:
    spec = specify(law, make_request(law, data=["demographics"], form="aggregate", purpose="statistics"), TODAY)
    assert spec.baselines == ("LOW",)
    assert {s.control_id for s in spec.safeguards} == load_catalog().baseline("LOW")


def test_every_safeguard_has_a_plain_duty_a_requirement_and_evidence(law: LawPack) -> None:
    spec = specify(
        law, make_request(law, data=["sud_treatment_information"], source={"program": "sud_treatment"}), TODAY
    )
    for s in spec.safeguards:
        assert s.duty and s.title and s.label
        assert s.requirement
        assert s.evidence, s.control_id


def test_overlay_requirements_add_controls_beyond_the_baseline(law: LawPack) -> None:
    request = make_request(
        law, data=["demographics", "federal_tax_information"], form="limited_data_set", purpose="statistics"
    )
    spec = specify(law, request, TODAY)
    ir6 = spec.safeguard("ir-6")
    assert ir6 is not None
    assert "overlay irs_pub_1075" in ir6.selected_by
    assert "irs_pub_1075.incident-reporting" in ir6.overlay_requirements
    assert any("24" in p for p in ir6.parameters)


def test_the_security_clause_names_each_binding_overlay_with_its_citations(law: LawPack) -> None:
    request = make_request(
        law,
        source={"program": "unemployment_insurance"},
        recipient={"kind": "state_or_local_agency", "program": "snap"},
        data=["identity", "uc_wage_and_claim_information"],
    )
    clause = security_clause(specify(law, request, TODAY))
    assert "20 CFR 603.9" in clause
    assert "MODERATE baseline and PRIVACY baseline" in clause
    assert "AES-256-GCM" in clause


def test_the_markdown_specification_lists_every_control(law: LawPack) -> None:
    spec = specify(law, make_request(law), TODAY)
    text = render_markdown(spec)
    assert all(f"| {s.label} |" in text for s in spec.safeguards)
