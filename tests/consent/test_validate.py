"""Consent elements: each law's required elements are checked, each failure names its citation."""

from __future__ import annotations

from sharewise.consent.validate import element_checks, validate_consent
from sharewise.policy.model import LawPack
from sharewise.services import consents as service
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
    assert any("expires before it was signed" in p.reason for p in problems)


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
    assert [(p.authority, p.element, p.citations) for p in dates] == [("consent", "expiration", ())]
    assert str(dates[0]) == (
        "Every consent requires 'An expiration after signing': the consent expires before it was signed"
    )
