"""Run golden cases against a law pack and check that every rule is covered by them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sharewise.domain.determination import Determination
from sharewise.domain.errors import InvalidRequestError
from sharewise.policy.evaluate import evaluate
from sharewise.policy.model import Case, LawPack
from sharewise.policy.request_parse import parse_request


@dataclass
class CaseResult:
    """What became of one case."""

    case: Case
    failures: list[str]
    determination: Determination | None = None
    applied: set[str] = field(default_factory=set)
    not_applied: set[str] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return not self.failures


def run_case(law: LawPack, case: Case, today: dt.date) -> CaseResult:
    """Evaluate a case's request and compare the determination with its expectations."""
    try:
        request = parse_request(case.request, law.vocabulary, label=case.source)
    except InvalidRequestError as exc:
        return CaseResult(case, [f"invalid request: {p}" for p in exc.problems])
    det = evaluate(law, request, today)
    failures: list[str] = []
    expect = case.expect
    holds = {t.rule for t in det.trace if t.result == "holds"}
    evaluated_false = {t.rule for t in det.trace if t.result == "does_not_hold"}
    if "outcome" in expect and det.outcome != expect["outcome"]:
        failures.append(f"outcome {det.outcome.value}, expected {expect['outcome']}")
    if "outcome_in" in expect and det.outcome not in expect["outcome_in"]:
        failures.append(f"outcome {det.outcome.value}, expected one of {expect['outcome_in']}")
    by_authority = {a.authority: a for a in det.authorities}
    for authority, outcome in (expect.get("authorities") or {}).items():
        got = by_authority.get(authority)
        if got is None:
            failures.append(f"authority {authority} does not govern (expected {outcome})")
        elif got.outcome != outcome:
            failures.append(f"authority {authority}: {got.outcome.value}, expected {outcome}")
    for authority, pathway in (expect.get("pathway") or {}).items():
        got = by_authority.get(authority)
        actual = got.pathway if got else None
        if actual != pathway:
            failures.append(f"authority {authority}: pathway {actual}, expected {pathway}")
    for rule in expect.get("applies") or []:
        if rule not in holds:
            failures.append(f"rule {rule} should apply but does not")
    for rule in expect.get("not_applies") or []:
        if rule not in evaluated_false:
            state = "applies" if rule in holds else "was not evaluated as false"
            failures.append(f"rule {rule} should not apply but {state}")
    cites = det.all_citations()
    for fragment in expect.get("cites") or []:
        if not any(fragment in c for c in cites):
            failures.append(f"no citation contains '{fragment}' (got {sorted(set(cites))})")
    for doc in expect.get("documents") or []:
        if doc not in det.documents:
            failures.append(f"document {doc} not listed (got {det.documents})")
    obligation_cites = [c for o in det.obligations for c in o.citations]
    for fragment in expect.get("obligations_cite") or []:
        if not any(fragment in c for c in obligation_cites):
            failures.append(f"no obligation citation contains '{fragment}'")
    asked = [q.fact for q in det.questions]
    for fact in expect.get("questions") or []:
        if fact not in asked:
            failures.append(f"question {fact} not asked (asked {asked})")
    return CaseResult(case, failures, det, holds, evaluated_false)


def coverage_gaps(law: LawPack, results: list[CaseResult]) -> list[str]:
    """Rules without a case that shows them applying, or without one showing them not applying."""
    applied: set[str] = set()
    not_applied: set[str] = set()
    for result in results:
        applied |= set(result.case.expect.get("applies") or []) & result.applied
        not_applied |= set(result.case.expect.get("not_applies") or []) & result.not_applied
    gaps = []
    for rule in law.all_rules():
        if rule.id not in applied:
            gaps.append(f"{rule.source}: rule {rule.id} has no passing case listing it in 'applies'")
        if rule.id not in not_applied:
            gaps.append(f"{rule.source}: rule {rule.id} has no passing case listing it in 'not_applies'")
    return gaps
