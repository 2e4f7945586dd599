"""The law library: list, show, cite and test the rules of the loaded law pack."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sharewise.domain.errors import NotFoundError
from sharewise.policy.cases import CaseResult, coverage_gaps, run_case
from sharewise.policy.load import load_cases_file
from sharewise.policy.model import Authority, Case, LawPack, Rule
from sharewise.policy.suggest import did_you_mean


@dataclass
class TestReport:
    """Results of running the law pack's cases (and any extra case files)."""

    results: list[CaseResult]
    gaps: list[str]

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.gaps


def find_rule(law: LawPack, rule_id: str) -> Rule:
    """A rule by id, or a not-found error with a suggestion."""
    rule = law.rule(rule_id)
    if rule is None:
        ids = [r.id for r in law.all_rules()]
        raise NotFoundError(f"no rule '{rule_id}'{did_you_mean(rule_id, ids)}")
    return rule


def find_authority(law: LawPack, authority_id: str) -> Authority:
    """An authority by id, or a not-found error with a suggestion."""
    authority = law.authority(authority_id)
    if authority is None:
        ids = [a.id for a in law.authorities]
        raise NotFoundError(f"no authority '{authority_id}'{did_you_mean(authority_id, ids)}")
    return authority


def cases_for_rule(law: LawPack, rule_id: str) -> list[Case]:
    """The pack's cases that name a rule in applies or not_applies."""
    return [
        c
        for c in law.cases
        if rule_id in (c.expect.get("applies") or []) or rule_id in (c.expect.get("not_applies") or [])
    ]


def run_tests(
    law: LawPack,
    today: dt.date,
    extra_case_files: list[Path] | None = None,
    only: str | None = None,
) -> TestReport:
    """Run every case of the pack plus extra case files; report failures and coverage gaps."""
    # Under a state pack, its own cases are run: federal cases may rightly change under state
    # law, and they are checked against the federal pack alone (`sharewise law test`).
    layered = "+" in law.id
    top = law.id.split("+")[-1]
    cases = [c for c in law.cases if not layered or c.pack == top]
    for path in extra_case_files or []:
        cases += load_cases_file(path)
    if only:
        cases = [c for c in cases if only in c.source or only in c.name]
    results = [run_case(law, case, today) for case in cases]
    gaps = [] if only or layered else coverage_gaps(law, results)
    return TestReport(results, gaps)
