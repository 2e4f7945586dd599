"""Security use cases: categorize a share, specify its safeguards, export them, assess the recipient, Five Safes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.domain.events import AuditEvent, AuditSink
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import make_lookup
from sharewise.policy.yamlfile import YamlProblem, read_yaml
from sharewise.security import assess as assess_mod
from sharewise.security import categorize as cat_mod
from sharewise.security import overlays as overlay_mod
from sharewise.security.catalog import Catalog, load_catalog
from sharewise.security.five_safes import FiveSafes, five_safes
from sharewise.security.oscal_export import spec_digest, to_component_definition, to_profile
from sharewise.security.safeguards import Duties, SafeguardsSpec, build_spec, load_duties
from sharewise.services.determinations import determine

LAW_DIR = Path(__file__).resolve().parents[1] / "law" / "security"
EXPORT_KINDS = ("profile", "component-definition")


@dataclass(frozen=True)
class SecurityLaw:
    """The security law data checked against the law pack's vocabulary and the control catalog."""

    rules: cat_mod.CategorizationRules
    overlays: overlay_mod.OverlaySet
    duties: Duties
    catalog: Catalog


_loaded: dict[tuple[str, Path], SecurityLaw] = {}


def security_law(law: LawPack, directory: Path = LAW_DIR) -> SecurityLaw:
    """Load (once per law pack and folder) the information types, overlays and duties."""
    key = (law.content_hash, directory)
    if key not in _loaded:
        catalog = load_catalog()
        vocab = law.vocabulary
        _loaded[key] = SecurityLaw(
            rules=cat_mod.load_rules(directory / "information-types.yaml", vocab.data_categories, vocab.purposes),
            overlays=overlay_mod.load_overlays(directory, vocab, catalog.controls),
            duties=load_duties(directory / "duties.yaml", catalog),
            catalog=catalog,
        )
    return _loaded[key]


def parse_facts(pairs: Iterable[str], overlays: overlay_mod.OverlaySet) -> dict[str, bool]:
    """Security facts from NAME=true|false pairs; unknown names and values are errors."""
    facts: dict[str, bool] = {}
    problems: list[Problem] = []
    for pair in pairs:
        name, _, value = pair.partition("=")
        name = name.strip()
        if name not in overlays.facts:
            problems.append(
                Problem(f"--fact {name}", f"unknown security fact{cat_mod.did_you_mean(name, overlays.facts)}")
            )
        elif value.strip().lower() not in ("true", "false"):
            problems.append(Problem(f"--fact {name}", "give true or false, as NAME=true"))
        else:
            facts[name] = value.strip().lower() == "true"
    if problems:
        raise InvalidDataError("invalid security facts", problems)
    return facts


def parse_changes(pairs: Iterable[str]) -> list[tuple[str, str]]:
    """Reviewer changes from OBJECTIVE=LEVEL pairs."""
    changes = []
    for pair in pairs:
        objective, sep, level = pair.partition("=")
        if not sep:
            raise InvalidDataError(
                "invalid categorization change",
                [Problem(f"--set {pair}", "use OBJECTIVE=LEVEL, e.g. confidentiality=high")],
            )
        changes.append((objective.strip(), level.strip()))
    return changes


