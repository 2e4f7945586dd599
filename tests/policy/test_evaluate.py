"""The engine: lattice, fail-closed, dates, questions, remedies, layering."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from sharewise.domain.outcome import Outcome, combine
from sharewise.policy import condition as cond_mod
from sharewise.policy import evaluate as evaluate_mod
from sharewise.policy.evaluate import evaluate
from sharewise.policy.load import load_law
from sharewise.policy.model import LawPack
from sharewise.policy.packfiles import FEDERAL_PACK
from sharewise.policy.request_parse import parse_request
from tests.conftest import TODAY


def req(law: LawPack, **raw: Any) -> Any:
    base: dict[str, Any] = {
        "source": {"program": "snap"},
        "recipient": {"kind": "law_enforcement"},
        "purpose": "locate_fugitive",
        "data": ["identity", "contact"],
    }
    base.update(raw)
    return parse_request(base, law.vocabulary)


def test_most_restrictive_outcome_wins() -> None:
    assert combine([Outcome.PERMITTED, Outcome.CONSENT_REQUIRED]) is Outcome.CONSENT_REQUIRED
    assert combine([Outcome.NEEDS_FACTS, Outcome.PROHIBITED, Outcome.PERMITTED]) is Outcome.PROHIBITED
    assert combine([]) is Outcome.NEEDS_LEGAL_REVIEW


def test_unknown_facts_lead_to_questions_with_their_consequences(law: LawPack) -> None:
    det = evaluate(law, req(law, facts={"written_request": True}), TODAY)
    assert det.outcome is Outcome.NEEDS_FACTS
    (question,) = [q for q in det.questions if q.fact == "facts.fleeing_felon"]
    assert question.if_true is Outcome.PERMITTED
    assert question.if_false in (Outcome.CONSENT_REQUIRED, Outcome.PROHIBITED)
    assert "fleeing" in question.ask


def test_answering_the_questions_settles_the_outcome(law: LawPack) -> None:
    det = evaluate(law, req(law, facts={"written_request": True, "fleeing_felon": True}), TODAY)
    assert det.outcome is Outcome.PERMITTED
    assert det.questions == []
    snap = next(a for a in det.authorities if a.authority == "snap")
    assert snap.pathway == "snap.fleeing-felon"
    assert "facts.fleeing_felon is true" in snap.explanation


def test_remedies_put_the_least_change_first(law: LawPack) -> None:
    det = evaluate(law, req(law), TODAY)
    assert det.remedies, "a refusal must say what would make the disclosure lawful"
    assert det.remedies[0].kind == "facts"
    kinds = [r.kind for r in det.remedies]
    assert kinds.index("facts") < kinds.index("consent")


def test_evaluation_error_fails_closed(law: LawPack, monkeypatch: pytest.MonkeyPatch) -> None:
    real = evaluate_mod._decide_authority

    def broken(authority: Any, *args: Any) -> Any:
        if authority.id == "snap":
            raise RuntimeError("boom")
        return real(authority, *args)

    monkeypatch.setattr(evaluate_mod, "_decide_authority", broken)
    det = evaluate(law, req(law, facts={"written_request": True, "fleeing_felon": True}), TODAY)
    assert det.outcome is Outcome.NEEDS_LEGAL_REVIEW
    snap = next(a for a in det.authorities if a.authority == "snap")
    assert snap.error is not None and "boom" in snap.error


def test_determination_records_version_hash_date_and_trace(law: LawPack) -> None:
    det = evaluate(law, req(law, as_of="2025-01-15"), TODAY)
    assert det.as_of == dt.date(2025, 1, 15)
    assert det.law_version == law.law_version and det.law_hash == law.content_hash
    assert {t.rule for t in det.trace} >= {r.id for r in law.authority("snap").rules}  # type: ignore[union-attr]
    assert any("legal advice" in n for n in det.notices)


def _versioned_pack(tmp_path: Path) -> Path:
    root = tmp_path / "federal"
    root.mkdir()
    for name in ("pack.yaml", "vocabulary.yaml"):
        shutil.copy(FEDERAL_PACK / name, root / name)
    folder = root / "7-cfr-272-snap"
    shutil.copytree(FEDERAL_PACK / "7-cfr-272-snap", folder)
    (folder / "dated.yaml").write_text(
        """rules:
  - id: snap.dated
    kind: permit
    title: A dated pathway
    summary: Only in force in some years, to test version selection.
    citations: ["7 CFR 272.1(c)"]
    confidence: verified
    effective_from: 2000-01-01
    when: {fact: recipient.kind, eq: court}
    versions:
      - {effective_from: 2000-01-01, effective_to: 2019-12-31, citations: ["7 CFR 272.1(c) (2000 text)"]}
      - {effective_from: 2020-01-01, effective_to: 2022-12-31, when: {fact: recipient.kind, eq: grand_jury}}
