"""Consent elements: each law's required elements are checked, each failure names its citation."""

from __future__ import annotations

import datetime as dt

import pytest

from sharewise.consent.validate import element_checks, validate_consent
from sharewise.domain.errors import InvalidDataError
from sharewise.policy.model import LawPack
from sharewise.services import consents as service
from sharewise.wiring import Control
from tests.consent.conftest import consent


def test_every_consent_element_in_the_law_pack_has_a_check(law: LawPack) -> None:
    checks = element_checks()
    missing = {
        (rule.id, element.id)
        for rule in law.all_rules()
        for version in rule.versions
        for element in version.consent_elements
        if element.id not in checks
    }
    assert not missing, sorted(missing)


def test_a_complete_part2_consent_is_valid(law: LawPack) -> None:
    assert service.validate(law, consent()) == []
    assert [r.rule for r in service.requirements_for(law, consent())] == ["part2.consent"]


def test_a_missing_revocation_statement_is_named_with_its_citation(law: LawPack) -> None:
    problems = service.validate(law, consent(statements=["redisclosure_warning", "part2_notice"]))
    assert [p.element for p in problems] == ["revocation"]
    assert "42 CFR 2.31" in str(problems[0])
    assert problems[0].authority == "part2"
    assert str(problems[0]).startswith(
        "Confidentiality of substance use disorder patient records (42 CFR Part 2) requires"
    )


def test_an_expiration_before_signing_is_a_defect(law: LawPack) -> None:
    problems = service.validate(law, consent(expiration={"date": "2026-01-01"}))
    assert any("expires before it takes effect" in p.reason for p in problems)
    assert any("the person's signature is dated after the consent expires" in p.reason for p in problems)


def test_every_signature_counts_not_only_the_first(law: LawPack) -> None:
    person = {"signer": "person", "name": "Ana Example", "signed_on": "2026-03-01", "method": "wet_ink"}
    guardian = {
        "signer": "representative",
        "name": "Guardian Example",
        "signed_on": "2027-06-01",
        "method": "wet_ink",
        "relationship": "guardian",
    }
    problems = service.validate(law, consent(signatures=[person, guardian]))
    assert [p.reason for p in problems if p.rule == "consent.dates"] == [
        "the representative's signature is dated after the consent expires"
    ]
    assert not [p for p in service.validate(law, consent(signatures=[person])) if p.rule == "consent.dates"]


def test_a_signature_dated_in_the_future_is_a_defect_when_the_day_is_known(law: LawPack) -> None:
    signed = consent(signatures=[{"signer": "person", "name": "A E", "signed_on": "2026-09-01", "method": "wet_ink"}])
    assert not [p for p in service.validate(law, signed) if p.rule == "consent.dates"]
    late = service.validate(law, signed, today=dt.date(2026, 5, 1))
    assert [p.reason for p in late if p.rule == "consent.dates"] == ["the person's signature is dated in the future"]


def test_a_consent_without_expiration_fails_part2(law: LawPack) -> None:
    problems = service.validate(law, consent(expiration={}))
    assert [p.element for p in problems] == ["expiration"]


def test_a_verbal_consent_is_not_written(law: LawPack) -> None:
    signature = {"signer": "person", "name": "Ana Example", "signed_on": "2026-03-01", "method": "verbal_documented"}
    problems = service.validate(law, consent(signatures=[signature]))
    assert {p.element for p in problems} == {"signature"}


def test_victim_services_consent_needs_time_limit_and_no_conditioning(law: LawPack) -> None:
    victim = consent(
        disclosers=[{"program": "domestic_violence_services"}],
        data=["victim_identifying_information"],
        recipients=[{"kind": "community_organization"}],
        purposes=["service_delivery"],
        expiration={"event": "when I say so"},
        statements=["right_to_revoke"],
    )
    elements = {p.element for p in service.validate(law, victim)}
    assert {"time_limited", "not_conditioned", "informed", "not_abuser"} <= elements


