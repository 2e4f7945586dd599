"""The clause library covers every obligation of the federal pack, and rejects broken clause files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharewise.agreements.library import ClauseLibrary, load_library
from sharewise.domain.errors import InvalidDataError
from sharewise.policy.model import LawPack

# The vocabulary's documents that are agreements between parties (law-brief 5.1).
AGREEMENT_DOCUMENTS = {
    "memorandum_of_understanding",
    "data_sharing_agreement",
    "data_use_agreement",
    "business_associate_agreement",
    "qualified_service_organization_agreement",
    "ferpa_study_agreement",
    "ferpa_audit_evaluation_agreement",
    "computer_matching_agreement",
    "information_exchange_agreement",
    "confidentiality_pledge",
}


def all_obligations(law: LawPack) -> dict[str, str]:
    """Every obligation id of every rule, in every dated version -> the rule that carries it."""
    found: dict[str, str] = {}
    for rule in law.all_rules():
        for version in rule.versions:
            for ob in version.obligations:
                found.setdefault(ob.id, rule.id)
    return found


def test_every_obligation_of_the_federal_pack_maps_to_a_clause(law: LawPack, library: ClauseLibrary) -> None:
    obligations = all_obligations(law)
    assert len(obligations) > 100  # the enumeration really walked the pack
    unmapped = sorted(f"{ob} (rule {rule})" for ob, rule in obligations.items() if library.clause_for(ob) is None)
    assert not unmapped, "obligations with no clause in the library:\n" + "\n".join(unmapped)


def test_every_obligation_the_library_names_exists_in_the_pack(law: LawPack, library: ClauseLibrary) -> None:
    stale = sorted(library.mapped_obligations() - set(all_obligations(law)))
    assert not stale, f"clauses name obligations the law pack does not have: {stale}"


def test_the_generic_fallback_clause_lists_its_obligations_explicitly(library: ClauseLibrary) -> None:
    generic = [c for c in library.clauses.values() if c.generic]
    assert len(generic) == 1
    assert generic[0].requires, "the fallback must name the obligations it carries"


def test_every_agreement_document_of_the_vocabulary_has_a_type(law: LawPack, library: ClauseLibrary) -> None:
    assert set(law.vocabulary.documents) >= AGREEMENT_DOCUMENTS
    assert set(library.types) == AGREEMENT_DOCUMENTS


def test_a_computer_matching_agreement_is_limited_to_18_months_and_one_renewal(library: ClauseLibrary) -> None:
    term = library.types["computer_matching_agreement"].term
    assert (term.max_months, term.renewal_months, term.max_renewals) == (18, 12, 1)


def test_an_obligation_mapped_to_two_clauses_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "extra.yaml").write_text(
        "clauses:\n"
        "  - {id: again, title: Again, section: permitted_uses, requires: [snap_use_limited_to_administration],"
        " basis: test, text: 'x'}\n"
    )
    with pytest.raises(InvalidDataError) as caught:
        load_library(overlay=tmp_path)
    assert any("already mapped" in str(p) for p in caught.value.problems)


def test_a_broken_template_is_reported_with_its_file_and_clause(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "clauses:\n  - {id: purpose, title: Purpose, section: purpose, basis: test, text: '{% if %}'}\n"
    )
    with pytest.raises(InvalidDataError) as caught:
        load_library(overlay=tmp_path)
    assert any("broken.yaml: clause purpose" in str(p) and "template error" in str(p) for p in caught.value.problems)


def test_an_overlay_replaces_a_clause_by_id(tmp_path: Path) -> None:
    (tmp_path / "ours.yaml").write_text(
        "clauses:\n  - {id: general, title: Governing law, section: general, basis: agency counsel, text: 'Ours.'}\n"
    )
    library = load_library(overlay=tmp_path)
    assert library.clauses["general"].text == "Ours."
    assert library.clauses["general"].source == "ours.yaml"
