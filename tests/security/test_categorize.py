"""FIPS 199 categorization: information types, form, volume, purpose, floors and reviewer changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharewise.domain.errors import InvalidDataError, InvalidLawPackError
from sharewise.policy.model import LawPack
from sharewise.security.categorize import adjust, categorize, load_rules
from sharewise.services.security import LAW_DIR, SecurityLaw, specify
from tests.conftest import TODAY
from tests.security.conftest import FakeSink, make_request


def test_every_vocabulary_data_category_has_an_information_type(law: LawPack, sec: SecurityLaw) -> None:
    assert set(sec.rules.types) == set(law.vocabulary.data_categories)


def test_an_information_types_file_missing_a_category_is_invalid(law: LawPack, tmp_path: Path) -> None:
    text = (LAW_DIR / "information-types.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "information-types.yaml"
    broken.write_text(text.replace("  demographics:", "  demografics:"), encoding="utf-8")
    with pytest.raises(InvalidLawPackError) as info:
        load_rules(broken, law.vocabulary.data_categories, law.vocabulary.purposes)
    messages = [str(p) for p in info.value.problems]
    assert any("demografics" in m and "did you mean 'demographics'" in m for m in messages)
    assert any("'demographics' has no information type" in m for m in messages)


def test_unknown_data_categories_are_an_error_naming_each_one(sec: SecurityLaw) -> None:
    with pytest.raises(InvalidDataError) as info:
        categorize(sec.rules, ["identity", "helth_information", "shoe_size"], "identified", "research")
    problems = [str(p) for p in info.value.problems]
    assert problems[0] == "data[1]: unknown data category 'helth_information' (did you mean 'health_information'?)"
    assert problems[1].startswith("data[2]: unknown data category 'shoe_size'")


def test_the_highest_information_type_sets_each_objective(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["demographics", "sud_treatment_information"], "identified", "research")
    assert (cat.confidentiality, cat.integrity, cat.availability) == ("high", "moderate", "low")
    assert cat.baseline == "HIGH"
    assert any(r.subject == "sud_treatment_information" and r.objective == "confidentiality" for r in cat.reasons)


def test_low_data_selects_the_low_baseline(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["demographics", "directory_information"], "identified", "statistics")
    assert cat.overall == "low"
    assert cat.baseline == "LOW"


def test_moderate_data_selects_the_moderate_baseline(sec: SecurityLaw) -> None:
    assert categorize(sec.rules, ["identity", "case_records"], "identified", "research").baseline == "MODERATE"


def test_aggregate_counts_are_low_confidentiality_and_not_personal_information(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["victim_identifying_information"], "aggregate", "federal_reporting")
    assert cat.confidentiality == "low"
    assert cat.privacy is False
    assert any(r.source == "form" for r in cat.reasons)


def test_a_limited_data_set_lowers_confidentiality_one_level(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["mental_health"], "limited_data_set", "research")
    assert cat.confidentiality == "moderate"
    assert cat.privacy is True


def test_a_large_identified_extract_raises_confidentiality(sec: SecurityLaw) -> None:
    small = categorize(sec.rules, ["identity", "case_records"], "identified", "research", records=9_999)
    large = categorize(sec.rules, ["identity", "case_records"], "identified", "research", records=10_000)
    assert (small.confidentiality, large.confidentiality) == ("moderate", "high")
    assert any(r.source == "volume" for r in large.reasons)


def test_a_purpose_that_needs_the_records_in_time_raises_availability(sec: SecurityLaw) -> None:
    assert categorize(sec.rules, ["identity"], "identified", "child_protection").availability == "moderate"
    assert categorize(sec.rules, ["identity"], "identified", "research").availability == "low"


def test_an_overlay_floor_raises_a_level_and_says_which_overlay(law: LawPack) -> None:
    request = make_request(law, data=["demographics", "federal_tax_information"], form="limited_data_set")
    cat = specify(law, request, TODAY).categorization
    assert cat.confidentiality == "moderate"
    assert any(r.source == "overlay" and r.subject == "irs_pub_1075" for r in cat.reasons)


def test_lowering_a_categorization_without_justification_is_an_error(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["identity", "mental_health"], "identified", "treatment")
    with pytest.raises(
        InvalidDataError, match="lowering confidentiality from high to moderate needs a recorded justification"
    ):
        adjust(cat, "confidentiality", "moderate", "  ", "rivera")


def test_lowering_with_a_justification_is_recorded(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["identity", "mental_health"], "identified", "treatment")
    lowered = adjust(cat, "confidentiality", "moderate", "Only screening flags, no clinical notes.", "rivera")
    assert lowered.confidentiality == "moderate"
    assert lowered.adjustments[0].lowered
    assert lowered.reasons[-1].source == "reviewer"


def test_raising_is_recorded_with_its_justification(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["identity"], "identified", "research")
    raised = adjust(cat, "integrity", "high", "Records drive benefit terminations.", "rivera")
    assert raised.integrity == "high"
    assert raised.baseline == "HIGH"
    assert raised.adjustments[0].justification == "Records drive benefit terminations."


def test_lowering_below_an_overlay_floor_is_an_error_even_with_justification(law: LawPack) -> None:
    request = make_request(law, data=["demographics", "federal_tax_information"], form="limited_data_set")
    with pytest.raises(InvalidDataError) as info:
        specify(law, request, TODAY, changes=[("confidentiality", "low")], justification="small", sink=FakeSink())
    assert "irs_pub_1075 overlay requires at least moderate" in str(info.value.problems[0])


def test_reviewer_changes_are_reported_to_the_audit_sink(law: LawPack, sink: FakeSink) -> None:
    request = make_request(law, data=["identity", "mental_health"], purpose="care_coordination")
    specify(
        law,
        request,
        TODAY,
        changes=[("confidentiality", "moderate")],
        justification="flags only",
        reviewer="rivera",
        sink=sink,
    )
    (event,) = sink.events
    assert event.action == "categorization-lowered"
    assert event.details == {"objective": "confidentiality", "from": "high", "to": "moderate", "justified": True}


def test_a_failed_audit_write_fails_the_change(law: LawPack) -> None:
    request = make_request(law, data=["identity"])
    with pytest.raises(RuntimeError):
        specify(law, request, TODAY, changes=[("integrity", "high")], justification="x", sink=FakeSink(fail=True))


def test_an_unknown_objective_or_level_is_an_error(sec: SecurityLaw) -> None:
    cat = categorize(sec.rules, ["identity"], "identified", "research")
    with pytest.raises(InvalidDataError):
        adjust(cat, "confidentality", "high", "x", "r")
    with pytest.raises(InvalidDataError):
        adjust(cat, "confidentiality", "severe", "x", "r")
