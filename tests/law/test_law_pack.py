"""The law pack as a test suite: every case of every rule file, and the shared golden floor."""

from __future__ import annotations

import datetime as dt

import pytest

from sharewise.policy.cases import CaseResult, coverage_gaps, run_case
from sharewise.policy.load import load_cases_file, load_law
from sharewise.policy.model import Case
from tests.conftest import SHARED, TODAY

LAW = load_law()
GOLDEN_FILE = SHARED / "law-cases" / "federal.yaml"


def _golden() -> list[Case]:
    # The shared floor must be present: a missing file fails the run rather than skipping it.
    return load_cases_file(GOLDEN_FILE) if GOLDEN_FILE.is_file() else []


def _check(case: Case, today: dt.date) -> CaseResult:
    result = run_case(LAW, case, today)
    assert result.passed, f"{case.source}: {case.name}\n  " + "\n  ".join(result.failures)
    return result


@pytest.mark.parametrize("case", LAW.cases, ids=lambda c: f"{c.source}")
def test_pack_case_passes(case: Case) -> None:
    _check(case, TODAY)


def test_golden_cases_file_is_present() -> None:
    assert GOLDEN_FILE.is_file(), f"the shared golden cases are missing at {GOLDEN_FILE}"
    assert len(_golden()) >= 30


@pytest.mark.parametrize("case", _golden(), ids=lambda c: c.name)
def test_golden_case_passes(case: Case) -> None:
    _check(case, TODAY)


def test_every_rule_has_an_applying_and_a_non_applying_case() -> None:
    results = [run_case(LAW, case, TODAY) for case in LAW.cases]
    gaps = coverage_gaps(LAW, results)
    assert not gaps, "\n".join(gaps)


def test_every_authority_named_in_the_contract_is_encoded() -> None:
    expected = {
        "tanf",
        "snap",
        "child_welfare",
        "capta",
        "child_support",
        "medicaid",
        "hipaa",
        "wic",
        "school_meals",
        "head_start",
        "child_care",
        "ferpa",
        "idea",
        "part2",
        "unemployment_compensation",
        "rhy",
        "victim_services",
        "title_x",
        "juvenile_justice",
        "privacy_act",
        "irc_6103",
    }
    assert expected <= {a.id for a in LAW.authorities}


def test_every_program_is_governed_by_some_authority() -> None:
    from sharewise.policy import condition
    from sharewise.policy.request_parse import make_lookup, parse_request

    for program in LAW.vocabulary.programs:
        request = parse_request(
            {
                "source": {"program": program},
                "recipient": {"kind": "public"},
                "purpose": "public_disclosure",
                "data": ["case_records"],
            },
            LAW.vocabulary,
        )
        lookup = make_lookup(request)
        governing = [a.id for a in LAW.authorities if condition.evaluate(a.governs_when, lookup)[0] is not False]
        assert governing, f"no authority governs records of {program}"