"""
    )
    return root


def test_the_version_in_force_on_as_of_decides(tmp_path: Path) -> None:
    law = load_law(federal_pack=_versioned_pack(tmp_path))
    court = {"recipient": {"kind": "court"}, "purpose": "judicial_proceeding"}
    old = evaluate(law, req(law, as_of="2015-06-01", **court), TODAY)
    assert old.outcome is Outcome.PERMITTED
    assert "7 CFR 272.1(c) (2000 text)" in old.authorities[0].citations
    newer = evaluate(law, req(law, as_of="2021-06-01", **court), TODAY)
    assert newer.outcome is not Outcome.PERMITTED
    gone = evaluate(law, req(law, as_of="2024-06-01", **court), TODAY)
    assert any(t.rule == "snap.dated" and t.result == "not_in_force" for t in gone.trace)


def test_adding_a_prohibition_never_turns_a_refusal_into_a_permission(law: LawPack) -> None:
    prohibit = dataclasses.replace(
        law.authority("snap").rules[0],  # type: ignore[union-attr]
        id="snap.test-prohibit",
        kind="prohibit",
    )
    snap = law.authority("snap")
    assert snap is not None
    stricter = dataclasses.replace(
        law,
        authorities=tuple(
            dataclasses.replace(a, rules=(*a.rules, prohibit)) if a.id == "snap" else a for a in law.authorities
        ),
    )
    for kind in ("state_or_local_agency", "law_enforcement", "researcher", "public"):
        for purpose in ("eligibility_determination", "research", "locate_fugitive"):
            r = req(law, recipient={"kind": kind, "program": "tanf"}, purpose=purpose)
            before = evaluate(law, r, TODAY).outcome
            after = evaluate(stricter, r, TODAY).outcome
            assert after.rank >= before.rank


def test_no_governing_authority_fails_closed(law: LawPack) -> None:
    empty = dataclasses.replace(law, authorities=())
    det = evaluate(empty, req(law), TODAY)
    assert det.outcome is Outcome.NEEDS_LEGAL_REVIEW


def test_unknown_governance_is_treated_as_governing(law: LawPack) -> None:
    snap = law.authority("snap")
    assert snap is not None
    unknown = cond_mod.Atom("facts.court_order", "is", True)
    pack = dataclasses.replace(law, authorities=(dataclasses.replace(snap, governs_when=unknown),))
    det = evaluate(pack, req(law), TODAY)
    assert [a.authority for a in det.authorities] == ["snap"]


def test_an_authority_with_no_rule_in_force_fails_closed(law: LawPack) -> None:
    # The Part 2 rules encoded start in 2017; a disclosure dated earlier cannot be answered.
    r = parse_request(
        {
            "as_of": "2010-01-01",
            "source": {"program": "sud_treatment"},
            "recipient": {"kind": "researcher"},
            "purpose": "research",
            "data": ["sud_treatment_information"],
        },
        law.vocabulary,
    )
    det = evaluate(law, r, TODAY)
    part2 = next(a for a in det.authorities if a.authority == "part2")
    assert part2.outcome is Outcome.NEEDS_LEGAL_REVIEW
    assert "in force" in part2.explanation
