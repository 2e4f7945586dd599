"""Drafting: every clause the obligations require, the appendix, refusals and the law's term limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sharewise.agreements.draft import AgreementDraft, draft_agreement, parse_blocks
from sharewise.agreements.library import ClauseLibrary
from sharewise.agreements.parties import Parties
from sharewise.domain.determination import Obligation
from sharewise.domain.errors import InvalidDataError, InvalidRequestError, NotPermittedError
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request
from sharewise.services import documents
from sharewise.services.determinations import determine
from tests.agreements.conftest import NOT_PERMITTED, REQUESTS, TYPE_OF

TODAY = dt.date(2026, 11, 25)


def make(law: LawPack, case: str, parties: Parties, **changes: Any) -> AgreementDraft:
    request = parse_request(REQUESTS[case], law.vocabulary)
    if changes:
        parties = parties.model_copy(update=changes)
    return documents.draft(law, request, parties, TODAY, TYPE_OF[case])


def clause_ids(draft: AgreementDraft) -> set[str]:
    return {c.id for s in draft.sections for c in s.clauses}


@pytest.mark.parametrize("case", sorted(REQUESTS))
def test_an_agreement_carries_the_clause_for_every_obligation_of_its_determination(
    law: LawPack, library: ClauseLibrary, parties: Parties, case: str
) -> None:
    draft = make(law, case, parties, agreement=parties.agreement.model_copy(update={"term_months": None}))
    request = parse_request(REQUESTS[case], law.vocabulary)
    det = determine(law, request, TODAY)
    doc_type = library.types[TYPE_OF[case]]
    carried = {(o.id, o.rule) for s in draft.sections for c in s.clauses for o in c.obligations}
    for ob in det.obligations:
        clause = library.clause_for(ob.id)
        assert clause is not None
        if doc_type.obligation_sections is None or clause.section in doc_type.obligation_sections:
            assert clause.id in clause_ids(draft), f"{ob.id} needs clause {clause.id}"
            assert (ob.id, ob.rule) in carried
    for standard in doc_type.standard:
        assert standard in clause_ids(draft)


def test_the_appendix_maps_each_obligation_to_its_clause_rule_and_citation(law: LawPack, parties: Parties) -> None:
    draft = make(law, "ferpa_study_agreement", parties)
    rows = {r.requirement: r for r in draft.appendix}
    row = rows["ferpa_study_agreement_elements"]
    assert row.clause_id == "ferpa-study-terms"
    assert row.rule == "ferpa.studies"
    assert row.citations == ("34 CFR 99.31(a)(6)(iii)(C)",)
    assert rows["ferpa_study_destroy"].clause_id == "destruction-required"
    pathway = [r for r in draft.appendix if r.requirement == "pathway"]
    assert pathway and all(r.citations for r in pathway)


def test_a_determination_that_is_not_permitted_is_refused(law: LawPack, parties: Parties) -> None:
    request = parse_request(NOT_PERMITTED, law.vocabulary)
    with pytest.raises(NotPermittedError) as caught:
        documents.draft(law, request, parties, TODAY, "qualified_service_organization_agreement")
    assert "not 'permitted'" in caught.value.message
    assert caught.value.problems and "part2" in str(caught.value.problems[0])


def test_an_unknown_document_type_suggests_the_closest(law: LawPack, parties: Parties) -> None:
    request = parse_request(REQUESTS["data_sharing_agreement"], law.vocabulary)
    with pytest.raises(InvalidRequestError) as caught:
        documents.draft(law, request, parties, TODAY, "data_sharing_agrement")
    assert "did you mean 'data_sharing_agreement'" in str(caught.value.problems[0])


def test_a_consent_form_is_not_drafted_as_an_agreement(law: LawPack, parties: Parties) -> None:
    request = parse_request(REQUESTS["data_sharing_agreement"], law.vocabulary)
    with pytest.raises(InvalidRequestError) as caught:
        documents.draft(law, request, parties, TODAY, "consent_form")
    assert "consent-form" in str(caught.value.problems[0])


def test_without_a_type_the_agreement_the_determination_lists_is_drafted(law: LawPack, parties: Parties) -> None:
    request = parse_request(REQUESTS["business_associate_agreement"], law.vocabulary)
    assert documents.draft(law, request, parties, TODAY).doc_type == "business_associate_agreement"


def test_a_computer_matching_agreement_runs_18_months_with_one_12_month_renewal(law: LawPack, parties: Parties) -> None:
    terms = parties.agreement.model_copy(update={"term_months": None})
    draft = make(law, "computer_matching_agreement", parties, agreement=terms)
    term = next(c for s in draft.sections for c in s.clauses if c.id == "term")
    text = " ".join(b.text for b in term.blocks)
    assert "takes effect on 2026-04-01 and ends on 2027-09-30 (18 months)" in text
    assert "renewed once for up to 12 months" in text
    assert "cma-term" in clause_ids(draft) and "cma-verification" in clause_ids(draft)


def test_a_computer_matching_agreement_longer_than_18_months_is_rejected(law: LawPack, parties: Parties) -> None:
    with pytest.raises(InvalidDataError) as caught:
        make(law, "computer_matching_agreement", parties)  # the example asks for 24 months
    assert "agreement.term_months" in str(caught.value.problems[0])
    assert "18 months" in str(caught.value.problems[0])


def test_a_second_renewal_of_a_computer_matching_agreement_is_rejected(law: LawPack, parties: Parties) -> None:
    terms = parties.agreement.model_copy(update={"term_months": 18, "renewals": 2})
    with pytest.raises(InvalidDataError) as caught:
        make(law, "computer_matching_agreement", parties, agreement=terms)
    assert "agreement.renewals" in str(caught.value.problems[0])


def test_a_uc_agreement_is_titled_under_603_10_and_carries_the_uc_clauses(law: LawPack, parties: Parties) -> None:
    draft = make(law, "uc_603_10", parties)
    assert draft.title == "Data Sharing Agreement (20 CFR 603.10)"
    assert {"uc-agreement-terms", "penalties"} <= clause_ids(draft)


def test_a_confidentiality_pledge_has_a_signature_line_for_each_named_user(law: LawPack, parties: Parties) -> None:
    draft = make(law, "confidentiality_pledge", parties)
    assert [s.name for s in draft.signatures] == ["Sam Okafor"]
    assert "uc-agreement-terms" not in clause_ids(draft)  # agency terms stay in the agreement
    assert "penalties" in clause_ids(draft)  # a user's duties come with the pledge


def test_an_obligation_missing_from_the_library_is_stated_in_its_own_words_with_a_warning(
    law: LawPack, library: ClauseLibrary, parties: Parties
) -> None:
    request = parse_request(REQUESTS["data_sharing_agreement"], law.vocabulary)
    det = determine(law, request, TODAY)
    extra = Obligation(
        id="state_only_duty", text="Do the state thing.", citations=["Fr. Code 1-2"], source_authority="x", rule="x.y"
    )
    det = det.model_copy(update={"obligations": [*det.obligations, extra]})
    labels = documents.labels_for(law)
    draft = draft_agreement(det, request, parties, library.types["data_sharing_agreement"], library, labels)
    generic = next(c for s in draft.sections for c in s.clauses if c.id == "conditions-of-disclosure")
    assert "Do the state thing (Fr. Code 1-2)." in generic.blocks[1].items
    assert any("state_only_duty" in w for w in draft.warnings)


def test_fields_left_out_of_the_parties_file_are_marked_and_warned(law: LawPack, parties: Parties) -> None:
    bare = Parties(agreement=parties.agreement, discloser=parties.discloser, recipient=parties.recipient)
    draft = make(law, "data_sharing_agreement", bare)
    assert any("transfer.method" in w for w in draft.warnings)


def test_clause_text_splits_into_paragraphs_and_lists() -> None:
    blocks = parse_blocks("Lead:\n\n- one\n\n- two\nMore text\n\nLast.\n")
    assert [b.kind for b in blocks] == ["paragraph", "bullets", "paragraph", "paragraph"]
    assert blocks[1].items == ("one", "two")