def specify(
    law: LawPack,
    request: Request,
    as_of: dt.date,
    records: int | None = None,
    facts: Mapping[str, bool] | None = None,
    changes: Sequence[tuple[str, str]] = (),
    justification: str | None = None,
    reviewer: str = "",
    sink: AuditSink | None = None,
    directory: Path = LAW_DIR,
) -> SafeguardsSpec:
    """Categorize the share, apply the overlays it triggers and any reviewer changes, and build its specification.

    Each reviewer change is reported to the audit sink before it takes effect; a failed audit
    write fails the whole call.
    """
    sec = security_law(law, directory)
    when = request.as_of or as_of
    categorization = cat_mod.categorize(sec.rules, request.data, request.form, request.purpose, records)
    lookup = overlay_mod.overlay_lookup(make_lookup(request), facts or {})
    statuses = overlay_mod.select(sec.overlays, lookup, when)
    categorization = cat_mod.apply_floors(categorization, overlay_mod.floors_of(sec.overlays, statuses))
    if changes and sink is None:
        raise ValueError("reviewer changes to a categorization must be reported to an audit sink")
    for objective, level in changes:
        before = categorization.level(objective) if objective in cat_mod.OBJECTIVES else None
        categorization = cat_mod.adjust(categorization, objective, level, justification, reviewer or "reviewer")
        assert sink is not None
        sink.record(
            AuditEvent(
                action="categorization-lowered"
                if before and cat_mod.rank(level) < cat_mod.rank(before)
                else "categorization-raised",
                actor=reviewer or "reviewer",
                subject_type="security-categorization",
                subject_id=f"{request.source.program}-{request.recipient.kind}-{request.purpose}",
                details={"objective": objective, "from": before, "to": level, "justified": True},
            )
        )
    parameters = overlay_mod.resolve_parameters(sec.overlays, statuses)
    return build_spec(
        sec.catalog, sec.duties, sec.overlays, categorization, statuses, parameters, when, sec.rules.references
    )


def export(spec: SafeguardsSpec, kind: str, generated: dt.datetime) -> dict[str, Any]:
    """The specification as an OSCAL profile or component definition."""
    if kind == "profile":
        return to_profile(spec, generated)
    if kind == "component-definition":
        return to_component_definition(spec, generated)
    raise InvalidDataError("unknown export kind", [Problem("--kind", f"use one of {', '.join(EXPORT_KINDS)}")])


def read_answers(path: Path, spec: SafeguardsSpec) -> tuple[str, list[assess_mod.Answer]]:
    """Read a completed questionnaire (YAML or JSON) and validate it against the specification."""
    try:
        data, _ = read_yaml(path, str(path))
    except YamlProblem as exc:
        raise InvalidDataError("malformed questionnaire", exc.problems) from exc
    return assess_mod.parse_answers(data, spec, str(path))


def assess(spec: SafeguardsSpec, answers_path: Path, as_of: dt.date) -> assess_mod.AssessmentResult:
    """Gaps and a plan of action for the recipient's answers."""
    recipient, answers = read_answers(answers_path, spec)
    return assess_mod.assess(spec, recipient, answers, as_of)


def sign_assessment(
    result: assess_mod.AssessmentResult,
    key_path: Path,
    reviewer: str,
    decision: str,
    signed_at: dt.datetime,
    sink: AuditSink,
) -> assess_mod.SignedAssessment:
    """The security reviewer signs the result; the signature counts only once the audit trail has it."""
    signed = assess_mod.sign(result, assess_mod.load_reviewer_key(key_path), reviewer, decision, signed_at)
    sink.record(
        AuditEvent(
            action="assessment-signed",
            actor=reviewer,
            subject_type="security-assessment",
            subject_id=result.specification_sha256[:16],
            details={"decision": decision, "gaps": len(result.gaps), "key_id": signed.key_id},
        )
    )
    return signed


def five_safes_view(
    law: LawPack,
    request: Request,
    spec: SafeguardsSpec,
    today: dt.date,
    assessment: assess_mod.AssessmentResult | None = None,
    authorized_users: tuple[str, ...] = (),
) -> FiveSafes:
    """The Five Safes summary, from a fresh determination of the request and its specification."""
    determination = determine(law, request, today)
    return five_safes(request, determination, spec, assessment, authorized_users)


__all__ = [
    "EXPORT_KINDS",
    "LAW_DIR",
    "SecurityLaw",
    "assess",
    "export",
    "five_safes_view",
    "parse_changes",
    "parse_facts",
    "read_answers",
    "security_law",
    "sign_assessment",
    "spec_digest",
    "specify",
]