def test_a_minor_needs_a_parent_signature_under_vawa(law: LawPack) -> None:
    victim = consent(
        person_is_minor=True,
        disclosers=[{"program": "domestic_violence_services"}],
        data=["victim_identifying_information"],
        recipients=[{"kind": "community_organization"}],
        purposes=["service_delivery"],
        statements=["right_to_revoke", "informed", "abuser_not_signer", "no_conditioning_of_services"],
    )
    assert "minor" in {p.element for p in service.validate(law, victim)}
    parent = {
        "signer": "representative",
        "name": "P Example",
        "signed_on": "2026-03-01",
        "method": "wet_ink",
        "relationship": "parent",
    }
    signed = victim.model_copy(
        update={"signatures": (*victim.signatures, type(victim.signatures[0]).model_validate(parent))}
    )
    assert "minor" not in {p.element for p in service.validate(law, signed)}


def test_ferpa_and_part2_elements_are_both_checked_on_one_form(law: LawPack) -> None:
    both = consent(
        disclosers=[{"program": "sud_treatment"}, {"program": "k12_education"}],
        data=["sud_treatment_information", "education_record"],
    )
    rules = {r.rule for r in service.requirements_for(law, both)}
    assert {"part2.consent", "ferpa.prior-written-consent"} <= rules


def test_a_problem_names_the_authority_by_its_title_and_keeps_its_id(law: LawPack) -> None:
    titles = {a.id: a.name for a in law.authorities}
    incomplete = consent(statements=["redisclosure_warning", "part2_notice"])
    (problem,) = validate_consent(incomplete, service.requirements_for(law, incomplete), titles=titles)
    assert (problem.authority, problem.rule, problem.element) == ("part2", "part2.consent", "revocation")
    assert problem.title == "Confidentiality of substance use disorder patient records (42 CFR Part 2)"
    assert str(problem).startswith(f"{problem.title} requires '{problem.text}' (42 CFR 2.31")
    assert str(problem).endswith(": the statement 'right_to_revoke' is not given")
    assert "part2" not in str(problem).replace("Part 2", "")  # the id is data, not text people read


def test_an_authority_without_a_title_is_named_by_its_id(law: LawPack) -> None:
    incomplete = consent(statements=["redisclosure_warning", "part2_notice"])
    requirements = service.requirements_for(law, incomplete)
    for titles in (None, {}, {"ferpa": "Family Educational Rights and Privacy Act (education records)"}):
        (problem,) = validate_consent(incomplete, requirements, titles=titles)
        assert problem.title == "part2" and str(problem).startswith("part2 requires '")


def test_the_consents_own_date_check_reads_as_a_rule_of_every_consent(law: LawPack) -> None:
    backwards = consent(expiration={"date": "2026-01-01"})
    titles = {a.id: a.name for a in law.authorities}
    problems = validate_consent(backwards, service.requirements_for(law, backwards), titles=titles)
    dates = [p for p in problems if p.rule == "consent.dates"]
    assert [(p.authority, p.element, p.citations) for p in dates] == [("consent", "expiration", ())] * 2
    assert [str(p) for p in dates] == [
        "Every consent requires 'An expiration after the effective date': the consent expires before it takes effect",
        "Every consent requires 'An expiration after signing': the person's signature is dated after the consent expires",
    ]


def test_the_registry_refuses_a_signature_dated_after_the_day_it_is_recorded(control: Control, law: LawPack) -> None:
    signed = consent(signatures=[{"signer": "person", "name": "A E", "signed_on": "2026-09-01", "method": "wet_ink"}])
    with pytest.raises(InvalidDataError) as info:
        service.add(control, law, signed, actor="alice")  # the control's clock reads 2026-05-01
    assert any("dated in the future" in p.message for p in info.value.problems)


def test_a_minor_students_consent_needs_a_parents_signature_under_ferpa(law: LawPack) -> None:
    school = {
        "disclosers": [{"program": "k12_education"}],
        "data": ["education_record"],
        "purposes": ["service_delivery"],
        "person_is_minor": True,
        "statements": ["right_to_revoke", "redisclosure_warning"],
        "information_description": "grades and attendance",
    }
    alone = service.validate(law, consent(**school))
    ferpa = [p for p in alone if p.authority == "ferpa"]
    assert [(p.element, p.reason) for p in ferpa] == [
        ("signature_date", "the person is a minor and no parent or guardian signed")
    ]
    assert "34 CFR 99.30" in ferpa[0].citations
    parent = {"signer": "representative", "name": "P E", "signed_on": "2026-03-01", "method": "wet_ink"}
    with_parent = consent(
        **school, signatures=[*consent().model_dump()["signatures"], {**parent, "relationship": "parent"}]
    )
    assert not [p for p in service.validate(law, with_parent) if p.authority == "ferpa"]
