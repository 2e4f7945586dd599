"""Evaluate a sharing request against a law pack into an explained determination."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sharewise.domain.determination import (
    COUNSEL_NOTICE,
    Alternative,
    AuthorityResult,
    Determination,
    Obligation,
    Question,
    Remedy,
    TraceEntry,
)
from sharewise.domain.outcome import Outcome, combine
from sharewise.domain.request import Request
from sharewise.policy import condition as cond_mod
from sharewise.policy.model import Authority, LawPack, Rule, RuleVersion
from sharewise.policy.request_parse import make_lookup


@dataclass
class _RuleEval:
    rule: Rule
    version: RuleVersion
    value: cond_mod.TV
    unknown: frozenset[str]


@dataclass
class _AuthorityEval:
    authority: Authority
    outcome: Outcome
    deciding: _RuleEval | None
    evals: list[_RuleEval]
    unknown: list[str] = field(default_factory=list)
    unknown_rules: list[_RuleEval] = field(default_factory=list)
    not_in_force: list[Rule] = field(default_factory=list)
    error: str | None = None
    governs_reason: str = ""


@dataclass
class _Decision:
    outcome: Outcome
    authorities: list[_AuthorityEval]


def decide(law: LawPack, request: Request, as_of: dt.date) -> _Decision:
    """The core decision (per-authority and overall outcomes), without explanations."""
    lookup = make_lookup(request)
    results: list[_AuthorityEval] = []
    for authority in law.authorities:
        governs, _ = cond_mod.evaluate(authority.governs_when, lookup)
        if governs is False:
            continue
        try:
            result = _decide_authority(authority, request, lookup, as_of)
        except Exception as exc:  # fail closed: an evaluation error never yields permitted
            result = _AuthorityEval(
                authority,
                Outcome.NEEDS_LEGAL_REVIEW,
                None,
                [],
                error=f"{type(exc).__name__}: {exc}",
            )
        result.governs_reason = "; ".join(cond_mod.reasons(authority.governs_when, lookup))
        results.append(result)
    return _Decision(combine([r.outcome for r in results]), results)


def _decide_authority(
    authority: Authority, request: Request, lookup: cond_mod.Lookup, as_of: dt.date
) -> _AuthorityEval:
    evals: list[_RuleEval] = []
    not_in_force: list[Rule] = []
    for rule in authority.rules:
        version = rule.version_on(as_of)
        if version is None:
            not_in_force.append(rule)
            continue
        value, unknown = cond_mod.evaluate(version.when, lookup)
        evals.append(_RuleEval(rule, version, value, unknown))

    if not evals:
        # No rule of this authority is in force on the date: the pack cannot answer (fail closed).
        return _AuthorityEval(authority, Outcome.NEEDS_LEGAL_REVIEW, None, evals, not_in_force=not_in_force)

    def of(kind: str, value: cond_mod.TV) -> list[_RuleEval]:
        return [e for e in evals if e.rule.kind == kind and e.value is value]

    def result(outcome: Outcome, deciding: _RuleEval | None, unknown_rules: Iterable[_RuleEval] = ()) -> _AuthorityEval:
        pending = list(unknown_rules)
        unknown: list[str] = []
        for e in pending:
            for path in sorted(e.unknown):
                if path not in unknown:
                    unknown.append(path)
        return _AuthorityEval(authority, outcome, deciding, evals, unknown, pending, not_in_force)

    prohibits = of("prohibit", True)
    if prohibits:
        return result(Outcome.PROHIBITED, prohibits[0])
    prohibit_unknown = of("prohibit", None)
    permits = of("permit", True)
    consent_given = request.facts.get("valid_consent") is True
    consents = of("consent", True)
    pathways = permits + (consents if consent_given else [])
    if pathways:
        if prohibit_unknown:
            return result(Outcome.NEEDS_FACTS, prohibit_unknown[0], prohibit_unknown)
        confident = [e for e in pathways if not e.version.needs_legal_review]
        if confident:
            return result(Outcome.PERMITTED, confident[0])
        return result(Outcome.NEEDS_LEGAL_REVIEW, pathways[0])
    unknown_rules = prohibit_unknown + of("permit", None) + of("consent", None)
    if unknown_rules:
        return result(Outcome.NEEDS_FACTS, unknown_rules[0], unknown_rules)
    reviews = of("review", True)
    if reviews:
        return result(Outcome.NEEDS_LEGAL_REVIEW, reviews[0])
    if consents:
        return result(Outcome.CONSENT_REQUIRED, consents[0])
    return result(Outcome.PROHIBITED, None)


def evaluate(law: LawPack, request: Request, as_of: dt.date) -> Determination:
    """Evaluate a request on a date into the full determination of the contract."""
    as_of = request.as_of or as_of
    decision = decide(law, request, as_of)
    lookup = make_lookup(request)
    authorities = [_authority_result(a, request, lookup, law) for a in decision.authorities]
    obligations, documents = _obligations(decision, lookup)
    questions = _questions(law, request, as_of, decision) if decision.outcome is Outcome.NEEDS_FACTS else []
    remedies = _remedies(law, request, as_of, decision) if decision.outcome is not Outcome.PERMITTED else []
    notices = [COUNSEL_NOTICE]
    if request.consents:
        notices.append(
            "Consent records listed in the request were not checked against the consent registry "
            "here; the engine relies on facts.valid_consent."
        )
    if not decision.authorities:
        notices.append("No encoded authority governs these records; the answer needs legal review.")
    return Determination(
        outcome=decision.outcome,
        law_version=law.law_version,
        law_hash=law.content_hash,
        as_of=as_of,
        authorities=authorities,
        obligations=obligations,
        documents=documents,
        questions=questions,
        remedies=remedies,
        trace=_trace(decision, lookup, law),
        notices=notices,
    )


def _cites(version: RuleVersion | None) -> list[str]:
    return [c.cite for c in version.citations] if version else []


def _authority_result(ev: _AuthorityEval, request: Request, lookup: cond_mod.Lookup, law: LawPack) -> AuthorityResult:
    authority = ev.authority
    deciding = ev.deciding
    if ev.error is not None:
        return AuthorityResult(
            authority=authority.id,
            name=authority.name,
            outcome=ev.outcome,
            pathway=None,
            decided_by=None,
            citations=[c.cite for c in authority.citations],
            explanation="The rules of this authority could not be evaluated, so the answer fails closed to legal review.",
            error=ev.error,
        )
    pathway = None
    citations = _cites(deciding.version) if deciding else [c.cite for c in authority.citations]
    if ev.outcome is Outcome.PERMITTED and deciding is not None:
        pathway = deciding.rule.id
        because = "; ".join(cond_mod.reasons(deciding.version.when, lookup))
        via = " with the person's written consent" if deciding.rule.kind == "consent" else ""
        explanation = f"Permitted{via} under {deciding.rule.title} ({citations[0]}): {deciding.version.summary} Facts used: {because}."
    elif ev.outcome is Outcome.PROHIBITED and deciding is not None:
        because = "; ".join(cond_mod.reasons(deciding.version.when, lookup))
        explanation = f"Prohibited by {deciding.rule.title} ({citations[0]}): {deciding.version.summary} Consent does not cure this. Facts used: {because}."
    elif ev.outcome is Outcome.PROHIBITED:
        considered = sum(1 for e in ev.evals if e.rule.kind in ("permit", "consent"))
        explanation = (
            f"None of the {considered} pathways encoded for {authority.name} covers this disclosure, "
            "and consent is not an available pathway for it."
        )
    elif ev.outcome is Outcome.CONSENT_REQUIRED and deciding is not None:
        considered = sum(1 for e in ev.evals if e.rule.kind == "permit")
        state = "is recorded as not given" if request.facts.get("valid_consent") is False else "is not recorded"
        explanation = (
            f"None of the {considered} pathways without consent applies. {deciding.version.summary} "
            f"Valid written consent {state}."
        )
    elif ev.outcome is Outcome.NEEDS_FACTS:
        titles = ", ".join(dict.fromkeys(e.rule.title for e in ev.unknown_rules))
        citations = list(dict.fromkeys(c for e in ev.unknown_rules for c in _cites(e.version)))
        explanation = f"The answer turns on facts not given ({', '.join(ev.unknown)}), which decide: {titles}."
    elif deciding is not None and deciding.rule.kind == "permit":
        pathway = deciding.rule.id
        explanation = (
            f"{deciding.rule.title} ({citations[0]}) likely applies, but the rule is flagged for legal "
            f"review: {deciding.version.notes or deciding.version.summary}"
        )
    elif deciding is not None:
        explanation = f"{deciding.rule.title} ({citations[0]}): {deciding.version.summary}"
    elif not ev.evals:
        explanation = (
            f"No rule encoded for {authority.name} is in force on the as_of date, "
            "so the pack cannot answer for that date; the answer needs legal review."
        )
    else:
        explanation = "No rule decided this authority."
    flags = []
    if deciding is not None and deciding.version.confidence == "uncertain":
        flags.append("deciding rule is encoded from an uncertain source; see its notes")
    if deciding is not None and deciding.version.needs_legal_review and ev.outcome is not Outcome.NEEDS_LEGAL_REVIEW:
        flags.append("deciding rule is flagged needs_legal_review")
    if deciding is not None and deciding.rule.id in law.overrides:
        flags.append(f"deciding rule is overridden by the {law.overrides[deciding.rule.id]} pack")
    return AuthorityResult(
        authority=authority.id,
        name=authority.name,
        outcome=ev.outcome,
        pathway=pathway,
        decided_by=deciding.rule.id if deciding else None,
        citations=citations,
        explanation=explanation,
        alternatives=_alternatives(ev, request, lookup),
        flags=flags,
    )


def _masked(lookup: cond_mod.Lookup) -> cond_mod.Lookup:
    def masked(path: str) -> Any:
        return cond_mod.MISSING if path.startswith("facts.") else lookup(path)

    return masked


def _fact_atoms(version: RuleVersion) -> list[str]:
    return list(dict.fromkeys(a.path for a, _ in cond_mod.atoms(version.when) if a.path.startswith("facts.")))


def _alternatives(ev: _AuthorityEval, request: Request, lookup: cond_mod.Lookup) -> list[Alternative]:
    out: list[Alternative] = []
    masked = _masked(lookup)
    for e in ev.evals:
        if e.rule.kind not in ("permit", "consent") or e is ev.deciding:
            continue
        status = None
        facts: list[str] = []
        if e.rule.kind == "consent" and e.value is True:
            status = "applies" if request.facts.get("valid_consent") is True else "needs_consent"
            facts = [] if status == "applies" else ["facts.valid_consent"]
        elif e.value is True:
            status = "applies"
        elif e.value is None:
            status, facts = "needs_facts", sorted(e.unknown)
        elif cond_mod.evaluate(e.version.when, masked)[0] is not False:
            status, facts = "would_apply_with_facts", _fact_atoms(e.version)
        if status:
            out.append(
                Alternative(
                    pathway=e.rule.id,
                    title=e.rule.title,
                    status=status,
                    citations=_cites(e.version),
                    facts=facts,
                )
            )
    return out


def _obligations(decision: _Decision, lookup: cond_mod.Lookup) -> tuple[list[Obligation], list[str]]:
    obligations: dict[tuple[str, str], Obligation] = {}
    documents: list[str] = []

    def add(e: _RuleEval) -> None:
        for ob in e.version.obligations:
            key = (e.rule.authority, ob.id)
            if key not in obligations:
                obligations[key] = Obligation(
                    id=ob.id,
                    text=ob.text,
                    citations=list(ob.citations),
                    source_authority=e.rule.authority,
                    rule=e.rule.id,
                )
        for doc in e.version.documents:
            if doc not in documents:
                documents.append(doc)
        if e.rule.kind == "consent" and "consent_form" not in documents:
            documents.append("consent_form")

    if decision.outcome is Outcome.PROHIBITED:
        # Nothing may be disclosed, so no duty of a disclosure applies; the remedies say what would.
        return [], []
    for ev in decision.authorities:
        if (
            ev.deciding is not None
            and ev.deciding.rule.kind in ("permit", "consent")
            and ev.outcome in (Outcome.PERMITTED, Outcome.NEEDS_LEGAL_REVIEW)
        ):
            add(ev.deciding)
        for e in ev.evals:
            if e.rule.kind == "obligation" and e.value is True:
                add(e)
    return list(obligations.values()), documents


def _question_text(law: LawPack, path: str) -> str:
    if path.startswith("facts."):
        return law.vocabulary.facts.get(path[6:], path)
    if path == "recipient.program":
        return "Which program does the recipient administer (recipient.program)?"
    return f"What is {path}?"


def _questions(law: LawPack, request: Request, as_of: dt.date, decision: _Decision) -> list[Question]:
    paths: list[str] = []
    for ev in decision.authorities:
        if ev.outcome is Outcome.NEEDS_FACTS:
            for path in ev.unknown:
                if path not in paths:
                    paths.append(path)
    out = []
    for path in paths:
        if_true = if_false = None
        if path.startswith("facts."):
            name = path[6:]
            if_true = decide(law, request.with_facts(**{name: True}), as_of).outcome
            if_false = decide(law, request.with_facts(**{name: False}), as_of).outcome
        out.append(Question(fact=path, ask=_question_text(law, path), if_true=if_true, if_false=if_false))
    return out


def _minimal_fact_changes(version: RuleVersion, request: Request, limit: int = 3) -> list[dict[str, bool]]:
    """The smallest sets of fact answers that make a rule hold, other facts left as they are."""
    wanted: dict[str, bool] = {}
    for atom, polarity in cond_mod.atoms(version.when):
        if atom.path.startswith("facts."):
            wanted.setdefault(atom.path[6:], bool(atom.value) == polarity)
    candidates = [(k, v) for k, v in wanted.items() if request.facts.get(k) is not v]
    for size in range(1, min(limit, len(candidates)) + 1):
        found = []
        for combo in itertools.combinations(candidates, size):
            changes = dict(combo)
            if cond_mod.evaluate(version.when, make_lookup(request.with_facts(**changes)))[0] is True:
                found.append(changes)
        if found:
            return found
    return []


def _remedies(law: LawPack, request: Request, as_of: dt.date, decision: _Decision) -> list[Remedy]:
    current = decision.outcome
    found: list[Remedy] = []
    seen: set[str] = set()

    def better(outcome: Outcome) -> bool:
        return outcome.rank < current.rank

    lookup = make_lookup(request)
    masked = _masked(lookup)
    # 1. Facts: pathways that match the request's shape and need only facts to hold.
    fact_remedies: list[tuple[int, Remedy]] = []
    for ev in decision.authorities:
        for e in ev.evals:
            if e.rule.kind != "permit" or e.value is True:
                continue
            if cond_mod.evaluate(e.version.when, masked)[0] is False:
                continue
            for changes in _minimal_fact_changes(e.version, request):
                key = "facts:" + repr(sorted(changes.items()))
                if key in seen:
                    continue
                seen.add(key)
                outcome = decide(law, request.with_facts(**changes), as_of).outcome
                if not better(outcome):
                    continue
                wanted = ", ".join(f"{k} = {str(v).lower()}" for k, v in changes.items())
                docs = f" Documents: {', '.join(e.version.documents)}." if e.version.documents else ""
                fact_remedies.append(
                    (
                        len(changes),
                        Remedy(
                            kind="facts",
                            description=f"Use {e.rule.title}: it applies when {wanted}.{docs}",
                            changes={f"facts.{k}": v for k, v in changes.items()},
                            outcome=outcome,
                            citations=_cites(e.version),
                        ),
                    )
                )
    found += [r for _, r in sorted(fact_remedies, key=lambda t: t[0])]
    # 2. Consent meeting every governing authority's elements.
    if request.facts.get("valid_consent") is not True:
        outcome = decide(law, request.with_facts(valid_consent=True), as_of).outcome
        if better(outcome):
            elements = []
            cites: list[str] = []
            for ev in decision.authorities:
                for e in ev.evals:
                    if e.rule.kind == "consent" and e.value is True:
                        cites += _cites(e.version)
                        elements += [
                            {
                                "authority": e.rule.authority,
                                "id": el.id,
                                "text": el.text,
                                "citations": list(el.citations),
                            }
                            for el in e.version.consent_elements
                        ]
            found.append(
                Remedy(
                    kind="consent",
                    description="Obtain written consent that meets every governing authority's required elements.",
                    changes={"facts.valid_consent": True},
                    outcome=outcome,
                    citations=cites,
                    consent_elements=elements,
                )
            )
    # 3. A less identifying form of the data.
    for form in ("limited_data_set", "deidentified", "aggregate"):
        if form == request.form:
            continue
        data = request.data
        if form in ("deidentified", "aggregate"):
            data = tuple(d for d in data if d not in ("identity", "contact"))
        if not data:
            continue
        outcome = decide(law, request.model_copy(update={"form": form, "data": data}), as_of).outcome
        if better(outcome):
            dropped = [d for d in request.data if d not in data]
            extra = f" without {', '.join(dropped)}" if dropped else ""
            found.append(
                Remedy(
                    kind="form",
                    description=f"Share the data as {form.replace('_', ' ')}{extra}.",
                    changes={"form": form, "data": list(data)},
                    outcome=outcome,
                )
            )
            break
    # 4. Leave out a data category that brings a stricter authority.
    if len(request.data) > 1:
        for category in request.data:
            data = tuple(d for d in request.data if d != category)
            outcome = decide(law, request.model_copy(update={"data": data}), as_of).outcome
            if better(outcome):
                found.append(
                    Remedy(
                        kind="data",
                        description=f"Leave out {category}.",
                        changes={"data": list(data)},
                        outcome=outcome,
                    )
                )
    return found


def _trace(decision: _Decision, lookup: cond_mod.Lookup, law: LawPack) -> list[TraceEntry]:
    out: list[TraceEntry] = []
    for ev in decision.authorities:
        out.append(
            TraceEntry(
                rule=f"{ev.authority.id}:governs",
                authority=ev.authority.id,
                kind="governs",
                result="holds",
                reason=ev.governs_reason or "governs",
            )
        )
        for e in ev.evals:
            result = {True: "holds", False: "does_not_hold", None: "unknown"}[e.value]
            reason = "; ".join(cond_mod.reasons(e.version.when, lookup))
            if e.rule.id in law.overrides:
                reason += f" (rule from the {law.overrides[e.rule.id]} pack)"
            out.append(
                TraceEntry(
                    rule=e.rule.id,
                    authority=ev.authority.id,
                    kind=e.rule.kind,
                    result=result,
                    reason=reason,
                    version=e.version.label,
                    unknown_facts=sorted(e.unknown),
                )
            )
        for rule in ev.not_in_force:
            out.append(
                TraceEntry(
                    rule=rule.id,
                    authority=ev.authority.id,
                    kind=rule.kind,
                    result="not_in_force",
                    reason="no version of this rule is in force on the as_of date",
                )
            )
    return out
