"""Overlays: each one's golden cases (trigger and non-trigger), combination and contradictions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharewise.domain.errors import InvalidLawPackError
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import make_lookup, parse_request
from sharewise.security import overlays as overlay_mod
from sharewise.security.catalog import load_catalog
from sharewise.services.security import LAW_DIR, SecurityLaw, specify
from tests.conftest import TODAY
from tests.security.conftest import make_request

FIXTURES = Path(__file__).parent / "fixtures"
CASE_FILES = sorted((LAW_DIR / "overlays").glob("*.cases.yaml"))


def _cases() -> list[Any]:
    found = []
    for path in CASE_FILES:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            found.append(pytest.param(path.name, case, id=f"{path.stem}:{case['name']}"))
    return found


@pytest.mark.parametrize(("file", "case"), _cases())
def test_overlay_golden_case(law: LawPack, sec: SecurityLaw, file: str, case: dict[str, Any]) -> None:
    request = parse_request(case["request"], law.vocabulary)
    lookup = overlay_mod.overlay_lookup(make_lookup(request), case.get("facts", {}))
    statuses = overlay_mod.select(sec.overlays, lookup, TODAY)
    overlay_id = yaml.safe_load((LAW_DIR / "overlays" / file.replace(".cases", "")).read_text())["id"]
    status = next(s for s in statuses if s.overlay == overlay_id)
    assert status.status == case["expect"]["status"], status.reasons
    assert list(status.questions) == case["expect"].get("questions", [])


def test_every_overlay_has_a_case_that_triggers_it_and_one_that_does_not(sec: SecurityLaw) -> None:
    seen: dict[str, set[str]] = {}
    for path in CASE_FILES:
        overlay_id = yaml.safe_load(Path(str(path).replace(".cases", "")).read_text())["id"]
        statuses = {c["expect"]["status"] for c in yaml.safe_load(path.read_text())["cases"]}
        seen[overlay_id] = statuses
    assert set(seen) == {o.id for o in sec.overlays.overlays}
    for overlay_id, statuses in seen.items():
        assert {"applies", "does_not_apply"} <= statuses, overlay_id


def test_the_issue_overlays_are_all_encoded(sec: SecurityLaw) -> None:
    assert {o.id for o in sec.overlays.overlays} == {
        "hipaa_security",
        "irs_pub_1075",
        "cms_mars_e",
        "part2_security",
        "uc_safeguards",
        "ssa_data_exchange",
        "cjis",
        "ferpa_reasonable_methods",
    }


def test_every_overlay_is_cited_and_uncertain_ones_explain_why(sec: SecurityLaw) -> None:
    for overlay in sec.overlays.overlays:
        assert overlay.citations
        assert all(r.citations for r in overlay.requirements)
        if overlay.confidence == "uncertain":
            assert overlay.notes and "[U]" in overlay.notes


def test_stricter_parameter_wins_when_overlays_combine(law: LawPack) -> None:
    request = make_request(
        law,
        source={"program": "juvenile_justice"},
        recipient={"kind": "state_or_local_agency", "program": "child_welfare"},
        purpose="child_protection",
        data=["identity", "juvenile_justice_record", "federal_tax_information", "ssa_data"],
    )
    spec = specify(law, request, TODAY, facts={"criminal_justice_information": True})
    values = {p.id: (p.value, p.set_by) for p in spec.parameters}
    assert values["audit_retention_years"] == (7, "irs_pub_1075")  # higher is stricter; CJIS says 1
    assert values["session_lock_minutes"] == (15, "irs_pub_1075")  # lower is stricter; CJIS says 30
    assert values["incident_report_hours"] == (1, "ssa_data_exchange")


def test_contradictory_overlays_are_an_error(law: LawPack) -> None:
    overlays = overlay_mod.load_overlays(FIXTURES / "contradictory", law.vocabulary, load_catalog().controls)
    request = make_request(law, data=["federal_tax_information"])
    statuses = overlay_mod.select(overlays, make_lookup(request), TODAY)
    with pytest.raises(InvalidLawPackError, match="contradictory overlays") as info:
        overlay_mod.resolve_parameters(overlays, statuses)
    assert "overlay_a sets 1; overlay_b sets 2" in str(info.value.problems[0])


def test_contradictory_overlays_that_do_not_both_apply_are_not_an_error(law: LawPack) -> None:
    overlays = overlay_mod.load_overlays(FIXTURES / "contradictory", law.vocabulary)
    statuses = overlay_mod.select(overlays, make_lookup(make_request(law)), TODAY)
    assert overlay_mod.resolve_parameters(overlays, statuses) == []


def test_a_broken_overlay_file_reports_every_problem_with_its_line(law: LawPack) -> None:
    with pytest.raises(InvalidLawPackError) as info:
        overlay_mod.load_overlays(FIXTURES / "bad_overlay", law.vocabulary, load_catalog().controls)
    messages = [str(p) for p in info.value.problems]
    assert any("overlays/bad.yaml:7" in m and "helth_information" in m and "health_information" in m for m in messages)
    assert any("floor" in m for m in messages)
    assert any("unknown control 'zz-99'" in m for m in messages)


def test_an_undetermined_overlay_is_kept_in_the_specification_as_conditional(law: LawPack) -> None:
    request = make_request(
        law,
        source={"program": "juvenile_justice"},
        recipient={"kind": "state_or_local_agency", "program": "child_welfare"},
        purpose="child_protection",
        data=["identity", "juvenile_justice_record"],
    )
    spec = specify(law, request, TODAY)
    assert ("facts.criminal_justice_information", spec.questions[0][1]) == spec.questions[0]
    duties = [d for d in spec.overlay_duties if d.overlay == "cjis"]
    assert duties and all(d.conditional for d in duties)


def test_an_overlay_requirement_not_yet_in_force_is_left_out(law: LawPack) -> None:
    request = make_request(
        law,
        source={"program": "sud_treatment", "roles": ["part2_program"]},
        recipient={"kind": "state_or_local_agency", "program": "child_welfare"},
        purpose="child_protection",
        data=["identity", "sud_treatment_information"],
    )
    before = specify(law, request, dt.date(2025, 6, 1))
    after = specify(law, request, dt.date(2026, 3, 1))
    assert "part2_security.breach-notification" not in {d.id for d in before.overlay_duties}
    assert "part2_security.breach-notification" in {d.id for d in after.overlay_duties}
