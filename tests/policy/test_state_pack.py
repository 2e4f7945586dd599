"""A state pack layers on the federal pack: it adds rules and replaces rules by id."""

from __future__ import annotations

from pathlib import Path

from sharewise.domain.outcome import Outcome
from sharewise.policy.cases import run_case
from sharewise.policy.evaluate import evaluate
from sharewise.policy.load import load_law
from sharewise.policy.request_parse import parse_request
from tests.conftest import REPO, TODAY

FREEDONIA = REPO / "docs" / "examples" / "state-pack-freedonia"


def test_example_state_pack_cases_pass() -> None:
    law = load_law(FREEDONIA)
    assert law.law_version == "federal+freedonia-2026.1+2026.1"
    state_cases = [c for c in law.cases if c.pack == "freedonia"]
    assert len(state_cases) == 3
    for case in state_cases:
        result = run_case(law, case, TODAY)
        assert result.passed, result.failures


def test_state_rule_replaces_the_federal_rule_and_says_so() -> None:
    law = load_law(FREEDONIA)
    assert law.overrides["tanf.state-defined-safeguards"] == "freedonia"
    request = parse_request(
        {
            "source": {"program": "tanf"},
            "recipient": {"kind": "researcher"},
            "purpose": "research",
            "data": ["case_records"],
        },
        law.vocabulary,
    )
    det = evaluate(law, request, TODAY)
    assert det.outcome is Outcome.NEEDS_LEGAL_REVIEW
    tanf = next(a for a in det.authorities if a.authority == "tanf")
    assert any("freedonia" in f for f in tanf.flags)
    assert any("Freedonia" in c for c in tanf.citations)


def test_federal_pack_alone_is_unchanged_by_the_state_pack() -> None:
    federal = load_law()
    assert federal.rule("tanf.freedonia-referral") is None
    assert "freedonia_referral_agreement" not in federal.vocabulary.facts


def test_state_pack_directory_must_declare_itself(tmp_path: Path) -> None:
    from sharewise.domain.errors import InvalidLawPackError

    (tmp_path / "pack.yaml").write_text("id: x\nversion: '1'\nkind: federal\nname: X\n")
    try:
        load_law(tmp_path)
    except InvalidLawPackError as exc:
        assert any("kind: state" in p.message for p in exc.problems)
    else:
        raise AssertionError("a second federal pack must be rejected")
